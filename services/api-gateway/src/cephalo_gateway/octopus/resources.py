"""Cephalo objects as Octopus resources (PascalCase, `Links`, paged `Items`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

OCTOPUS_VERSION = "2025.1.0"
API_VERSION = "3.0.0"
TERMINAL_STATES = frozenset({"Success", "Failed", "Canceled", "TimedOut"})


def items_of(body: Any) -> list[dict[str, Any]]:
    """A Cephalo list answer, whether a bare list or `{items, total, …}`."""
    items = body.get("items") if isinstance(body, dict) else body
    return [item for item in items if isinstance(item, dict)] if isinstance(items, list) else []


def collection(
    item_type: str, items: Sequence[Mapping[str, Any]], self_link: str
) -> dict[str, Any]:
    return {
        "ItemType": item_type,
        "TotalResults": len(items),
        "ItemsPerPage": max(len(items), 1),
        "NumberOfPages": 1,
        "LastPageNumber": 0,
        "IsStale": False,
        "Items": list(items),
        "Links": {"Self": self_link},
    }


def root(installation_id: str) -> dict[str, Any]:
    return {
        "Application": "Cephalo",
        "Version": OCTOPUS_VERSION,
        "ApiVersion": API_VERSION,
        "InstallationId": installation_id,
        "IsEarlyAccessProgram": False,
        "HasLongTermSupport": False,
        "Links": {
            "Self": "/api",
            "Spaces": "/api/spaces{/id}{?skip,ids,take,partialName}",
            "SpaceHome": "/api/{spaceId}",
            "Tasks": "/api/tasks{/id}",
            "CreateRelease": "/api/{spaceId}/releases/create/v1",
            "CreateUntenantedDeployment": "/api/{spaceId}/deployments/create/untenanted/v1",
            "Deployments": "/api/{spaceId}/deployments{/id}{?ids}",
            "Environments": "/api/{spaceId}/environments{/id}{?ids}",
            "SpaceTasks": "/api/{spaceId}/tasks{/id}{?ids}",
            "PackageUpload": "/api/{spaceId}/packages/raw{?replace,overwriteMode}",
            "CephaloApi": "/api/v1",
        },
    }


def space(item: Mapping[str, Any]) -> dict[str, Any]:
    space_id = str(item["id"])
    return {
        "Id": space_id,
        "Name": item.get("name"),
        "Slug": item.get("slug"),
        "Description": item.get("description", ""),
        "IsDefault": bool(item.get("is_default", False)),
        "IsPrivate": False,
        "TaskQueueStopped": False,
        "SpaceManagersTeams": [],
        "SpaceManagersTeamMembers": [],
        "Links": {"Self": f"/api/spaces/{space_id}", "SpaceHome": f"/api/{space_id}"},
    }


def environment(item: Mapping[str, Any]) -> dict[str, Any]:
    space_id, environment_id = item.get("space_id"), item["id"]
    return {
        "Id": str(environment_id),
        "SpaceId": str(space_id),
        "Name": item.get("name"),
        "Slug": item.get("slug"),
        "Description": item.get("description", ""),
        "SortOrder": item.get("sort_order", 0),
        "UseGuidedFailure": bool(item.get("use_guided_failure", False)),
        "AllowDynamicInfrastructure": bool(item.get("allow_dynamic_infrastructure", False)),
        "Links": {"Self": f"/api/{space_id}/environments/{environment_id}"},
    }


def deployment(item: Mapping[str, Any], task_id: str | None = None) -> dict[str, Any]:
    space_id, deployment_id = item.get("space_id"), item["id"]
    task = task_id or (str(item["task_id"]) if item.get("task_id") else None)
    links = {
        "Self": f"/api/{space_id}/deployments/{deployment_id}",
        "Release": f"/api/{space_id}/releases/{item.get('release_id')}",
        "Environment": f"/api/{space_id}/environments/{item.get('environment_id')}",
    }
    if task:
        links["Task"] = f"/api/{space_id}/tasks/{task}"
    return {
        "Id": str(deployment_id),
        "SpaceId": str(space_id),
        "ProjectId": str(item.get("project_id")),
        "ReleaseId": str(item.get("release_id")),
        "EnvironmentId": str(item.get("environment_id")),
        "ChannelId": str(item["channel_id"]) if item.get("channel_id") else None,
        "TaskId": task,
        "Name": "Deploy",
        "Comments": item.get("comments", ""),
        "Created": item.get("created_at"),
        "DeployedBy": item.get("deployed_by"),
        "State": item.get("state"),
        "UseGuidedFailure": bool(item.get("use_guided_failure", False)),
        "Links": links,
    }


def task(item: Mapping[str, Any]) -> dict[str, Any]:
    """An orchestrator ServerTask as Octopus's `TaskResource`."""
    state = str(item.get("state", "Queued"))
    completed = state in TERMINAL_STATES
    error = item.get("reason") if state in ("Failed", "TimedOut", "Canceled") else None
    space_id, task_id = item.get("space_id"), item["id"]
    project, release = item.get("project_name", ""), item.get("release_version", "")
    environment_name = item.get("environment_name", "")
    return {
        "Id": str(task_id),
        "SpaceId": str(space_id) if space_id else None,
        "Name": "Deploy",
        "Description": f"Deploy {project} release {release} to {environment_name}".strip(),
        "State": state,
        "IsCompleted": completed,
        "FinishedSuccessfully": state == "Success",
        "HasWarningsOrErrors": state in ("Failed", "TimedOut"),
        "HasPendingInterruptions": False,
        "HasBeenPickedUpByProcessor": state != "Queued",
        "CanRerun": False,
        "ErrorMessage": error or "",
        "QueueTime": item.get("queued_at"),
        "StartTime": item.get("started_at"),
        "CompletedTime": item.get("completed_at"),
        "LastUpdatedTime": item.get("completed_at")
        or item.get("started_at")
        or item.get("queued_at"),
        "Arguments": {
            "DeploymentId": str(item["deployment_id"]) if item.get("deployment_id") else None
        },
        "Links": {
            "Self": f"/api/{space_id}/tasks/{task_id}",
            "Web": f"/api/v1/spaces/{space_id}/tasks/{task_id}",
        },
    }


def pending_task(space_id: str, task_id: str, deployment_id: str) -> dict[str, Any]:
    """A deployment whose task the orchestrator has not created yet: it is queued."""
    return task(
        {"id": task_id, "space_id": space_id, "state": "Queued", "deployment_id": deployment_id}
    )
