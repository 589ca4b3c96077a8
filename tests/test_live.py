"""The live reader against a MockTransport fake of the Clarifai REST API: normalisation, missing
apps, relation dedupe, default workflow, which versions are read, fingerprint."""

from __future__ import annotations

import copy
import re
import threading
from typing import Any

import httpx
import pytest

from reconciler.api.client import Client
from reconciler.api.live import fingerprint, read_live
from reconciler.core import modeltypes
from reconciler.core.errors import ApiError
from reconciler.core.state import MARKER_KEY, App, Concept, ConceptRef, ConceptRelation, ModelRef, Node, make_marker

PAT = "PAT-SECRET-xyz123"
U, A = "alice", "shop"
TS = "2024-09-04T00:28:26.852951Z"


def marker(protect: bool = False, keys: tuple[str, ...] = ()) -> dict[str, Any]:
    return make_marker(protect, keys)


def ok(**payload: Any) -> dict[str, Any]:
    return {"status": {"code": 10000, "description": "Ok", "req_id": "r"}, **payload}


def thresholder_version(vid: str, created: str, value: float, comparator: Any = 1) -> dict[str, Any]:
    return {"id": vid, "created_at": created, "status": {"code": 21100, "description": "Model is trained"},
            "app_id": A, "user_id": U, "visibility": {"gettable": 10}, "metadata": {},
            "output_info": {"data": {"concepts": [{"id": "people", "value": value, "app_id": A}]},
                            "params": {"concept_threshold_type": comparator}, "message": "Model output info"}}


def world() -> dict[str, Any]:
    """Responses as the real API shapes them: integers for enums, float32 noise, server fields."""
    return {
        "app": {"id": A, "user_id": U, "description": "", "created_at": TS, "modified_at": TS,
                "default_workflow_id": "auto", "visibility": {"gettable": 10},
                "metadata": {"team": "ml", MARKER_KEY: marker(keys=("team",))}},
        "concepts": [
            {"id": "people", "name": "people", "value": 1.0, "created_at": TS, "app_id": A, "user_id": U,
             "visibility": {"gettable": 10}},
            {"id": "man", "value": 1.0, "app_id": A, "definition": "an adult male"},
        ],
        "concept_relations": [
            {"id": "rel1", "predicate": "synonym", "knowledge_graph_id": "",
             "subject_concept": {"id": "people", "app_id": A}, "object_concept": {"id": "ai_l8TKp2h5", "app_id": "main"}},
            # the mirror view of rel1, seen from clarifai/main's side
            {"id": "rel1", "predicate": "synonym", "knowledge_graph_id": "",
             "subject_concept": {"id": "ai_l8TKp2h5", "app_id": "main"}, "object_concept": {"id": "people", "app_id": A}},
            {"id": "rel2", "predicate": "hyponym",
             "subject_concept": {"id": "man", "app_id": A}, "object_concept": {"id": "people", "app_id": A}},
            # rel2 again, from people's side, with the inverse predicate
            {"id": "rel2", "predicate": "hypernym",
             "subject_concept": {"id": "people", "app_id": A}, "object_concept": {"id": "man", "app_id": A}},
        ],
        "models": [
            {"id": "gt", "model_type_id": "concept-thresholder", "app_id": A, "user_id": U, "created_at": TS,
             "description": "greater than", "metadata": {MARKER_KEY: marker(protect=True)},
             # ListModels' output_info is a summary on the real API: must be ignored
             "output_info": {"message": "Show output_info with: GET /models/{model_id}/output_info"}},
            {"id": "writer", "model_type_id": "annotation-writer", "app_id": A,
             "metadata": {MARKER_KEY: marker()}},
            {"id": "hand-made", "model_type_id": "concept-synonym-mapper", "app_id": A, "metadata": {"x": 1}},
        ],
        "model_versions": {
            "gt": [thresholder_version("v1", "2024-01-01T00:00:00Z", 0.5),
                   thresholder_version("v2", "2024-02-01T00:00:00Z", 0.949999988079071, "GREATER_THAN")],
            "writer": [{"id": "w1", "created_at": TS, "status": {"code": 21100},
                        "output_info": {"params": {"annotation_status": 24151, "annotation_user_id": U}}}],
            "hand-made": [{"id": "h1", "created_at": TS, "status": {"code": 21100},
                           "output_info": {"params": {"knowledge_graph_id": ""}}}],
        },
        "workflows": [
            {"id": "auto", "app_id": A, "user_id": U, "created_at": TS, "metadata": {MARKER_KEY: marker()},
             "nodes": [
                 {"id": "general-concept", "model": {"id": "general-image-recognition", "user_id": "clarifai",
                                                     "app_id": "main", "model_version": {"id": "aa7f"}}},
                 {"id": "greater", "model": {"id": "gt", "user_id": U, "app_id": A, "model_version": {"id": "v1"}},
                  "node_inputs": [{"node_id": "general-concept"}]},
                 {"id": "write", "model": {"id": "writer", "model_version": {"id": "w1"}},
                  "node_inputs": [{"node_id": "greater"}], "suppress_output": True},
             ]},
            {"id": "other", "app_id": A, "nodes": []},
        ],
    }


class Fake:
    """Routes the reader's GETs to `world`; records every request path."""

    def __init__(self, w: dict[str, Any], *, get_app: Any = None, list_apps: Any = None) -> None:
        self.w, self.get_app, self.list_apps = w, get_app, list_apps
        self.paths: list[str] = []
        self.lock = threading.Lock()

    def __call__(self, req: httpx.Request) -> httpx.Response:
        with self.lock:
            self.paths.append(req.url.path)
        p = req.url.path
        base = f"/v2/users/{U}/apps/{A}"
        page, per = int(req.url.params.get("page", 1)), int(req.url.params.get("per_page", 128))

        def listing(key: str, items: list[Any]) -> httpx.Response:
            return httpx.Response(200, json=ok(**{key: items[(page - 1) * per: page * per]}))
        if p == f"/v2/users/{U}/apps":
            return self.list_apps or listing("apps", [{"id": "elsewhere"}])
        if p == base:
            return self.get_app or httpx.Response(200, json=ok(app=self.w["app"]))
        if not p.startswith(base):
            return httpx.Response(404, json={"status": {"code": 11101, "description": "Resource does not exist"}})
        rest = p[len(base):]
        if rest == "/concepts":
            return listing("concepts", self.w["concepts"])
        if rest == "/concepts/relations":
            return listing("concept_relations", self.w["concept_relations"])
        if rest == "/models":
            return listing("models", self.w["models"])
        if rest == "/workflows":
            return listing("workflows", self.w["workflows"])
        m = re.fullmatch(r"/models/([^/]+)/versions", rest)
        if m:
            # newest first, as the API lists them
            vs = list(reversed(self.w["model_versions"][m.group(1)]))
            return listing("model_versions", vs)
        return httpx.Response(404, json={"status": {"code": 11101}})


def client(fake: Fake) -> Client:
    return Client("http://api.test", PAT, user_id=U, transport=httpx.MockTransport(fake), rate_limit=0,
                  max_retries=0)


def test_reads_and_normalises_everything() -> None:
    fake = Fake(world())
    s = read_live(client(fake), A)
    assert s is not None and s.source == "live" and s.user_id == U
    assert s.app == App(id=A, description="", default_workflow="auto", metadata={"team": "ml"})
    assert s.concepts == (Concept("people", "people", ""), Concept("man", "man", "an adult male"))

    gt = s.model("gt")
    assert gt is not None and gt.type == "concept-thresholder" and gt.managed and gt.protect
    assert gt.config == {"comparator": "GREATER_THAN", "thresholds": {"people": 0.95}}
    assert gt.version_id == "v2" and [v.id for v in gt.versions] == ["v2", "v1"]
    assert gt.versions[1].config == modeltypes.canonical_config(
        "concept-thresholder", {"comparator": 1, "thresholds": {"people": 0.5}})
    assert gt.versions[0].status_code == 21100 and gt.versions[0].created_at == "2024-02-01T00:00:00Z"
    assert gt.metadata == {} and gt.description == "greater than"

    writer = s.model("writer")
    assert writer is not None and writer.config == {"annotation_status": "PENDING", "annotation_user_id": U}
    hand = s.model("hand-made")
    assert hand is not None and not hand.managed and hand.metadata == {}

    wf = s.workflow("auto")
    assert wf is not None and wf.managed and s.workflow("other").managed is False  # type: ignore[union-attr]
    assert wf.nodes == (
        Node("general-concept", ModelRef("general-image-recognition", "clarifai", "main", "aa7f")),
        Node("greater", ModelRef("gt", version="v1"), ("general-concept",)),
        Node("write", ModelRef("writer", version="w1"), ("greater",), suppress_output=True),
    )


def test_relations_read_back_once_as_created() -> None:
    s = read_live(client(Fake(world())), A)
    assert s is not None
    assert s.relations == (
        ConceptRelation("people", "synonym", ConceptRef("ai_l8TKp2h5", "clarifai", "main"), "", server_id="rel1"),
        ConceptRelation("man", "hyponym", ConceptRef("people"), "", server_id="rel2"),
    )
    assert [r.server_id for r in s.relations] == ["rel1", "rel2"]


def test_relation_mirror_with_its_own_id_is_still_deduped() -> None:
    w = world()
    w["concept_relations"][3]["id"] = "rel2-mirror"
    s = read_live(client(Fake(w)), A)
    assert s is not None and len(s.relations) == 2


def test_relations_in_different_knowledge_graphs_are_distinct() -> None:
    w = world()
    w["concept_relations"] = [
        {"id": "a", "predicate": "synonym", "knowledge_graph_id": "kg1",
         "subject_concept": {"id": "man"}, "object_concept": {"id": "people"}},
        {"id": "b", "predicate": "synonym", "knowledge_graph_id": "kg2",
         "subject_concept": {"id": "man"}, "object_concept": {"id": "people"}},
    ]
    s = read_live(client(Fake(w)), A)
    assert s is not None and [r.knowledge_graph_id for r in s.relations] == ["kg1", "kg2"]


def test_want_models_limits_version_reads_but_keeps_pinned_models() -> None:
    fake = Fake(world())
    s = read_live(client(fake), A, want_models={"writer"})
    assert s is not None
    reads = sorted(p.rsplit("/", 2)[-2] for p in fake.paths if p.endswith("/versions"))
    assert reads == ["gt", "writer"]  # gt: pinned by a workflow node; hand-made: not needed
    hand = s.model("hand-made")
    assert hand is not None and hand.config == {} and hand.versions == () and hand.version_id is None


def test_request_count_is_one_per_list_page_plus_versions() -> None:
    fake = Fake(world())
    read_live(client(fake), A)
    # GetApp + 4 listings (each a single short page) + 3 ListModelVersions
    assert len(fake.paths) == 8


@pytest.mark.parametrize("app_patch,expected", [
    ({"default_workflow_id": "", "default_workflow": {"id": "auto", "app_id": A, "user_id": U}}, "auto"),
    ({"default_workflow_id": "Empty", "default_workflow": {"id": "Empty", "app_id": "main", "user_id": "clarifai"}}, None),
    ({"default_workflow_id": "", "default_workflow": {"id": "other", "app_id": "main", "user_id": "clarifai"}}, None),
    ({"default_workflow_id": "General"}, None),  # a bare id that is no workflow of this app
    ({"default_workflow_id": ""}, None),
])
def test_default_workflow_forms(app_patch: dict[str, Any], expected: str | None) -> None:
    w = world()
    w["app"].update(app_patch)
    s = read_live(client(Fake(w)), A)
    assert s is not None and s.app.default_workflow == expected


def test_missing_app_conn_does_not_exist_is_none() -> None:
    fake = Fake(world(), get_app=httpx.Response(404, json={"status": {"code": 11101, "description": "Resource does not exist"}}))
    assert read_live(client(fake), A) is None


def test_missing_app_as_key_pair_error_is_none_when_the_key_works() -> None:
    bad_pair = httpx.Response(401, json={"status": {"code": 11008, "description": "Invalid API key/application pair"}})
    fake = Fake(world(), get_app=bad_pair)
    assert read_live(client(fake), A) is None
    assert f"/v2/users/{U}/apps" in fake.paths


def test_auth_failure_is_not_absence() -> None:
    bad_key = httpx.Response(401, json={"status": {"code": 11008, "description": "Invalid API key/application pair"}})
    fake = Fake(world(), get_app=bad_key, list_apps=bad_key)
    with pytest.raises(ApiError) as ei:
        read_live(client(fake), A)
    assert ei.value.code == 11008 and PAT not in str(ei.value)
    # the app is listed, yet GetApp is refused: a permission problem, not absence
    fake = Fake(world(), get_app=bad_key, list_apps=httpx.Response(200, json=ok(apps=[{"id": A}])))
    with pytest.raises(ApiError):
        read_live(client(fake), A)
    for code in (11009, 11007, 11002):
        fake = Fake(world(), get_app=httpx.Response(401, json={"status": {"code": code}}))
        with pytest.raises(ApiError):
            read_live(client(fake), A)


def test_html_404_is_an_error_not_absence() -> None:
    fake = Fake(world(), get_app=httpx.Response(404, text="<html>nginx</html>", headers={"content-type": "text/html"}))
    with pytest.raises(ApiError, match="non-JSON"):
        read_live(client(fake), A)


def test_wrong_shape_is_an_api_error() -> None:
    fake = Fake(world(), get_app=httpx.Response(200, json=ok(app=["x"])))
    with pytest.raises(ApiError, match="'app' is not a JSON object"):
        read_live(client(fake), A)


def test_fingerprint_is_order_independent_and_sees_bookkeeping() -> None:
    w = world()
    fp = fingerprint(read_live(client(Fake(w)), A))  # type: ignore[arg-type]
    w2 = copy.deepcopy(w)
    w2["concepts"].reverse()
    w2["models"].reverse()
    w2["workflows"].reverse()
    assert fingerprint(read_live(client(Fake(w2)), A)) == fp  # type: ignore[arg-type]
    w3 = copy.deepcopy(w)  # a new version with the same config: compares equal, fingerprint differs
    w3["model_versions"]["gt"].append(thresholder_version("v3", "2024-03-01T00:00:00Z", 0.95))
    s3 = read_live(client(Fake(w3)), A)
    s1 = read_live(client(Fake(w)), A)
    assert s3 == s1 and fingerprint(s3) != fp  # type: ignore[arg-type]
    w4 = copy.deepcopy(w)
    w4["concept_relations"][0]["id"] = "rel1-recreated"
    assert fingerprint(read_live(client(Fake(w4)), A)) != fp  # type: ignore[arg-type]
    assert len(fp) == 64


def test_paging_many_concepts() -> None:
    w = world()
    w["concepts"] = [{"id": f"c{i:04d}", "name": f"C {i}"} for i in range(2500)]
    fake = Fake(w)
    s = read_live(client(fake), A)
    assert s is not None and len(s.concepts) == 2500 and s.concepts[-1] == Concept("c2499", "C 2499")
    assert sum(p.endswith("/concepts") for p in fake.paths) == 3


# --- the read race (issue 21 item 7): the app appears or vanishes between two requests of a read ---


class Flapping(Fake):
    """The world, except that the first `flaps` ListModels answer "app does not exist" (the app
    was created after that listing was served and before GetApp was), and, with `vanish`, GetApp
    answers "does not exist" from the second read on (the app was deleted during the first)."""

    def __init__(self, w: dict[str, Any], *, flaps: int, vanish: bool = False) -> None:
        super().__init__(w)
        self.flaps, self.vanish, self.reads = flaps, vanish, 0

    def __call__(self, req: httpx.Request) -> httpx.Response:
        gone = httpx.Response(404, json={"status": {"code": 11101, "description": "Resource does not exist",
                                                    "details": "app does not exist"}})
        if req.url.path == f"/v2/users/{U}/apps/{A}":
            with self.lock:
                self.reads += 1
                if self.vanish and self.reads > 1:
                    return gone
        if req.url.path == f"/v2/users/{U}/apps/{A}/models":
            with self.lock:
                if self.flaps > 0:
                    self.flaps -= 1
                    self.paths.append(req.url.path)
                    return gone
        return super().__call__(req)


def test_an_app_created_during_the_read_is_read_again_once() -> None:
    fake = Flapping(world(), flaps=1)
    state = read_live(client(fake), A)
    assert state is not None and {m.id for m in state.models} == {"gt", "writer", "hand-made"}
    assert fake.reads == 2  # the whole read, once more
    assert state == read_live(client(Fake(world())), A)


def test_an_app_that_keeps_changing_is_one_line_naming_it() -> None:
    fake = Flapping(world(), flaps=2)
    with pytest.raises(ApiError) as ei:
        read_live(client(fake), A)
    text = str(ei.value)
    assert text.startswith(f"app {A} changed while being read (created or deleted by someone else during the read, twice: "
                           f"GetApp found it, then GET /v2/users/{U}/apps/{A}/models: ")
    assert text.endswith("run the command again") and "\n" not in text and ei.value.code == 11101
    assert fake.reads == 2


def test_an_app_deleted_during_the_read_reads_as_absent() -> None:
    fake = Flapping(world(), flaps=1, vanish=True)
    assert read_live(client(fake), A) is None
    assert fake.reads == 2


def test_a_model_deleted_during_the_read_is_read_again() -> None:
    w = world()

    class ModelGone(Fake):
        served = 0

        def __call__(self, req: httpx.Request) -> httpx.Response:
            if req.url.path.endswith("/models/writer/versions") and ModelGone.served == 0:
                ModelGone.served += 1
                return httpx.Response(404, json={"status": {"code": 21200, "description": "Model does not exist"}})
            return super().__call__(req)

    fake = ModelGone(w)
    state = read_live(client(fake), A)
    assert state is not None and state.model("writer") is not None and state.model("writer").version_id == "w1"
    assert fake.paths.count(f"/v2/users/{U}/apps/{A}") == 2
