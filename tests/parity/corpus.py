"""The parity corpus: real Clarifai response bodies, each with its source beside it.

Contract: `load(name) -> Case` for `corpus/<name>.json`; `names()` lists them (both take another
`directory`: a recording of `reconciler probe`, whose cases add `label` and `request`). A case file holds
`rpc` (the V2 RPC that answered), `app_id` (the app the body belongs to), `source` (repository +
path + commit, or issue / docs URL), `note` (how it was published and anything changed), `format`
and either `body` (JSON, kept as published) or `text` (protobuf text format, as the docs print gRPC
answers) with `message` (its clarifai-grpc message type). `http_status` is the HTTP status when the
source shows or implies it, else null.

Text-format bodies are rendered as REST JSON the way Clarifai's REST gateway renders messages:
proto field names, enums as numbers, RFC 3339 timestamps (Clarifai/docs "API Outputs" page shows
REST statuses as numbers, `"code": 21200`, and timestamps as RFC 3339 with up to 9 fractional
digits). Fields the installed clarifai-grpc no longer defines are skipped (the case's note names
them).

`ASSERTED` holds statuses that Clarifai's own client tests assert against the real API (code,
description, a details substring) without publishing the whole body; they are not bodies and are
not counted as such.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from clarifai_grpc.grpc.api import resources_pb2, service_pb2
from google.protobuf import json_format, text_format

CORPUS_DIR = Path(__file__).parent / "corpus"


@dataclass(frozen=True)
class Case:
    name: str
    rpc: str
    app_id: str
    source: dict[str, Any]
    note: str
    http_status: int | None
    body: dict[str, Any]


def names(directory: Path = CORPUS_DIR) -> list[str]:
    """The cases of `directory` (the corpus, or a probe recording: `reconciler probe --record`)."""
    return sorted(p.stem for p in directory.glob("*.json") if p.name != "verdicts.json")


def load(name: str, directory: Path = CORPUS_DIR) -> Case:
    raw = json.loads((directory / f"{name}.json").read_text(encoding="utf-8"))
    body = _render_textproto(raw["text"], raw["message"]) if raw["format"] == "textproto" else raw["body"]
    return Case(name=name, rpc=raw["rpc"], app_id=raw["app_id"], source=raw["source"], note=raw["note"],
                http_status=raw.get("http_status"), body=body)


def _render_textproto(text: str, message: str) -> dict[str, Any]:
    cls = getattr(service_pb2, message, None) or getattr(resources_pb2, message)
    msg = cls()
    logging.getLogger("google.protobuf").disabled = True
    text_format.Parse(text, msg, allow_unknown_field=True)
    return json_format.MessageToDict(msg, preserving_proto_field_name=True, use_integers_for_enums=True)


#: Statuses asserted by Clarifai/clarifai-python-grpc `tests/client` against the real API (commit
#: 01aa654). Only these fields are known; they are not whole bodies.
ASSERTED: dict[str, dict[str, Any]] = {
    "duplicate-concept": {
        "rpc": "PostConcepts", "code": 40003, "description": "Invalid request", "details_contains": "duplicate",
        "source": "Clarifai/clarifai-python-grpc tests/client/test_concept_crud.py (duplicated PostConcepts)"},
    "patch-missing-concept": {
        "rpc": "PatchConcepts", "code": 11101, "description": "Resource does not exist",
        "source": "Clarifai/clarifai-python-grpc tests/client/test_concept_crud.py (PatchConcepts of an unknown id)"},
    "invalid-key": {
        "rpc": "ListConcepts", "code": 11008,
        "description": "Invalid API key or Invalid API key/application pair",
        "source": "Clarifai/clarifai-python-grpc tests/client/test_auth.py"},
}


def asserted_body(key: str) -> dict[str, Any]:
    """A body holding only the asserted fields (details: just the asserted substring)."""
    a = ASSERTED[key]
    status: dict[str, Any] = {"code": a["code"], "description": a["description"]}
    if "details_contains" in a:
        status["details"] = a["details_contains"]
    return {"status": status}
