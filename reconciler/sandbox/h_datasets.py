"""Handlers for datasets, their versions and their inputs.

Semantics ([unverified] where clarifai-grpc's proto does not say): dataset ids are the client's
(the id rule of every app resource); a taken id is DATABASE_DUPLICATE_KEY. PatchDatasets takes
merge (default), overwrite and remove, as the other patches. A dataset version is a snapshot: made
by PostDatasetVersions with the client's description and metadata and the server's id, it records
the dataset's inputs at that moment and is READY (DATASET_VERSION_READY) at once; versions are never
changed, only deleted (DeleteDatasetVersions). An input is in a dataset through PostInputs'
`dataset_ids` or PostDatasetInputs; ListDatasetInputs lists them. Deleting a dataset deletes its
versions and takes its id off its inputs.
"""

from __future__ import annotations

from typing import Any

from reconciler.sandbox.ctx import Ctx, public
from reconciler.sandbox.h_models import check_fields
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
    objects,
    page_slice,
    paging,
    remove,
    rfc3339,
    want,
)

DATASET_VERSION_READY = 64015


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
        did = check_id(item.get("id"), "dataset", CONN_INVALID_REQUEST)
        ts = rfc3339(ctx.now)
        doc = {
            "id": did,
            "app_id": ctx.app_id,
            "user_id": ctx.user_id,
            "description": get(item, "description", str, ""),
            "notes": get(item, "notes", str, ""),
            "metadata": get(item, "metadata", dict, {}),
            "created_at": ts,
            "modified_at": ts,
            "visibility": {"gettable": 10},
        }
        if not ctx.tx.insert(ctx.user_id, ctx.app_id, "dataset", did, doc):
            raise Fail(DATABASE_DUPLICATE_KEY, f"dataset {did!r} already exists")
        out.append(public(doc))
    return {"datasets": out}


def patch_datasets(ctx: Ctx) -> dict[str, Any]:
    ctx.app(write=True)
    action = action_of(ctx.body, ("merge", "overwrite", "remove"), CONN_INVALID_REQUEST)
    out = []
    for item in objects(ctx.body, "datasets"):
        check_fields(item, "Dataset", "dataset")
        doc = _dataset(ctx, want(item.get("id") or "", str, "dataset.id"))
        for k in ("description", "notes"):
            if item.get(k) is not None and action != "remove":
                doc[k] = get(item, k, str)
        if item.get("metadata") is not None:
            meta = get(item, "metadata", dict)
            doc["metadata"] = {"merge": merge, "remove": remove, "overwrite": lambda _o, n: n}[action](
                doc.get("metadata", {}), meta
            )
        doc["modified_at"] = rfc3339(ctx.now)
        ctx.tx.update(ctx.user_id, ctx.app_id, "dataset", doc["id"], doc)
        out.append(public(doc))
    return {"datasets": out}


def delete_datasets(ctx: Ctx) -> dict[str, Any]:
    ctx.app(write=True)
    ids = [want(i, str, "dataset_ids[]") for i in get(ctx.body, "dataset_ids", list, [])]
    if not ids:
        raise Fail(CONN_INVALID_REQUEST, "dataset_ids is required")
    for did in ids:
        _dataset(ctx, did)
        ctx.tx.delete(ctx.user_id, ctx.app_id, "dataset", did)
        ctx.tx.delete_children(ctx.user_id, ctx.app_id, "dataset_version", did)
        for inp in ctx.tx.list(ctx.user_id, ctx.app_id, "input"):
            if did in (inp.get("dataset_ids") or []):
                inp["dataset_ids"] = [d for d in inp["dataset_ids"] if d != did]
                ctx.tx.update(ctx.user_id, ctx.app_id, "input", inp["id"], inp)
    return {}


def get_dataset(ctx: Ctx) -> dict[str, Any]:
    ctx.app()
    return {"dataset": public(_dataset(ctx, ctx.params["dataset_id"]))}


def list_datasets(ctx: Ctx) -> dict[str, Any]:
    ctx.app()
    return {"datasets": [public(d) for d in ctx.tx.list(ctx.user_id, ctx.app_id, "dataset", page=paging(ctx.query))]}


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
