"""Export: a live app -> manifest YAML that, planned against the same app, changes nothing.

Contract: `export_manifest(live, warn=...) -> dict` turns a live `State` (read with every model's
versions: `read_live(..., want_models=None)`) into manifest data; `dump_yaml(data, schema_ref)`
writes it as YAML with a schema modeline; `export_app(client, app_id, user_id=...)` does both and
returns ``(text, warnings)``. Pure apart from `export_app`'s reads; nothing is ever written to the API.

What is exported (README, "Environments"):
- every concept, relation, model and workflow of the app, marked as managed or not; references into
  other apps (clarifai/main's concepts and models) stay external references;
- models: the typed fields of the operator types and the embedding-classifier from the canonical
  config (`Model.config`), `output_info` passed through for any other type. The config exported is
  the one the app's workflows USE: the plan pins every node to a version whose config equals the
  manifest's, so exporting a newer, unused latest version would plan repoints. When nodes pin
  versions of one model with different configs, the config most nodes use is exported (ties: the
  newest) and a warning names the nodes the plan will repoint. A model no workflow uses exports
  its latest version;
- an annotation-writer's `annotation_user_id` is left out when it is the app owner (the manifest's
  implicit default), so the file stays valid for copies of the app owned by another user;
- metadata: the keys the live state compares (the user's own keys of a managed resource, as the
  marker lists them). An unmarked resource's metadata is not claimed: adopting it leaves its keys
  the user's own and untouched;
- collaborators, datasets (their newest version's definition) and the tasks the tool manages
  (`exportreview`); an annotation-writer writing into such a task names it by its manifest id;
- deterministic order: concepts, relations, models and workflows sorted by id; a workflow's nodes
  in data-flow order (inputs first, ties in the app's order);
- `owner:` when the managed models, workflows, datasets and tasks name one owner in their markers,
  so the exported file manages them as that manifest did (several owners: none, and a warning).

Unmarked resources plan as `adopt` (no field changes) against the app they came from: run `apply`
once to take ownership, after which the plan is empty.

What the live app holds is not always what a manifest can hold. `export_app` writes a file only if
`validate` and `plan` take it back exactly (`manifest_text`), else it refuses in one line naming the
resource and the field: metadata nested deeper than the manifest's 64 levels (checked before
writing, without recursion: 900 levels are refused, not a RecursionError), a lone surrogate (UTF-8
cannot hold it), a non-finite number; then the written text is read back by the manifest loader
and must give the same data and no problem. Characters YAML would fold (NEL U+0085, the line and
paragraph separators) are written escaped in double quotes (`yamldump`), so they read back as
themselves.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from reconciler.core import modeltypes
from reconciler.core.errors import ManifestError, ReconcilerError
from reconciler.core.state import ConceptRelation, Dataset, Model, State, Task, Workflow
from reconciler.planning import exportreview as review_side

if TYPE_CHECKING:
    from reconciler.api.client import Client
from reconciler.manifest.yamldump import dump_yaml

Warn = Callable[[str], None]


def export_manifest(live: State, warn: Warn = lambda _msg: None) -> dict[str, Any]:
    owner = live.user_id
    data: dict[str, Any] = {"version": 1}
    managed: list[Model | Workflow | Dataset | Task] = [
        *(r for kind in (live.models, live.workflows, live.datasets, live.tasks) for r in kind if r.managed)
    ]
    managers = sorted({r.owner for r in managed if r.owner})
    if len(managers) == 1:  # the export takes over from that manifest without a change to plan
        data["owner"] = managers[0]
    elif managers:
        warn(
            f"the app's resources are managed by {len(managers)} owners ({', '.join(managers)}): the export names none, "
            "so its plan shows which it would take over (set owner: in it)"
        )
    data["app"] = _app(live)
    if live.concepts:
        data["concepts"] = [_concept(c.id, c.name, c.description) for c in sorted(live.concepts, key=lambda c: c.id)]
    if live.relations:
        data["concept_relations"] = [_relation(r) for r in sorted(live.relations, key=lambda r: r.key)]
    if live.models:
        chosen = _chosen_configs(live, warn)
        tasks = {t.server_id: t.id for t in live.tasks if t.managed and t.server_id and "~" not in t.id}
        data["models"] = [
            _model(m, chosen.get(m.id, m.config), owner, warn, tasks) for m in sorted(live.models, key=lambda m: m.id)
        ]
    if live.workflows:
        data["workflows"] = [_workflow(w, warn) for w in sorted(live.workflows, key=lambda w: w.id)]
    review_side.add_sections(data, live, warn)
    return data


def _app(live: State) -> dict[str, Any]:
    a = live.app
    out: dict[str, Any] = {"id": a.id}
    if a.description:
        out["description"] = a.description
    if a.default_workflow:
        out["default_workflow"] = a.default_workflow
    if a.metadata:
        out["metadata"] = dict(a.metadata)
    return out


def _concept(cid: str, name: str, description: str) -> dict[str, Any]:
    out: dict[str, Any] = {"id": cid}
    if name and name != cid:
        out["name"] = name
    if description:
        out["description"] = description
    return out


def _relation(r: ConceptRelation) -> dict[str, Any]:
    obj: Any = r.object.id
    if r.object.external:
        obj = {"id": r.object.id, "user_id": r.object.user_id or "", "app_id": r.object.app_id}
    out: dict[str, Any] = {"subject": r.subject, "predicate": r.predicate, "object": obj}
    if r.knowledge_graph_id:
        out["knowledge_graph_id"] = r.knowledge_graph_id
    return out


def _chosen_configs(live: State, warn: Warn) -> dict[str, dict[str, Any]]:
    """Model id -> the config of the version the app's workflows pin (see the module docstring)."""
    uses: dict[str, list[tuple[str, str]]] = {}  # model id -> [(version id, "workflow/node")]
    for w in live.workflows:
        for n in w.nodes:
            if not n.model.external and n.model.version:
                uses.setdefault(n.model.id, []).append((n.model.version, f"{w.id}/{n.id}"))
    chosen: dict[str, dict[str, Any]] = {}
    for m in live.models:
        if m.id not in uses:
            continue
        versions = {v.id: (i, v) for i, v in enumerate(m.versions)}
        known = [(vid, where) for vid, where in uses[m.id] if vid in versions]
        if not known:
            continue
        key = lambda cfg: json.dumps(cfg, sort_keys=True)  # noqa: E731
        counts = Counter(key(versions[vid][1].config) for vid, _ in known)
        newest_rank: dict[str, int] = {}
        for vid, _ in known:
            k = key(versions[vid][1].config)
            newest_rank[k] = min(newest_rank.get(k, len(versions)), versions[vid][0])
        best = min(counts, key=lambda k: (-counts[k], newest_rank[k]))
        best_vid = next(vid for vid, _ in known if key(versions[vid][1].config) == best and versions[vid][0] == newest_rank[best])
        chosen[m.id] = dict(versions[best_vid][1].config)
        if len(counts) > 1:
            others = sorted({f"{where} (version {vid})" for vid, where in known if key(versions[vid][1].config) != best})
            warn(
                f"model {m.id}: workflow nodes pin versions with different configurations; exported "
                f"version {best_vid}'s, so a plan will repoint {', '.join(others)}"
            )
    return chosen


def _model(m: Model, config: dict[str, Any], owner: str | None, warn: Warn, tasks: dict[str, str]) -> dict[str, Any]:
    mtype = modeltypes.canonical_type(m.type)
    out: dict[str, Any] = {"id": m.id, "type": m.type}
    if m.description:
        out["description"] = m.description
    if m.metadata:
        out["metadata"] = dict(m.metadata)
    if m.protect:
        out["protect"] = True
    if not m.versions and not m.version_id:
        warn(f"model {m.id} has no version; a plan will create one from the exported defaults")
    if mtype in modeltypes.TYPED_FIELDS:
        # canonical config keys are the manifest's typed fields (modeltypes owns both); passing it
        # through canonical_config again fills the required defaults of a model with no version
        fields = modeltypes.canonical_config(mtype, config)
        if mtype == modeltypes.WRITER and fields.get("annotation_user_id") == owner:
            del fields["annotation_user_id"]  # the default: keeps the file valid for other owners
        if mtype == modeltypes.WRITER and fields.get("task_id") in tasks:
            fields["task"] = tasks[fields.pop("task_id")]  # a managed task: named by its manifest id
        out.update(fields)
    elif config.get("output_info"):
        out["output_info"] = config["output_info"]
    return out


def _workflow(w: Workflow, warn: Warn) -> dict[str, Any]:
    out: dict[str, Any] = {"id": w.id}
    if w.description:
        out["description"] = w.description
    if w.metadata:
        out["metadata"] = dict(w.metadata)
    if w.protect:
        out["protect"] = True
    nodes = []
    for n in _flow_order(w):
        node: dict[str, Any] = {"id": n.id}
        if n.model.external:
            ref = {"id": n.model.id, "user_id": n.model.user_id or "", "app_id": n.model.app_id or ""}
            if n.model.version:
                ref["version"] = n.model.version
            else:
                warn(f"workflow {w.id}: node {n.id} uses {n.model} without a pinned version; add one")
            node["model"] = ref
        else:
            node["model"] = n.model.id
        if n.inputs:
            node["inputs"] = list(n.inputs)
        if n.suppress_output:
            node["suppress_output"] = True
        nodes.append(node)
    out["nodes"] = nodes
    return out


def _flow_order(w: Workflow) -> list[Any]:
    """Nodes with every node after its inputs; among ready nodes the app's order is kept. Nodes in
    a cycle (which the API should never hold) keep their order at the end."""
    pending = list(w.nodes)
    ids = {n.id for n in w.nodes}
    done: set[str] = set()
    out = []
    while pending:
        ready = next((n for n in pending if all(i in done or i not in ids for i in n.inputs)), None)
        if ready is None:
            out += pending
            break
        pending.remove(ready)
        done.add(ready.id)
        out.append(ready)
    return out


def export_app(
    client: Client, app_id: str, *, user_id: str | None = None, schema_ref: str | None = None
) -> tuple[str, list[str]]:
    """Read the live app (all models' versions) and return (manifest YAML, warnings)."""
    from reconciler.api.live import read_live
    from reconciler.api.secrets import mask_data

    live = read_live(client, app_id, user_id=user_id, want_models=None, sections=None)
    if live is None:
        raise ReconcilerError(f"app {app_id} does not exist (user {user_id or client.user_id})")
    warnings: list[str] = []
    data = export_manifest(live, warnings.append)
    unmarked = [f"model/{m.id}" for m in live.models if not m.managed] + [
        f"workflow/{w.id}" for w in live.workflows if not w.managed
    ]
    header = (f"Exported from app {app_id} by `reconciler export`.",)
    if unmarked:
        warnings.append(
            f"{len(unmarked)} resource(s) are not marked as managed yet; `reconciler plan` shows "
            "them as adopt, and one `reconciler apply` takes ownership without changing them"
        )
    from reconciler.manifest.yamlload import MAX_DEPTH

    _check_values(data, MAX_DEPTH)  # before anything walks it recursively (mask_data): 900 levels are one line
    # a PAT in a value the API returned is masked in the data, so the YAML stays valid
    return manifest_text(mask_data(data), schema_ref, header), warnings


# --- what a manifest can hold ------------------------------------------------------------------

_SURROGATE = re.compile("[\ud800-\udfff]")
_KINDS = {"concepts": "concept", "models": "model", "workflows": "workflow"}


def manifest_text(data: dict[str, Any], schema_ref: str | None = None, header: tuple[str, ...] = ()) -> str:
    """`data` as manifest YAML that reads back exactly, or a ReconcilerError naming the resource
    and field that cannot be written (see the module docstring)."""
    from reconciler.manifest.load import load_text
    from reconciler.manifest.yamlload import MAX_DEPTH, load_yaml

    _check_values(data, MAX_DEPTH)
    text = dump_yaml(data, schema_ref, header)
    doc = load_yaml(text.encode("utf-8"), "export")
    if doc.problems:
        raise _cannot(data, _parse_pointer(doc.problems[0].path, data), f"it would not read back: {doc.problems[0].message}")
    differs = _first_difference(data, doc.data)
    if differs is not None:
        raise _cannot(data, differs, "YAML would not read it back as the app holds it")
    try:
        load_text(text, "export")
    except ManifestError as err:
        first = err.problems[0]
        raise _cannot(data, _parse_pointer(first.path, data), f"`validate` would refuse it: {first.message}") from None
    return text


def _check_values(data: Any, max_depth: int) -> None:
    """Depth, lone surrogates and non-finite numbers, walked without recursion."""
    stack: list[tuple[Any, tuple[Any, ...], int]] = [(data, (), 1)]
    while stack:
        value, path, depth = stack.pop()
        if isinstance(value, (dict, list)):
            if depth > max_depth:
                raise _cannot(data, path, f"it is nested deeper than the {max_depth} levels a manifest allows")
            items = value.items() if isinstance(value, dict) else enumerate(value)
            for k, v in items:
                if isinstance(k, str) and _SURROGATE.search(k):
                    raise _cannot(data, path + (k,), _surrogate(k) + " in a key")
                stack.append((v, path + (k,), depth + 1))
        elif isinstance(value, str) and _SURROGATE.search(value):
            raise _cannot(data, path, _surrogate(value))
        elif isinstance(value, float) and not math.isfinite(value):
            raise _cannot(data, path, f"it is {value}, which a manifest cannot hold")


def _surrogate(text: str) -> str:
    found = _SURROGATE.search(text)
    code = ord(found.group()) if found else 0
    return f"it holds a lone surrogate (U+{code:04X}), which a UTF-8 file cannot hold"


def _first_difference(a: Any, b: Any, path: tuple[Any, ...] = ()) -> tuple[Any, ...] | None:
    """The first path where `b` does not hold exactly `a` (a bool is not 1, a str not a number)."""
    if isinstance(a, dict) and isinstance(b, dict):
        for k in list(a) + [k for k in b if k not in a]:
            if k not in a or k not in b:
                return path + (k,)
            found = _first_difference(a[k], b[k], path + (k,))
            if found is not None:
                return found
        return None
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return path
        for i, (x, y) in enumerate(zip(a, b)):
            found = _first_difference(x, y, path + (i,))
            if found is not None:
                return found
        return None
    same_kind = (isinstance(a, bool), isinstance(a, str)) == (isinstance(b, bool), isinstance(b, str))
    return None if same_kind and a == b else path


def _parse_pointer(pointer: str, data: Any) -> tuple[Any, ...]:
    out: list[Any] = []
    node = data
    for raw in pointer.split("/")[1:] if pointer else []:
        part: Any = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(node, list) and part.isdigit():
            part = int(part)
        out.append(part)
        node = node[part] if isinstance(node, (dict, list)) and _has(node, part) else None
    return tuple(out)


def _has(node: dict[str, Any] | list[Any], part: Any) -> bool:
    return part in node if isinstance(node, dict) else isinstance(part, int) and part < len(node)


def _cannot(data: dict[str, Any], path: tuple[Any, ...], why: str) -> ReconcilerError:
    """One line: which resource and field cannot be exported, and why."""
    where, rest = "the app", path
    if path and path[0] == "app":
        where, rest = f"app/{data.get('app', {}).get('id', '')}", path[1:]
    elif len(path) >= 2 and path[0] in _KINDS and isinstance(path[1], int):
        item = data[path[0]][path[1]] if path[1] < len(data.get(path[0], [])) else {}
        where, rest = f"{_KINDS[path[0]]}/{item.get('id', path[1])}", path[2:]
    elif len(path) >= 2 and path[0] == "concept_relations":
        where, rest = f"concept relation #{path[1] + 1 if isinstance(path[1], int) else path[1]}", path[2:]
    shown = [json.dumps(p, ensure_ascii=True)[1:-1] if isinstance(p, str) else str(p) for p in rest]
    if len(shown) > 4:
        shown = shown[:3] + ["…"]
    field = ".".join(shown) or "(the resource)"
    return ReconcilerError(f"cannot export {where} {field}: {why}; change it in the app first")
