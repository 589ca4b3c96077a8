"""Sandbox listings page in SQL: the same order as before (insertion order; versions newest first),
pages that tile the listing exactly, and a page that decodes only its own rows."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from reconciler.api.transport import sandbox_transport
from reconciler.sandbox import store
from reconciler.sandbox.app import DEFAULT_KEY, Sandbox

A = "/v2/users/me/apps/app1"


@pytest.fixture
def c(tmp_path: Path):
    sb = Sandbox(str(tmp_path / "s.sqlite"), training_delay_s=0)
    with httpx.Client(transport=sandbox_transport(sb), base_url="http://x",
                      headers={"Authorization": f"Key {DEFAULT_KEY}"}) as client:
        assert client.post("/v2/users/me/apps", json={"apps": [{"id": "app1"}]}).status_code == 200
        yield client
    sb.close()


def _ids(c: httpx.Client, path: str, key: str, **params: int) -> list[str]:
    r = c.get(path, params=params)
    assert r.status_code == 200, r.text
    return [x["id"] for x in r.json()[key]]


def test_pages_tile_the_listing_in_insertion_order(c: httpx.Client) -> None:
    ids = [f"c{i:03d}" for i in range(250)][::-1]  # inserted in reverse: order is insertion, not id
    for i in range(0, 250, 100):
        assert c.post(A + "/concepts", json={"concepts": [{"id": x} for x in ids[i:i + 100]]}).status_code == 200
    for wf in ("w2", "w1", "w3"):
        c.post(A + "/models", json={"models": [{"id": "m" + wf, "model_type_id": "annotation-writer"}]})
    for per_page in (1, 7, 100, 250, 1000):
        got: list[str] = []
        page = 1
        while True:
            chunk = _ids(c, A + "/concepts", "concepts", page=page, per_page=per_page)
            if not chunk:
                break
            assert len(chunk) <= per_page
            got += chunk
            page += 1
        assert got == ids, per_page
    assert _ids(c, A + "/models", "models", per_page=2) == ["mw2", "mw1"]
    assert _ids(c, A + "/models", "models", page=2, per_page=2) == ["mw3"]
    assert _ids(c, A + "/concepts", "concepts", page=99, per_page=10) == []
    assert len(_ids(c, A + "/concepts", "concepts")) == 128  # the documented default page size


def test_versions_page_newest_first(c: httpx.Client) -> None:
    c.post(A + "/models", json={"models": [{"id": "gt", "model_type_id": "concept-thresholder"}]})
    made = []
    for v in (0.1, 0.2, 0.3):
        r = c.post(A + "/models/gt/versions", json={"model_versions": [{"output_info": {"params": {"x": v}}}]})
        assert r.status_code == 200, r.text
        made.append(r.json()["model"]["model_version"]["id"])
    everything = _ids(c, A + "/models/gt/versions", "model_versions")
    assert everything[:3] == made[::-1]
    assert _ids(c, A + "/models/gt/versions", "model_versions", page=1, per_page=2) == everything[:2]
    assert _ids(c, A + "/models/gt/versions", "model_versions", page=2, per_page=2) == everything[2:4]


def test_a_page_decodes_only_its_rows(c: httpx.Client, monkeypatch: pytest.MonkeyPatch) -> None:
    c.post(A + "/concepts", json={"concepts": [{"id": f"c{i}"} for i in range(500)]})
    decoded = 0
    real = json.loads

    def counting(text: str | bytes, *a: object, **kw: object) -> object:
        nonlocal decoded
        decoded += 1
        return real(text, *a, **kw)
    monkeypatch.setattr(store.json, "loads", counting)
    assert len(_ids(c, A + "/concepts", "concepts", page=3, per_page=10)) == 10
    assert decoded <= 10 + 3, decoded  # the page, plus the app / key documents a request reads


# --- issue 20, finding 14: a page or per_page out of range is an invalid request, not a 500 ---------

_LISTINGS = ["/concepts", "/models", "/workflows", "/inputs", "/concepts/relations", "/models/m1/versions",
             "/annotations"]


@pytest.mark.parametrize("path", _LISTINGS)
@pytest.mark.parametrize("query", [{"page": "9223372036854775807"}, {"page": "4294967296"},
                                   {"per_page": "9223372036854775807"}, {"per_page": "99999999999999999999999"},
                                   {"page": "-1"}, {"per_page": "-5"}, {"page": "abc"}, {"page": "1.5"},
                                   {"page": "²"}, {"per_page": "٣"}, {"page": " 2"}])
def test_a_page_out_of_range_or_not_a_number_is_a_400_with_a_clarifai_status(c: httpx.Client, path: str,
                                                                             query: dict[str, str]) -> None:
    c.post(A + "/models", json={"models": [{"id": "m1", "model_type_id": "annotation-writer"}]})
    r = c.get(A + path, params=query)
    body = r.json()
    assert (r.status_code, body["status"]["code"]) == (400, 11102), r.text  # CONN_INVALID_REQUEST
    assert set(query) & set(body["status"]["description"].split() + body["status"].get("details", "").split()), body


@pytest.mark.parametrize("path", _LISTINGS)
def test_the_largest_uint32_page_is_an_empty_page(c: httpx.Client, path: str) -> None:
    c.post(A + "/models", json={"models": [{"id": "m1", "model_type_id": "annotation-writer"}]})
    r = c.get(A + path, params={"page": str(2**32 - 1), "per_page": "1000"})
    assert r.status_code == 200, r.text
    assert all(v == [] for k, v in r.json().items() if k != "status")
