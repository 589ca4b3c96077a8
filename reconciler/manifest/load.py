"""Manifest loading: YAML file -> the typed, normalised desired `State`, or every problem at once.

Pipeline (each stage adds `errors.Problem`s located at `file:line:col`; nothing stops at the first):
1. `yamlload.load_yaml`: bytes -> plain data with positions (safe, duplicate keys refused, limits);
2. JSON Schema 2020-12 (`manifest.schema.json`, packaged; `schemas/` holds the published copy):
   jsonschema's errors are rewritten into one-line messages (unknown field with a did-you-mean, typed
   field on the wrong model type, wrong type, missing field, bad id, threshold outside [0, 1]);
3. `manifestchecks.check`: semantic rules (duplicate ids, undeclared concepts, unknown models and
   node inputs, workflow cycles, default workflow) - written to tolerate schema-invalid data so one
   run reports both kinds;
4. only when no problem was found: the `State` (defaults filled in, model config canonicalised by
   `modeltypes.canonical_config`).

Between stages 1 and 2: overlays are merged (`manifestmerge`, only for `load_overlays`) and then
`${var.NAME}` / `${env.NAME}` references substituted (`manifestvars`); both keep every node's file
and line:col, so later problems point where the offending text was written.

Public: `load(path)`, `load_many(paths)`, `load_text(text, filename)`, `load_overlays(paths)`; each
takes `inputs=` (variable values, see `manifestvars.read_inputs`) and raises `ManifestError`
holding every problem. yaml and jsonschema are used only here and in the helper modules named above.
"""

from __future__ import annotations

import functools
import json
import math
import os
from collections.abc import Iterable, Iterator
from importlib import resources
from typing import TYPE_CHECKING, Any

from reconciler.core import idrules, modeltypes
from reconciler.core.errors import ManifestError, Problem
from reconciler.core.fileio import read_regular
from reconciler.core.state import (
    SECTION_KINDS,
    App,
    AutoAnnotation,
    Collaborator,
    Concept,
    ConceptRef,
    ConceptRelation,
    Dataset,
    Model,
    ModelRef,
    Node,
    State,
    Task,
    ThresholdRange,
    Workflow,
    with_owner,
)
from reconciler.manifest import checks as manifestchecks
from reconciler.manifest import overlays as manifestmerge
from reconciler.manifest import schemacheck
from reconciler.manifest import variables as manifestvars
from reconciler.manifest.checks import did_you_mean
from reconciler.manifest.variables import Inputs, read_inputs
from reconciler.manifest.yamlload import MAX_BYTES, Document, Path, load_yaml

if TYPE_CHECKING:
    import jsonschema

__all__ = [
    "load",
    "load_many",
    "load_text",
    "load_overlays",
    "read_inputs",
    "Inputs",
    "schema",
    "ID_PATTERN",
    "default_owner",
    "overlay_problems",
]


@functools.cache
def schema() -> dict[str, Any]:
    """The manifest JSON Schema, as shipped inside the package."""
    return json.loads(resources.files("reconciler").joinpath("manifest.schema.json").read_text("utf-8"))


#: The one id rule's syntax (`idrules` reads the same definition for the sandbox).
ID_PATTERN = idrules.CLARIFAI_ID.pattern
NODE_PATTERN = idrules.NODE_ID.pattern
TYPE_PATTERN = schema()["$defs"]["model"]["properties"]["type"]["pattern"]


@functools.cache
def _fast_check() -> schemacheck.Check:
    """The yes/no fast path (`schemacheck`): a valid manifest never pays for jsonschema."""
    return schemacheck.compile_schema(_inline(schema(), schema()["$defs"]))


@functools.cache
def _validator() -> jsonschema.protocols.Validator:
    # Imported here: a valid manifest never needs jsonschema (see `_fast_check`), only errors do.
    import jsonschema

    # Built once per process. The schema is validated with its local $refs inlined: resolving a
    # $ref per node was a third of the time on a 10,000-concept manifest (bench/validate_bench.py).
    return jsonschema.Draft202012Validator(_inline(schema(), schema()["$defs"]))


def _inline(node: Any, defs: dict[str, Any]) -> Any:
    """A copy of `node` with every "#/$defs/x" reference replaced by that definition (the schema
    has no recursive definitions); sibling keywords (descriptions) are kept."""
    if isinstance(node, list):
        return [_inline(v, defs) for v in node]
    if not isinstance(node, dict):
        return node
    out = {k: _inline(v, defs) for k, v in node.items() if k not in ("$ref", "$defs")}
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        out = {**_inline(defs[ref.removeprefix("#/$defs/")], defs), **out}
    elif ref is not None:
        out["$ref"] = ref
    return out


#: validators for the schema's `if` subschemas, keyed by id(): the schema dict lives for the process
_IF_VALIDATORS: dict[int, jsonschema.protocols.Validator] = {}


def _if_valid(cond: dict[str, Any], instance: Any) -> bool:
    v = _IF_VALIDATORS.get(id(cond))
    if v is None:
        import jsonschema

        v = _IF_VALIDATORS[id(cond)] = jsonschema.Draft202012Validator(cond)
    return v.is_valid(instance)


# --- public API --------------------------------------------------------------------------------


def load(path: str | os.PathLike[str], *, inputs: Inputs | None = None) -> State:
    """Load and validate one manifest file. Raises ManifestError with every problem found."""
    state, problems = _load_path(os.fspath(path), inputs)
    if problems or state is None:
        raise ManifestError(problems)
    return state


def load_many(paths: Iterable[str | os.PathLike[str]], *, inputs: Inputs | None = None) -> list[State]:
    """Load several independent manifests; raises one ManifestError holding the problems of every file."""
    states: list[State] = []
    problems: list[Problem] = []
    for p in paths:
        state, found = _load_path(os.fspath(p), inputs)
        problems += found
        if state is not None:
            states.append(state)
    if problems:
        raise ManifestError(problems)
    return states


def load_overlays(paths: Iterable[str | os.PathLike[str]], *, inputs: Inputs | None = None) -> State:
    """Load a base manifest and overlays (`-f base.yaml -f prod.yaml`), merged by resource id
    (`manifestmerge`), into one State. The base must not be an overlay and every later file must
    declare `overlay: true` (`overlay_problems`). Raises ManifestError with every problem of every
    file."""
    files = [os.fspath(p) for p in paths]
    if not files:
        raise ManifestError([Problem("<command line>", 1, 1, "no manifest given")])
    docs: list[Document] = []
    problems: list[Problem] = []
    for path in files:
        data, read_problems = _read(path)
        doc = load_yaml(data, path) if data is not None else Document(path, problems=read_problems)
        if doc.problems or not isinstance(doc.data, dict):
            problems += doc.problems
        docs.append(doc)
    if problems:
        raise ManifestError(_dedupe(problems))
    # files in the wrong place: an overlay first (then the order is wrong as a whole: that is
    # the one problem), else each later file that is not an overlay
    problems = overlay_problems(docs[0], base=True) or [
        p for doc in docs[1:] for p in overlay_problems(doc, base=False, base_file=files[0])
    ]
    if problems:
        raise ManifestError(_dedupe(problems))
    for doc in docs[1:]:
        doc.data.pop(OVERLAY_KEY)  # checked above: it marks the file, it is not part of the app
    merged = manifestmerge.merge(docs) if len(docs) > 1 else docs[0]
    if len(docs) == 1:
        manifestmerge.leftover_removes(merged)
    state, problems = _validate(merged, " + ".join(files), inputs, default_owner(files[0]))
    if problems or state is None:
        raise ManifestError(problems)
    return state


#: The top-level key that marks a file as an overlay (README "Environments", docs/gitops.md).
OVERLAY_KEY = "overlay"


def overlay_problems(doc: Document, *, base: bool, base_file: str | None = None) -> list[Problem]:
    """Where a file is used against what it declares: an overlay (`overlay: true`) given where a
    manifest is expected (`base`), or a later file (an overlay's place) that does not declare it."""
    declared = isinstance(doc.data, dict) and doc.data.get(OVERLAY_KEY) is True
    name = os.path.basename(doc.filename)
    if base and declared:
        return [
            doc.problem(
                (OVERLAY_KEY,),
                f"this file is an overlay (overlay: true), not a manifest: give it after its base, "
                f"e.g. -f manifest.yaml -f {name}",
                at_key=True,
            )
        ]
    if not base and not declared:
        first = os.path.basename(base_file) if base_file else "manifest.yaml"
        return [
            Problem(
                doc.filename,
                1,
                1,
                f"files after the first -f are overlays and must declare overlay: true at the top "
                f"(the manifest is the first file, here {first})",
            )
        ]
    return []


def default_owner(path: str) -> str:
    """The owner a manifest file gets when it names none (`State.owner`): its path from the root
    of the git repository it is in (found upward from its folder, as git finds `.git`), with "/"
    separators, so the same file owns the same resources from any checkout and any working
    directory; outside a repository, its file name."""
    full = os.path.abspath(path)
    folder = os.path.dirname(full)
    while True:
        if os.path.exists(os.path.join(folder, ".git")):
            return os.path.relpath(full, folder).replace(os.sep, "/")
        parent = os.path.dirname(folder)
        if parent == folder:
            return os.path.basename(full)
        folder = parent


def load_text(text: str, filename: str = "<manifest>", *, inputs: Inputs | None = None) -> State:
    """Load a manifest given as text (tests, stdin). Raises ManifestError like `load`."""
    state, problems = _load_bytes(text.encode("utf-8", "surrogatepass"), filename, inputs)
    if problems or state is None:
        raise ManifestError(problems)
    return state


# --- stages ------------------------------------------------------------------------------------


def _read(path: str) -> tuple[bytes | None, list[Problem]]:
    try:
        # never read a huge file whole: one byte over is enough; a FIFO or device is refused
        return read_regular(path, MAX_BYTES + 1), []
    except OSError as err:
        return None, [Problem(path, 1, 1, f"cannot read manifest: {err.strerror or err}")]


def _load_path(path: str, inputs: Inputs | None = None) -> tuple[State | None, list[Problem]]:
    data, problems = _read(path)
    if data is None:
        return None, problems
    return _load_bytes(data, path, inputs, default_owner(path))


def _load_bytes(
    data: bytes, filename: str, inputs: Inputs | None = None, owner: str | None = None
) -> tuple[State | None, list[Problem]]:
    doc = load_yaml(data, filename)
    if doc.problems or not isinstance(doc.data, dict):
        return None, _dedupe(doc.problems)
    refused = overlay_problems(doc, base=True)
    if refused:
        return None, refused
    manifestmerge.leftover_removes(doc)
    return _validate(doc, filename, inputs, owner)


def _validate(doc: Document, source: str, inputs: Inputs | None, owner: str | None = None) -> tuple[State | None, list[Problem]]:
    """The State of a (merged) document, or its problems. `owner`: the owner when the document
    names none (`default_owner` of the base file; None for text without a file)."""
    manifestvars.substitute(doc, inputs)
    _check_finite(doc, doc.data, ())  # a --var can bring in nan / inf / 1e400, which YAML never did
    if doc.problems:  # an unsubstituted reference would only add confusing schema errors
        return None, _dedupe(doc.problems)
    _retype_placeholders(doc)
    doc.problems += _schema_problems(doc)
    manifestchecks.check(doc)
    _drop_placeholder_problems(doc)
    if doc.problems:
        return None, _dedupe(doc.problems)
    return with_owner(_build_state(doc.data, source), doc.data.get("owner") or owner), []


def _retype_placeholders(doc: Document) -> None:
    """A placeholder (`manifestvars.placeholder`) standing where the schema wants a number or a
    boolean becomes one (0.5, 1, true): the rest of the manifest is then checked as usual."""
    if not doc.placeholders or _fast_check()(doc.data):
        return
    for err in _validator().iter_errors(doc.data):
        path = tuple(err.absolute_path)
        if err.validator != "type" or path not in doc.placeholders:
            continue
        wanted = err.validator_value if isinstance(err.validator_value, list) else [err.validator_value]
        value: Any = 0.5 if "number" in wanted else 1 if "integer" in wanted else True if "boolean" in wanted else None
        if value is None or not path:
            continue
        parent = doc.data
        for step in path[:-1]:
            parent = parent[step]
        parent[path[-1]] = value


def _drop_placeholder_problems(doc: Document) -> None:
    """Problems located exactly where a placeholder stands say nothing about the manifest."""
    if not doc.placeholders:
        return
    spots = {(doc.file_of(p), *doc.pos(p)) for p in doc.placeholders}
    doc.problems = [pr for pr in doc.problems if (pr.file, pr.line, pr.column) not in spots]


def _check_finite(doc: Document, value: Any, path: Path) -> None:
    """A problem for every NaN or infinity in the substituted manifest: the YAML loader refuses
    them as written, and variables get the same rule after substitution."""
    if isinstance(value, float) and not math.isfinite(value):
        doc.add(path, f"non-finite number {value!r} is not allowed (from a variable)")
    elif isinstance(value, dict):
        for k, v in value.items():
            if path or k != "variables":  # declarations were checked when the YAML was read
                _check_finite(doc, v, path + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _check_finite(doc, v, path + (i,))


def _dedupe(problems: list[Problem]) -> list[Problem]:
    return sorted(set(problems))


# --- schema errors -> problems -----------------------------------------------------------------

_TYPE_NAMES = {
    "object": "a mapping",
    "array": "a list",
    "string": "a string",
    "number": "a number",
    "integer": "an integer",
    "boolean": "true or false",
    "null": "null",
}


def _type_of(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "null"
    if isinstance(value, (int, float)):
        return "a number"
    return "a string"


def _label(path: Path) -> str:
    if not path:
        return "the manifest"
    last = path[-1]
    if len(path) > 1 and path[-2] == "thresholds":
        return f"the threshold of '{last}'"
    if isinstance(last, int):
        return f"item {last} of '{path[-2]}'" if len(path) > 1 else f"item {last}"
    return f"'{last}'"


def _schema_problems(doc: Document) -> list[Problem]:
    if _fast_check()(doc.data):
        return []
    errors = list(_validator().iter_errors(doc.data))
    # an id both too long and of the wrong characters is one problem: its characters
    bad_pattern = {tuple(e.absolute_path) for e in errors if e.validator == "pattern"}
    out: list[Problem] = []
    for err in errors:
        if err.validator == "maxLength" and tuple(err.absolute_path) in bad_pattern:
            continue
        out += _translate(doc, err)
    return out


def _allowed_fields(schema_node: dict[str, Any], instance: dict[str, Any]) -> set[str]:
    """Property names a mapping may carry under `schema_node`, following if/then/else on its own
    fields (that is how the schema restricts typed fields to a model type)."""
    names = set(schema_node.get("properties", {}))
    for sub in schema_node.get("allOf", []):
        cond = sub.get("if")
        if cond is None:
            names |= set(sub.get("properties", {}))
            continue
        branch = sub.get("then") if _if_valid(cond, instance) else sub.get("else")
        names |= set((branch or {}).get("properties", {}))
    return names


def _unknown_field(path: Path, key: str, allowed: set[str], instance: dict[str, Any]) -> str:
    if len(path) == 2 and path[0] == "models" and isinstance(instance.get("type"), str):
        mtype = modeltypes.canonical_type(instance["type"])
        owner = next((t for t, fs in modeltypes.TYPED_FIELDS.items() if key in fs), None)
        if owner and owner != mtype:
            return f"field '{key}' belongs to {owner} models; this model's type is {instance['type']}"
        if key in modeltypes.RAW_FIELDS and mtype in modeltypes.TYPED_FIELDS:
            fields = ", ".join(modeltypes.TYPED_FIELDS[mtype])
            return f"field '{key}' is not used by {mtype} models: set their typed fields ({fields}) instead"
    return f"unknown field '{key}'" + did_you_mean(key, allowed)


def _translate(doc: Document, err: jsonschema.ValidationError) -> Iterator[Problem]:
    path: Path = tuple(err.absolute_path)
    v, inst, want = err.validator, err.instance, err.validator_value
    if "propertyNames" in err.relative_schema_path and isinstance(inst, str):
        # jsonschema reports a bad key at its mapping; point at the key itself
        path = path + (inst,)
        if v == "maxLength":
            yield doc.problem(path, _length_message(inst, want, path), at_key=True)
            return
        yield doc.problem(path, _pattern_message(inst, err.schema.get("pattern", ""), path), at_key=True)
        return
    if v in ("additionalProperties", "unevaluatedProperties") and want is False and isinstance(inst, dict):
        allowed = _allowed_fields(err.schema, inst)
        for key in inst:
            if key not in allowed:
                yield doc.problem(path + (key,), _unknown_field(path, key, allowed, inst), at_key=True)
        return
    if v == "required" and isinstance(inst, dict):
        missing = [k for k in want if k not in inst]
        if set(want) in ({"id", "user_id", "app_id", "version"}, {"id", "user_id", "app_id"}):
            needs = ", ".join(want)
            for k in missing:
                yield doc.problem(path, f"incomplete external reference: missing '{k}' (it needs {needs})")
            return
        for k in missing:
            yield doc.problem(path, f"missing required field '{k}'")
        return
    if v == "type":
        expected = " or ".join(_TYPE_NAMES.get(t, t) for t in ([want] if isinstance(want, str) else want))
        yield doc.problem(path, f"{_label(path)} must be {expected}, not {_type_of(inst)}")
        return
    if v == "enum":
        opts = [o for o in want if not (isinstance(o, str) and o.startswith("ANNOTATION_") and o[11:] in want)]
        hint = did_you_mean(inst, [str(o) for o in opts]) if isinstance(inst, str) else ""
        yield doc.problem(path, f"{_label(path)} must be one of {', '.join(map(str, opts))}, not {inst!r}{hint}")
        return
    if v == "const":
        yield doc.problem(path, f"{_label(path)} must be {want!r}, not {inst!r}")
        return
    if v == "pattern":
        yield doc.problem(path, _pattern_message(inst, want, path))
        return
    if v == "maxLength":
        yield doc.problem(path, _length_message(inst, want, path))
        return
    if v in ("minimum", "maximum"):
        if len(path) >= 2 and path[-2] == "thresholds":
            yield doc.problem(path, f"threshold {inst} for concept '{path[-1]}' is outside [0, 1]")
        else:
            yield doc.problem(path, f"{_label(path)} must be {'>=' if v == 'minimum' else '<='} {want}, not {inst}")
        return
    if v == "minItems":
        yield doc.problem(path, f"{_label(path)} must not be empty")
        return
    if v in ("anyOf", "oneOf"):
        yield from _translate_alternatives(doc, err, path)
        return
    yield doc.problem(path, err.message)  # pragma: no cover - every keyword the schema uses is above


def _translate_alternatives(doc: Document, err: jsonschema.ValidationError, path: Path) -> Iterator[Problem]:
    """For `x: id-string | {external reference}`, explain the alternative whose type matches."""
    by_branch: dict[int, list[jsonschema.ValidationError]] = {}
    for sub in err.context or ():
        by_branch.setdefault(sub.relative_schema_path[0], []).append(sub)
    fitting = [errs for errs in by_branch.values() if not any(e.validator == "type" and not e.relative_path for e in errs)]
    if len(fitting) == 1:
        for sub in fitting[0]:
            yield from _translate(doc, sub)
        return
    what = str(err.schema.get("description", "one of the allowed forms")).rstrip(".")
    yield doc.problem(path, f"{_label(path)} must be {what[:1].lower() + what[1:]}; not {_type_of(err.instance)}")


def _id_kind(path: Path) -> str:
    """ "concept id" where the manifest names a concept (concepts, relations, thresholds, classifier
    concepts), else "id": concepts share the id rule, but the message should say what is wrong."""
    top = path[0] if path else None
    if (
        top in ("concepts", "concept_relations")
        or (len(path) >= 2 and path[-2] == "thresholds")
        or (top in ("models", "tasks") and len(path) >= 3 and path[2] == "concepts")
        or (top == "tasks" and len(path) >= 4 and path[2:4] == ("auto_annotation", "concepts"))
    ):
        return "concept id"
    return "id"


def _length_message(value: str, limit: int, path: Path) -> str:
    if _id_kind(path) == "concept id" and limit == idrules.CONCEPT_ID.max_length:
        shown = repr(value) if len(value) <= 128 else f"{value[:20]!r}..."
        return f"concept id {shown} is {len(value)} characters long; concept ids are at most {limit}"
    return f"{_label(path)} is {len(value)} characters long; the limit is {limit}"


def _pattern_message(value: Any, pattern: str, path: Path = ()) -> str:
    if pattern == ID_PATTERN:
        return f"invalid {_id_kind(path)} {value!r}: {idrules.ID_HINT}"
    if pattern == manifestvars.VAR_NAME:
        return f"invalid variable name {value!r}: letters, digits and '_', not starting with a digit"
    if pattern == TYPE_PATTERN:
        return f"invalid model type {value!r}: lowercase letters and digits separated by '-'"
    if path == ("owner",):
        return f"invalid owner {value!r}: one line of text, without control characters"
    if pattern == NODE_PATTERN:
        if value == "":
            return "a node id must not be empty"
        return f"invalid node id {value!r}: {idrules.NODE_HINT}"
    return f"{value!r} does not match {pattern}"  # pragma: no cover


# --- State -------------------------------------------------------------------------------------


def _build_state(data: dict[str, Any], filename: str) -> State:
    """Schema- and check-valid data -> State. Everything here may assume the shapes are right."""
    a = data["app"]
    app = App(
        id=a["id"],
        description=a.get("description", ""),
        default_workflow=a.get("default_workflow"),
        metadata=dict(a.get("metadata") or {}),
        reindex=a.get("reindex"),
    )
    concepts = tuple(
        Concept(id=c["id"], name=c.get("name") or c["id"], description=c.get("description", ""))
        for c in data.get("concepts") or ()
    )
    relations = tuple(
        ConceptRelation(
            subject=r["subject"],
            predicate=r["predicate"],
            object=_concept_ref(r["object"]),
            knowledge_graph_id=r.get("knowledge_graph_id", ""),
        )
        for r in data.get("concept_relations") or ()
    )
    models = tuple(_model(m) for m in data.get("models") or ())
    workflows = tuple(
        Workflow(
            id=w["id"],
            description=w.get("description", ""),
            metadata=dict(w.get("metadata") or {}),
            protect=bool(w.get("protect", False)),
            nodes=tuple(
                Node(
                    id=n["id"],
                    model=_model_ref(n["model"]),
                    inputs=tuple(n.get("inputs") or ()),
                    suppress_output=bool(n.get("suppress_output", False)),
                )
                for n in w["nodes"]
            ),
        )
        for w in data.get("workflows") or ()
    )
    return State(
        app=app,
        concepts=concepts,
        relations=relations,
        models=models,
        workflows=workflows,
        collaborators=tuple(
            Collaborator(user_id=c["id"], scopes=tuple(sorted(set(c["scopes"]))) if "scopes" in c else None)
            for c in data.get("collaborators") or ()
        ),
        datasets=tuple(_dataset(d) for d in data.get("datasets") or ()),
        tasks=tuple(_task(t) for t in data.get("tasks") or ()),
        sections=frozenset(kind for key, kind in SECTION_KINDS.items() if key in data),
        user_id=a.get("user_id"),
        source=filename,
    )


def dataset_version_spec(v: dict[str, Any]) -> dict[str, Any]:
    """A dataset version's definition in canonical form (`state.Dataset.version`)."""
    spec: dict[str, Any] = {"description": str(v.get("description") or "")}
    if v.get("metadata"):
        spec["metadata"] = dict(v["metadata"])
    return spec


def _dataset(d: dict[str, Any]) -> Dataset:
    return Dataset(
        id=d["id"],
        description=d.get("description", ""),
        metadata=dict(d.get("metadata") or {}),
        protect=bool(d.get("protect", False)),
        version=dataset_version_spec(d["version"]) if isinstance(d.get("version"), dict) else None,
    )


def _task(t: dict[str, Any]) -> Task:
    source = t.get("input_source") or {"type": "ALL_INPUTS"}
    review = t.get("review") or {"strategy": "NONE"}
    # unset and zero settings compare alike (proto3 JSON leaves zeros out)
    params: dict[str, Any] = {
        k: review[k] for k in ("approval_threshold_labelers", "approval_threshold_reviewers") if review.get(k)
    }
    if review.get("sample_percentage"):
        params["sample_percentage"] = modeltypes.f32(float(review["sample_percentage"]))
    partition = dict(t.get("partition") or {})
    if "weights" in partition:
        partition["weights"] = {u: modeltypes.f32(float(w)) for u, w in sorted(partition["weights"].items())}
    auto = _auto_annotation(t["auto_annotation"]) if isinstance(t.get("auto_annotation"), dict) else None
    # the concepts a task labels: those listed, then those its auto-annotation has ranges for
    concepts = tuple(dict.fromkeys([*(t.get("concepts") or ()), *(r.concept for r in (auto.ranges if auto else ()))]))
    return Task(
        id=t["id"],
        name=t.get("name") or t["id"],
        type=t.get("type", "CONCEPTS_CLASSIFICATION"),
        description=t.get("description", ""),
        concepts=concepts,
        input_source=source["type"],
        input_source_id=str(source.get("dataset") or source.get("id") or ""),
        worker_strategy=t.get("worker_strategy", "DYNAMIC"),
        workers=tuple(t.get("workers") or ()),
        partition=partition if t.get("worker_strategy") == "PARTITIONED" else {},
        review_strategy=review["strategy"],
        reviewers=tuple(review.get("reviewers") or ()),
        review_params=params,
        priority=t.get("priority", ""),
        sample_ms=int(t.get("sample_ms", 0)),
        metadata=dict(t.get("metadata") or {}),
        protect=bool(t.get("protect", False)),
        auto_annotation=auto,
    )


def _auto_annotation(a: dict[str, Any]) -> AutoAnnotation:
    ranges = []
    for concept, rules in a["concepts"].items():
        for r in rules:
            ranges.append(threshold_range(concept, r))
    return AutoAnnotation(
        model=_model_ref(a["model"]) if a.get("model") is not None else None,
        workflow=a.get("workflow"),
        ranges=tuple(ranges),
    )


def threshold_range(concept: str, r: dict[str, Any]) -> ThresholdRange:
    """One manifest range -> ThresholdRange: `lower` inclusive and 0 by default; `upper` 1 and
    inclusive when left out, exclusive when given (so ``[{lower: 0.9}, {lower: 0.6, upper: 0.9}]``
    splits the scores with no overlap); the `*_inclusive` flags say otherwise."""
    upper_given = "upper" in r
    return ThresholdRange(
        concept=concept,
        status=modeltypes.annotation_status_name(r["status"]),
        lower=modeltypes.f32(float(r.get("lower", 0.0))),
        upper=modeltypes.f32(float(r.get("upper", 1.0))),
        lower_inclusive=bool(r.get("lower_inclusive", True)),
        upper_inclusive=bool(r.get("upper_inclusive", not upper_given)),
    )


def _concept_ref(obj: str | dict[str, str]) -> ConceptRef:
    if isinstance(obj, str):
        return ConceptRef(obj)
    return ConceptRef(obj["id"], user_id=obj["user_id"], app_id=obj["app_id"])


def _model_ref(obj: str | dict[str, str]) -> ModelRef:
    if isinstance(obj, str):
        return ModelRef(obj)
    return ModelRef(obj["id"], user_id=obj["user_id"], app_id=obj["app_id"], version=obj["version"])


def _model(m: dict[str, Any]) -> Model:
    mtype = modeltypes.canonical_type(m["type"])
    names = modeltypes.TYPED_FIELDS.get(mtype, modeltypes.RAW_FIELDS)
    fields = {k: m[k] for k in names if k in m}
    return Model(
        id=m["id"],
        type=mtype,
        description=m.get("description", ""),
        metadata=dict(m.get("metadata") or {}),
        protect=bool(m.get("protect", False)),
        config=modeltypes.canonical_config(mtype, fields),
    )
