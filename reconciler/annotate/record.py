"""`reconciler record`: recorded predictions (and reviewed labels) from a live app, for `simulate`
and `tune`.

Contract: `record(client, state, options, progress) -> str` (a one-line summary).

- Inputs: `--input-ids` (ListInputs with `ids`, fields.txt ListInputsRequest.ids), or the inputs of
  one dataset (`--dataset`: ListDatasetInputs, paged), else every input of the app (ListInputs,
  paged); `--limit N` keeps the first N. With `--dataset`, the labels file starts with the dataset
  and the version its labels belong to (`dataset_source`: the newest version with the manifest's
  definition, else the newest), which `tune` reports.
- Models: the nodes of the workflow (`--workflow`, default the app's default) whose model is not a
  workflow operator and whose output an operator (mapper, thresholder, writer) reads: the models
  whose concepts decide the annotations; an embedder feeding a classifier outputs no concepts and is
  not run. Each runs on the version the LIVE workflow pins (GetWorkflow), with PostModelOutputs
  (`.../models/{id}/versions/{version}/outputs`, clarifai-grpc route, Clarifai/docs
  `code_snippets/api-guide/model/curl/predict_with_model.sh`), in batches of at most 128 inputs (the
  documented predict limit, https://docs.clarifai.com/compute/inference/advanced), each input sent
  with its `id` and `data`.
  Another app's model (clarifai/main) is called under its owner's path.
- `--task ID`: a task that auto-annotates, instead of a workflow: its model and its reviews
  (`recordtask`).
- Output: one `predictions` line per (input, model) -- `{"input", "model", "concepts"}`, the model
  as `MODEL` for this app's models and `USER/APP/MODEL` for another app's, exactly what
  `predictions.parse` reads -- appended and flushed line by line, so an interrupted run keeps every
  line written. Re-running skips (input, model) pairs already in the file; a torn last line (an
  interrupted write) is dropped first. The file is checked whole before any request and before a
  byte of it changes (`check_predictions_file`): one that is not a predictions file (not UTF-8, a
  line that is neither a prediction nor the torn start of one, a FIFO or a device) is refused and
  left as it was. Rate limiting, retries and redaction are the client's.
- Labels (`--labels`): from ListAnnotations (`list_all_annotations=true`, paged), the SUCCESS
  annotations (24150) a person made -- no model version -- or reviewed -- written by one of the
  manifest's review writers (PENDING and similar statuses; any of their versions), whose status a
  reviewer turned to SUCCESS. The writing model version is `worker.model.model_version.id`, or the
  deprecated `model_version_id` (fields.txt: Annotation.model_version_id is DEPRECATED "Use
  worker.model.model_version.id instead"). Annotations written by SUCCESS writers, by the app's
  base workflow or any other model, and those whose worker is a workflow with no model named
  (which writer wrote them cannot be told), are not ground truth and are skipped: a label that
  might be the workflow's own answer would make precision look better than it is. A concept value
  > 0 reads as true, 0 as false (Concept.value: "presence (1.0) or not (0.0)", default 1.0 when
  absent -- clarifai-grpc resources.proto, `default_float=1.0` in fields.txt). A review writer's
  annotation a reviewer REJECTED (REVIEW_DENIED, 24158: PutTaskAssignments REVIEW_REJECT sets it in
  place, clarifai-grpc service.proto PutTaskAssignmentsRequestAction) is negative evidence: each of
  its concepts reads as false; a person's rejected labels are skipped (what is true instead is not
  known); approved ones are SUCCESS again (REVIEW_APPROVE). Several such
  annotations on one input: the most recently modified wins per concept. One line per labelled
  input; concepts of other apps are left out. The labels file is rewritten whole (temp file +
  rename), since reviews change over time; an existing file that is not a labels file is refused
  first, untouched.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from reconciler.annotate import labels as labels_mod
from reconciler.annotate import predictions as predictions_mod
from reconciler.annotate.operators import REVIEW_STATUSES
from reconciler.api.client import Client
from reconciler.api.transport import api_path
from reconciler.core.errors import ReconcilerError
from reconciler.core.fileio import open_append, read_regular, write_atomic
from reconciler.core.modeltypes import ANNOTATION_STATUSES, OPERATOR_TYPES, WRITER, canonical_type
from reconciler.core.state import State, Workflow
from reconciler.planning.graph import select_workflow

MAX_PREDICT_INPUTS = 128
_IDS_PER_LIST = 100  # ids per ListInputs call: keeps the query string short


@dataclass(frozen=True)
class RecordOptions:
    predictions: str
    labels: str | None = None
    workflow: str | None = None
    limit: int | None = None
    input_ids: tuple[str, ...] = ()
    batch_size: int = MAX_PREDICT_INPUTS
    dataset: str | None = None
    #: a task that auto-annotates: record its model and its reviews instead (`recordtask`)
    task: str | None = None

    def check(self) -> None:
        if self.limit is not None and self.limit < 1:
            raise ReconcilerError(f"--limit {self.limit}: must be at least 1")
        if not 1 <= self.batch_size <= MAX_PREDICT_INPUTS:
            raise ReconcilerError(f"--batch-size {self.batch_size}: must be 1..{MAX_PREDICT_INPUTS} (the API's predict limit)")
        if self.dataset and self.input_ids:
            raise ReconcilerError("give --dataset or --input-ids, not both")
        if self.task and self.workflow:
            raise ReconcilerError("give --task or --workflow, not both")


@dataclass(frozen=True)
class Target:
    node: str
    key: str  # the model as written in the predictions file
    path: str  # the PostModelOutputs path


def _recorded_nodes(state: State, wf: Workflow) -> list[str]:
    types: dict[str, str | None] = {}
    for n in wf.nodes:
        local = None if n.model.external else state.model(n.model.id)
        types[n.id] = None if n.model.external else (local.type if local is not None else "")
    operator = {nid for nid, t in types.items() if t and canonical_type(t) in OPERATOR_TYPES}
    read_by_operator = {i for n in wf.nodes if n.id in operator for i in n.inputs}
    return [n.id for n in wf.nodes if n.id not in operator and n.id in read_by_operator]


def _targets(client: Client, state: State, wf: Workflow) -> list[Target]:
    base = client.app_path(state.app.id, state.user_id)
    live = client.get(base + api_path("workflows", wf.id)).get("workflow") or {}
    pinned = {n.get("id"): ((n.get("model") or {}).get("model_version") or {}).get("id", "") for n in live.get("nodes") or []}
    out = []
    for nid in _recorded_nodes(state, wf):
        ref = next(n.model for n in wf.nodes if n.id == nid)
        version = pinned.get(nid) or ref.version or ""
        if not version:
            raise ReconcilerError(
                f"workflow {wf.id} in the live app has no node {nid!r} pinning a version of {ref.id}; apply the manifest first"
            )
        owner = client.app_path(ref.app_id or "", ref.user_id) if ref.external else base
        key = f"{ref.user_id}/{ref.app_id}/{ref.id}" if ref.external else ref.id
        out.append(Target(nid, key, f"{owner}/models/{ref.id}/versions/{version}/outputs"))
    if not out:
        raise ReconcilerError(f"workflow {wf.id} has no model whose concepts its operators read: nothing to record")
    return out


def _task_targets(client: Client, state: State, task_id: str) -> list[Target]:
    """The model a task's auto-annotation runs (`recordtask`); a workflow worker: its models."""
    from reconciler.annotate.recordtask import live_task, worker_target
    from reconciler.annotate.taskflow import find_task

    task = find_task(state, task_id)
    auto = task.auto_annotation
    if auto is not None and auto.workflow:
        return _targets(client, state, select_workflow(state, auto.workflow))
    key, path = worker_target(client, state, task, live_task(client, state, task_id))
    return [Target("worker", key, path)]


def _inputs(client: Client, base: str, opts: RecordOptions) -> list[dict[str, Any]]:
    if opts.input_ids:
        wanted = list(dict.fromkeys(opts.input_ids))
        got: dict[str, dict[str, Any]] = {}
        for i in range(0, len(wanted), _IDS_PER_LIST):
            for inp in client.list_all(f"{base}/inputs", "inputs", {"ids": wanted[i : i + _IDS_PER_LIST]}):
                got[inp.get("id", "")] = inp
        missing = [i for i in wanted if i not in got]
        if missing:
            raise ReconcilerError(
                f"input {missing[0]!r} is not in the app" + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else "")
            )
        items = [got[i] for i in wanted]
    elif opts.dataset:
        path = base + api_path("datasets", opts.dataset, "inputs")
        items = [d["input"] for d in client.list_all(path, "dataset_inputs") if isinstance(d.get("input"), dict)]
    else:
        items = client.list_all(f"{base}/inputs", "inputs")
    return items[: opts.limit] if opts.limit else items


def dataset_source(client: Client, state: State, dataset_id: str) -> dict[str, str]:
    """The dataset `record --dataset` reads and the version its labels belong to: the newest
    version with the manifest's definition (`datasets[].version`), else the newest one; "" when the
    dataset has no version. The dataset must exist (else one error line)."""
    from reconciler.api.codecs import DatasetCodec
    from reconciler.api.live import timestamp_key
    from reconciler.api.livereview import list_dataset_versions

    base = client.app_path(state.app.id, state.user_id)
    try:
        versions = list_dataset_versions(client, base, dataset_id)
    except ReconcilerError as err:
        raise ReconcilerError(f"--dataset {dataset_id}: not a dataset of app {state.app.id} ({err})") from None
    versions = sorted(versions, key=lambda v: timestamp_key(v.get("created_at")), reverse=True)
    declared = state.dataset(dataset_id)
    want = declared.version if declared is not None else None
    pinned = [v for v in versions if want is not None and DatasetCodec.version_spec(v) == want]
    chosen = (pinned or versions or [{}])[0]
    return {"dataset": dataset_id, "dataset_version": str(chosen.get("id") or "")}


@dataclass(frozen=True)
class Existing:
    """What `--predictions` already holds, checked whole before a byte of it is changed."""

    done: frozenset[tuple[str, str]] = frozenset()  #: (input, model) pairs recorded
    cut: int | None = None  #: the length to cut the file to first: a torn last line is dropped
    newline: bool = False  #: the last line is whole but has no newline yet


#: A line this module writes starts so (json.dumps of {"input": ..., "model": ..., "concepts": ...}).
_LINE_START = '{"input": '


def _torn(last: str) -> bool:
    """`last` (a last line with no newline) is the start of a line this module writes, cut short."""
    if not (_LINE_START.startswith(last) or last.startswith(_LINE_START)):
        return False
    try:
        json.loads(last)
    except ValueError:
        return True
    return False  # whole JSON: not torn, just wrong


def _left_as_is(path: str, why: str) -> ReconcilerError:
    return ReconcilerError(f"{why}; not a predictions file, so {path} was left as it was")


def check_predictions_file(path: str) -> Existing:
    """The predictions file at `path` as it is (see `Existing`). Anything that is not a predictions
    file -- not UTF-8, a bad line, a FIFO or device -- is refused, the file untouched: only a torn
    last line (the start of a line this module writes, cut by an interrupted write) is dropped."""
    try:
        data = read_regular(path)  # a FIFO is refused, never waited on
    except FileNotFoundError:
        return Existing()
    except OSError as err:
        raise ReconcilerError(f"cannot read {path}: {err.strerror or err}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise _left_as_is(path, f"{path}: not UTF-8 text") from None
    complete, _sep, last = text.rpartition("\n")
    complete += _sep
    try:
        existing = predictions_mod.parse(text, path)
        return Existing(frozenset((p.input, p.model) for p in existing.lines), newline=bool(last))
    except predictions_mod.PredictionsError as err:
        if not (err.line == text.count("\n") + 1 and _torn(last)):
            raise _left_as_is(path, str(err)) from None
    try:
        existing = predictions_mod.parse(complete, path)
    except predictions_mod.PredictionsError as err:
        raise _left_as_is(path, str(err)) from None
    return Existing(frozenset((p.input, p.model) for p in existing.lines), cut=len(complete.encode("utf-8")))


def check_labels_file(path: str) -> None:
    """`--labels OUT` is rewritten whole: an existing file must be a labels file (or empty)."""
    try:
        text = read_regular(path).decode("utf-8")
    except FileNotFoundError:
        return
    except OSError as err:
        raise ReconcilerError(f"cannot read {path}: {err.strerror or err}") from None
    except UnicodeDecodeError:
        raise ReconcilerError(f"{path}: not UTF-8 text; not a labels file, so it was left as it was") from None
    try:
        labels_mod.parse(text, path)
    except labels_mod.LabelsError as err:
        raise ReconcilerError(f"{err}; not a labels file, so {path} was left as it was") from None


def _chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _concepts_of(output: dict[str, Any]) -> dict[str, float]:
    out: dict[str, float] = {}
    for c in (output.get("data") or {}).get("concepts") or []:
        cid, v = c.get("id"), c.get("value", 0.0)
        if isinstance(cid, str) and cid and isinstance(v, (int, float)) and not isinstance(v, bool):
            out[cid] = min(1.0, max(0.0, float(v)))
    return out


def record_predictions(
    client: Client,
    targets: list[Target],
    inputs: list[dict[str, Any]],
    out_path: str,
    batch_size: int,
    progress: Callable[[str], None],
    existing: Existing | None = None,
) -> tuple[int, int]:
    """(lines written, pairs skipped as already recorded)."""
    if existing is None:
        existing = check_predictions_file(out_path)
    done = existing.done
    written = skipped = 0
    try:
        fh = open_append(out_path)
        if existing.cut is not None:
            os.ftruncate(fh.fileno(), existing.cut)  # the torn last line only: checked above
        elif existing.newline:
            fh.write(b"\n")
    except OSError as err:
        raise ReconcilerError(f"cannot write {out_path}: {err.strerror or err}") from None
    with fh:
        for t in targets:
            todo = [i for i in inputs if (i.get("id", ""), t.key) not in done]
            skipped += len(inputs) - len(todo)
            n = 0
            for batch in _chunks(todo, batch_size):
                body = {"inputs": [{"id": i["id"], "data": i.get("data") or {}} for i in batch]}
                outputs = client.post(t.path, body).get("outputs") or []
                if len(outputs) != len(batch):
                    raise ReconcilerError(f"PostModelOutputs for {t.key} returned {len(outputs)} outputs for {len(batch)} inputs")
                for inp, output in zip(batch, outputs):
                    iid = ((output.get("input") or {}).get("id")) or inp["id"]
                    line = {"input": iid, "model": t.key, "concepts": _concepts_of(output)}
                    if client.holds_pat(line):  # an id the server made of the PAT: never written
                        progress(f"record: {t.key}: left out an output whose input or concept id holds the PAT")
                        continue
                    fh.write((json.dumps(line) + "\n").encode("utf-8"))
                    fh.flush()  # an interrupted run keeps every line written
                    written += 1
                n += len(batch)
                progress(f"record: {t.key}: {n}/{len(todo)} input(s) predicted")
    return written, skipped


def _writer_versions(client: Client, state: State, base: str, statuses: set[str]) -> set[str]:
    out: set[str] = set()
    for m in state.models:
        if canonical_type(m.type) == WRITER and str(m.config.get("annotation_status", "SUCCESS")) in statuses:
            try:
                versions = client.list_all(base + api_path("models", m.id, "versions"), "model_versions")
            except ReconcilerError:
                continue  # not in the live app: it wrote nothing
            out |= {v.get("id", "") for v in versions}
    return out - {""}


def writer_version(annotation: dict[str, Any]) -> str | None:
    """The model version that wrote an annotation: "" for a person, None for a workflow that names
    no model (the writer is unknown)."""
    worker = annotation.get("worker") or {}
    model = worker.get("model") or {}
    mv = annotation.get("model_version_id") or (model.get("model_version") or {}).get("id") or ""
    if mv:
        return str(mv)
    if model or worker.get("workflow"):
        return None
    return ""


def record_labels(
    client: Client, state: State, inputs: list[dict[str, Any]], out_path: str, source: dict[str, str] | None = None
) -> int:
    """Write the labels file (module docstring); `source` (where the inputs came from: a dataset and
    its version) goes first, for `tune` to report."""
    base = client.app_path(state.app.id, state.user_id)
    reviewed = _writer_versions(client, state, base, set(REVIEW_STATUSES))
    concepts = {c.id for c in state.concepts}
    wanted = {i.get("id", "") for i in inputs}
    anns = client.list_all(f"{base}/annotations", "annotations", {"list_all_annotations": "true"})
    by_input: dict[str, dict[str, tuple[str, bool]]] = {}
    for a in anns:
        code = (a.get("status") or {}).get("code")
        if code not in (ANNOTATION_STATUSES["SUCCESS"], ANNOTATION_STATUSES["REVIEW_DENIED"]):
            continue
        mv = writer_version(a)
        if mv is None or (mv and mv not in reviewed):
            continue  # written by a model (a SUCCESS writer, the base workflow): not ground truth
        denied = code == ANNOTATION_STATUSES["REVIEW_DENIED"]
        if denied and not mv:
            continue  # a person's labels a reviewer turned down: what is true instead is unknown
        iid = a.get("input_id", "")
        if iid not in wanted:
            continue
        when = str(a.get("modified_at") or a.get("created_at") or "")
        slot = by_input.setdefault(iid, {})
        for c in (a.get("data") or {}).get("concepts") or []:
            cid = c.get("id")
            if cid not in concepts:
                continue
            if cid not in slot or slot[cid][0] <= when:
                # a rejected prediction: the concept is not there (negative evidence); an approved one
                # or a person's label: its value (Concept.value defaults to 1.0 when absent,
                # fields.txt: default_float=1.0)
                slot[cid] = (when, False if denied else float(c.get("value", 1.0) or 0.0) > 0)
    lines = [labels_mod.dumps_source(source)] if source else []
    lines += [
        labels_mod.dumps_line(i.get("id", ""), {c: v for c, (_w, v) in sorted(by_input[i["id"]].items())})
        for i in inputs
        if by_input.get(i.get("id", "")) and not client.holds_pat(i.get("id", ""))  # never write the PAT
    ]
    try:
        write_atomic(out_path, "".join(line + "\n" for line in lines))
    except OSError as err:
        raise ReconcilerError(f"cannot write {out_path}: {err.strerror or err}") from None
    return len(lines) - (1 if source else 0)


def record(client: Client, state: State, opts: RecordOptions, progress: Callable[[str], None] = lambda _m: None) -> str:
    opts.check()
    existing = check_predictions_file(opts.predictions)  # before any request, and before changing it
    if opts.labels:
        check_labels_file(opts.labels)
    wf = None if opts.task else select_workflow(state, opts.workflow)
    base = client.app_path(state.app.id, state.user_id)
    targets = _targets(client, state, wf) if wf is not None else _task_targets(client, state, opts.task or "")
    source = dataset_source(client, state, opts.dataset) if opts.dataset else None
    inputs = _inputs(client, base, opts)
    where = f" of dataset {opts.dataset}" if opts.dataset else ""
    progress(f"record: {len(inputs)} input(s){where}, model(s): {', '.join(t.key for t in targets)}")
    written, skipped = record_predictions(client, targets, inputs, opts.predictions, opts.batch_size, progress, existing)
    summary = f"Recorded {written} prediction(s) to {opts.predictions}" + (f" ({skipped} already there)" if skipped else "")
    if opts.labels and opts.task:
        from reconciler.annotate.recordtask import record_task_labels

        n = record_task_labels(client, state, opts.task, inputs, opts.labels, source)
        summary += f"; labels for {n} input(s) to {opts.labels}"
    elif opts.labels:
        n = record_labels(client, state, inputs, opts.labels, source)
        summary += f"; labels for {n} input(s) to {opts.labels}"
    if source:
        summary += f"; dataset {source['dataset']} version {source['dataset_version'] or '(none)'}"
    return summary + "."
