"""The portal in a real browser (headless Debian Chromium through Playwright) against the
whole stack: a new team's journey from sign-in to a green dashboard cell, a guided failure
resolved from the task page, and a viewer who can change nothing.

Issue 11 Done-when 1-4. The tests run in file order and share one stack: the journey
approves the agent the others deploy to.
"""

from __future__ import annotations

import io
import re
import shutil
import subprocess
import uuid
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Page,
    expect,
    sync_playwright,
)

from cephalo_dev.agents import LocalAgent
from cephalo_dev.processes import stop
from cephalo_dev.shared_stack import SharedStack
from cephalo_dev.stack import Stack
from cephalo_gateway.portal.audit import page_problems

pytestmark = [pytest.mark.browser, pytest.mark.e2e]
ENVIRONMENT = "Browser Dev"
PROJECT = "Storefront"
PACKAGE = "StorefrontApp"
DOCS_PICTURE = Path(__file__).parents[2] / "docs" / "portal-dashboard.png"
SPACE = "/api/v1/spaces/default"
READ_ONLY_BUTTONS = {"Show plan", "Filter"}


PASSWORD = "browser tests only, long enough"
ROLE = "web"


def chromium_path() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.skip("Debian chromium is not installed (make test installs it as root)")
    return found


@pytest.fixture(scope="module")
def stack(whole_stack: SharedStack) -> SharedStack:
    """The session's shared stack (cephalo_dev.shared_stack), still as a new install has it:
    the browser journey runs first on it (its screenshots are the portal's documentation)."""
    return whole_stack


@pytest.fixture(scope="module")
def admin_api(stack: Stack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=stack.gateway_url, headers=stack.auth_headers, timeout=30) as c:
        yield c


def call(client: httpx.Client, method: str, path: str, **kwargs: Any) -> Any:
    response = client.request(method, path, **kwargs)
    assert response.status_code < 400, f"{method} {path}: {response.status_code} {response.text}"
    return response.json() if response.content else None


def new_user(admin_api: httpx.Client, role: str) -> str:
    """A user with a password and `role` everywhere (through a team of their own)."""
    username = f"{role}-{uuid.uuid4().hex[:6]}"
    user = call(
        admin_api, "POST", "/api/v1/users", json={"username": username, "password": PASSWORD}
    )
    team = call(
        admin_api,
        "POST",
        "/api/v1/teams",
        json={"name": f"Team {username}", "member_user_ids": [user["id"]]},
    )
    call(admin_api, "POST", f"/api/v1/teams/{team['id']}/role-assignments", json={"role": role})
    return username


@pytest.fixture(scope="module")
def admin_user(admin_api: httpx.Client) -> str:
    return new_user(admin_api, "administrator")


@dataclass
class PendingAgent:
    agent: LocalAgent
    process: subprocess.Popen[bytes]
    thumbprint: str


@pytest.fixture(scope="module")
def pending_agent(
    stack: Stack, admin_api: httpx.Client, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[PendingAgent]:
    """An agent the server does not trust: it registered, then replaced its certificate, and
    its old machine was removed. Running, it is refused and asks to be approved."""
    base = "/api/v1/spaces/default"
    call(admin_api, "POST", f"{base}/environments", json={"name": "Registration"})
    agent = LocalAgent(
        "web-01", tmp_path_factory.mktemp("agent"), stack.gateway_url, api_key=stack.api_key
    )
    agent.register(["Registration"], [ROLE])
    old = [m for m in call(admin_api, "GET", f"{base}/machines") if m["name"] == agent.name]
    for machine in old:
        call(admin_api, "DELETE", f"{base}/machines/{machine['id']}")
    agent._cli("new-certificate", "--force")
    thumbprint = agent._cli("show-thumbprint").strip()
    process = agent.start(stack.logs_dir / "agent-web-01.log")
    try:
        yield PendingAgent(agent, process, thumbprint)
    finally:
        stop(process)


@dataclass
class Journal:
    """Screenshots of every page seen, and every console error of the browser."""

    directory: Path
    console_errors: list[str] = field(default_factory=list)
    count: int = 0

    def shot(self, page: Page, name: str) -> Path:
        self.count += 1
        path = self.directory / f"{self.count:02d}-{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    def watch(self, page: Page) -> None:
        def on_console(message: ConsoleMessage) -> None:
            if message.type == "error":
                self.console_errors.append(f"{page.url}: {message.text}")

        page.on("console", on_console)
        page.on("pageerror", lambda error: self.console_errors.append(f"{page.url}: {error}"))


@pytest.fixture(scope="module")
def browser(stack: Stack) -> Iterator[Browser]:
    """Started after the stack: Playwright's sync API keeps an event loop running in this
    thread, where the stack's migrations could not `asyncio.run`."""
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=chromium_path(), headless=True, args=["--no-sandbox"]
        )
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture(scope="module")
def journal(tmp_path_factory: pytest.TempPathFactory) -> Journal:
    return Journal(tmp_path_factory.mktemp("screenshots"))


@pytest.fixture(scope="module")
def context(browser: Browser, stack: Stack) -> Iterator[BrowserContext]:
    made = browser.new_context(base_url=stack.gateway_url, viewport={"width": 1280, "height": 800})
    made.set_default_timeout(20_000)
    try:
        yield made
    finally:
        made.close()


@pytest.fixture(scope="module")
def page(context: BrowserContext, journal: Journal) -> Page:
    opened = context.new_page()
    journal.watch(opened)
    return opened


def well_formed(page: Page) -> None:
    """Issue 11 Done-when 4 on the page the browser shows now."""
    assert page_problems(page.content()) == [], page.url


def visit(page: Page, journal: Journal, path: str, name: str) -> None:
    page.goto(path)
    well_formed(page)
    journal.shot(page, name)


def sign_in(page: Page, username: str) -> None:
    page.goto("/app/sign-in")
    well_formed(page)
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/app/dashboard$"))


def package_zip(tmp_path: Path, version: str) -> Path:
    path = tmp_path / f"{PACKAGE}.{version}.zip"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("version.txt", version)
        archive.writestr("Deploy.sh", 'echo "storefront $(cat version.txt) installed"\n')
    path.write_bytes(buffer.getvalue())
    return path


def reload_until(page: Page, locator: str, seconds: float = 60) -> None:
    """Reload (bounded) until something the server shows appears."""
    for _ in range(int(seconds)):
        if page.locator(locator).count():
            return
        page.wait_for_timeout(1000)
        page.reload()
    raise AssertionError(f"{locator} did not appear on {page.url}")


def post_from_page(page: Page, path: str, form: dict[str, str]) -> int:
    """What a user could do by hand: post a form the portal did not offer, from the page
    (same origin, their own cookie and CSRF token)."""
    status: int = page.evaluate(
        """async ([path, form]) => {
            const response = await fetch(path, {
                method: "POST", body: new URLSearchParams(form), redirect: "manual"
            });
            return response.status;
        }""",
        [path, form],
    )
    return status


def deploy_from_release_page(page: Page, journal: Journal, guided: bool) -> None:
    page.get_by_label("Environment").select_option(label=ENVIRONMENT)
    page.get_by_role("button", name="Show plan").click()
    expect(page.locator("table.plan")).to_contain_text("web-01")
    well_formed(page)
    journal.shot(page, "plan")
    if guided:
        page.get_by_label("Use guided failure").check()
    page.get_by_role("button", name=f"Deploy to {ENVIRONMENT}").click()
    expect(page).to_have_url(re.compile(r"/app/tasks/[0-9a-f-]+$"), timeout=60_000)


@pytest.mark.timeout(300)
def test_a_new_team_goes_from_sign_in_to_a_green_dashboard_cell(
    page: Page,
    journal: Journal,
    stack: Stack,
    admin_user: str,
    pending_agent: PendingAgent,
    tmp_path: Path,
) -> None:
    page.goto("/app/dashboard")
    expect(page).to_have_url(re.compile(r"/app/sign-in$"))
    journal.shot(page, "sign-in")
    sign_in(page, admin_user)
    journal.shot(page, "empty-dashboard")

    visit(page, journal, "/app/environments", "environments")
    page.get_by_label("Name").fill(ENVIRONMENT)
    page.get_by_role("button", name="Add environment").click()
    expect(page.locator("table")).to_contain_text(ENVIRONMENT)
    journal.shot(page, "environment-added")

    page.goto("/app/machines")
    reload_until(page, f'form[data-pending="{pending_agent.agent.name}"]')
    well_formed(page)
    pending = page.locator(f'form[data-pending="{pending_agent.agent.name}"]')
    expect(pending).to_contain_text(pending_agent.thumbprint)
    journal.shot(page, "pending-agent")
    pending.get_by_label("Environments").select_option(label=ENVIRONMENT)
    pending.get_by_label("Roles").fill(ROLE)
    pending.get_by_role("button", name="Approve").click()
    row = f'tr[data-machine="{pending_agent.agent.name}"]'
    expect(page.locator(row)).to_contain_text(ENVIRONMENT)
    reload_until(page, f'{row}:has(td:text-is("Yes"))', seconds=90)
    journal.shot(page, "agent-approved")

    visit(page, journal, "/app/projects", "projects")
    page.get_by_label("Name").fill(PROJECT)
    page.get_by_role("button", name="Add project").click()
    expect(page.locator("h1")).to_have_text(PROJECT)
    page.get_by_label("Step name").fill("Say hello")
    page.get_by_label("Target roles").fill(ROLE)
    page.get_by_label("Script (for a script step)").fill('echo "hello from $(hostname)"')
    page.get_by_role("button", name="Add step").click()
    page.get_by_label("Step name").fill("Install storefront")
    page.get_by_label("Kind").select_option("package")
    page.get_by_label("Target roles").fill(ROLE)
    page.get_by_label("Package id (for a package step)").fill(PACKAGE)
    page.get_by_role("button", name="Add step").click()
    expect(page.locator("ol.steps li")).to_have_count(2)
    well_formed(page)
    journal.shot(page, "process")
    project_url = page.url

    visit(page, journal, "/app/packages", "packages")
    page.get_by_label("Package file").set_input_files(str(package_zip(tmp_path, "1.0.0")))
    page.get_by_role("button", name="Upload").click()
    expect(page.locator(f'tr[data-package="{PACKAGE}"][data-version="1.0.0"]')).to_be_visible()
    journal.shot(page, "package-uploaded")

    page.goto(project_url)
    page.get_by_label("Version").fill("1.0.0")
    page.get_by_role("button", name="Create release").click()
    expect(page.locator("h1")).to_contain_text("Release 1.0.0")
    expect(page.locator("main")).to_contain_text("Install storefront 1.0.0")
    journal.shot(page, "release")

    deploy_from_release_page(page, journal, guided=False)
    well_formed(page)
    journal.shot(page, "task-running")
    expect(page.locator("#task-state")).to_have_text("Success", timeout=120_000)
    expect(page.locator("#task-log")).to_contain_text("hello from ")
    expect(page.locator("#task-log")).to_contain_text("storefront 1.0.0 installed")
    well_formed(page)
    journal.shot(page, "task-success")

    visit(page, journal, "/app/dashboard", "dashboard")
    cell = page.locator(f'td.cell[data-project="{PROJECT}"][data-environment="{ENVIRONMENT}"]')
    expect(cell).to_have_attribute("data-state", "Success")
    expect(cell).to_contain_text("1.0.0")
    expect(cell).to_have_css("background-color", "rgb(223, 243, 229)")
    final = journal.shot(page, "dashboard-green")
    shutil.copyfile(final, DOCS_PICTURE)
    assert journal.console_errors == []


@pytest.mark.timeout(300)
def test_a_guided_failure_is_retried_then_the_machine_excluded_from_the_task_page(
    page: Page, journal: Journal, admin_api: httpx.Client, pending_agent: PendingAgent
) -> None:
    project = call(admin_api, "POST", f"{SPACE}/projects", json={"name": "Flaky"})
    step = {"name": "Always fails", "target_roles": [ROLE], "script_body": 'echo "broken"; exit 3'}
    call(
        admin_api,
        "PUT",
        f"{SPACE}/projects/{project['id']}/deployment-process",
        json={"steps": [step]},
    )
    release = call(
        admin_api, "POST", f"{SPACE}/projects/{project['id']}/releases", json={"version": "0.1.0"}
    )
    page.goto(f"/app/releases/{release['id']}")
    deploy_from_release_page(page, journal, guided=True)

    for choice in ("Retry", "Exclude machine"):
        button = page.get_by_role("button", name=choice)
        expect(button).to_be_visible(timeout=90_000)
        well_formed(page)
        journal.shot(page, f"guided-failure-{choice.lower().replace(' ', '-')}")
        button.click()
    expect(page.locator("#task-state")).to_have_text(re.compile("Success|Failed"), timeout=90_000)
    task_id = page.url.rsplit("/", 1)[-1]
    answers = call(admin_api, "GET", f"{SPACE}/tasks/{task_id}/interruptions")
    assert [a["result"] for a in answers] == ["Retry", "Exclude"]
    task = call(admin_api, "GET", f"{SPACE}/tasks/{task_id}")
    assert sorted(run["attempt"] for run in task["step_runs"]) == [1, 2]
    journal.shot(page, "guided-failure-resolved")
    assert journal.console_errors == []


@pytest.mark.timeout(120)
def test_a_viewer_sees_no_edit_or_deploy_buttons_and_a_direct_post_is_refused(
    browser: Browser, stack: Stack, admin_api: httpx.Client, journal: Journal
) -> None:
    viewer = new_user(admin_api, "project-viewer")
    context = browser.new_context(base_url=stack.gateway_url)
    try:
        page = context.new_page()
        journal.watch(page)
        sign_in(page, viewer)
        project = call(admin_api, "GET", f"{SPACE}/projects/{PROJECT}")
        releases = call(admin_api, "GET", f"{SPACE}/projects/{project['id']}/releases")
        release = (releases["items"] if isinstance(releases, dict) else releases)[0]
        environment = call(admin_api, "GET", f"{SPACE}/environments/{ENVIRONMENT}")
        for path in (
            "/app/dashboard",
            "/app/environments",
            "/app/projects",
            f"/app/projects/{project['id']}",
            f"/app/releases/{release['id']}?environment={environment['id']}",
            "/app/packages",
            "/app/machines",
        ):
            page.goto(path)
            well_formed(page)
            buttons = set(page.locator("main button").all_inner_texts())
            assert buttons <= READ_ONLY_BUTTONS, (path, buttons)
            assert page.locator("main form[method=post]").count() == 0, path
        journal.shot(page, "viewer-release")
        assert journal.console_errors == []
        token = page.locator('header input[name="csrf_token"]').get_attribute("value") or ""
        deploy = {"csrf_token": token, "environment_id": environment["id"]}
        assert post_from_page(page, f"/app/releases/{release['id']}/deploy", deploy) == 403
        new_environment = {"csrf_token": token, "name": "Viewer was here"}
        assert post_from_page(page, "/app/environments", new_environment) == 403
        deployments = call(
            admin_api, "GET", f"{SPACE}/deployments", params={"release_id": release["id"]}
        )
        assert len(deployments["items"] if isinstance(deployments, dict) else deployments) == 1
        assert all("403" in error for error in journal.console_errors), journal.console_errors
    finally:
        context.close()
