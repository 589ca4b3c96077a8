"""Replay what `reconciler probe` recorded (tests/parity/probe/, written by a maintainer's run
against the real API; see docs/parity.md): every answer is a case of the parity corpus's format
that parses into its clarifai-grpc response message, user ids are masked, and judging the recorded
answers again gives the verdicts recorded with them. `replay` is also run on fresh recordings made
against the sandbox (tests/test_probe.py), so it is exercised whether or not a real recording is
committed yet.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from clarifai_grpc.grpc.api import service_pb2
from google.protobuf import json_format, message_factory

from reconciler.api import probe
from tests.parity import corpus

PROBE_DIR = Path(__file__).parent / "probe"
_METHODS = service_pb2.DESCRIPTOR.services_by_name["V2"].methods_by_name


def _response_class(rpc: str) -> Any:
    return message_factory.GetMessageClass(_METHODS[rpc].output_type)


def replay(folder: Path) -> dict[str, str]:
    """Check a probe recording (see the module docstring); its verdicts, quirk -> observed."""
    names = corpus.names(folder)
    assert names, f"no recorded answers in {folder}"
    docs = [json.loads((folder / f"{n}.json").read_text(encoding="utf-8")) for n in names]
    for name, doc in zip(names, docs, strict=True):
        case = corpus.load(name, folder)  # the corpus format
        assert case.source and case.note and case.rpc in _METHODS, name
        assert doc["label"] and doc["request"]["method"] in ("GET", "POST", "PATCH", "DELETE"), name
        path = doc["request"]["path"]
        if "/users/" in path:
            assert path.split("/users/", 1)[1].split("/", 1)[0] in (probe.USER_MASK, "me"), f"{name}: user id not masked"
        if isinstance(case.body, dict) and case.http_status == 200:
            # a success answer is its RPC's response message (names or numbers for enums alike)
            json_format.ParseDict(case.body, _response_class(case.rpc)(), ignore_unknown_fields=True)
    recorded = json.loads((folder / "verdicts.json").read_text(encoding="utf-8"))
    app_id = recorded["app_id"]
    judged = probe.judge(probe.exchanges_from_files(docs), app_id)
    again = {v.quirk: v.observed for v in judged}
    then = {v["quirk"]: v["observed"] for v in recorded["verdicts"]}
    assert again == then, "judging the recorded answers again gives other verdicts"
    assert set(then) == set(probe.PROBES), "the recording predates a quirk: run the probe again"
    return then


RECORDINGS = [PROBE_DIR] if (PROBE_DIR / "verdicts.json").exists() else []


@pytest.mark.parametrize("folder", RECORDINGS, ids=lambda p: p.name)
def test_a_recorded_probe_replays(folder: Path) -> None:
    verdicts = replay(folder)
    assert all(v in (probe.OBSERVED, probe.NOT_OBSERVED, probe.UNKNOWN) for v in verdicts.values())
