"""Reading portal forms: plain strings in, clean values out (the API validates the rest)."""

from __future__ import annotations

from starlette.datastructures import FormData, UploadFile


def text(form: FormData, name: str, default: str = "") -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else default


def words(form: FormData, name: str) -> list[str]:
    """A comma- or space-separated list ("web, api" → ["web", "api"])."""
    return [part for part in text(form, name).replace(",", " ").split() if part]


def checked(form: FormData, name: str) -> bool:
    return text(form, name) in ("on", "true", "1", "yes")


def upload(form: FormData, name: str) -> UploadFile | None:
    value = form.get(name)
    return value if isinstance(value, UploadFile) and value.filename else None
