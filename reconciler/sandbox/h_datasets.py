"""Handlers for datasets, their versions and their inputs.

Datasets are a manifest resource kind (issue 22), and the app lease (`apply/lease.py`, issue 21)
rests on one, so one implementation answers both the way the real API is relied on to:
- PostDatasets adds every dataset of the request or none ("The process is atomic, i.e. either all
  or no datasets are added. If there is an error for one dataset, the process will stop, revert the
  transaction and return the error": clarifai-grpc `proto/clarifai/api/service.proto`, rpc
  PostDatasets; here one request is one SQLite transaction). Dataset ids are the client's (the id
  rule of every app resource). A dataset id the app has already is DATABASE_DUPLICATE_KEY (40010,
  "Object has a duplicate ID; another object with same ID already exist", Clarifai/docs
  status-code table), HTTP 409: the insert is refused by the store's
  UNIQUE(user_id, app_id, kind, parent, id) inside `BEGIN IMMEDIATE`, so two creates of one id --
  from threads of `sandbox serve` or from processes sharing the embedded sandbox's file -- never
  both succeed. Quirk `duplicate-invalid-request` answers 40003 / 400 instead, as concepts do.
- GetDataset / DeleteDatasets of an id the app does not have: CONN_DOES_NOT_EXIST (11101), HTTP 404
  (clarifai-grpc has no DATASET_DOES_NOT_EXIST; [UNVERIFIED] which code the real API uses, so the
  lease and the executors recognise "not found" by code or HTTP status, `apply/base._is_not_found`).
- PatchDatasets: `merge` (the default; metadata merged recursively as `wire.merge`, Clarifai/docs
  `docs/api-guide/advanced-topics/patching.md`), `overwrite` (the fields sent replace the stored
  ones; quirk `patch-overwrite-replaces` also resets the ones not sent) and `remove`, which only
  removes the dataset's image: "'remove' can only be used to remove the dataset image by setting
  'image.url' in the request to the current value returned for that dataset" (clarifai-grpc
  `proto/clarifai/api/service.proto`, message PatchDatasetsRequest).
- A dataset version ([UNVERIFIED] beyond the proto's messages) is a snapshot: made by
  PostDatasetVersions with the client's description and metadata and the server's id, it records
  the dataset's inputs at that moment and is READY (DATASET_VERSION_READY) at once; versions are
  never changed, only deleted (DeleteDatasetVersions).
- An input is in a dataset through PostInputs' `dataset_ids` or PostDatasetInputs;
  ListDatasetInputs lists them. Deleting a dataset deletes its versions and takes its id off its
  inputs.
"""

from __future__ import annotations

from typing import Any

from reconciler.sandbox.ctx import Ctx, public
from reconciler.sandbox.h_models import check_fields, clear_unsent
from reconciler.sandbox.quirks import PATCH_OVERWRITE_REPLACES
from reconciler.sandbox.wire import (
    CONN_DOES_NOT_EXIST,
    CONN_INVALID_REQUEST,
    DATABASE_DUPLICATE_KEY,
    INPUT_DOES_NOT_EXIST,
    Fail,
    action_of,
    check_id,
    get,
    merge,
    new_id,
    norm_visibility,
    objects,
    page_slice,
    paging,
    rfc3339,
    want,
)

DATASET_VERSION_READY = 64015
_TEXT_FIELDS = ("description", "notes")


def dataset_out(doc: dict[str, Any]) -> dict[str, Any]:
    return public(doc)


def _dataset(ctx: Ctx, dataset_id: str) -> dict[str, Any]:
    doc = ctx.tx.get(ctx.user_id, ctx.app_id, "dataset", dataset_id)
    if doc is None:
        raise Fail(CONN_DOES_NOT_EXIST, f"dataset {dataset_id!r} does not exist")
    return doc


def post_datasets(ctx: Ctx) -> dict[str, Any]:
    ctx.app(write=True)
    out = []
    for item in objects(ctx.body, "datasets"):
        check_fields(item, "Dataset", "dataset")
        dataset_id = check_id(item.get("id"), "dataset", CONN_INVALID_REQUEST)
        ts = rfc3339(ctx.now)
        doc: dict[str, Any] = {
            "id": dataset_id,
            "app_id": ctx.app_id,
            "user_id": ctx.user_id,
            "created_at": ts,
            "modified_at": ts,
            "metadata": want(item["metadata"], dict, "metadata") if item.get("metadata") is not None else {},
            "visibility": norm_visibility(item.get("visibility")) or {"gettable": 10},
        }
        for k in _TEXT_FIELDS:
            if item.get(k):
                doc[k] = get(item, k, str)
        if not ctx.tx.insert(ctx.user_id, ctx.app_id, "dataset", dataset_id, doc):
            raise Fail(DATABASE_DUPLICATE_KEY, f"dataset {dataset_id!r} already exists")
        out.append(dataset_out(doc))
    return {"datasets": out}


def get_dataset(ctx: Ctx) -> dict[str, Any]:
    ctx.app()
    return {"dataset": dataset_out(_dataset(ctx, ctx.params["dataset_id"]))}


def list_datasets(ctx: Ctx) -> dict[str, Any]:
    ctx.app()
    docs = ctx.tx.list(ctx.user_id, ctx.app_id, "dataset", page=paging(ctx.query))
    return {"datasets": [dataset_out(d) for d in docs]}


def patch_datasets(ctx: Ctx) -> dict[str, Any]:
    ctx.app(write=True)
    action = action_of(ctx.body, ("merge", "overwrite", "remove"), CONN_INVALID_REQUEST)
    out = []
    for item in objects(ctx.body, "datasets"):
        check_fields(item, "Dataset", "dataset")
        doc = _dataset(ctx, check_id(item.get("id"), "dataset", CONN_INVALID_REQUEST))
        if action == "remove":
            image = item.get("image")
            if isinstance(image, dict) and "url" in image and isinstance(doc.get("image"), dict):
                doc["image"].pop("url", None)
        else:
            if action == "overwrite" and PATCH_OVERWRITE_REPLACES in ctx.quirks:
                clear_unsent(doc, item, {"description": None, "notes": None, "metadata": {}})
            for k in _TEXT_FIELDS:
                if item.get(k) is not None:
                    doc[k] = get(item, k, str)
            if item.get("metadata") is not None:
                meta = want(item["metadata"], dict, "metadata")
                doc["metadata"] = merge(doc.get("metadata") or {}, meta) if action == "merge" else meta
        doc["modified_at"] = rfc3339(ctx.now)
        ctx.tx.update(ctx.user_id, ctx.app_id, "dataset", doc["id"], doc)
        out.append(dataset_out(doc))
    return {"datasets": out}


def delete_datasets(ctx: Ctx) -> dict[str, Any]:
    ctx.app(write=True)
    ids = [want(i, str, "dataset_ids[]") for i in get(ctx.body, "dataset_ids", list, [])]
    if not ids:
        raise Fail(CONN_INVALID_REQUEST, "dataset_ids is required")
    for dataset_id in ids:
        if not ctx.tx.delete(ctx.user_id, ctx.app_id, "dataset", dataset_id):
            raise Fail(CONN_DOES_NOT_EXIST, f"dataset {dataset_id!r} does not exist")
        ctx.tx.delete_children(ctx.user_id, ctx.app_id, "dataset_version", dataset_id)
        for inp in ctx.tx.list(ctx.user_id, ctx.app_id, "input"):
            if dataset_id in (inp.get("dataset_ids") or []):
                inp["dataset_ids"] = [d for d in inp["dataset_ids"] if d != dataset_id]
                ctx.tx.update(ctx.user_id, ctx.app_id, "input", inp["id"], inp)
    return {}


# --- versions ----------------------------------------------------------------------------------------


def post_dataset_versions(ctx: Ctx) -> dict[str, Any]:
    ctx.app(write=True)
    dataset = _dataset(ctx, ctx.params["dataset_id"])
    members = [i["id"] for i in ctx.tx.list(ctx.user_id, ctx.app_id, "input") if dataset["id"] in (i.get("dataset_ids") or [])]
    out = []
    for item in objects(ctx.body, "dataset_versions"):
        check_fields(item, "DatasetVersion", "dataset_version")
        ts = rfc3339(ctx.now)
        doc = {
            "id": new_id(),
            "dataset_id": dataset["id"],
            "app_id": ctx.app_id,
            "user_id": ctx.user_id,
            "description": get(item, "description", str, ""),
            "metadata": get(item, "metadata", dict, {}),
            "status": {"code": DATASET_VERSION_READY, "description": "Dataset version is ready to be used"},
            "created_at": ts,
            "modified_at": ts,
            "visibility": {"gettable": 10},
            "_input_ids": members,
        }
        ctx.tx.insert(ctx.user_id, ctx.app_id, "dataset_version", doc["id"], doc, dataset["id"])
        out.append(public(doc))
    return {"dataset_versions": out}


def list_dataset_versions(ctx: Ctx) -> dict[str, Any]:
    ctx.app()
    did = _dataset(ctx, ctx.params["dataset_id"])["id"]
    docs = ctx.tx.list(ctx.user_id, ctx.app_id, "dataset_version", did, page=paging(ctx.query))
    return {"dataset_versions": [public(d) for d in docs]}


def get_dataset_version(ctx: Ctx) -> dict[str, Any]:
    ctx.app()
    did = _dataset(ctx, ctx.params["dataset_id"])["id"]
    doc = ctx.tx.get(ctx.user_id, ctx.app_id, "dataset_version", ctx.params["dataset_version_id"], did)
    if doc is None:
        raise Fail(CONN_DOES_NOT_EXIST, f"dataset {did!r} has no version {ctx.params['dataset_version_id']!r}")
    return {"dataset_version": public(doc)}


def delete_dataset_versions(ctx: Ctx) -> dict[str, Any]:
    ctx.app(write=True)
    did = _dataset(ctx, ctx.params["dataset_id"])["id"]
    ids = [want(i, str, "dataset_version_ids[]") for i in get(ctx.body, "dataset_version_ids", list, [])]
    if not ids:
        raise Fail(CONN_INVALID_REQUEST, "dataset_version_ids is required")
    for vid in ids:
        if not ctx.tx.delete(ctx.user_id, ctx.app_id, "dataset_version", vid, did):
            raise Fail(CONN_DOES_NOT_EXIST, f"dataset {did!r} has no version {vid!r}")
    return {}


# --- inputs ------------------------------------------------------------------------------------------


def post_dataset_inputs(ctx: Ctx) -> dict[str, Any]:
    ctx.app(write=True)
    did = _dataset(ctx, ctx.params["dataset_id"])["id"]
    out = []
    for item in objects(ctx.body, "dataset_inputs"):
        iid = want(get(item, "input", dict, {}).get("id") or "", str, "dataset_inputs[].input.id")
        inp = ctx.tx.get(ctx.user_id, ctx.app_id, "input", iid)
        if inp is None:
            raise Fail(INPUT_DOES_NOT_EXIST, f"input {iid!r} does not exist")
        if did not in (inp.get("dataset_ids") or []):
            inp["dataset_ids"] = [*(inp.get("dataset_ids") or []), did]
            ctx.tx.update(ctx.user_id, ctx.app_id, "input", iid, inp)
        out.append({"input": inp})
    return {"dataset_inputs": out}


def list_dataset_inputs(ctx: Ctx) -> dict[str, Any]:
    ctx.app()
    did = _dataset(ctx, ctx.params["dataset_id"])["id"]
    members = [i for i in ctx.tx.list(ctx.user_id, ctx.app_id, "input") if did in (i.get("dataset_ids") or [])]
    page, per_page = paging(ctx.query)
    return {"dataset_inputs": [{"input": i} for i in page_slice(members, page, per_page)]}


def delete_dataset_inputs(ctx: Ctx) -> dict[str, Any]:
    ctx.app(write=True)
    did = _dataset(ctx, ctx.params["dataset_id"])["id"]
    for iid in [want(i, str, "input_ids[]") for i in get(ctx.body, "input_ids", list, [])]:
        inp = ctx.tx.get(ctx.user_id, ctx.app_id, "input", iid)
        if inp is not None and did in (inp.get("dataset_ids") or []):
            inp["dataset_ids"] = [d for d in inp["dataset_ids"] if d != did]
            ctx.tx.update(ctx.user_id, ctx.app_id, "input", iid, inp)
    return {}
