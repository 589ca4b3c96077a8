"""Helpers the semantic checks share (`checks`, `review`): did-you-mean hints, the mapping items of
a section, and duplicate-id detection. Each tolerates any shape (see `checks`)."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Iterator
from typing import Any

from reconciler.manifest.yamlload import Document, Path


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """ " (did you mean 'x'?)" for the closest choice, or ""."""
    choices = list(choices)
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    if not close:  # case slips (greater_than) are common; difflib's ratio is case-sensitive
        folded = {c.lower(): c for c in choices}
        close = [folded[word.lower()]] if word.lower() in folded else []
    return f" (did you mean '{close[0]}'?)" if close else ""


def items(data: Any, key: str) -> Iterator[tuple[int, dict[str, Any]]]:
    lst = data.get(key) if isinstance(data, dict) else None
    if isinstance(lst, list):
        for i, item in enumerate(lst):
            if isinstance(item, dict):
                yield i, item


def unique_ids(doc: Document, entries: Iterator[tuple[Path, Any]], what: str) -> dict[str, Path]:
    """First path of each string id; later duplicates are reported at their own position."""
    seen: dict[str, Path] = {}
    for path, value in entries:
        if not isinstance(value, str):
            continue
        if value in seen:
            doc.add(path, f"duplicate {what} '{value}' (first on line {doc.pos(seen[value])[0]})")
        else:
            seen[value] = path
    return seen
