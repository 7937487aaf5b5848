"""Lifecycle progression, table-driven: each row is a lifecycle, a deployment history, and
what may be deployed next, with the exact reason for every environment that may not."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

import pytest

from cephalo_release.domain.progression import (
    DeploymentRecord,
    EnvironmentRef,
    LifecycleSpec,
    PhaseSpec,
    automatic_deployments,
    effective_phases,
    progression,
)

NAMES = ("Dev", "Test", "QA", "Staging", "Prod", "DR")
ENVS = {name: EnvironmentRef(uuid.uuid5(uuid.NAMESPACE_DNS, name), name) for name in NAMES}
ORDERED = [ENVS[name] for name in NAMES]


def ids(*names: str) -> tuple[uuid.UUID, ...]:
    return tuple(ENVS[name].id for name in names)


def phase(
    name: str,
    manual: tuple[str, ...] = (),
    automatic: tuple[str, ...] = (),
    minimum: int = 0,
    optional: bool = False,
) -> PhaseSpec:
    return PhaseSpec(
        name=name,
        automatic_environment_ids=ids(*automatic),
        optional_environment_ids=ids(*manual),
        minimum_environments_before_promotion=minimum,
        is_optional_phase=optional,
    )


def blocked(env: str, phase: str, succeeded: int, required: int, failed: str = "") -> str:
    detail = f"{succeeded} of {required} required environments succeeded"
    if failed:
        detail += f"; failed: {failed}"
    return f'Cannot deploy to "{env}": phase "{phase}" is not complete ({detail})'


def outside(env: str, lifecycle: str = "L") -> str:
    return f'Cannot deploy to "{env}": it is not part of lifecycle "{lifecycle}"'


@dataclass
class Row:
    name: str
    phases: tuple[PhaseSpec, ...]
    history: list[tuple[str, str]]
    next: list[str]
    reasons: dict[str, str | None]
    automatic: list[str] = field(default_factory=list)
    environments: list[EnvironmentRef] = field(default_factory=lambda: list(ORDERED))


THREE_PHASES = (
    phase("Development", manual=("Dev",)),
    phase("Testing", manual=("Test",)),
    phase("Production", manual=("Prod",)),
)

ROWS = [
    Row(
        "ordered phases: a new release may only go to the first phase",
        THREE_PHASES,
        [],
        next=["Dev"],
        reasons={
            "Dev": None,
            "Test": blocked("Test", "Development", 0, 1),
            "Prod": blocked("Prod", "Development", 0, 1),
            "QA": outside("QA"),
        },
    ),
    Row(
        "ordered phases: success in phase 1 opens phase 2, not phase 3",
        THREE_PHASES,
        [("Dev", "Success")],
        next=["Test"],
        reasons={"Dev": None, "Test": None, "Prod": blocked("Prod", "Testing", 0, 1)},
    ),
    Row(
        "ordered phases: a deployment still running does not complete its phase",
        THREE_PHASES,
        [("Dev", "Executing")],
        next=[],
        reasons={"Dev": None, "Test": blocked("Test", "Development", 0, 1)},
    ),
    Row(
        "blocked by a failed phase: the reason names the failed environment",
        THREE_PHASES,
        [("Dev", "Success"), ("Test", "Failed")],
        next=["Test"],
        reasons={"Test": None, "Prod": blocked("Prod", "Testing", 0, 1, failed="Test")},
    ),
    Row(
        "blocked by a failed phase: a later failed redeploy re-blocks what follows",
        THREE_PHASES,
        [("Dev", "Success"), ("Dev", "Failed")],
        next=["Dev"],
        reasons={"Dev": None, "Test": blocked("Test", "Development", 0, 1, failed="Dev")},
    ),
    Row(
        "redeploy to an earlier environment stays allowed once the release moved on",
        THREE_PHASES,
        [("Dev", "Success"), ("Test", "Success"), ("Prod", "Success")],
        next=[],
        reasons={"Dev": None, "Test": None, "Prod": None},
    ),
    Row(
        "redeploy: an environment already deployed to stays deployable when its phase is blocked",
        THREE_PHASES,
        [("Dev", "Success"), ("Test", "Success"), ("Dev", "Failed")],
        next=["Dev"],
        reasons={"Dev": None, "Test": None, "Prod": blocked("Prod", "Development", 0, 1, "Dev")},
    ),
    Row(
        "all must complete: one of two environments is not enough",
        (phase("Test", manual=("Test", "QA")), phase("Production", manual=("Prod",))),
        [("Test", "Success")],
        next=["QA"],
        reasons={"QA": None, "Prod": blocked("Prod", "Test", 1, 2)},
    ),
    Row(
        "all must complete: both done opens the next phase",
        (phase("Test", manual=("Test", "QA")), phase("Production", manual=("Prod",))),
        [("Test", "Success"), ("QA", "Success")],
        next=["Prod"],
        reasons={"Prod": None},
    ),
    Row(
        "at least N: 1 of 2 is enough, the other stays deployable",
        (
            phase("Test", manual=("Test", "QA"), minimum=1),
            phase("Production", manual=("Prod",)),
        ),
        [("QA", "Success")],
        next=["Test", "Prod"],
        reasons={"Test": None, "Prod": None},
    ),
    Row(
        "at least N: 1 of 3 when 2 are required blocks",
        (
            phase("Test", manual=("Test", "QA", "Staging"), minimum=2),
            phase("Production", manual=("Prod",)),
        ),
        [("QA", "Success"), ("Staging", "Failed")],
        next=["Test", "Staging"],
        reasons={"Prod": blocked("Prod", "Test", 1, 2, failed="Staging")},
    ),
    Row(
        "optional phase: may be skipped entirely",
        (
            phase("Development", manual=("Dev",)),
            phase("QA", manual=("QA",), optional=True),
            phase("Production", manual=("Prod",)),
        ),
        [("Dev", "Success")],
        next=["QA", "Prod"],
        reasons={"QA": None, "Prod": None},
    ),
    Row(
        "optional phase: is itself reached only after the phases before it",
        (
            phase("Development", manual=("Dev",)),
            phase("QA", manual=("QA",), optional=True),
            phase("Production", manual=("Prod",)),
        ),
        [],
        next=["Dev"],
        reasons={
            "QA": blocked("QA", "Development", 0, 1),
            "Prod": blocked("Prod", "Development", 0, 1),
        },
    ),
    Row(
        "implicit lifecycle: one phase per environment in environment order",
        (),
        [("Dev", "Success")],
        next=["Test"],
        reasons={"Dev": None, "Test": None, "QA": blocked("QA", "Test", 0, 1)},
        environments=[ENVS["Dev"], ENVS["Test"], ENVS["QA"]],
    ),
    Row(
        "implicit lifecycle: a new environment joins at its place in the order",
        (),
        [],
        next=["Dev"],
        reasons={"Dev": None, "Staging": blocked("Staging", "Dev", 0, 1)},
        environments=[ENVS["Dev"], ENVS["Staging"]],
    ),
    Row(
        "any other environment: a phase without environments takes the rest",
        (phase("Development", manual=("Dev",)), phase("Everything else")),
        [("Dev", "Success")],
        next=["Test", "QA", "Staging", "Prod", "DR"],
        reasons={"Prod": None, "DR": None},
    ),
    Row(
        "any other environment: it never takes an environment named in a later phase",
        (
            phase("Development", manual=("Dev",)),
            phase("Everything else"),
            phase("Production", manual=("Prod",)),
        ),
        [("Dev", "Success"), ("Test", "Success")],
        next=["QA", "Staging", "DR"],
        reasons={
            "QA": None,
            "Prod": blocked("Prod", "Everything else", 1, 4),
        },
    ),
    Row(
        "automatic vs manual: entering a phase deploys only its automatic environments",
        (
            phase("Development", manual=("Dev",)),
            phase("Testing", automatic=("Test",), manual=("QA",)),
        ),
        [("Dev", "Success")],
        next=["Test", "QA"],
        reasons={"Test": None, "QA": None},
        automatic=["Test"],
    ),
    Row(
        "automatic: the first phase's automatic environments go with a new release",
        (phase("Development", automatic=("Dev",)), phase("Testing", automatic=("Test",))),
        [],
        next=["Dev"],
        reasons={"Test": blocked("Test", "Development", 0, 1)},
        automatic=["Dev"],
    ),
    Row(
        "automatic: an environment already deployed to is not deployed again",
        (phase("Development", manual=("Dev",)), phase("Testing", automatic=("Test",))),
        [("Dev", "Success"), ("Test", "Failed")],
        next=["Test"],
        reasons={"Test": None},
        automatic=[],
    ),
    Row(
        "automatic: an optional phase never deploys automatically",
        (
            phase("Development", manual=("Dev",)),
            phase("QA", automatic=("QA",), optional=True),
            phase("Production", automatic=("Prod",)),
        ),
        [("Dev", "Success")],
        next=["QA", "Prod"],
        reasons={"QA": None, "Prod": None},
        automatic=["Prod"],
    ),
    Row(
        "automatic: a blocked phase deploys nothing",
        (phase("Development", manual=("Dev",)), phase("Testing", automatic=("Test",))),
        [("Dev", "Failed")],
        next=["Dev"],
        reasons={"Test": blocked("Test", "Development", 0, 1, failed="Dev")},
        automatic=[],
    ),
]


@pytest.mark.parametrize("row", ROWS, ids=[row.name for row in ROWS])
def test_lifecycle_progression(row: Row) -> None:
    lifecycle = LifecycleSpec(name="L", phases=row.phases)
    history = [DeploymentRecord(ENVS[env].id, state) for env, state in row.history]
    result = progression(lifecycle, row.environments, history)

    assert [ENVS_BY_ID[id] for id in result.next_deployments] == row.next
    for env, reason in row.reasons.items():
        assert result.blocking_reason(ENVS[env]) == reason, env
    assert [ENVS_BY_ID[id] for id in automatic_deployments(result)] == row.automatic


ENVS_BY_ID = {ref.id: name for name, ref in ENVS.items()}


def test_a_phase_state_says_complete_current_or_blocked() -> None:
    result = progression(
        LifecycleSpec("L", THREE_PHASES), ORDERED, [DeploymentRecord(ENVS["Dev"].id, "Success")]
    )
    assert [(p.name, p.state, p.succeeded, p.required) for p in result.phases] == [
        ("Development", "Complete", 1, 1),
        ("Testing", "Current", 0, 1),
        ("Production", "Blocked", 0, 1),
    ]


def test_an_automatic_environment_requested_before_is_never_requested_again() -> None:
    lifecycle = LifecycleSpec("L", (phase("Development", automatic=("Dev",)),))
    result = progression(lifecycle, ORDERED, [])
    assert automatic_deployments(result, already_requested=ids("Dev")) == ()


def test_a_minimum_larger_than_the_phase_means_all_of_it() -> None:
    phases = effective_phases(
        LifecycleSpec("L", (phase("Everything", minimum=3),)), [ENVS["Dev"], ENVS["Test"]]
    )
    assert phases[0].required == 2 and phases[0].is_catch_all
