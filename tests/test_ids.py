"""Ids: one rule (manifest schema == semantic layer == sandbox), ids that cannot leave their URL path
segment, and the duplicate / not-found recognition apply relies on, in the real API's shapes."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote

import httpx
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from reconciler.api.client import Client
from reconciler.api.transport import api_path, app_path, path_segment, sandbox_transport
from reconciler.apply.base import _is_duplicate, _is_not_found
from reconciler.apply.scheduler import apply_plan
from reconciler.core import idrules
from reconciler.core.errors import ApiError, ManifestError
from reconciler.manifest.load import load_text
from reconciler.sandbox.app import DEFAULT_KEY, DEFAULT_USER, Sandbox
from reconciler.sandbox.server import running_server
from tests.e2e import Harness

HOSTILE = ["..", ".", "a/b", "../models", "%", "%2F", "a?b=1", "a#b", "a b", " ", "café", "a\nb", "x\n"]
A = f"/v2/users/{DEFAULT_USER}/apps/app1"
HDR = {"Authorization": f"Key {DEFAULT_KEY}"}


# --- one rule ------------------------------------------------------------------------------------

def _manifest(concept: str = "cat", model: str = "gt", app: str = "app1") -> str:
    q = lambda s: '"' + s.encode("unicode_escape").decode("ascii").replace('"', '\\"') + '"'  # noqa: E731
    return (f"app: {{id: {q(app)}}}\nconcepts:\n  - id: {q(concept)}\n"
            f"models:\n  - id: {q(model)}\n    type: annotation-writer\n    annotation_status: SUCCESS\n")


def _validates(text: str) -> bool:
    try:
        load_text(text, "m.yaml")
        return True
    except ManifestError as err:
        assert len(err.problems) == 1, err.problems  # one clear line per bad id
        return False


SAMPLES = ["cat", "a-b_c", "A1", "x" * 32, "x" * 33, "x" * 48, "x" * 49, "c" * 256, "café", "a__b", "a--b", "-a", "a-", "a.b",
           "..", "a/b", "a b", "", "x\n", "ai_l8TKp2h5", "concept-id-0123456789abcde", "our_wedding"]


@pytest.fixture(scope="module")
def sandbox_http(tmp_path_factory: pytest.TempPathFactory):
    sb = Sandbox(str(tmp_path_factory.mktemp("ids") / "s.sqlite"), training_delay_s=0)
    with httpx.Client(transport=sandbox_transport(sb), base_url="http://x", headers=HDR) as c:
        assert c.post("/v2/users/me/apps", json={"apps": [{"id": "app1"}]}).status_code == 200
        yield c
    sb.close()


def _sandbox_accepts(c: httpx.Client, kind: str, value: str) -> bool:
    if kind == "concept":
        r = c.post(A + "/concepts", json={"concepts": [{"id": value}]})
    elif kind == "model":
        r = c.post(A + "/models", json={"models": [{"id": value, "model_type_id": "annotation-writer"}]})
    else:
        r = c.post("/v2/users/me/apps", json={"apps": [{"id": value}]})
    code = r.json()["status"]["code"]
    assert code in (10000, 40003, 40010, 21203, 11102, 21108) or r.status_code in (400, 409), r.text
    # an id the sandbox already has is a duplicate, i.e. accepted as an id
    return r.status_code == 200 or "duplicate" in (r.json()["status"].get("details", "") + str(code)).lower() \
        or code == 40010


@pytest.mark.parametrize("kind", ["concept", "model", "app"])
@pytest.mark.parametrize("value", SAMPLES)
def test_validate_refuses_exactly_what_the_sandbox_refuses(sandbox_http: httpx.Client, kind: str, value: str) -> None:
    manifest_ok = _validates(_manifest(**{kind: value}))
    rule = idrules.CONCEPT_ID if kind == "concept" else idrules.CLARIFAI_ID
    assert manifest_ok == (rule.problem(value) is None)
    assert _sandbox_accepts(sandbox_http, kind, value) == manifest_ok, (kind, value)


@settings(max_examples=150, deadline=None)
@given(st.text(alphabet=st.sampled_from("aZ09-_. /é\n%?#"), max_size=60))
@example("0" * 48 + "?")  # too long and a bad character: one problem (its characters), not two
def test_schema_and_rule_agree_on_any_concept_id(value: str) -> None:
    assert _validates(_manifest(concept=value)) == (idrules.CONCEPT_ID.problem(value) is None)


def test_rule_is_read_from_the_schema_and_cites_its_source() -> None:
    defs = idrules._defs()
    assert "clarifai-python" in defs["idSyntax"]["$comment"]
    assert idrules.CLARIFAI_ID.pattern == defs["idSyntax"]["pattern"]
    assert idrules.CLARIFAI_ID.max_length == defs["id"]["maxLength"] == 48
    assert defs["conceptId"]["$ref"] == "#/$defs/id"  # concepts share the syntax, not a copy of it
    assert idrules.CONCEPT_ID.pattern == idrules.CLARIFAI_ID.pattern
    assert idrules.CONCEPT_ID.max_length == defs["conceptId"]["maxLength"] == 32
    assert "coco_detection.py" in defs["conceptId"]["$comment"] and "3bc0d0d" in defs["conceptId"]["$comment"]
    assert "validate.py" in defs["nodeId"]["$comment"] and idrules.NODE_ID.max_length == 128


# --- ids stay in their path segment --------------------------------------------------------------

@pytest.mark.parametrize("value", HOSTILE)
def test_path_segment_cannot_escape(value: str) -> None:
    seg = path_segment(value)
    assert "/" not in seg and "?" not in seg and "#" not in seg and " " not in seg
    assert seg not in (".", "..")
    assert unquote(seg) == value
    seen: list[bytes] = []
    client = Client("http://api.test", "pat", transport=httpx.MockTransport(
        lambda r: seen.append(r.url.raw_path) or httpx.Response(200, json={"status": {"code": 10000}})),
        rate_limit=0, max_retries=0)
    client.get(app_path("app1", "u1") + api_path("concepts", value, "relations"))
    raw = seen[0].decode("ascii")
    assert raw.split("?")[0] == raw, raw  # nothing became a query string
    parts = raw.split("/")
    assert parts[:7] == ["", "v2", "users", "u1", "apps", "app1", "concepts"] and parts[8:] == ["relations"], raw
    assert unquote(parts[7]) == value


@pytest.mark.parametrize("value", ["..", ".", "a/relations", "x%2Fy", "a?b", "a#b", "a b"])
def test_sandbox_routes_an_encoded_id_to_its_own_resource(tmp_path: Path, value: str) -> None:
    """In process and over loopback HTTP: a concept id that looks like a path stays a concept id
    (GetConcept answers "does not exist"), never reaching GetApp or ListConceptRelations."""
    sb = Sandbox(str(tmp_path / "s.sqlite"), training_delay_s=0)
    with running_server(sb) as url:
        for transport, base in ((sandbox_transport(sb), "http://x"), (httpx.HTTPTransport(), url)):
            with httpx.Client(transport=transport, base_url=base, headers=HDR) as c:
                c.post("/v2/users/me/apps", json={"apps": [{"id": "app1"}]})
                r = c.get(A + api_path("concepts", value))
                assert (r.status_code, r.json()["status"]["code"]) == (404, 11101), r.text
                assert "concept" not in r.json() and "app" not in r.json()
    sb.close()


# --- duplicate / not found, by code and text -----------------------------------------------------

def _err(code: int, http: int, description: str = "", details: str = "") -> ApiError:
    body = {"status": {"code": code, "description": description, "details": details}}
    return ApiError("x", code=code, http_status=http, description=description, details={"response": body})


def test_duplicate_concept_in_the_real_shape_is_a_duplicate_not_a_missing_one() -> None:
    # Clarifai/clarifai-python-grpc tests/client/test_concept_crud.py
    real = _err(40003, 400, "Invalid request", "Duplicate concept id: 'x' already exists")
    assert _is_duplicate(real) and not _is_not_found(real)


@pytest.mark.parametrize("err, dup, missing", [
    (_err(40003, 400, "Invalid request", "concept id is required"), False, False),  # 40003 alone: neither
    (_err(40003, 400, "Invalid request"), False, False),
    (_err(40010, 409, "Object has a duplicate ID; another object with same ID already exist"), True, False),
    (_err(40010, 400), True, False),
    (_err(22100, 400, "Workflow duplicate"), True, False),
    (_err(21203, 400, "Invalid request", "model already exists"), True, False),
    (_err(11102, 400, "Invalid request", "app with this id already exists"), True, False),
    (_err(99009, 409), True, False),
    (_err(11005, 429, "Making too many requests", "duplicate request throttled"), False, False),
    (_err(11101, 404, "Resource does not exist"), False, True),
    (_err(21200, 404, "Model does not exist"), False, True),
    (_err(22102, 400, "Workflow does not exist"), False, True),
    (_err(40003, 400, "Invalid request", "relation r1 does not exist"), False, True),
    (_err(21203, 400, "Invalid request", "model does not exist"), False, True),
    (_err(99009, 500, "Internal error", "upstream does not exist"), False, False),  # a server fault
])
def test_outcomes_are_recognised_by_code_and_text(err: ApiError, dup: bool, missing: bool) -> None:
    assert (_is_duplicate(err), _is_not_found(err)) == (dup, missing)


def test_words_in_the_path_do_not_count() -> None:
    err = ApiError("POST /v2/users/u/apps/duplicate-app/concepts: 40003 Invalid request", code=40003,
                   http_status=400, description="Invalid request", path="/v2/users/u/apps/duplicate-app/concepts",
                   details={"response": {"status": {"code": 40003, "description": "Invalid request"}}})
    assert not _is_duplicate(err)


def test_apply_reads_back_and_converges_when_a_concept_exists_already(tmp_path: Path) -> None:
    """The plan saw no concept `man` (someone created it in between, with another name); the create
    answers the real duplicate shape (40003, HTTP 400) and apply reads back, creates the rest and
    overwrites the one that differs. A second plan is empty."""
    h = Harness(tmp_path)
    text = "app: {id: dup}\nconcepts:\n  - {id: people, name: People}\n  - {id: man, name: Man}\n"
    desired = h.desired("m.yaml", text)
    h.apply(h.desired("a.yaml", "app: {id: dup}\n"))
    plan = h.plan(desired)
    assert [a.op for a in plan.actions] == ["create", "create"]
    h.client.post(h.base("dup") + "/concepts", {"concepts": [{"id": "man", "name": "someone"}]})
    h.clear_log()
    apply_plan(h.client, plan, poll_s=0.01)
    statuses = [s for (_m, p, s) in h.writes() if p.endswith("/concepts")]
    assert statuses[0] == 400  # the real duplicate answer, then the converging writes
    assert all(s == 200 for s in statuses[1:]) and len(statuses) == 3
    assert not h.plan(desired).actions
    names = {c.id: c.name for c in h.live("dup").concepts}
    assert names == {"people": "People", "man": "Man"}


def test_no_module_interpolates_an_id_into_a_path() -> None:
    """Paths with ids are built from segments (`api_path`), never by f-string: a guard that a new
    call site does not bring the unencoded form back."""
    import re

    root = Path(__file__).resolve().parent.parent / "reconciler"
    # `{sub}` in live.py is a literal sub-path ("concepts", "concepts/relations"), not an id
    pattern = re.compile(r'f"[^"\n]*(/v2/|\{(self\.)?base\}/)[^"\n]*\{(?!sub\})')
    offenders = [f"{p.name}:{n}" for p in root.glob("*.py")
                 for n, line in enumerate(p.read_text("utf-8").splitlines(), 1) if pattern.search(line)]
    assert offenders == []
