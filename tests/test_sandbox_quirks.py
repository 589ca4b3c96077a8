"""The pessimistic sandbox (reconciler/sandbox/quirks.py) and the tool under it.

Each quirk plays the other plausible reading of a behaviour of the real API that no source
settles. Tested here: that each quirk does what its name says (raw HTTP, every response still
parses into its clarifai-grpc message), and that the tool converges under each quirk alone and
under all of them: apply, an empty plan, a second apply with no write, an update that keeps the
fields the manifest does not manage, and a removal (DELETEs without a body).
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import ResponseChecker
from e2e import Harness

from reconciler.api.client import Client
from reconciler.api.live import timestamp_key
from reconciler.core.errors import ApiError
from reconciler.sandbox import quirks as Q
from reconciler.sandbox.app import DEFAULT_KEY, DEFAULT_USER, Sandbox

U = f"/v2/users/{DEFAULT_USER}/apps"
B = f"{U}/q"


# --- selecting quirks ----------------------------------------------------------------------------

def test_parse_names_all_and_lists() -> None:
    assert Q.parse(None) == frozenset() and Q.parse("") == frozenset()
    assert Q.parse("pessimistic") == frozenset(Q.QUIRKS) == Q.parse(["all"])
    assert Q.parse("status-code-names, timestamp-precision") == {Q.STATUS_CODE_NAMES, Q.TIMESTAMP_PRECISION}
    assert Q.parse([Q.DELETE_BODY_REFUSED]) == {Q.DELETE_BODY_REFUSED}
    assert set(Q.QUIRKS) == {
        Q.LISTING_WITHOUT_CONFIG, Q.MAIN_MODELS_LISTED, Q.RELATION_INVERSE_LISTING, Q.PATCH_OVERWRITE_REPLACES,
        Q.DUPLICATE_INVALID_REQUEST, Q.TIMESTAMP_PRECISION, Q.STATUS_CODE_NAMES, Q.DELETE_BODY_REFUSED,
        Q.SERVER_FILLED_CONFIG, Q.BASE_EMBED_MODEL_FILLED, Q.DEFAULT_WORKFLOW_ID_IGNORED,
        Q.DEFAULT_WORKFLOW_OBJECT_IGNORED, Q.HOSTED_IMAGE, Q.WORKFLOW_MAX_20_NODES, Q.KNOWLEDGE_GRAPH_MUST_EXIST}


def test_unknown_quirk_is_one_clear_line(tmp_path: Path) -> None:
    with pytest.raises(ValueError) as exc:
        Sandbox(str(tmp_path / "s.sqlite"), quirks="status-code-names,nope")
    msg = str(exc.value)
    assert "'nope'" in msg and "status-code-names" in msg and "\n" not in msg


def test_serve_with_an_unknown_quirk_exits_1_with_one_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    from reconciler.cli import main

    rc = main(["sandbox", "serve", "--port", "0", "--db", str(tmp_path / "s.sqlite"), "--quirks", "nope"])
    err = capsys.readouterr().err
    assert rc == 1
    assert err.strip().count("\n") == 0 and "unknown sandbox quirk 'nope'" in err and "Traceback" not in err


# --- each quirk, on the wire ---------------------------------------------------------------------

def _raw(tmp_path: Path, quirks: Any) -> tuple[httpx.Client, ResponseChecker, Sandbox]:
    sb = Sandbox(str(tmp_path / "sandbox.sqlite"), training_delay_s=0, quirks=quirks)
    checker = ResponseChecker(sb)
    client = httpx.Client(transport=httpx.WSGITransport(app=checker), base_url="http://sandbox.local",
                          headers={"Authorization": f"Key {DEFAULT_KEY}"})
    assert client.post(U, json={"apps": [{"id": "q"}]}).status_code == 200
    return client, checker, sb


@pytest.fixture
def raw(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[httpx.Client]:
    client, checker, sb = _raw(tmp_path, request.param)
    yield client
    client.close()
    sb.close()
    assert not checker.problems, checker.problems
    assert not sb.internal_errors, sb.internal_errors


THRESHOLDER = {"id": "gt", "model_type_id": "concept-thresholder"}
GT_CONFIG = {"data": {"concepts": [{"id": "a", "value": 0.5}]}, "params": {"concept_threshold_type": "GREATER_THAN"}}


def _post_thresholder(raw: httpx.Client) -> dict[str, Any]:
    """PostModels (the model only), then PostModelVersions: that answer (its version in
    `model.model_version`)."""
    raw.post(f"{B}/models", json={"models": [THRESHOLDER]})
    return raw.post(f"{B}/models/gt/versions", json={"model_versions": [{"output_info": GT_CONFIG}]}).json()


@pytest.mark.parametrize("raw", [Q.LISTING_WITHOUT_CONFIG], indirect=True)
def test_listing_without_config(raw: httpx.Client) -> None:
    raw.post(f"{B}/concepts", json={"concepts": [{"id": "a"}]})
    version = _post_thresholder(raw)["model"]["model_version"]
    assert "data" not in version.get("output_info", {}) and "params" not in version.get("output_info", {})
    listed = raw.get(f"{B}/models/gt/versions").json()["model_versions"]
    assert listed and all("data" not in v.get("output_info", {}) for v in listed)
    assert "params" not in (raw.get(f"{B}/models").json()["models"][0].get("output_info") or {})
    full = raw.get(f"{B}/models/gt/versions/{version['id']}/output_info").json()["model"]["output_info"]
    assert full["params"] == {"concept_threshold_type": "GREATER_THAN"} and full["data"]["concepts"][0]["id"] == "a"


@pytest.mark.parametrize("raw", [Q.MAIN_MODELS_LISTED], indirect=True)
def test_main_models_listed_in_an_app(raw: httpx.Client) -> None:
    models = raw.get(f"{B}/models", params={"dont_fetch_from_main": "true"}).json()["models"]
    assert models and {(m["user_id"], m["app_id"]) for m in models} == {("clarifai", "main")}


@pytest.mark.parametrize("raw", [Q.RELATION_INVERSE_LISTING], indirect=True)
def test_relation_inverse_listing(raw: httpx.Client) -> None:
    raw.post(f"{B}/concepts", json={"concepts": [{"id": "animal"}, {"id": "dog"}]})
    made = raw.post(f"{B}/concepts/animal/relations", json={"concept_relations": [
        {"object_concept": {"id": "dog"}, "predicate": "hypernym"}]}).json()["concept_relations"][0]
    listed = raw.get(f"{B}/concepts/relations").json()["concept_relations"]
    assert [(r["id"], r["subject_concept"]["id"], r["predicate"], r["object_concept"]["id"]) for r in listed] == \
        [(made["id"], "dog", "hyponym", "animal")]
    per_concept = raw.get(f"{B}/concepts/animal/relations").json()["concept_relations"]
    assert [(r["subject_concept"]["id"], r["predicate"]) for r in per_concept] == [("animal", "hypernym")]


@pytest.mark.parametrize("raw", [Q.PATCH_OVERWRITE_REPLACES], indirect=True)
def test_patch_overwrite_replaces_the_whole_object(raw: httpx.Client) -> None:
    raw.patch(U, json={"apps": [{"id": "q", "name": "Q app", "notes": "mine", "image": {"url": "https://x/i.png"},
                                 "description": "d", "metadata": {"owner": "alice"}}], "action": "overwrite"})
    app = raw.patch(U, json={"apps": [{"id": "q", "description": "new"}], "action": "overwrite"}).json()["apps"][0]
    assert app["description"] == "new"
    assert "notes" not in app and "image" not in app and app["name"] == "q" and not app.get("metadata")
    raw.post(f"{B}/concepts", json={"concepts": [{"id": "a", "definition": "x", "metadata": {"k": 1}}]})
    concept = raw.patch(f"{B}/concepts", json={"concepts": [{"id": "a", "name": "A"}],
                                              "action": "overwrite"}).json()["concepts"][0]
    assert concept["name"] == "A" and "definition" not in concept and "metadata" not in concept


@pytest.mark.parametrize("raw", [Q.DUPLICATE_INVALID_REQUEST], indirect=True)
def test_duplicates_answer_invalid_request(raw: httpx.Client) -> None:
    for path, body in ((U, {"apps": [{"id": "q"}]}), (f"{B}/concepts", {"concepts": [{"id": "a"}]})):
        first = raw.post(path, json=body)
        again = raw.post(path, json=body)
        assert first.status_code in (200, 400)
        st = again.json()["status"]
        assert again.status_code == 400 and st["code"] == 40003 and st["description"] == "Invalid request"
        assert "duplicate" in st["details"]


@pytest.mark.parametrize("raw", [Q.TIMESTAMP_PRECISION], indirect=True)
def test_timestamps_vary_in_precision_and_stay_ordered(raw: httpx.Client) -> None:
    raw.post(f"{B}/concepts", json={"concepts": [{"id": "a"}]})
    raw.post(f"{B}/models", json={"models": [THRESHOLDER]})
    for _ in range(12):
        raw.post(f"{B}/models/gt/versions", json={"model_versions": [{"output_info": GT_CONFIG}]})
    listed = raw.get(f"{B}/models/gt/versions").json()["model_versions"]  # newest first
    stamps = [v["created_at"] for v in listed]
    digits = {len(s.partition(".")[2].rstrip("Z")) for s in stamps}
    assert len(digits) >= 3, stamps  # e.g. "…:05Z", "…:04.5Z", "…:04.123Z"
    keys = [timestamp_key(s) for s in stamps]
    assert keys == sorted(keys, reverse=True) and len(set(keys)) == len(keys)
    assert sorted(stamps, reverse=True) != stamps, "the quirk must defeat a string sort"


@pytest.mark.parametrize("raw", [Q.STATUS_CODE_NAMES], indirect=True)
def test_status_codes_as_names(raw: httpx.Client) -> None:
    raw.post(f"{B}/concepts", json={"concepts": [{"id": "a"}]})
    body = _post_thresholder(raw)
    assert body["status"]["code"] == "SUCCESS"
    assert body["model"]["model_version"]["status"]["code"] == "MODEL_TRAINED"
    missing = raw.get(f"{B}/models/nope")
    assert missing.status_code == 404 and missing.json()["status"]["code"] == "MODEL_DOES_NOT_EXIST"


@pytest.mark.parametrize("raw", [Q.DELETE_BODY_REFUSED], indirect=True)
def test_delete_body_refused(raw: httpx.Client) -> None:
    raw.post(f"{B}/concepts", json={"concepts": [{"id": "a"}]})
    raw.post(f"{B}/models", json={"models": [THRESHOLDER]})
    refused = raw.request("DELETE", f"{B}/models/gt", content=b"{}", headers={"Content-Type": "application/json"})
    assert refused.status_code == 400 and refused.json()["status"]["code"] == 11100
    assert raw.delete(f"{B}/models/gt").status_code == 200
    # a binding that declares a body still takes one
    raw.post(f"{B}/models", json={"models": [THRESHOLDER]})
    ok = raw.request("DELETE", f"{B}/models", json={"ids": ["gt"]})
    assert ok.status_code == 200


def test_no_body_rpcs_match_clarifai_grpc_bindings() -> None:
    """NO_BODY_RPCS are DELETE RPCs whose google.api.http rule declares no body."""
    from clarifai_grpc.grpc.api import service_pb2
    from google.api import annotations_pb2

    methods = service_pb2.DESCRIPTOR.services_by_name["V2"].methods_by_name
    for rpc in Q.NO_BODY_RPCS:
        rule = methods[rpc].GetOptions().Extensions[annotations_pb2.http]
        assert rule.delete and not rule.body, rpc


def test_status_code_table_matches_clarifai_grpc() -> None:
    from clarifai_grpc.grpc.api.status import status_code_pb2

    from reconciler.core.status_codes import BY_NAME

    expected = {name: num for name, num in status_code_pb2.StatusCode.items() if name != "ZERO"}
    assert BY_NAME == expected


# --- the tool under each quirk -------------------------------------------------------------------

MANIFEST = textwrap.dedent("""\
    version: 1
    app: {id: quirky, description: first, default_workflow: other}
    concepts:
      - {id: animal}
      - {id: dog, description: a dog}
      - {id: cat}
      - {id: puppy}
    concept_relations:
      - {subject: animal, predicate: hypernym, object: dog}
      - {subject: cat, predicate: hyponym, object: animal}
      - {subject: puppy, predicate: synonym, object: dog}
      - {subject: dog, predicate: hypernym, object: puppy}
      - {subject: dog, predicate: synonym, object: {id: ai_l8TKp2h5, user_id: clarifai, app_id: main}}
    models:
      - {id: gt, type: concept-thresholder, comparator: GREATER_THAN, thresholds: {dog: 0.5, cat: 0.7}}
      - {id: writer, type: annotation-writer, annotation_status: SUCCESS}
      - {id: spare, type: annotation-writer, annotation_status: PENDING}
    workflows:
      - id: flow
        description: main flow
        nodes:
          - {id: gt, model: gt}
          - {id: write, model: writer, inputs: [gt]}
      - id: other
        nodes:
          - {id: s, model: spare}
    """)


#: A change of app description, threshold, concept description and workflow description; a
#: relation, a model and a workflow (the default until now) removed, the default moved.
MANIFEST_V2 = textwrap.dedent("""\
    version: 1
    app: {id: quirky, description: second, default_workflow: flow}
    concepts:
      - {id: animal}
      - {id: dog, description: dogs}
      - {id: cat}
      - {id: puppy}
    concept_relations:
      - {subject: animal, predicate: hypernym, object: dog}
      - {subject: cat, predicate: hyponym, object: animal}
      - {subject: dog, predicate: synonym, object: {id: ai_l8TKp2h5, user_id: clarifai, app_id: main}}
    models:
      - {id: gt, type: concept-thresholder, comparator: GREATER_THAN, thresholds: {dog: 0.6, cat: 0.7}}
      - {id: writer, type: annotation-writer, annotation_status: SUCCESS}
    workflows:
      - id: flow
        description: the flow
        nodes:
          - {id: gt, model: gt}
          - {id: write, model: writer, inputs: [gt]}
    """)


HAND = {"name": "Quirky", "notes": "user notes", "image": {"url": "https://example.com/app.png"}}


def _hand_edit(h: Harness) -> None:
    """Fields and metadata a user set by hand (the manifest does not manage them)."""
    c = h.client
    c.patch(U, {"apps": [{"id": "quirky", **HAND, "description": "first", "default_workflow_id": "other",
                          "metadata": {"owner": "alice"}}],
                "action": "overwrite", "metadata_action": {"op": "merge"}})
    c.patch(f"{U}/quirky/workflows", {"workflows": [{"id": "flow", "notes": "wf notes", "image": {"url": "https://example.com/w.png"},
                                                     "metadata": {"owner": "bob"}}], "action": "merge"})
    c.patch(f"{U}/quirky/concepts", {"concepts": [{"id": "dog", "name": "dog", "definition": "a dog",
                                                   "metadata": {"source": "hand"}}], "action": "overwrite"})


QUIRK_SETS = [None, *sorted(Q.QUIRKS), "pessimistic"]


@pytest.mark.parametrize("quirks", QUIRK_SETS)
def test_tool_converges_and_keeps_unmanaged_fields(quirks: str | None, tmp_path: Path) -> None:
    h = Harness(tmp_path, quirks=quirks)
    desired = h.desired("quirky.yaml", MANIFEST)
    h.apply(desired)
    assert h.plan(desired).empty, [(a.op, a.address) for a in h.plan(desired).actions]
    h.clear_log()
    h.apply(desired)
    assert h.writes() == []
    live = h.live("quirky", desired)
    assert live is not None and {m.id for m in live.models} == {"gt", "writer", "spare"}  # no clarifai/main model
    assert not any("general" in n for n in h.plan(desired).notes)

    _hand_edit(h)
    assert h.plan(desired).empty  # hand-set fields are not the manifest's business
    second = h.desired("quirky.yaml", MANIFEST_V2)
    h.apply(second)
    after = h.plan(second)
    assert after.empty, [(a.op, a.address) for a in after.actions]

    app = h.client.get(f"{U}/quirky")["app"]
    hand = dict(HAND)
    if Q.HOSTED_IMAGE in Q.parse(quirks):  # the same image, shown as its hosted copy
        hand["image"] = Q.hosted_image(HAND["image"]["url"])
    assert {k: app.get(k) for k in HAND} == hand and app["metadata"]["owner"] == "alice"
    assert app["description"] == "second" and (app.get("default_workflow_id") or app["default_workflow"]["id"]) == "flow"
    flow = h.client.get(f"{U}/quirky/workflows/flow")["workflow"]
    assert flow["notes"] == "wf notes" and flow["image"] == {"url": "https://example.com/w.png"}
    assert flow["metadata"]["owner"] == "bob" and flow["description"] == "the flow"
    dog = next(c for c in h.client.list_all(f"{U}/quirky/concepts", "concepts") if c["id"] == "dog")
    assert dog["definition"] == "dogs" and dog.get("metadata") == {"source": "hand"}
    models = {m["id"] for m in h.client.list_all(f"{U}/quirky/models", "models") if m.get("app_id") == "quirky"}
    assert models == {"gt", "writer"}
    h.clear_log()
    h.apply(second)
    assert h.writes() == []
    h.sandbox.close()


# --- ordering by parsed time, status names in the client, the hourly limit -------------------------

def test_timestamp_key_orders_any_precision() -> None:
    stamps = ["2026-01-01T00:00:05Z", "2026-01-01T00:00:04.5Z", "2026-01-01T00:00:04.123456789Z",
              "2026-01-01T00:00:04.12Z", "2026-01-01T01:00:04+01:00", "2026-01-01T00:00:04.000000001Z"]
    assert sorted(stamps, key=timestamp_key) == [
        "2026-01-01T01:00:04+01:00", "2026-01-01T00:00:04.000000001Z", "2026-01-01T00:00:04.12Z",
        "2026-01-01T00:00:04.123456789Z", "2026-01-01T00:00:04.5Z", "2026-01-01T00:00:05Z"]
    assert timestamp_key("") == timestamp_key(None) == timestamp_key("yesterday") == (0, 0, 0)


def test_live_model_takes_the_newest_version_by_time_not_string(tmp_path: Path) -> None:
    from reconciler.api.live import _model

    raw = {"id": "gt", "model_type_id": "concept-thresholder"}
    older = {"id": "old", "created_at": "2026-01-01T00:00:05.5Z",
             "output_info": {"data": {"concepts": [{"id": "a", "value": 0.1}]}, "params": {}}}
    newer = {"id": "new", "created_at": "2026-01-01T00:00:06Z",
             "output_info": {"data": {"concepts": [{"id": "a", "value": 0.2}]}, "params": {}}}
    assert _model(raw, [older, newer]).version_id == "new"
    assert _model(raw, [newer, older]).version_id == "new"


def _client(handler: Any, **kw: Any) -> Client:
    return Client("http://api.test", "pat", transport=httpx.MockTransport(handler), rate_limit=0,
                  sleep=lambda _s: None, **kw)


@pytest.mark.raw_requests  # a made-up path: the client's status handling, not a V2 request
def test_client_normalises_status_names_at_any_depth() -> None:
    body = {"status": {"code": "SUCCESS"}, "model_versions": [
        {"id": "v", "status": {"code": "MODEL_TRAINED"}}, {"id": "w", "status": {"code": "NO_SUCH_NAME"}}]}
    c = _client(lambda req: httpx.Response(200, json=body))
    got = c.get("/v2/x")
    assert [v["status"]["code"] for v in got["model_versions"]] == [21100, 0]
    assert got["status"]["code"] == 10000


@pytest.mark.raw_requests  # a made-up path: the client's status handling, not a V2 request
def test_throttled_by_name_is_retried_and_errors_by_name_carry_their_number() -> None:
    answers = [httpx.Response(429, json={"status": {"code": "CONN_THROTTLED"}}),
               httpx.Response(404, json={"status": {"code": "MODEL_DOES_NOT_EXIST", "description": "Model does not exist"}})]
    c = _client(lambda req: answers.pop(0))
    with pytest.raises(ApiError) as exc:
        c.get("/v2/x")
    assert exc.value.code == 21200 and "MODEL_DOES_NOT_EXIST (21200)" in str(exc.value)
    assert c.stats.requests == 2


@pytest.mark.raw_requests  # a made-up path: the client's status handling, not a V2 request
@pytest.mark.parametrize("http, headers", [(429, {}), (400, {}), (429, {"Retry-After": "1800"})])
def test_hourly_limit_is_not_retried_and_says_when(http: int, headers: dict[str, str]) -> None:
    calls = []

    def handler(req: httpx.Request) -> httpx.Response:
        calls.append(req)
        return httpx.Response(http, headers=headers, json={"status": {"code": "CONN_EXCEED_HOURLY_LIMIT",
                                                                      "description": "Exceeded hourly limit"}})
    c = _client(handler)
    with pytest.raises(ApiError) as exc:
        c.post("/v2/x", {})
    msg = str(exc.value)
    assert len(calls) == 1 and exc.value.code == 11003
    assert "\n" not in msg and "hourly request limit" in msg and "run again after" in msg
    assert ("30 minutes" if headers else "60 minutes") in msg


def test_deletes_without_a_bound_body_send_none(tmp_path: Path) -> None:
    """DeleteModel / DeleteModelVersion / DeleteWorkflow bind no body: apply sends none."""
    h = Harness(tmp_path)
    desired = h.desired("quirky.yaml", MANIFEST)
    h.apply(desired)
    seen: list[tuple[str, str, bytes]] = []
    inner = h.sandbox

    def spy(environ: dict[str, Any], start_response: Any) -> Any:
        if environ["REQUEST_METHOD"] == "DELETE":
            n = int(environ.get("CONTENT_LENGTH") or 0)
            raw = environ["wsgi.input"].read(n) if n else b""
            import io
            environ["wsgi.input"] = io.BytesIO(raw)
            seen.append((environ["REQUEST_METHOD"], environ["PATH_INFO"], raw))
        return inner(environ, start_response)

    client = Client("http://sandbox.local", DEFAULT_KEY, user_id=DEFAULT_USER,
                    transport=httpx.WSGITransport(app=spy), rate_limit=0)
    second = h.desired("quirky.yaml", MANIFEST_V2)
    h.apply(second, client=client)
    no_body = [s for s in seen if "/relations" not in s[1]]
    assert {p.rsplit("/", 2)[-2] for _, p, _ in no_body} == {"models", "workflows"}
    assert all(body == b"" for _, _, body in no_body), no_body
    h.sandbox.close()


def test_served_pessimistic_sandbox_with_the_tool_over_http(tmp_path: Path) -> None:
    """`reconciler sandbox serve --quirks` (bare: every quirk) in a child process: it says which
    quirks are on, and apply then plan over loopback HTTP converge against it."""
    import os
    import re
    import signal
    import subprocess
    import sys

    from reconciler.api.live import fingerprint, read_live
    from reconciler.apply.scheduler import apply_plan
    from reconciler.planning.plan import make_plan

    root = Path(__file__).resolve().parent.parent
    proc = subprocess.Popen([sys.executable, "-m", "reconciler", "sandbox", "serve", "--port", "0", "--quirks",
                             "--db", str(tmp_path / "served.sqlite")], cwd=root,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        url = re.search(r"http://127\.0\.0\.1:\d+", proc.stdout.readline())
        assert url
        proc.stdout.readline()  # the key line
        on = proc.stdout.readline()
        assert on.startswith("sandbox: pessimistic quirks on:") and all(q in on for q in Q.QUIRKS), on
        client = Client(url.group(0), DEFAULT_KEY, user_id=DEFAULT_USER, rate_limit=0)
        desired = Harness.desired("quirky.yaml", MANIFEST)
        live = read_live(client, "quirky", user_id=DEFAULT_USER)
        apply_plan(client, make_plan(desired, live, live_fingerprint=""), poll_s=0.01)
        live = read_live(client, "quirky", user_id=DEFAULT_USER)
        assert live is not None
        again = make_plan(desired, live, live_fingerprint=fingerprint(live))
        assert again.empty, [(a.op, a.address) for a in again.actions]
        client.close()
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0 and "Traceback" not in err, err


class _FakeVersionsApi:
    """Just enough of `Client` for `live.list_versions`: a listing and GetModelOutputInfo."""

    def __init__(self, listed: list[dict[str, Any]], full: dict[str, dict[str, Any]]) -> None:
        self.listed, self.full, self.gets = listed, full, []

    def list_all(self, path: str, key: str, params: Any = None) -> list[dict[str, Any]]:
        return [dict(v) for v in self.listed]

    def get(self, path: str, params: Any = None) -> dict[str, Any]:
        self.gets.append(path)
        vid = path.rsplit("/", 2)[-2]
        return {"status": {"code": 10000}, "model": {"id": "gt", "output_info": self.full[vid]}}

    def map(self, fn: Any, items: Any) -> list[Any]:
        return [fn(x) for x in items]


def test_a_partial_listing_is_completed_per_model_type() -> None:
    """A thresholder listed with its concepts but no params (no comparator) is not complete: its
    comparator would read as the default. A writer listed with params is complete."""
    from reconciler.api.live import list_versions

    full = {"v1": {"data": {"concepts": [{"id": "a", "value": 0.5}]}, "params": {"concept_threshold_type": 3}}}
    api = _FakeVersionsApi([{"id": "v1", "created_at": "2026-01-01T00:00:00Z",
                             "output_info": {"data": {"concepts": [{"id": "a", "value": 0.5}]}}}], full)
    [v] = list_versions(api, "/base", "gt", "concept-thresholder")  # type: ignore[arg-type]
    assert v["output_info"]["params"] == {"concept_threshold_type": 3}
    assert api.gets == ["/base/models/gt/versions/v1/output_info"]
    writer = _FakeVersionsApi([{"id": "w1", "output_info": {"params": {"annotation_status": 24150}}}], {})
    assert list_versions(writer, "/base", "w", "annotation-writer") and writer.gets == []  # type: ignore[arg-type]


# --- relations in one normal form (pure) -----------------------------------------------------------

def test_a_relation_read_from_its_other_side_plans_nothing() -> None:
    import dataclasses

    from reconciler.core.state import ConceptRef, ConceptRelation
    from reconciler.planning.plan import make_plan

    desired = Harness.desired("quirky.yaml", MANIFEST)
    flipped = []
    for r in desired.relations:
        if not r.object.external and r.predicate in ("hypernym", "hyponym", "synonym"):
            inverse = {"hypernym": "hyponym", "hyponym": "hypernym", "synonym": "synonym"}[r.predicate]
            r = ConceptRelation(subject=r.object.id, predicate=inverse, object=ConceptRef(r.subject),
                                knowledge_graph_id=r.knowledge_graph_id, server_id="x")
        flipped.append(r)
    assert [r.key for r in flipped] != [r.key for r in desired.relations]
    live = dataclasses.replace(desired, relations=tuple(flipped), source="live")
    plan = make_plan(desired, live, live_fingerprint="f")
    assert not [a for a in plan.actions if a.kind.value == "concept_relation"], [a.address for a in plan.actions]
    bare = make_plan(desired, dataclasses.replace(live, relations=()), live_fingerprint="f")
    assert len([a for a in bare.actions if a.kind.value == "concept_relation"]) == len(desired.relations)


@pytest.mark.parametrize("second", ["{subject: dog, predicate: hyponym, object: animal}",
                                    "{subject: dog, predicate: synonym, object: puppy}"])
def test_manifest_refuses_a_relation_repeated_from_the_other_side(second: str) -> None:
    from reconciler.core.errors import ManifestError
    from reconciler.manifest.load import load_text

    text = MANIFEST.replace("  - {subject: cat, predicate: hyponym, object: animal}\n",
                            f"  - {{subject: cat, predicate: hyponym, object: animal}}\n  - {second}\n")
    assert text != MANIFEST
    with pytest.raises(ManifestError) as exc:
        load_text(text, "quirky.yaml")
    assert "duplicate relation" in str(exc.value)


def test_a_restarted_sandbox_stamps_new_objects_after_what_its_file_holds(tmp_path: Path) -> None:
    """`timestamp-precision` rounds times up, so the file may hold times ahead of the real clock;
    a sandbox opened on it again (a new clock) must still stamp new versions after them, or the
    newest version would read as an older one."""
    import time

    from reconciler.sandbox.wire import rfc3339

    db = str(tmp_path / "s.sqlite")
    first = Sandbox(db, quirks=[Q.TIMESTAMP_PRECISION], training_delay_s=0)
    ahead = rfc3339(time.time() + 5)  # a time the last run stamped, ahead of the real clock
    with first.store.transaction() as tx:
        tx.insert("someone", "elsewhere", "app", "elsewhere", {"id": "elsewhere", "created_at": ahead})
    first.close()
    again = Sandbox(db, quirks=[Q.TIMESTAMP_PRECISION], training_delay_s=0)
    raw = httpx.Client(transport=httpx.WSGITransport(app=again), base_url="http://sandbox.local",
                       headers={"Authorization": f"Key {DEFAULT_KEY}"})
    raw.post(f"/v2/users/{DEFAULT_USER}/apps", json={"apps": [{"id": "app1"}]})
    made = raw.get(f"/v2/users/{DEFAULT_USER}/apps/app1").json()["app"]["created_at"]
    assert timestamp_key(made) > timestamp_key(ahead), (made, ahead)
    again.close()
