"""`python -m cephalo_dev run`: the embedded stack, a demo deployment, then wait for Ctrl-C."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from pathlib import Path

import httpx

from cephalo_common.embedded import EmbeddedNats, EmbeddedPostgres
from cephalo_dev import demo
from cephalo_dev.agents import LocalAgent
from cephalo_dev.processes import stop
from cephalo_dev.stack import Ports, Stack

POSTGRES_PORT = 5433
NATS_PORT = 4223


def say(message: str) -> None:
    print(f"==> {message}", flush=True)


async def run_demo(stack: Stack) -> demo.DeploymentOutcome:
    async with httpx.AsyncClient(
        base_url=stack.gateway_url, timeout=30, headers=stack.auth_headers
    ) as client:
        api = demo.Api(client)
        environment = await demo.ensure_environment(api)
        project = await demo.ensure_project(api)
        release = await demo.create_release(api, project)
        say(f"Deploying {project['name']} {release['version']} to {environment['name']}")
        return await demo.deploy_and_wait(api, release, environment)


def print_outcome(outcome: demo.DeploymentOutcome) -> None:
    print("\n--- task log " + "-" * 60)
    for line in outcome.log:
        where = line.get("machine") or "server"
        print(f"{line.get('time', '')[:19]}  {where:<14} {line['text']}")
    print("-" * 73)
    say(f"Deployment finished: {outcome.state}")


def print_addresses(stack: Stack) -> None:
    gateway = stack.gateway_url
    print(
        f"""
Cephalo is running.
  API:            {gateway}/api/v1
  OpenAPI:        {gateway}/api/openapi.json   (browse: {gateway}/api/docs)
  Tasks:          {gateway}/api/v1/spaces/default/tasks
  API key:        {stack.state_dir / "api-key"}  (send it as X-Cephalo-Api-Key, or CEPHALO_API_KEY for the CLI)
  Service logs:   {stack.logs_dir}/
  Data:           {stack.state_dir}/ (kept between runs)
Press Ctrl-C to stop everything.
""",
        flush=True,
    )


async def wait_for_signal() -> None:
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stopping.set)
    await stopping.wait()


async def run(state_dir: Path, *, stay: bool) -> int:
    postgres = EmbeddedPostgres(state_dir / "postgres", POSTGRES_PORT)
    nats_server = EmbeddedNats(state_dir / "nats", NATS_PORT)
    agent_process = None
    say("Starting PostgreSQL and NATS (JetStream)")
    postgres.start()
    nats_server.start()
    stack = Stack(state_dir, postgres.url(), nats_server.url, Ports())
    try:
        say("Running migrations")
        await asyncio.to_thread(stack.migrate)
        say("Starting the five services")
        stack.start_services()
        await stack.wait_ready()
        async with httpx.AsyncClient(
            base_url=stack.gateway_url, timeout=30, headers=stack.auth_headers
        ) as client:
            await demo.ensure_environment(demo.Api(client))
        agent = LocalAgent(
            "local-agent", state_dir / "agent", stack.gateway_url, api_key=stack.api_key
        )
        say("Registering and starting the local agent")
        agent.register([demo.DEMO_ENVIRONMENT], [demo.DEMO_ROLE])
        agent_process = agent.start(stack.logs_dir / "agent.log")
        outcome = await run_demo(stack)
        print_outcome(outcome)
        if outcome.state != "Success":
            return 1
        if stay:
            print_addresses(stack)
            await wait_for_signal()
        return 0
    finally:
        say("Stopping")
        if agent_process is not None:
            stop(agent_process)
        stack.stop()
        nats_server.stop()
        postgres.stop()
        say("Stopped; nothing left running")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m cephalo_dev")
    sub = parser.add_subparsers(dest="command", required=True)
    run_parser = sub.add_parser("run", help="start the stack, deploy the demo, wait for Ctrl-C")
    run_parser.add_argument("--state-dir", type=Path, default=Path(".cephalo"))
    run_parser.add_argument("--exit-after-demo", action="store_true")
    args = parser.parse_args()
    args.state_dir.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(asyncio.run(run(args.state_dir.resolve(), stay=not args.exit_after_demo)))


if __name__ == "__main__":
    main()
