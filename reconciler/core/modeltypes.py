"""Model-type codecs: the one place that knows how a model's typed manifest fields map to the JSON a
Clarifai model VERSION carries (`output_info`, `input_info`), and back.

- `canonical_config(type, fields)`: manifest typed fields -> the canonical config dict stored in
  `state.Model.config` (defaults omitted, floats rounded to float32, enums by short name).
- `to_api(type, config)`: canonical config -> ``{"output_info": ..., "input_info": ...}`` for
  PostModels / PostModelVersions.
- `from_api(type, version)`: a model version's JSON (as the API returns it) -> canonical config.

- `config_matches(type, live, desired)` / `as_compared(type, live, desired)`: how a live version's
  config is compared with the manifest's (server-filled parts left out).

Round trip law (tested): ``from_api(t, to_api(t, c)) == c`` for every canonical `c`, also after the
server stored floats as float32. That law, and comparing through `as_compared` (what the server
adds on its own is not a difference), is what keeps plans free of perpetual diffs.

Typed types (see README, "Model types"):
- concept-thresholder: ``{"comparator": NAME, "thresholds": {concept_id: float}}``
- annotation-writer: ``{"annotation_status": NAME, "annotation_user_id": str?, "task_id": str?}``;
  a manifest's ``task: KEY`` (a task of the manifest) is kept as ``"task"`` until the planner puts
  the task's API id (or a reference to the task the plan creates) in `task_id`
  (`planning.plan.fill_implicit`); `to_api` never sends it
- concept-synonym-mapper: ``{"knowledge_graph_id": str?}``
- embedding-classifier: ``{"concepts": [ids, sorted], "base_embed_model": {user_id, app_id, id,
  version}?, "concepts_mutually_exclusive": bool?}``
- random-sample: ``{"keep_fraction": float}`` -- Clarifai's "Random Sample" operator passes an input
  on when ``keep_fraction > rand()``, each input on its own (Clarifai/docs
  docs/portal-guide/model/agent-system-operators/filter.md; the type id "random-sample" and the
  `keep_fraction` param are the page's, [unverified] against a live ListModelTypes)
- anything else: ``{"output_info": {...}}`` passed through (with `params` folded into it).
"""

from __future__ import annotations

import array
import copy
import math
import struct
from collections.abc import Sequence
from itertools import compress
from operator import eq, not_
from typing import Any

from reconciler.core.status_codes import BY_NAME

THRESHOLDER = "concept-thresholder"
WRITER = "annotation-writer"
MAPPER = "concept-synonym-mapper"
CLASSIFIER = "embedding-classifier"
RANDOM_SAMPLE = "random-sample"

#: Older docs call the thresholder "concept-threshold"; both read as the current name.
TYPE_ALIASES = {"concept-threshold": THRESHOLDER, "embed-classifier": CLASSIFIER}

#: Types whose versions are usable at once (no training).
OPERATOR_TYPES = frozenset({THRESHOLDER, WRITER, MAPPER, RANDOM_SAMPLE})
#: Types whose new versions train (queued -> training -> trained) before use: the Clarifai SDK's
#: `TRAINABLE_MODEL_TYPES` (Clarifai/clarifai-python `clarifai/constants/model.py`).
TRAINABLE_TYPES = frozenset(
    {
        CLASSIFIER,
        "visual-classifier",
        "visual-detector",
        "visual-segmenter",
        "visual-embedder",
        "clusterer",
        "text-classifier",
        "text-to-text",
    }
)

COMPARATORS = {
    "CONCEPT_THRESHOLD_NOT_SET": 0,
    "GREATER_THAN": 1,
    "GREATER_THAN_OR_EQUAL": 2,
    "LESS_THAN": 3,
    "LESS_THAN_OR_EQUAL": 4,
    "EQUAL": 5,
}
COMPARATOR_NAMES = {v: k for k, v in COMPARATORS.items()}

#: Annotation statuses by short name (the status code's name without "ANNOTATION_").
ANNOTATION_STATUSES = {
    name: BY_NAME["ANNOTATION_" + name]
    for name in (
        "SUCCESS",
        "PENDING",
        "FAILED",
        "UNKNOWN_STATUS",
        "INVALID_ARGUMENT",
        "PERMISSION_DENIED",
        "AWAITING_REVIEW",
        "REVIEW_DENIED",
        "AWAITING_CONSENSUS_REVIEW",
    )
}
ANNOTATION_STATUS_NAMES = {v: k for k, v in ANNOTATION_STATUSES.items()}

#: The typed manifest fields each type takes (anything else is raw passthrough).
TYPED_FIELDS: dict[str, tuple[str, ...]] = {
    THRESHOLDER: ("comparator", "thresholds"),
    WRITER: ("annotation_status", "annotation_user_id", "task_id", "task"),
    MAPPER: ("knowledge_graph_id",),
    CLASSIFIER: ("concepts", "base_embed_model", "concepts_mutually_exclusive"),
    RANDOM_SAMPLE: ("keep_fraction",),
}
RAW_FIELDS = ("output_info", "params")


def canonical_type(model_type_id: str) -> str:
    return TYPE_ALIASES.get(model_type_id, model_type_id)


_F32 = struct.Struct("<f")


def f32(x: float) -> float:
    """The float a float32 store gives back, written as the shortest decimal that round-trips
    through float32: 0.95 -> 0.95 (not 0.949999988...), so configs compare as the user wrote them.

    Recorded predictions pass millions of scores through here, so the common cases are short cuts
    with the same result as trying 1, 2, ... 9 digits (`tests/test_scores_f32.py` holds them equal). Why
    they are exact: in float32's normal range two different decimals of at most 6 significant
    digits are more than 1e-6 apart relative to their size, but every number rounding to the same
    float32 value v lies within one float32 step of v (2**-23 relative, ~1.2e-7). So at most one
    decimal of <= 6 digits rounds to v, and if one does, it is v rounded to 6 digits and it is the
    shortest answer."""
    if type(x) is float and 1e-4 <= x < 1.0 and len(repr(x)) <= 8:
        # "0." and at most 6 digits: x is the <= 6-digit decimal, and the only one, that gives its v
        return x
    v = _F32.unpack(_F32.pack(float(x)))[0]
    first = 1
    if 1e-37 < abs(v) < 1e37:  # float32's normal range, where the argument above holds
        s = float(f"{v:.6g}")
        if _F32.unpack(_F32.pack(s))[0] == v:
            return s
        first = 7  # no decimal of <= 6 digits gives v
    for digits in range(first, 10):
        s = float(f"{v:.{digits}g}")
        if _F32.unpack(_F32.pack(s))[0] == v:
            return s
    return v


_DIGITS = {k: f"{{:.{k}g}}".format for k in range(6, 10)}


def f32_all(values: Sequence[float]) -> list[float]:
    """`[f32(x) for x in values]`, computed a digit count at a time over the whole list with
    C-level maps (about a third faster on scores as the API prints them, 7 to 9 digits): the same
    steps as `f32` -- float32, then 6 digits (the only short cut: it is exact in float32's normal
    range), then 7, 8, 9 digits for the values not done yet; anything else goes through `f32`."""
    vals = list(values)
    try:
        plain = bool(vals) and all(map(math.isfinite, vals)) and max(map(abs, vals)) < 1e37
    except (TypeError, OverflowError):  # not floats: f32 says what is wrong
        plain = False
    if not plain:
        return [f32(x) for x in vals]
    v = array.array("f", vals).tolist()  # each value rounded to float32, as struct.pack("<f") does
    if not 1e-37 < min(map(abs, v)) <= max(map(abs, v)) < 1e37:  # zero, subnormal: no 6-digit short cut
        return [f32(x) for x in vals]
    out, at, todo = v[:], list(range(len(v))), v  # out: v itself if no digit count works, as f32
    for k in (6, 7, 8, 9):
        cand = list(map(float, map(_DIGITS[k], todo)))
        ok = list(map(eq, array.array("f", cand).tolist(), todo))
        for i, c in zip(compress(at, ok), compress(cand, ok), strict=True):
            out[i] = c
        if all(ok):
            break
        left = list(map(not_, ok))
        at, todo = list(compress(at, left)), list(compress(todo, left))
    return out


def comparator_name(value: Any) -> str:
    """GREATER_THAN, 1, "1" -> "GREATER_THAN". Raises ValueError for anything else."""
    if isinstance(value, str) and value.upper() in COMPARATORS:
        return value.upper()
    try:
        return COMPARATOR_NAMES[int(value)]
    except (TypeError, ValueError, KeyError):
        raise ValueError(f"unknown comparator {value!r}") from None


def annotation_status_name(value: Any) -> str:
    """SUCCESS, ANNOTATION_SUCCESS, 24150, "24150" -> "SUCCESS". Raises ValueError otherwise."""
    if isinstance(value, str):
        name = value.upper().removeprefix("ANNOTATION_")
        if name in ANNOTATION_STATUSES:
            return name
    if isinstance(value, dict) and "code" in value:  # a Status message
        return annotation_status_name(value["code"])
    try:
        return ANNOTATION_STATUS_NAMES[int(value)]
    except (TypeError, ValueError, KeyError):
        raise ValueError(f"unknown annotation status {value!r}") from None


def _ext_model(ref: dict[str, Any]) -> dict[str, str]:
    return {k: str(ref[k]) for k in ("user_id", "app_id", "id", "version") if ref.get(k)}


def _round_floats(obj: Any) -> Any:
    if isinstance(obj, float):
        return f32(obj)
    if isinstance(obj, dict):
        return {k: _round_floats(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_round_floats(v) for v in obj]
    return obj


def canonical_config(model_type: str, fields: dict[str, Any]) -> dict[str, Any]:
    """Typed manifest fields (already schema-valid) -> canonical config. Empty/default values are
    dropped so that "not set" and "set to the API default" compare equal."""
    t = canonical_type(model_type)
    cfg: dict[str, Any] = {}
    if t == THRESHOLDER:
        cfg["comparator"] = comparator_name(fields.get("comparator", "GREATER_THAN"))
        cfg["thresholds"] = {str(k): f32(v) for k, v in sorted((fields.get("thresholds") or {}).items())}
    elif t == WRITER:
        cfg["annotation_status"] = annotation_status_name(fields.get("annotation_status", "SUCCESS"))
        for k in ("annotation_user_id", "task_id", "task"):
            if fields.get(k):
                cfg[k] = str(fields[k])
    elif t == MAPPER:
        if fields.get("knowledge_graph_id"):
            cfg["knowledge_graph_id"] = str(fields["knowledge_graph_id"])
    elif t == RANDOM_SAMPLE:
        cfg["keep_fraction"] = f32(float(fields.get("keep_fraction", 0.0)))
    elif t == CLASSIFIER:
        cfg["concepts"] = sorted(str(c) for c in fields.get("concepts") or [])
        if fields.get("base_embed_model"):
            cfg["base_embed_model"] = _ext_model(fields["base_embed_model"])
        if fields.get("concepts_mutually_exclusive"):
            cfg["concepts_mutually_exclusive"] = True
    out = copy.deepcopy(fields.get("output_info") or {})
    if fields.get("params"):
        out.setdefault("params", {}).update(copy.deepcopy(fields["params"]))
    if out and t not in TYPED_FIELDS:
        cfg["output_info"] = _round_floats(out)
    return cfg


def as_compared(model_type: str, live: dict[str, Any], desired: dict[str, Any]) -> dict[str, Any]:
    """A live version's canonical config as it is compared with the manifest's `desired` one:
    what the server filled in on its own is left out, so it neither plans a new version (and a
    retraining) on every run nor shows up as a change.

    - Types without typed fields (`output_info` passed through): only the parts of the live
      `output_info` that the manifest states are compared, recursively through objects, as
      clarifai-python compares workflow configurations (`is_dict_in_dict` in
      clarifai/workflows/utils.py). The server fills in what was never sent: the docs' answer for
      a new model shows params {max_concepts: 20, min_value: 0, select_concepts: []}
      (Clarifai/docs code_output_examples/create_model.js), and OutputConfig's max_concepts and
      min_value are shown even when empty (cl_show_if_empty, clarifai-grpc resources.proto).
      Quirk server-filled-config. So a key the manifest drops stays as it is; to reset a value,
      state it.
    - embedding-classifier: its typed fields compare exactly, except `base_embed_model`: when the
      manifest names none, the server may pick one (quirk base-embed-model-filled), and when the
      manifest's names no version, the server may pin the latest; neither is a change.
    - other typed types: exactly as read."""
    t = canonical_type(model_type)
    if t == CLASSIFIER:
        want, have = desired.get("base_embed_model"), live.get("base_embed_model")
        if have is None or want == have:
            return live
        out = dict(live)
        if not want:
            out.pop("base_embed_model")
        elif not want.get("version") and {k: v for k, v in have.items() if k != "version"} == want:
            out["base_embed_model"] = want
        return out
    if t in TYPED_FIELDS or "output_info" not in live:
        return live
    out = dict(live)
    view = _within(live["output_info"], desired.get("output_info") or {})
    if view:
        out["output_info"] = view
    else:
        del out["output_info"]
    return out


def _within(live: Any, want: Any) -> Any:
    """`live` cut down to the keys `want` has, recursively through objects; other values whole."""
    if isinstance(live, dict) and isinstance(want, dict):
        return {k: _within(live[k], want[k]) for k in want if k in live}
    return live


def config_matches(model_type: str, live: dict[str, Any], desired: dict[str, Any]) -> bool:
    """Whether a live version with config `live` is the version the manifest's `desired` asks for
    (`as_compared`)."""
    return as_compared(model_type, live, desired) == desired


def training_concepts(model_type: str, config: dict[str, Any]) -> list[str]:
    """The concept ids a trainable model's version trains on (its inputs must be labelled with
    them): the typed `concepts`, else a raw `output_info.data.concepts`."""
    if canonical_type(model_type) == CLASSIFIER:
        return [str(c) for c in config.get("concepts", [])]
    concepts = ((config.get("output_info") or {}).get("data") or {}).get("concepts") or []
    return [str(c["id"]) for c in concepts if isinstance(c, dict) and c.get("id")]


def to_api(model_type: str, config: dict[str, Any]) -> dict[str, Any]:
    """Canonical config -> the version fields to send: ``{"output_info": ..., ["input_info": ...]}``."""
    t = canonical_type(model_type)
    if t == THRESHOLDER:
        return {
            "output_info": {
                "data": {"concepts": [{"id": cid, "value": v} for cid, v in config.get("thresholds", {}).items()]},
                "params": {"concept_threshold_type": config.get("comparator", "GREATER_THAN")},
            }
        }
    if t == WRITER:
        params: dict[str, Any] = {"annotation_status": ANNOTATION_STATUSES[config.get("annotation_status", "SUCCESS")]}
        for k in ("annotation_user_id", "task_id"):
            if config.get(k):
                params[k] = config[k]
        return {"output_info": {"params": params}}
    if t == MAPPER:
        return {"output_info": {"params": {"knowledge_graph_id": config.get("knowledge_graph_id", "")}}}
    if t == RANDOM_SAMPLE:
        return {"output_info": {"params": {"keep_fraction": config.get("keep_fraction", 0.0)}}}
    if t == CLASSIFIER:
        body: dict[str, Any] = {
            "output_info": {
                "data": {"concepts": [{"id": cid, "value": 1.0} for cid in config.get("concepts", [])]},
                "output_config": {"concepts_mutually_exclusive": bool(config.get("concepts_mutually_exclusive"))},
            }
        }
        ref = config.get("base_embed_model")
        if ref:
            m: dict[str, Any] = {"id": ref["id"], "user_id": ref.get("user_id", ""), "app_id": ref.get("app_id", "")}
            if ref.get("version"):
                m["model_version"] = {"id": ref["version"]}
            body["input_info"] = {"base_embed_model": m}
        return body
    return {"output_info": copy.deepcopy(config.get("output_info", {}))} if config.get("output_info") else {}


def shows_config(model_type: str, version: dict[str, Any]) -> bool:
    """Whether a version as listed carries what `from_api` reads for its type. A listing may show
    only a summary (no `output_info.data` / `params`); reading that as the configuration would
    take "unknown" for "empty" (live.list_versions then asks GetModelOutputInfo)."""
    oi = version.get("output_info")
    if not isinstance(oi, dict):
        return False
    has_data, has_params = oi.get("data") is not None, oi.get("params") is not None
    t = canonical_type(model_type)
    if t == THRESHOLDER:
        legacy = (oi.get("output_config") or {}).get("model_metadata") if isinstance(oi.get("output_config"), dict) else None
        return has_data and (has_params or legacy is not None)
    if t in (WRITER, MAPPER, RANDOM_SAMPLE):
        return has_params
    if t == CLASSIFIER:
        return has_data
    return has_data or has_params


def from_api(model_type: str, version: dict[str, Any]) -> dict[str, Any]:
    """A model version's JSON (or a model whose `output_info` is the version's) -> canonical config.
    Tolerates names or integers for enums, missing optional keys, and float32 noise."""
    t = canonical_type(model_type)
    oi = version.get("output_info") or {}
    params = oi.get("params") or {}
    concepts = ((oi.get("data") or {}).get("concepts")) or []
    if t == THRESHOLDER:
        legacy = (oi.get("output_config") or {}).get("model_metadata") or {}
        comp = params.get("concept_threshold_type", legacy.get("concept_threshold_type", "GREATER_THAN"))
        return canonical_config(
            t,
            {
                "comparator": comp,
                "thresholds": {c["id"]: float(c.get("value", 1.0)) for c in concepts if "id" in c},
            },
        )
    if t == WRITER:
        return canonical_config(
            t, {k: params.get(k) for k in ("annotation_status", "annotation_user_id", "task_id") if params.get(k) is not None}
        )
    if t == MAPPER:
        return canonical_config(t, {"knowledge_graph_id": params.get("knowledge_graph_id", "")})
    if t == RANDOM_SAMPLE:
        return canonical_config(t, {"keep_fraction": params.get("keep_fraction", 0.0)})
    if t == CLASSIFIER:
        base = ((version.get("input_info") or {}).get("base_embed_model")) or {}
        ref = (
            {
                "id": base.get("id"),
                "user_id": base.get("user_id"),
                "app_id": base.get("app_id"),
                "version": (base.get("model_version") or {}).get("id"),
            }
            if base.get("id")
            else None
        )
        return canonical_config(
            t,
            {
                "concepts": [c["id"] for c in concepts if "id" in c],
                "base_embed_model": ref,
                "concepts_mutually_exclusive": (oi.get("output_config") or {}).get("concepts_mutually_exclusive", False),
            },
        )
    raw = {k: v for k, v in oi.items() if k not in ("message", "fields_map", "params_specs") and v not in ({}, [], "", None)}
    return canonical_config(t, {"output_info": raw})
