"""JSON Schemas (draft 2020-12) of what `--output json` prints, one per command.

These are the contract CI scripts rely on: fields named here are always present; objects
the server returns (releases, tasks, …) allow more fields than the schema names, so new
server fields never break a script. `cephalo schema COMMAND` prints one.
"""

from __future__ import annotations

from typing import Any

Schema = dict[str, Any]

DIALECT = "https://json-schema.org/draft/2020-12/schema"
STRING = {"type": "string"}
NULLABLE_STRING = {"type": ["string", "null"]}
INTEGER = {"type": "integer"}
BOOLEAN = {"type": "boolean"}
STATES = ["Queued", "Executing", "Cancelling", "Success", "Failed", "Canceled", "TimedOut"]


def obj(
    required: dict[str, Any], *, optional: dict[str, Any] | None = None, closed: bool = False
) -> Schema:
    return {
        "type": "object",
        "properties": {**required, **(optional or {})},
        "required": list(required),
        "additionalProperties": not closed,
    }


def array(items: Schema) -> Schema:
    return {"type": "array", "items": items}


NAMED = obj({"id": STRING, "name": STRING})
LOG_LINE = obj(
    {
        "id": INTEGER,
        "time": STRING,
        "source": STRING,
        "machine": NULLABLE_STRING,
        "step": NULLABLE_STRING,
        "text": STRING,
    }
)
SELECTED_PACKAGE = obj({"action_name": STRING, "package_reference": STRING, "version": STRING})
RELEASE = obj(
    {
        "id": STRING,
        "project_id": STRING,
        "channel_id": STRING,
        "version": STRING,
        "release_notes": STRING,
        "selected_packages": array(SELECTED_PACKAGE),
        "created_at": STRING,
    }
)
TASK = obj(
    {
        "id": STRING,
        "deployment_id": STRING,
        "release_version": STRING,
        "project_name": STRING,
        "environment_name": STRING,
        "state": {"enum": STATES},
        "reason": NULLABLE_STRING,
        "is_completed": BOOLEAN,
    }
)
PACKAGE_VERSION = obj(
    {
        "package_id": STRING,
        "version": STRING,
        "size_bytes": INTEGER,
        "sha256": STRING,
        "published_at": STRING,
    }
)
DEPLOYMENTS = obj(
    {
        "release": obj({"id": STRING, "version": STRING}, closed=True),
        "waited": BOOLEAN,
        "state": {"enum": STATES},
        "deployments": array(
            obj(
                {
                    "deployment_id": STRING,
                    "environment": STRING,
                    "environment_id": STRING,
                    "task_id": NULLABLE_STRING,
                    "state": STRING,
                },
                optional={"log": array(LOG_LINE)},
                closed=True,
            )
        ),
    },
    closed=True,
)
PUSHED = obj(
    {
        "packages": array(
            obj(
                {
                    "file": STRING,
                    "package_id": STRING,
                    "version": STRING,
                    "size_bytes": INTEGER,
                    "sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
                    "stored": BOOLEAN,
                },
                closed=True,
            )
        )
    },
    closed=True,
)
RELEASE_CREATED = obj({"created": BOOLEAN, "release": RELEASE}, closed=True)

SCHEMAS: dict[str, Schema] = {
    "login": obj(
        {"server": STRING, "space": STRING, "space_id": STRING, "config_path": STRING},
        closed=True,
    ),
    "package push": PUSHED,
    "package list": obj(
        {
            "packages": array(
                obj({"package_id": STRING, "latest_version": STRING, "version_count": INTEGER})
            )
        },
        closed=True,
    ),
    "package versions": obj(
        {"package_id": STRING, "versions": array(PACKAGE_VERSION)}, closed=True
    ),
    "release create": RELEASE_CREATED,
    "release deploy": DEPLOYMENTS,
    "release promote": DEPLOYMENTS,
    "release list": obj({"items": array(RELEASE)}, closed=True),
    "task show": TASK,
    "task log": obj({"task_id": STRING, "lines": array(LOG_LINE)}, closed=True),
    "task wait": obj(
        {"task": TASK, "state": {"enum": STATES}, "log": array(LOG_LINE)}, closed=True
    ),
    "task cancel": obj({"task": TASK}, closed=True),
    "project list": obj({"items": array(NAMED)}, closed=True),
    "project show": NAMED,
    "environment list": obj({"items": array(NAMED)}, closed=True),
    "environment show": NAMED,
    "target list": obj({"items": array(NAMED)}, closed=True),
    "target show": NAMED,
    "agent install-command": obj(
        {"server": STRING, "thumbprint": STRING, "commands": array(STRING)}, closed=True
    ),
    "push": PUSHED,
    "create-release": {"oneOf": [RELEASE_CREATED, DEPLOYMENTS]},
    "deploy-release": DEPLOYMENTS,
}


def schema(command: str) -> Schema:
    """The schema of one command (`release deploy`), with `$schema` and a title."""
    return {"$schema": DIALECT, "title": f"cephalo {command} --output json", **SCHEMAS[command]}
