"""`reconciler sandbox label FILE`: post labelled inputs, listed in a small YAML file, to the embedded
sandbox, so a trainable model in a manifest has data to train on (one command instead of the
PostInputs JSON one would send to the real API).

The file (the auto-annotation example ships one, `examples/auto-annotation/labels.yaml`):

    app: park-activity              # the app to label in
    inputs:
      - url: https://samples.clarifai.com/metro-north.jpg
        concepts: [walker]          # this app's concept ids; the input is a positive for each
        id: walker-1                # optional; by default derived from the url

The sandbox is the one `plan` and `apply` use for a manifest in the file's folder (the same upward
search), or `--db`. An app that does not exist yet is created bare (the next `apply` takes it
over, as it would an app made in the portal). Inputs are posted with fixed ids, so running the
command twice labels nothing twice.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path
from typing import Any

from reconciler.core.errors import ApiError, ManifestError, Problem, ReconcilerError

#: How many inputs one PostInputs carries (Clarifai's documented batch limit is 128).
BATCH = 128


def _input_id(url: str) -> str:
    return "label-" + hashlib.sha256(url.encode("utf-8")).hexdigest()[:16]


def read_labels(path: str) -> tuple[str, list[dict[str, Any]]]:
    """The app id and the PostInputs items of a labels file; ManifestError (file:line:col) on any
    problem, before anything is sent."""
    from reconciler.core.fileio import read_regular
    from reconciler.core.idrules import CLARIFAI_ID
    from reconciler.manifest.yamlload import MAX_BYTES, load_yaml

    try:
        data = read_regular(path, MAX_BYTES + 1)
    except OSError as err:
        raise ReconcilerError(f"cannot read {path}: {err.strerror or err}") from None
    doc = load_yaml(data, path)
    if doc.problems:
        raise ManifestError(doc.problems)
    top = doc.data
    if not isinstance(top, dict) or set(top) - {"app", "inputs"}:
        extra = sorted(set(top) - {"app", "inputs"}) if isinstance(top, dict) else []
        where = doc.problem((extra[0],), f"unknown field '{extra[0]}': a labels file has app and inputs", True) if extra else None
        raise ManifestError([where or Problem(path, 1, 1, "a labels file is a mapping with app and inputs")])
    problems: list[Problem] = []
    app = top.get("app")
    if not isinstance(app, str) or CLARIFAI_ID.problem(app):
        problems.append(doc.problem(("app",), f"app: {CLARIFAI_ID.problem(app) or 'an app id'}"))
    items = top.get("inputs")
    if not isinstance(items, list) or not items:
        problems.append(doc.problem(("inputs",), "inputs: a non-empty list of {url, concepts}"))
        items = []
    out: list[dict[str, Any]] = []
    for i, item in enumerate(items):
        at = ("inputs", i)
        if not isinstance(item, dict) or set(item) - {"url", "concepts", "id"} or "url" not in item:
            problems.append(doc.problem(at, "an input is {url, concepts, id (optional)}"))
            continue
        url, concepts = item.get("url"), item.get("concepts", [])
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            problems.append(doc.problem(at + ("url",), "url: an http(s) URL of an image"))
            continue
        if (
            not isinstance(concepts, list)
            or not concepts
            or any(not isinstance(c, str) or CLARIFAI_ID.problem(c) for c in concepts)
        ):
            problems.append(doc.problem(at + ("concepts",), "concepts: a non-empty list of concept ids"))
            continue
        iid = item.get("id", _input_id(url))
        if not isinstance(iid, str) or CLARIFAI_ID.problem(iid):
            problems.append(doc.problem(at + ("id",), f"id: {CLARIFAI_ID.problem(iid) or 'an input id'}"))
            continue
        out.append({"id": iid, "data": {"image": {"url": url}, "concepts": [{"id": c, "value": 1} for c in concepts]}})
    if problems:
        raise ManifestError(problems)
    return str(app), out


def run(args: argparse.Namespace) -> int:
    from reconciler.api.client import api_path
    from reconciler.commands.connect import connect

    app_id, inputs = read_labels(args.file)
    client = connect(
        force_sandbox=True,
        sandbox_reason="sandbox label",
        sandbox_from=Path(args.file).absolute().parent,
        sandbox_db=Path(args.db) if args.db else None,
        stderr=sys.stderr,
    )
    with client:
        user = client.user_id or "me"
        apps = api_path("v2", "users", user, "apps")
        try:
            client.get(api_path("v2", "users", user, "apps", app_id))
        except ApiError as err:
            if err.http_status != 404:
                raise
            client.post(apps, {"apps": [{"id": app_id}]})
            print(f"created app {app_id} in the sandbox (the next apply takes it over)", file=sys.stderr)
        path = api_path("v2", "users", user, "apps", app_id, "inputs")
        existing = {i.get("id") for i in client.list_all(path, "inputs")}
        new = [i for i in inputs if i["id"] not in existing]
        for start in range(0, len(new), BATCH):
            client.post(path, {"inputs": new[start : start + BATCH]})
    concepts = sorted({c["id"] for i in inputs for c in i["data"]["concepts"]})
    print(
        f"Labelled {len(new)} input(s) in app {app_id} ({len(inputs) - len(new)} already there): {', '.join(concepts)}",
        flush=True,
    )
    return 0
