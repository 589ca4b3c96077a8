"""reconciler.core.status_codes is a copy of clarifai-grpc's StatusCode enum (the package is only a test
dependency): it must hold exactly the installed enum's names and numbers, so it cannot drift."""

from __future__ import annotations

from clarifai_grpc.grpc.api.status import status_code_pb2

from reconciler.core.status_codes import BY_NAME, NAME_OF


def test_table_is_clarifai_grpcs_status_code_enum():
    enum = {v.name: v.number for v in status_code_pb2.StatusCode.DESCRIPTOR.values}
    # ZERO (0) is the proto's unset value, not a status: the client reads code 0 as "unknown"
    assert enum.pop("ZERO") == 0
    assert BY_NAME == enum


def test_name_of_gives_the_enums_first_name_for_each_code():
    first: dict[int, str] = {}
    for v in status_code_pb2.StatusCode.DESCRIPTOR.values:
        if v.number:
            first.setdefault(v.number, v.name)
    assert NAME_OF == first
    assert NAME_OF[11008] == "CONN_KEY_INVALID" and BY_NAME["MODEL_TRAINED"] == 21100
