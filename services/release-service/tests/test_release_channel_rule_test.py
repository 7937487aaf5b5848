"""The channel rule tester: a version tried against a range and a pre-release tag regex,
before the rule is saved; a broken rule is a 422, a string that is no version just fails."""

from __future__ import annotations

from typing import Any


async def test_a_version_is_tried_against_each_half_of_a_rule(api: Any) -> None:
    project = await api.project()
    base = f"/projects/{project['id']}/channels/rule-test"

    async def trial(**params: str) -> dict[str, Any]:
        return dict(await api.ok("GET", base, params=params))

    inside = await trial(version="1.4.0", version_range="[1.0,2.0)", tag="^$")
    assert inside["matches"] and inside["satisfies_version_range"] and inside["satisfies_tag"]
    beta = await trial(version="1.4.0-beta.1", version_range="[1.0,2.0)", tag="^beta")
    assert beta["satisfies_tag"] and beta["matches"] is beta["satisfies_version_range"]
    outside = await trial(version="2.1.0", version_range="[1.0,2.0)")
    assert (outside["matches"], outside["satisfies_version_range"]) == (False, False)
    tagged = await trial(version="1.5.0-rc.1", tag="^$")
    assert (tagged["satisfies_version_range"], tagged["satisfies_tag"]) == (True, False)
    nonsense = await trial(version="not a version")
    assert (nonsense["is_version"], nonsense["matches"]) == (False, False)

    for bad in ({"version_range": "[2.0,1.0"}, {"tag": "(unclosed"}):
        refused = await api.request("GET", base, params={"version": "1.0.0", **bad})
        assert refused.status_code == 422, refused.text
    missing = await api.request("GET", base)
    assert missing.status_code == 422
    unknown = await api.request("GET", "/projects/nope/channels/rule-test", params={"version": "1"})
    assert unknown.status_code == 404
