"""Reading portal forms: plain strings in, clean values out (the API validates the rest)."""

from __future__ import annotations

from starlette.datastructures import FormData, UploadFile

from cephalo_gateway.portal.client import ApiError


def text(form: FormData, name: str, default: str = "") -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else default


def raw(form: FormData, name: str) -> str:
    """A field as typed (a value's leading spaces may matter)."""
    value = form.get(name)
    return value if isinstance(value, str) else ""


def words(form: FormData, name: str) -> list[str]:
    """A comma- or space-separated list ("web, api" → ["web", "api"])."""
    return [part for part in text(form, name).replace(",", " ").split() if part]


def checked(form: FormData, name: str) -> bool:
    return text(form, name) in ("on", "true", "1", "yes")


def upload(form: FormData, name: str) -> UploadFile | None:
    value = form.get(name)
    return value if isinstance(value, UploadFile) and value.filename else None


FORM_ERRORS = frozenset({400, 409, 422})
"""API answers that mean "fix the form": shown above the form with 422, never a 500."""


def invalid(message: str) -> ApiError:
    """A form the portal itself refuses, shown like the API's own refusals."""
    return ApiError(422, "Invalid", message, [])


def chosen(form: FormData, name: str) -> list[str]:
    """The non-empty values of a multi-select or repeated field."""
    return [v.strip() for v in form.getlist(name) if isinstance(v, str) and v.strip()]
