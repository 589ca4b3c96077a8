"""Handlers for datasets: PostDatasets, GetDataset, ListDatasets, PatchDatasets, DeleteDatasets.

The tool manages no datasets; the app lease (`apply/lease.py`) rests on one, so the sandbox
answers these the way the lease relies on the real API answering them:
- PostDatasets adds every dataset of the request or none ("The process is atomic, i.e. either all
  or no datasets are added. If there is an error for one dataset, the process will stop, revert the
  transaction and return the error": clarifai-grpc `proto/clarifai/api/service.proto`, rpc
  PostDatasets; here one request is one SQLite transaction). A dataset id the app has already is
  DATABASE_DUPLICATE_KEY (40010, "Object has a duplicate ID; another object with same ID already
  exist", Clarifai/docs status-code table), HTTP 409: the insert is refused by the store's
  UNIQUE(user_id, app_id, kind, parent, id) inside `BEGIN IMMEDIATE`, so two creates of one id --
  from threads of `sandbox serve` or from processes sharing the embedded sandbox's file -- never
  both succeed. Quirk `duplicate-invalid-request` answers 40003 / 400 instead, as concepts do.
- GetDataset / DeleteDatasets of an id the app does not have: CONN_DOES_NOT_EXIST (11101), HTTP 404
  (clarifai-grpc has no DATASET_DOES_NOT_EXIST; [UNVERIFIED] which code the real API uses, so the
  lease recognises "not found" by code or HTTP status, `apply/base._is_not_found`).
- PatchDatasets: `merge` (the default; metadata merged recursively as `wire.merge`, Clarifai/docs
  `docs/api-guide/advanced-topics/patching.md`), `overwrite` (the fields sent replace the stored
  ones) and `remove` (only `image.url`, per the proto comment on PatchDatasetsRequest.action).
"""

from __future__ import annotations

from typing import Any

from reconciler.sandbox.ctx import Ctx, public
from reconciler.sandbox.h_models import clear_unsent
from reconciler.sandbox.quirks import PATCH_OVERWRITE_REPLACES
from reconciler.sandbox.wire import (
    CONN_DOES_NOT_EXIST,
    CONN_INVALID_REQUEST,
    DATABASE_DUPLICATE_KEY,
    Fail,
    action_of,
    check_id,
    get,
    merge,
    norm_visibility,
    objects,
    paging,
    rfc3339,
    want,
)

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
    return {}
