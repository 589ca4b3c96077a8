"""Training statuses of a trainable model's version: the one place that knows their codes, names
and meaning (apply waits on them, plan notes them).

Codes and names: clarifai-grpc's status codes (`reconciler.core.status_codes`); their
meanings: Clarifai/docs `docs/api-guide/advanced-topics/status-codes.md`. Names let a status sent as
a string (`"code": "MODEL_TRAINING_NO_DATA"`) read the same as its number.
"""

from __future__ import annotations

from typing import Any

from reconciler.api.status import status_code_of
from reconciler.core.status_codes import BY_NAME, NAME_OF

MODEL_TRAINED = BY_NAME["MODEL_TRAINED"]
MODEL_TRAINING = BY_NAME["MODEL_TRAINING"]
MODEL_UNTRAINED = BY_NAME["MODEL_UNTRAINED"]
MODEL_QUEUED_FOR_TRAINING = BY_NAME["MODEL_QUEUED_FOR_TRAINING"]
#: Trained: 21100, and the deployment statuses a trained version moves on to -- 21351
#: MODEL_DEPLOYING, 21352 MODEL_QUEUED_FOR_DEPLOYMENT ("Used when training is completed") and 21353
#: MODEL_NOT_DEPLOYED ("Used when model spire deployment is manually taken down or due to
#: inactivity"): the proto's comments, Clarifai/clarifai-nodejs-grpc
#: `proto/clarifai/api/status/status_code.proto`. Such a version is reused and pointed at like a
#: 21100 one (waiting for 21100 would wait forever).
TRAINED = frozenset(
    {MODEL_TRAINED, *(BY_NAME[name] for name in ("MODEL_DEPLOYING", "MODEL_QUEUED_FOR_DEPLOYMENT", "MODEL_NOT_DEPLOYED"))}
)
#: The training family of model version statuses: 21100 (MODEL_TRAINED) to 21119, and the
#: trained deployment statuses above.
TRAINING_STATUS_NAMES: dict[int, str] = {
    code: NAME_OF[code] for code in sorted({*range(MODEL_TRAINED, MODEL_TRAINED + 20), *TRAINED})
}
_TRAINING_CODES = {name: code for code, name in TRAINING_STATUS_NAMES.items()}
#: Still on its way: wait. clarifai-python-grpc `tests/common.py` (`wait_for_model_trained`, run
#: against the real API) waits on QUEUED and TRAINING and takes anything else but TRAINED as a
#: failure; uploading and building are in-progress states of the same family.
TRAINING_IN_PROGRESS = frozenset(
    BY_NAME[name] for name in ("MODEL_TRAINING", "MODEL_QUEUED_FOR_TRAINING", "MODEL_UPLOADING", "MODEL_BUILDING")
)
#: Will never train: 21102 (a version nobody asked to train; PostModels' own version is one,
#: Clarifai/docs `code_output_examples/create_model.js`), the upload/build failures, and 21106
#: plus 21110-21119 (the proto marks the specific ones "deprecate: use 21106 + errStatusMsg").
TRAINING_FAILED = frozenset(
    {
        MODEL_UNTRAINED,
        *(
            BY_NAME[name]
            for name in (
                "MODEL_UPLOADING_FAILED",
                "MODEL_TRAINING_FAILED",
                "MODEL_BUILDING_FAILED",
                "MODEL_BUILD_UNEXPECTED_ERROR",
            )
        ),
        *range(BY_NAME["MODEL_TRAINING_NO_DATA"], BY_NAME["MODEL_TRAINING_INVALID_DATA_TOLERANCE_EXCEEDED"] + 1),
    }
)
#: Failures whose usual cure is labelling inputs (no data, no positives, insufficient data; the
#: generic 21106 and "never trained" may be the same thing in other words).
NEEDS_LABELS = frozenset(
    {
        MODEL_UNTRAINED,
        *(
            BY_NAME[name]
            for name in (
                "MODEL_TRAINING_FAILED",
                "MODEL_TRAINING_NO_DATA",
                "MODEL_TRAINING_NO_POSITIVES",
                "MODEL_TRAINING_INSUFFICIENT_DATA",
            )
        ),
    }
)


def is_trained(code: int) -> bool:
    return code in TRAINED


def training_code(raw: Any) -> int:
    """A model version status code sent as a number, a numeric string or a name."""
    if isinstance(raw, str) and raw.strip().upper() in _TRAINING_CODES:
        return _TRAINING_CODES[raw.strip().upper()]
    return status_code_of(raw)


def status_name(code: int) -> str:
    return TRAINING_STATUS_NAMES.get(code) or (str(code) if code else "no status yet")
