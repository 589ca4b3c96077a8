"""Replay real Clarifai response bodies (tests/parity/corpus) through the live reader and the
client's error handling, and assert what the tool makes of them.

The transport serves corpus bodies for the routes under test; anything else the reader asks for
is answered by small scaffolding bodies marked as such (they carry no claim about the real API).
"""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
import pytest

from reconciler.api import live, liveshape
from reconciler.api.client import Client
from reconciler.api.codecs import ConceptCodec, ModelCodec
from reconciler.api.status import status_code_of
from reconciler.apply.base import _is_duplicate, _is_not_found
from reconciler.core.errors import ApiError
from reconciler.core.modeltypes import f32
from reconciler.core.state import Concept, ConceptRef, ConceptRelation
from tests.parity import corpus

USER = "u"


def _ok(**payload: Any) -> dict[str, Any]:
    """Scaffolding: a success body for a route whose real answer is not under test."""
    return {"status": {"code": 10000, "description": "Ok"}, **payload}


def _client(routes: dict[str, Any], *, max_retries: int = 0) -> tuple[Client, list[str]]:
    """A client whose transport answers `routes` (path -> (status, body) or a list of them, served
    in turn, or a function of the page number). Listings of model versions default to empty."""
    seen: list[str] = []
    served: dict[str, int] = {}

    def handle(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        seen.append(f"{request.method} {path}")
        answer = routes.get(path)
        if answer is None and path.endswith("/versions"):
            answer = (200, _ok(model_versions=[]))
        if answer is None:
            raise AssertionError(f"unexpected request {request.method} {request.url}")
        if callable(answer):
            answer = answer(int(request.url.params.get("page", "1")))
        if isinstance(answer, list):
            i = served.get(path, 0)
            served[path] = i + 1
            answer = answer[min(i, len(answer) - 1)]
        status, body = answer
        return httpx.Response(status, json=body)

    client = Client("http://real.invalid", "pat", user_id=USER, transport=httpx.MockTransport(handle),
                    rate_limit=0, max_retries=max_retries, sleep=lambda s: None)
    return client, seen


def _app_routes(app_id: str, **lists: Any) -> dict[str, Any]:
    base = f"/v2/users/{USER}/apps/{app_id}"
    routes: dict[str, Any] = {base: (200, _ok(app={"id": app_id}))}
    for key, sub in (("concepts", "concepts"), ("concept_relations", "concepts/relations"),
                     ("models", "models"), ("workflows", "workflows")):
        routes[f"{base}/{sub}"] = lists.get(key, (200, _ok(**{key: []})))
    return routes


# --- concepts ----------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["docs-list-concepts", "legacy-list-concepts-page1"])
def test_concept_listing_reads_ids_and_names(name: str) -> None:
    case = corpus.load(name)
    client, _ = _client(_app_routes(case.app_id, concepts=(200, case.body)))
    state = live.read_live(client, case.app_id)
    assert state is not None
    want = [Concept(c["id"], c["name"], "") for c in case.body["concepts"]]
    assert list(state.concepts) == want


def test_listing_pages_until_the_empty_page() -> None:
    page1, end = corpus.load("legacy-list-concepts-page1"), corpus.load("legacy-list-concepts-end")
    client, seen = _client({"/v2/concepts": lambda page: (200, page1.body if page == 1 else end.body)})
    items = client.list_all("/v2/concepts", "concepts", per_page=2, short_page_ends=False)
    assert [c["id"] for c in items] == ["@conceptID1", "@conceptID2"]
    assert seen == ["GET /v2/concepts", "GET /v2/concepts"]


@pytest.mark.parametrize("name", ["docs-post-concepts", "docs-patch-concepts", "legacy-post-concepts",
                                  "legacy-patch-concepts", "legacy-get-concept", "docs-get-concept"])
def test_concept_answers_pass_the_shape_check(name: str) -> None:
    body = corpus.load(name).body
    items = body.get("concepts") or [body["concept"]]
    liveshape.check("concepts", items, "GET", "/x")
    assert [ConceptCodec.from_api(c).id for c in items] == [c["id"] for c in items]


# --- relations ---------------------------------------------------------------------------------

def test_relation_listing_reads_in_its_stored_direction() -> None:
    case = corpus.load("docs-list-concept-relations-item")
    client, _ = _client(_app_routes(case.app_id, concept_relations=(200, _ok(concept_relations=[case.body]))))
    state = live.read_live(client, case.app_id)
    assert state is not None
    assert list(state.relations) == [ConceptRelation("honey", "hypernym", ConceptRef("food"))]
    assert state.relations[0].server_id == "2d794e5ede534500b4ac7da44ef570ee"


def test_created_relation_answer_passes_the_shape_check() -> None:
    body = corpus.load("docs-post-concept-relations").body
    liveshape.check("concept_relations", body["concept_relations"], "POST", "/x")
    rels = live._relations(body["concept_relations"], "a39423543bb941bf9ba2ee95fad11f0a")
    assert [(r.subject, r.predicate, r.object.id) for r in rels] == [("honey", "hypernym", "food")]


# --- models and versions -----------------------------------------------------------------------

TRAINING_STATES = {
    "legacy-post-models-untrained": 21102, "olddocs-post-models-untrained": 21102,
    "docs-post-models-embedding-classifier": 21102, "docs-post-model-versions-queued": 21103,
    "js-post-model-versions-queued": 21103, "olddocs-post-model-versions-queued": 21103,
    "legacy-post-model-versions-trained": 21100, "issue-get-model-training-failed-21111": 21111,
    "legacy-get-model-main": 21100,
}


@pytest.mark.parametrize("name,code", sorted(TRAINING_STATES.items()))
def test_model_answers_give_the_version_and_its_training_state(name: str, code: int) -> None:
    model = corpus.load(name).body["model"]
    liveshape.check("models", [model], "POST", "/x")
    liveshape.check("model_versions", [model["model_version"]], "POST", "/x")
    version = ModelCodec.version_from_api(model.get("model_type_id", ""), model["model_version"])
    assert version.id == model["model_version"]["id"]
    assert version.status_code == code


@pytest.mark.parametrize("name", ["docs-rest-post-model-outputs", "docs-model-output-max-concepts"])
def test_current_model_objects_read_despite_fields_the_reader_does_not_know(name: str) -> None:
    body = corpus.load(name).body
    model = (body["outputs"][0] if "outputs" in body else body)["model"]
    liveshape.check("models", [model], "POST", "/x")
    read = live._model(model, [model["model_version"]])
    assert (read.id, read.type, read.version_id) == ("general-image-recognition", "visual-classifier",
                                                     "aa7f35c01e0642fda5cf400f543e7c40")
    assert read.versions[0].status_code == 21100


def test_version_listing_reads_newest_first_with_status() -> None:
    body = corpus.load("legacy-list-model-versions").body
    liveshape.check("model_versions", body["model_versions"], "GET", "/x")
    model = live._model({"id": "@modelID", "model_type_id": ""}, body["model_versions"])
    assert [v.id for v in model.versions] == ["@modelVersionID1", "@modelVersionID2"]
    assert model.version_id == "@modelVersionID1"
    assert {v.status_code for v in model.versions} == {21100}


def test_version_configuration_is_read_from_output_info_when_the_listing_lacks_it() -> None:
    created = corpus.load("legacy-post-models-untrained")
    versions = corpus.load("legacy-list-model-versions")
    info = corpus.load("js-get-model-output-info")
    app = created.app_id
    base = f"/v2/users/{USER}/apps/{app}"
    routes = _app_routes(app, models=(200, _ok(models=[created.body["model"]])))
    routes[f"{base}/models/@modelID/versions"] = (200, versions.body)
    for v in ("@modelVersionID1", "@modelVersionID2"):
        routes[f"{base}/models/@modelID/versions/{v}/output_info"] = (200, info.body)
    client, seen = _client(routes)
    live.read_live(client, app)
    assert f"GET {base}/models/@modelID/versions/@modelVersionID1/output_info" in seen


def test_main_models_in_an_app_listing_are_not_read_as_the_apps() -> None:
    case = corpus.load("legacy-list-models-main-in-listing")
    client, _ = _client(_app_routes("@appID", models=(200, case.body)))
    state = live.read_live(client, "@appID")
    assert state is not None
    assert [m.id for m in state.models] == []


# --- errors ------------------------------------------------------------------------------------

@pytest.mark.parametrize("http", [200, 400, 404])
def test_model_does_not_exist_21200(http: int) -> None:
    body = corpus.load("docs-rest-error-21200").body
    client, _ = _client({"/v2/models/x": (http, body)})
    with pytest.raises(ApiError) as exc:
        client.get("/v2/models/x")
    err = exc.value
    assert (err.code, err.description, err.req_id) == (21200, "Model does not exist",
                                                       "09715165a0d24a109f3951b61d73dfe8")
    assert "MODEL_DOES_NOT_EXIST (21200)" in str(err) and "\n" not in str(err)
    assert _is_not_found(err)


def test_resource_does_not_exist_11101_reads_as_absent_app() -> None:
    case = corpus.load("issue-get-model-missing-11101")
    routes = _app_routes("gone")
    routes[f"/v2/users/{USER}/apps/gone"] = (case.http_status, case.body)
    client, _ = _client(routes)
    assert live.read_live(client, "gone") is None


def test_resource_does_not_exist_11101_message() -> None:
    case = corpus.load("issue-get-model-missing-11101")
    client, _ = _client({"/v2/models/general-v1.3": (case.http_status, case.body)})
    with pytest.raises(ApiError) as exc:
        client.get("/v2/models/general-v1.3")
    assert exc.value.code == 11101
    assert "CONN_DOES_NOT_EXIST (11101)" in str(exc.value) and "general-v1.3" in str(exc.value)
    assert _is_not_found(exc.value)


def test_throttled_with_the_code_as_a_name_is_retried() -> None:
    throttled = corpus.load("docs-rate-limit-throttled")
    client, seen = _client({"/v2/concepts": [(429, throttled.body), (429, throttled.body),
                                             (200, corpus.load("legacy-list-concepts-end").body)]},
                           max_retries=3)
    assert client.get("/v2/concepts")["concepts"] == []
    assert len(seen) == 3 and client.stats.retries == 2


@pytest.mark.parametrize("http", [200, 429])
def test_throttled_with_the_code_as_a_name_reads_as_11005(http: int) -> None:
    throttled = corpus.load("docs-rate-limit-throttled")
    client, _ = _client({"/v2/concepts": (http, throttled.body)})
    with pytest.raises(ApiError) as exc:
        client.get("/v2/concepts")
    assert status_code_of(throttled.body["status"]["code"]) == 11005
    assert exc.value.code == 11005
    assert "CONN_THROTTLED (11005)" in str(exc.value) and "15 requests per second" in str(exc.value)


def test_duplicate_concept_40003_is_recognised_as_duplicate() -> None:
    client, _ = _client({"/v2/concepts": (400, corpus.asserted_body("duplicate-concept"))})
    with pytest.raises(ApiError) as exc:
        client.post("/v2/concepts", {"concepts": [{"id": "a"}]})
    assert exc.value.code == 40003
    assert _is_duplicate(exc.value) and not _is_not_found(exc.value)


def test_invalid_key_11008_is_an_error_not_an_absent_app() -> None:
    # The HTTP status of an 11008 answer is not published; the reading must not depend on it.
    body = corpus.asserted_body("invalid-key")
    routes = _app_routes("shop")
    routes[f"/v2/users/{USER}/apps/shop"] = (401, body)
    routes[f"/v2/users/{USER}/apps"] = (401, body)
    client, _ = _client(routes)
    with pytest.raises(ApiError) as exc:
        live.read_live(client, "shop")
    assert exc.value.code == 11008
    assert "Invalid API key or Invalid API key/application pair" in str(exc.value)


def test_patch_of_a_missing_concept_11101_is_not_found() -> None:
    client, _ = _client({"/v2/concepts": (404, corpus.asserted_body("patch-missing-concept"))})
    with pytest.raises(ApiError) as exc:
        client.patch("/v2/concepts", {"action": "overwrite", "concepts": [{"id": "nope"}]})
    assert exc.value.code == 11101 and _is_not_found(exc.value)


def test_delete_answer_is_a_bare_status() -> None:
    client, _ = _client({"/v2/models/m/versions/v": (200, corpus.load("legacy-delete-model-version").body)})
    assert client.delete("/v2/models/m/versions/v")["status"]["code"] == 10000


def test_the_corpus_holds_at_least_twenty_real_bodies_with_sources() -> None:
    cases = [corpus.load(n) for n in corpus.names()]
    assert len(cases) >= 20
    for case in cases:
        assert case.source and case.note and isinstance(case.body, dict)
        assert "status" in case.body or case.rpc == "ListConceptRelations"


# --- value forms -------------------------------------------------------------------------------

def test_concept_values_are_float32_in_both_print_forms() -> None:
    """gRPC text prints a float32 as its double (0.9996053576469421), REST JSON as the shortest
    float32 decimal; the tool's float32 normal form reads both as the same number."""
    name = "docs-model-output-max-concepts"
    text = json.loads((corpus.CORPUS_DIR / f"{name}.json").read_text(encoding="utf-8"))["text"]
    printed = [float(v) for v in re.findall(r"value: ([0-9.]+)", text)]
    rendered = [c["value"] for c in corpus.load(name).body["data"]["concepts"]]
    assert len(printed) == len(rendered) == 3
    assert [f32(v) for v in printed] == rendered == [f32(v) for v in rendered]
    assert printed != rendered  # the two print forms really differ
    rest = [c["value"] for c in corpus.load("docs-rest-post-model-outputs").body["outputs"][0]["data"]["concepts"]]
    assert [f32(v) for v in rest] == rest


def _walk(obj: Any, key: str) -> list[Any]:
    if isinstance(obj, dict):
        return [v for k, v in obj.items() if k == key] + [x for v in obj.values() for x in _walk(v, key)]
    if isinstance(obj, list):
        return [x for v in obj for x in _walk(v, key)]
    return []


def test_published_rest_json_sends_enums_and_codes_as_numbers_except_the_rate_limit_page() -> None:
    """Why the sandbox answers numbers and the client also reads names: every REST JSON body in
    the corpus carries status codes and enums as numbers; the docs' rate-limit page shows a name."""
    forms: dict[str, set[type]] = {}
    for n in corpus.names():
        if json.loads((corpus.CORPUS_DIR / f"{n}.json").read_text(encoding="utf-8"))["format"] != "json":
            continue
        body = corpus.load(n).body
        codes = [s["code"] for s in _walk(body, "status") if isinstance(s, dict) and "code" in s]
        gettable = [v["gettable"] for v in _walk(body, "visibility") if isinstance(v, dict)]
        forms[n] = {type(x) for x in codes + gettable}
    assert forms.pop("docs-rate-limit-throttled") == {str}
    assert set().union(*forms.values()) == {int}
