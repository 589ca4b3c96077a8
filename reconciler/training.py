"""Training statuses of a trainable model's version: the one place that knows their codes, names
and meaning (apply waits on them, plan notes them).

Codes and names: clarifai-grpc's status codes (/work/shared/clarifai-api/status_codes.tsv); their
meanings: Clarifai/docs `docs/api-guide/advanced-topics/status-codes.md`. Names let a status sent as
a string (`"code": "MODEL_TRAINING_NO_DATA"`) read the same as its number.
"""

from __future__ import annotations

from typing import Any

from reconciler.client import status_code_of

MODEL_TRAINED = 21100
MODEL_UNTRAINED = 21102
TRAINING_STATUS_NAMES: dict[int, str] = {
    21100: "MODEL_TRAINED", 21101: "MODEL_TRAINING", 21102: "MODEL_UNTRAINED",
    21103: "MODEL_QUEUED_FOR_TRAINING", 21104: "MODEL_UPLOADING", 21105: "MODEL_UPLOADING_FAILED",
    21106: "MODEL_TRAINING_FAILED", 21107: "MODEL_BUILDING", 21108: "MODEL_BUILDING_FAILED",
    21109: "MODEL_BUILD_UNEXPECTED_ERROR", 21110: "MODEL_TRAINING_NO_DATA",
    21111: "MODEL_TRAINING_NO_POSITIVES", 21112: "MODEL_TRAINING_ONE_VS_N_SINGLE_CLASS",
    21113: "MODEL_TRAINING_TIMED_OUT", 21114: "MODEL_TRAINING_WAITING_ERROR",
    21115: "MODEL_TRAINING_UNKNOWN_ERROR", 21116: "MODEL_TRAINING_MSG_REDELIVER",
    21117: "MODEL_TRAINING_INSUFFICIENT_DATA", 21118: "MODEL_TRAINING_INVALID_PARAMS",
    21119: "MODEL_TRAINING_INVALID_DATA_TOLERANCE_EXCEEDED",
}
_TRAINING_CODES = {name: code for code, name in TRAINING_STATUS_NAMES.items()}
#: Still on its way: wait. clarifai-python-grpc `tests/common.py` (`wait_for_model_trained`, run
#: against the real API) waits on QUEUED and TRAINING and takes anything else but TRAINED as a
#: failure; uploading and building are in-progress states of the same family.
TRAINING_IN_PROGRESS = frozenset({21101, 21103, 21104, 21107})
#: Will never train: 21102 (a version nobody asked to train; PostModels' own version is one,
#: Clarifai/docs `code_output_examples/create_model.js`), the upload/build failures, and 21106
#: plus 21110-21119 (the proto marks the specific ones "deprecate: use 21106 + errStatusMsg").
TRAINING_FAILED = frozenset({MODEL_UNTRAINED, 21105, 21106, 21108, 21109, *range(21110, 21120)})
#: Failures whose usual cure is labelling inputs (no data, no positives, insufficient data; the
#: generic 21106 and "never trained" may be the same thing in other words).
NEEDS_LABELS = frozenset({MODEL_UNTRAINED, 21106, 21110, 21111, 21117})


def training_code(raw: Any) -> int:
    """A model version status code sent as a number, a numeric string or a name."""
    if isinstance(raw, str) and raw.strip().upper() in _TRAINING_CODES:
        return _TRAINING_CODES[raw.strip().upper()]
    return status_code_of(raw)


def status_name(code: int) -> str:
    return TRAINING_STATUS_NAMES.get(code) or (str(code) if code else "no status yet")
