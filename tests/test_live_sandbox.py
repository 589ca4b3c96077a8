"""Client and live reader against the real sandbox: in process (WSGITransport) and over loopback
HTTP. Resources are created with raw client calls, then read back as a State."""

from __future__ import annotations

import io
from pathlib import Path

import httpx
import pytest

from reconciler.api.client import Client
from reconciler.api.live import fingerprint, read_live
from reconciler.commands.connect import connect
from reconciler.core import modeltypes
from reconciler.core.errors import ApiError
from reconciler.core.state import MARKER_KEY, ConceptRef, ConceptRelation, ModelRef, Node, make_marker
from reconciler.sandbox.app import DEFAULT_KEY, DEFAULT_USER, Sandbox
from reconciler.sandbox.server import running_server

APP = "shop"


@pytest.fixture
def sandbox(tmp_path: Path) -> Sandbox:
    return Sandbox(str(tmp_path / "sb.sqlite"), training_delay_s=0)


@pytest.fixture
def client(sandbox: Sandbox) -> Client:
    return Client("http://sandbox.local", DEFAULT_KEY, user_id=DEFAULT_USER,
                  transport=httpx.WSGITransport(app=sandbox), rate_limit=0, max_retries=0)


def build(c: Client) -> dict[str, str]:
    """The auto-annotation shape, made by hand through the API; returns the version ids."""
    c.post(f"/v2/users/{DEFAULT_USER}/apps", {"apps": [{"id": APP, "description": "demo",
                                                        "metadata": {"team": "ml", MARKER_KEY: make_marker(False, ["team"])}}]})
    base = c.app_path(APP)
    c.post(f"{base}/concepts", {"concepts": [{"id": "people", "name": "People"}, {"id": "man"}]})
    c.post(f"{base}/concepts/people/relations", {"concept_relations": [
        {"object_concept": {"id": "ai_l8TKp2h5", "app_id": "main", "user_id": "clarifai"}, "predicate": "synonym"}]})
    c.post(f"{base}/concepts/man/relations", {"concept_relations": [
        {"object_concept": {"id": "people"}, "predicate": "hyponym"}]})
    versions = {}
    for mid, mtype, cfg, marked in [
        ("gt", "concept-thresholder", {"comparator": "GREATER_THAN", "thresholds": {"people": 0.95}}, True),
        ("writer", "annotation-writer", {"annotation_status": "PENDING"}, True),
        ("hand", "concept-synonym-mapper", {}, False),
    ]:
        meta = {MARKER_KEY: make_marker(mid == "gt", [])} if marked else {"owner": "bob"}
        c.post(f"{base}/models", {"model": {"id": mid, "model_type_id": mtype, "metadata": meta}})
        body = c.post(f"{base}/models/{mid}/versions", {"model_versions": [modeltypes.to_api(mtype, cfg)]})
        versions[mid] = body["model"]["model_version"]["id"]
    c.post(f"{base}/workflows", {"workflows": [{"id": "auto", "metadata": {MARKER_KEY: make_marker(False, [])}, "nodes": [
        {"id": "concepts", "model": {"id": "general-image-recognition", "user_id": "clarifai", "app_id": "main",
                                     "model_version": {"id": "aa7f35c01e0642fda5cf400f543e7c40"}}},
        {"id": "greater", "model": {"id": "gt", "model_version": {"id": versions["gt"]}},
         "node_inputs": [{"node_id": "concepts"}]},
        {"id": "write", "model": {"id": "writer", "model_version": {"id": versions["writer"]}},
         "node_inputs": [{"node_id": "greater"}]},
    ]}]})
    c.patch(f"/v2/users/{DEFAULT_USER}/apps", {"apps": [{"id": APP, "default_workflow_id": "auto"}], "action": "overwrite"})
    return versions


def test_missing_app_reads_as_none(client: Client) -> None:
    assert read_live(client, "nope") is None


def test_bad_key_is_an_error_not_absence(sandbox: Sandbox) -> None:
    bad = Client("http://sandbox.local", "PAT-SECRET-xyz123", user_id=DEFAULT_USER,
                 transport=httpx.WSGITransport(app=sandbox), rate_limit=0, max_retries=0)
    with pytest.raises(ApiError) as ei:
        read_live(bad, APP)
    assert "PAT-SECRET-xyz123" not in str(ei.value)


def test_reads_back_what_was_made(client: Client) -> None:
    v = build(client)
    s = read_live(client, APP)
    assert s is not None
    assert s.app.description == "demo" and s.app.metadata == {"team": "ml"} and s.app.default_workflow == "auto"
    assert [(c.id, c.name) for c in s.concepts] == [("people", "People"), ("man", "man")]
    assert set(s.relations) == {
        ConceptRelation("people", "synonym", ConceptRef("ai_l8TKp2h5", "clarifai", "main")),
        ConceptRelation("man", "hyponym", ConceptRef("people")),
    }
    assert all(r.server_id for r in s.relations)
    gt = s.model("gt")
    assert gt is not None and gt.managed and gt.protect and gt.version_id == v["gt"]
    assert gt.config == {"comparator": "GREATER_THAN", "thresholds": {"people": 0.95}}
    writer = s.model("writer")
    assert writer is not None and writer.config == {"annotation_status": "PENDING"}
    hand = s.model("hand")
    assert hand is not None and not hand.managed and hand.metadata == {}
    wf = s.workflow("auto")
    assert wf is not None and wf.managed
    assert wf.nodes == (
        Node("concepts", ModelRef("general-image-recognition", "clarifai", "main", "aa7f35c01e0642fda5cf400f543e7c40")),
        Node("greater", ModelRef("gt", version=v["gt"]), ("concepts",)),
        Node("write", ModelRef("writer", version=v["writer"]), ("greater",)),
    )


def test_new_version_is_latest_and_fingerprint_moves(client: Client) -> None:
    v = build(client)
    before = read_live(client, APP)
    assert before is not None
    base = client.app_path(APP)
    body = client.post(f"{base}/models/gt/versions", {"model_versions": [modeltypes.to_api(
        "concept-thresholder", {"comparator": "GREATER_THAN", "thresholds": {"people": 0.8}})]})
    new_id = body["model"]["model_version"]["id"]
    after = read_live(client, APP)
    assert after is not None
    gt = after.model("gt")
    assert gt is not None and gt.version_id == new_id and [x.id for x in gt.versions] == [new_id, v["gt"]]
    assert gt.config["thresholds"] == {"people": 0.8}
    assert fingerprint(after) != fingerprint(before)
    assert fingerprint(read_live(client, APP)) == fingerprint(after)  # type: ignore[arg-type]


def test_over_loopback_http_with_debug_trace(sandbox: Sandbox) -> None:
    with running_server(sandbox) as url:
        err = io.StringIO()
        c = Client(url, DEFAULT_KEY, user_id=DEFAULT_USER, rate_limit=0, max_retries=0, debug=err)
        build(c)
        s = read_live(c, APP)
        c.close()
    assert s is not None and len(s.models) == 3
    trace = err.getvalue()
    assert "GET /v2/users/sandbox/apps/shop/concepts?page=1&per_page=1000 -> 200 code=10000" in trace
    assert DEFAULT_KEY not in trace and "Key ***" in trace


def test_retry_through_sandbox_throttling(tmp_path: Path) -> None:
    sb = Sandbox(str(tmp_path / "t.sqlite"), rate_limit=5)
    c = Client("http://sandbox.local", DEFAULT_KEY, user_id=DEFAULT_USER,
               transport=httpx.WSGITransport(app=sb), rate_limit=0, max_retries=8, backoff_base=0.05)
    for _ in range(12):
        c.get(f"/v2/users/{DEFAULT_USER}/apps")
    # some were throttled (CONN_THROTTLED, HTTP 429) and retried; every call succeeded
    assert c.stats.retries > 0 and c.stats.requests == 12 + c.stats.retries


def test_connect_embedded_sandbox(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for var in ("CLARIFAI_PAT", "CLARIFAI_API_BASE", "CLARIFAI_USER_ID"):
        monkeypatch.delenv(var, raising=False)
    db = tmp_path / "deep" / "emb.sqlite"
    monkeypatch.setenv("RECONCILER_SANDBOX_DB", str(db))
    err = io.StringIO()
    c = connect(stderr=err)
    assert err.getvalue().count("\n") == 1 and str(db) in err.getvalue() and "embedded" in err.getvalue()
    assert c.user_id == DEFAULT_USER and c.limiter.interval == 0
    build(c)
    s = read_live(c, APP)
    assert s is not None and s.app.default_workflow == "auto"
    assert db.exists()
    c.close()
    assert read_live(connect(stderr=io.StringIO()), APP) is not None  # the data persists


def test_concurrent_reads_with_embedded_transport(client: Client) -> None:
    build(client)
    states = client.map(lambda _: read_live(client, APP), range(4), max_workers=4)
    assert len({fingerprint(s) for s in states if s is not None}) == 1


def test_request_count_of_a_read(client: Client, sandbox: Sandbox) -> None:
    build(client)
    client.stats.reset()
    read_live(client, APP, want_models={"gt"})
    # GetApp + concepts + relations + models + workflows + versions of gt and writer (pinned)
    assert client.stats.requests == 7 and client.stats.by_method == {"GET": 7}
