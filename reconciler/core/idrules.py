"""Clarifai's id rules, read from the one place they are written: the manifest JSON Schema's `$defs`
(`idSyntax` holds the rule and its source in `$comment`; `id` and `refId` add the lengths).

Contract: `CLARIFAI_ID` is the rule for every id the tool creates or names in the app (app, model,
workflow); `CONCEPT_ID` the same syntax at most 32 characters (concepts); `REF_ID` for ids of other
apps' resources, which are only read; `NODE_ID` for workflow node ids, which are not API ids (any
text without control characters, at most 128 characters).
`IdRule.problem(value)` says why a value breaks a rule, or None. The manifest's schema stage applies
the same definitions through jsonschema; the sandbox (`sandbox/wire.check_id`) applies them here,
so `validate` refuses exactly the ids the sandbox would refuse part-way through an apply.
Stdlib only: the sandbox imports this module.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from importlib import resources
from typing import Any

__all__ = [
    "IdRule",
    "CLARIFAI_ID",
    "CONCEPT_ID",
    "REF_ID",
    "NODE_ID",
    "ID_HINT",
    "NODE_HINT",
    "MAIN_USER",
    "MAIN_APP",
    "LEASE_DATASET",
    "LEASE_STEAL_PREFIX",
    "is_lease_dataset",
]

#: The public app whose concepts, models and workflows every app references: clarifai/main.
MAIN_USER, MAIN_APP = "clarifai", "main"

#: The app lease's datasets (`apply/lease.py`): the lease itself and its takeover records
#: (`LEASE_STEAL_PREFIX` + a lease id's start). They are the tool's own bookkeeping, said here once:
#: the live read leaves them out (`api/livereview.py`), so no plan, drift or export shows them, and
#: a manifest may not declare a dataset with such an id (`manifest/checks.py`).
LEASE_DATASET = "reconciler-lease"
LEASE_STEAL_PREFIX = "reconciler-steal-"


def is_lease_dataset(dataset_id: str) -> bool:
    """Whether `dataset_id` is one of the app lease's datasets (see `LEASE_DATASET`)."""
    return dataset_id == LEASE_DATASET or dataset_id.startswith(LEASE_STEAL_PREFIX)


#: How the rule reads to a user; used in every message about an invalid id.
ID_HINT = "Clarifai ids are ASCII letters and digits, optionally separated by single '-' or '_'"
#: ... and the node id rule.
NODE_HINT = "a node id is any text without control characters"


@functools.cache
def _defs() -> dict[str, Any]:
    text = resources.files("reconciler").joinpath("manifest.schema.json").read_text("utf-8")
    return json.loads(text)["$defs"]


def _resolved(name: str) -> dict[str, Any]:
    """A `$defs` entry with its `$ref` chain merged in (the entry's own keywords win)."""
    node = dict(_defs()[name])
    ref = node.pop("$ref", None)
    if isinstance(ref, str):
        return {**_resolved(ref.removeprefix("#/$defs/")), **node}
    return node


@dataclass(frozen=True)
class IdRule:
    pattern: str
    max_length: int
    hint: str = ID_HINT

    @functools.cached_property
    def _regex(self) -> re.Pattern[str]:
        return re.compile(self.pattern)

    def problem(self, value: Any) -> str | None:
        """Why `value` is not a valid id under this rule, or None. `re.search`, as JSON Schema's
        `pattern` does, so this and the schema agree on every string."""
        if not isinstance(value, str) or not value:
            return "an id must be a non-empty string"
        if not self._regex.search(value):
            return f"invalid id {value!r}: {self.hint}"
        if len(value) > self.max_length:
            shown = repr(value) if len(value) <= 128 else f"{value[:20]!r}..."
            return f"id {shown} is {len(value)} characters long; the limit is {self.max_length}"
        return None


def _rule(name: str, hint: str = ID_HINT) -> IdRule:
    d = _resolved(name)
    return IdRule(pattern=d["pattern"], max_length=int(d["maxLength"]), hint=hint)


CLARIFAI_ID = _rule("id")
CONCEPT_ID = _rule("conceptId")
REF_ID = _rule("refId")
NODE_ID = _rule("nodeId", NODE_HINT)
