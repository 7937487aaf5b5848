"""package-feed over HTTP, as the domain's `PackageSource`.

Per package: the version detail (SHA-256 and size) and a signed download link. A relative
link (the feed has no public base URL) is made absolute with `download_base_url`, the
address targets use to reach the feed (in the dev stack, the api-gateway, which lets
signed links through without an API key). 404 and other 4xx fail the step
(`PackageMissing`); transport errors, 408/425/429 and 5xx are retried (`PackagesUnavailable`).
"""

from __future__ import annotations

import uuid
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ConfigDict, ValidationError

from cephalo_common.contracts import PackageAcquisitionV1
from cephalo_orchestrator.domain.packages import PackageMissing, PackagesUnavailable

RETRYABLE_STATUSES = frozenset({408, 425, 429})


class _VersionResource(BaseModel):
    model_config = ConfigDict(extra="ignore")

    sha256: str
    size_bytes: int


class _DownloadUrl(BaseModel):
    model_config = ConfigDict(extra="ignore")

    url: str


class FeedPackages:
    def __init__(self, client: httpx.AsyncClient, download_base_url: str | None = None) -> None:
        self._client = client
        self._download_base = (download_base_url or str(client.base_url)).rstrip("/")

    async def locate(
        self, space_id: uuid.UUID, package: PackageAcquisitionV1
    ) -> PackageAcquisitionV1:
        label = f"{package.package_id} {package.version}"
        path = (
            f"/api/v1/spaces/{space_id}/packages/{quote(package.package_id, safe='')}"
            f"/versions/{quote(package.version, safe='')}"
        )
        detail = await self._ask(label, "GET", path)
        link = await self._ask(label, "POST", f"{path}/download-url")
        try:
            version = _VersionResource.model_validate_json(detail.content)
            url = _DownloadUrl.model_validate_json(link.content).url
        except ValidationError as error:
            raise PackageMissing(f"package-feed sent an unreadable answer for {label}") from error
        if not url.startswith(("http://", "https://")):
            url = self._download_base + "/" + url.lstrip("/")
        return package.model_copy(
            update={"url": url, "sha256": version.sha256, "size": version.size_bytes}
        )

    async def _ask(self, label: str, method: str, path: str) -> httpx.Response:
        where = f"package-feed at {self._client.base_url}"
        try:
            response = await self._client.request(method, path)
        except httpx.HTTPError as error:
            raise PackagesUnavailable(f"{where} is unreachable ({_describe(error)})") from error
        if response.status_code >= 500 or response.status_code in RETRYABLE_STATUSES:
            raise PackagesUnavailable(f"{where} answered {response.status_code}")
        if response.status_code == 404:
            raise PackageMissing(f"Package {label} was not found in the built-in feed")
        if response.status_code >= 400:
            raise PackageMissing(f"package-feed refused package {label} ({response.status_code})")
        return response


def _describe(error: httpx.HTTPError) -> str:
    message = str(error)
    return f"{type(error).__name__}: {message}" if message else type(error).__name__
