"""Field-by-field parity of the sandbox with real Clarifai answers (tests/parity/corpus).

For each real body, the same request is made to the sandbox (normal mode) and the two bodies are
compared structurally (`shapes.diffs`: presence and JSON type of every field; ids, timestamps and
req_ids are values and so normalised away; enums must keep their form). Every difference fails
unless ALLOWED lists it with a reason; an ALLOWED entry that no longer differs fails too, so the
list stays true.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from reconciler.sandbox.app import DEFAULT_KEY, DEFAULT_USER, Sandbox
from tests.parity import corpus, shapes

APP = "parity"
BASE = f"/v2/users/{DEFAULT_USER}/apps/{APP}"

_NOT_READ = "not read by the tool; the sandbox need not send it"
_OLD_ERA = "the real body is from an older API era that did not send it yet; newer real bodies do"
_CONFIG_IN_ANSWERS = ("normal mode keeps a version's configuration in model answers; the real API "
                      "sends only a summary there, played by the pessimistic quirk listing-without-config")

_NO_VERSION = ("the real body predates 2023: PostModels no longer makes a version (Clarifai/docs "
               "model-version-endpoints.md), so today's answer has no version and no configuration to show")

#: case -> {difference: reason}
ALLOWED: dict[str, dict[str, str]] = {
    "docs-patch-concepts": {
        ".concepts[].visibility: extra in sandbox":
            "the real PatchConcepts answer omits visibility (PostConcepts' has it); " + _NOT_READ},
    "docs-post-models-embedding-classifier": {
        ".model.model_version: missing in sandbox": _NO_VERSION,
        ".model.output_info: missing in sandbox": _NO_VERSION,
    },
    "legacy-list-model-versions": {
        ".model_versions[].output_info: extra in sandbox": _CONFIG_IN_ANSWERS,
        ".model_versions[].active_concept_count: missing in sandbox": _NOT_READ,
        ".model_versions[].train_stats: missing in sandbox": "a field of the old API, gone from the proto",
        ".model_versions[].app_id: extra in sandbox": _OLD_ERA + " (docs create_model.js model_version)",
        ".model_versions[].user_id: extra in sandbox": _OLD_ERA + " (docs create_model.js model_version)",
        ".model_versions[].visibility: extra in sandbox": _OLD_ERA + " (docs create_model.js model_version)",
        ".model_versions[].metadata: extra in sandbox": _OLD_ERA + " (docs create_model.js model_version)",
        ".model_versions[].modified_at: extra in sandbox": "a ModelVersion proto field; " + _NOT_READ,
        ".model_versions[].completed_at: extra in sandbox": "a ModelVersion proto field, set when training "
        "ended (the listed version did; the legacy body's never trained); " + _NOT_READ,
        ".status.req_id: extra in sandbox": _OLD_ERA,
    },
    "legacy-delete-model-version": {".status.req_id: extra in sandbox": _OLD_ERA},
}


@pytest.fixture(scope="module")
def answers(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[int, dict[str, Any]]]:
    """The sandbox's answers to the requests behind each real body, in one app."""
    db = Path(tmp_path_factory.mktemp("parity")) / "sb.sqlite"
    sandbox = Sandbox(str(db), training_delay_s=0)
    http = httpx.Client(base_url="http://sandbox.local", transport=httpx.WSGITransport(app=sandbox),
                        headers={"Authorization": f"Key {DEFAULT_KEY}"})

    def call(method: str, path: str, body: dict[str, Any] | None = None) -> tuple[int, dict[str, Any]]:
        resp = http.request(method, path, json=body)
        return resp.status_code, resp.json()

    out: dict[str, tuple[int, dict[str, Any]]] = {}
    assert call("POST", f"/v2/users/{DEFAULT_USER}/apps", {"apps": [{"id": APP}]})[0] == 200
    out["docs-post-concepts"] = call("POST", f"{BASE}/concepts", {"concepts": [{"id": "cat", "name": "Cat Name"}]})
    call("POST", f"{BASE}/concepts", {"concepts": [{"id": "charlie", "name": "Charlie Name"},
                                                   {"id": "honey"}, {"id": "food"}]})
    out["docs-list-concepts"] = call("GET", f"{BASE}/concepts")
    out["docs-get-concept"] = call("GET", f"{BASE}/concepts/cat")
    out["docs-patch-concepts"] = call("PATCH", f"{BASE}/concepts", {
        "action": "overwrite", "concepts": [{"id": "cat", "name": "New Cat Name"}]})
    out["docs-post-concept-relations"] = call("POST", f"{BASE}/concepts/honey/relations", {
        "concept_relations": [{"object_concept": {"id": "food"}, "predicate": "hypernym"}]})
    out["docs-list-concept-relations-item"] = call("GET", f"{BASE}/concepts/honey/relations")
    out["docs-post-models-embedding-classifier"] = call("POST", f"{BASE}/models", {"model": {
        "id": "my-pets", "model_type_id": "embedding-classifier",
        "output_info": {"data": {"concepts": [{"id": "cat"}]}}}})
    # today PostModels makes no version (docs model-version-endpoints.md): the version the real
    # listing shows comes from PostModelVersions
    posted = call("POST", f"{BASE}/models/my-pets/versions", {"model_versions": [
        {"output_info": {"data": {"concepts": [{"id": "cat"}]}}}]})
    out["legacy-list-model-versions"] = call("GET", f"{BASE}/models/my-pets/versions")
    out["docs-rest-error-21200"] = call("GET", f"{BASE}/models/no-such-model")
    version = posted[1]["model"]["model_version"]["id"]
    out["legacy-delete-model-version"] = call("DELETE", f"{BASE}/models/my-pets/versions/{version}")
    # The legacy and JavaScript clients train with an empty body: POST .../versions '{}'
    out["legacy-post-model-versions-trained"] = call("POST", f"{BASE}/models/my-pets/versions", {})
    return out


def _real(name: str) -> dict[str, Any]:
    body = corpus.load(name).body
    if name == "docs-list-concept-relations-item":  # the docs print one listed item: wrap it
        return {"status": {"code": 10000, "description": "Ok", "req_id": ""}, "concept_relations": [body]}
    return body


COMPARED = ["docs-post-concepts", "docs-list-concepts", "docs-get-concept", "docs-patch-concepts",
            "docs-post-concept-relations", "docs-list-concept-relations-item",
            "docs-post-models-embedding-classifier", "legacy-list-model-versions",
            "docs-rest-error-21200", "legacy-delete-model-version"]


@pytest.mark.parametrize("name", COMPARED)
def test_sandbox_answer_has_the_real_shape(name: str, answers: dict[str, tuple[int, dict[str, Any]]]) -> None:
    status, body = answers[name]
    assert status == (corpus.load(name).http_status or status)
    found = shapes.diffs(_real(name), body)
    allowed = ALLOWED.get(name, {})
    assert found - allowed.keys() == set(), f"sandbox differs from the real answer: {sorted(found - allowed.keys())}"
    assert allowed.keys() - found == set(), f"stale ALLOWED entries (no longer differ): {sorted(allowed.keys() - found)}"


def test_missing_model_is_not_found_with_a_status_code_number(answers: dict[str, tuple[int, dict[str, Any]]]) -> None:
    status, body = answers["docs-rest-error-21200"]
    assert isinstance(body["status"]["code"], int)
    assert body["status"]["code"] in (21200, 11101) and status == 404


def test_training_with_an_empty_body_is_accepted(answers: dict[str, tuple[int, dict[str, Any]]]) -> None:
    status, body = answers["legacy-post-model-versions-trained"]
    assert status == 200
    real = corpus.load("legacy-post-model-versions-trained").body
    assert {".model: missing in sandbox"}.isdisjoint(shapes.diffs(real, body))


def test_shape_diff_sees_every_kind_of_difference() -> None:
    real = {"status": {"code": 10000}, "items": [{"a": 1, "b": {"c": "x"}}]}
    assert shapes.diffs(real, real) == set()
    assert shapes.diffs(real, {"status": {"code": "SUCCESS"}, "items": [{"a": 1, "b": {}, "d": 0}]}) == {
        ".status.code: type number vs string", ".items[].b.c: missing in sandbox", ".items[].d: extra in sandbox"}


#: Differences of the sandbox's clarifai/main general-image-recognition from the real model object
#: (Clarifai/docs rest-outputs.json, the REST example on the API Outputs page).
MAIN_MODEL_ALLOWED: dict[str, str] = {
    ".toolkits: missing in sandbox": _NOT_READ,
    ".use_cases: missing in sandbox": _NOT_READ,
    ".languages: missing in sandbox": _NOT_READ,
    ".languages_full: missing in sandbox": _NOT_READ,
    ".check_consents: missing in sandbox": _NOT_READ,
    ".workflow_recommended: missing in sandbox": _NOT_READ,
    ".image: missing in sandbox": _NOT_READ,
    ".description: extra in sandbox": "a Model proto field; the tool reads it for the app's own models",
    ".metadata: extra in sandbox": "a Model proto field; the tool reads it (ownership marker) on the app's own models",
    ".model_version.output_info: extra in sandbox": _CONFIG_IN_ANSWERS,
    ".model_version.completed_at: extra in sandbox": "a ModelVersion proto field; " + _NOT_READ,
    ".model_version.modified_at: extra in sandbox": "a ModelVersion proto field; " + _NOT_READ,
}


def test_sandbox_main_model_has_the_real_ids_and_shape(tmp_path: Path) -> None:
    real = corpus.load("docs-rest-post-model-outputs").body["outputs"][0]["model"]
    sandbox = Sandbox(str(tmp_path / "sb.sqlite"), training_delay_s=0)
    http = httpx.Client(base_url="http://sandbox.local", transport=httpx.WSGITransport(app=sandbox),
                        headers={"Authorization": f"Key {DEFAULT_KEY}"})
    got = http.get("/v2/users/clarifai/apps/main/models/general-image-recognition").json()["model"]
    assert (got["id"], got["model_type_id"], got["model_version"]["id"]) == (
        real["id"], real["model_type_id"], real["model_version"]["id"])
    assert got["model_version"]["status"]["code"] == real["model_version"]["status"]["code"] == 21100
    found = shapes.diffs(real, got)
    assert found - MAIN_MODEL_ALLOWED.keys() == set()
    assert MAIN_MODEL_ALLOWED.keys() - found == set()


@pytest.mark.parametrize("name", ["olddocs-post-inputs-concepts", "legacy-post-inputs-with-concepts"])
def test_labelled_inputs_answer_with_the_real_shape(name: str, tmp_path: Path) -> None:
    sandbox = Sandbox(str(tmp_path / "sb.sqlite"), training_delay_s=0)
    http = httpx.Client(base_url="http://sandbox.local", transport=httpx.WSGITransport(app=sandbox),
                        headers={"Authorization": f"Key {DEFAULT_KEY}"})
    assert http.post(f"/v2/users/{DEFAULT_USER}/apps", json={"apps": [{"id": APP}]}).status_code == 200
    assert http.post(f"{BASE}/concepts", json={"concepts": [{"id": "charlie"}]}).status_code == 200
    body = http.post(f"{BASE}/inputs", json={"inputs": [{"data": {
        "image": {"url": "https://samples.clarifai.com/puppy.jpeg"},
        "concepts": [{"id": "charlie", "value": 1}]}}]}).json()
    allowed = {".status.req_id: extra in sandbox": _OLD_ERA,
               ".inputs[].modified_at: extra in sandbox": "an Input proto field; " + _NOT_READ}
    if name == "legacy-post-inputs-with-concepts":
        allowed[".inputs[].data.concepts[].app_id: extra in sandbox"] = (
            "the two real answers differ: the old-docs one (olddocs-post-inputs-concepts) shows each "
            "label's app_id, this fixture does not; the tool reads neither")
    assert shapes.diffs(corpus.load(name).body, body) - allowed.keys() == set()


def _asserted_request(http: httpx.Client, key: str) -> httpx.Response:
    """The request behind each status Clarifai's own client tests assert (corpus.ASSERTED)."""
    if key == "duplicate-concept":
        http.post(f"{BASE}/concepts", json={"concepts": [{"id": "twice"}]})
        return http.post(f"{BASE}/concepts", json={"concepts": [{"id": "twice"}]})
    if key == "patch-missing-concept":
        return http.patch(f"{BASE}/concepts", json={"action": "overwrite",
                                                    "concepts": [{"id": "never-created", "name": "x"}]})
    return http.get(f"{BASE}/concepts", headers={"Authorization": "Key SOME_INVALID_KEY"})


@pytest.mark.parametrize("key", [
    "duplicate-concept",
    "patch-missing-concept",
    "invalid-key",
])
def test_sandbox_matches_statuses_asserted_by_clarifais_client_tests(key: str, tmp_path: Path) -> None:
    sandbox = Sandbox(str(tmp_path / "sb.sqlite"), training_delay_s=0)
    http = httpx.Client(base_url="http://sandbox.local", transport=httpx.WSGITransport(app=sandbox),
                        headers={"Authorization": f"Key {DEFAULT_KEY}"})
    assert http.post(f"/v2/users/{DEFAULT_USER}/apps", json={"apps": [{"id": APP}]}).status_code == 200
    status = _asserted_request(http, key).json()["status"]
    want = corpus.ASSERTED[key]
    assert (status["code"], status["description"]) == (want["code"], want["description"])
    assert want.get("details_contains", "") in status.get("details", "").lower()
