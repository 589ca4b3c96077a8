"""`reconciler tune --write` / `--write-to`: put tuned thresholds into the manifest.

Contract:
- `write_in_place(path, changes)` replaces, in the manifest file at `path`, exactly the source text
  of each changed threshold value (`models[id=M].thresholds.C`) with the new number; every other
  byte (comments, key order, quoting, indentation, line endings) stays as it was. The file is
  written atomically (temp file + rename). A value that is not a plain number written in that file
  (a `${variable}`, an alias, a merge key) is refused with one line naming file:line:col: the tool
  will not guess how to rewrite it. Only values that exist are rewritten; no key is added.
- `overlay_text(changes, ...)` is a thresholds overlay (README, "Environments"): `overlay: true`
  and `models` items with an `id` and the changed `thresholds`, to merge with
  `-f base.yaml -f overlay.yaml`.
- `format_threshold(x)`: the shortest decimal that round-trips (0.87, not 0.8700000000000001).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from reconciler.core.errors import ReconcilerError
from reconciler.manifest.yamlload import scalar_spans


def format_threshold(x: float) -> str:
    return repr(round(float(x), 6))


def _line_col(text: str, index: int) -> tuple[int, int]:
    line = text.count("\n", 0, index) + 1
    return line, index - (text.rfind("\n", 0, index) + 1) + 1


def write_in_place(path: str, changes: Iterable[dict[str, Any]]) -> list[str]:
    """Rewrite the threshold values; returns one human line per change."""
    from reconciler.core.fileio import read_regular_text

    try:  # as bytes decoded: the file's own line endings are kept
        text = read_regular_text(path)
    except OSError as err:
        raise ReconcilerError(f"cannot read {path}: {err.strerror or err}") from None
    except UnicodeDecodeError:
        raise ReconcilerError(f"cannot read {path}: not UTF-8 text") from None
    try:
        spans = scalar_spans(text)
    except ValueError as err:
        raise ReconcilerError(f"{path}: cannot parse the manifest to edit it: {err}") from None
    model_index = {
        v[2]: p[1] for p, v in spans.items() if len(p) == 3 and p[0] == "models" and p[2] == "id" and isinstance(p[1], int)
    }
    edits: list[tuple[int, int, str]] = []
    done: list[str] = []
    for ch in changes:
        idx = model_index.get(ch["model"])
        span = spans.get(("models", idx, "thresholds", ch["concept"])) if idx is not None else None
        if span is None:
            raise ReconcilerError(
                f"{path}: no threshold for concept {ch['concept']!r} written in model "
                f"{ch['model']!r} of this file; use --write-to OVERLAY instead"
            )
        start, end, src = span
        try:
            float(src)
        except ValueError:
            line, col = _line_col(text, start)
            raise ReconcilerError(
                f"{path}:{line}:{col}: threshold {ch['model']}.{ch['concept']} is {src!r}, not a "
                "plain number; change it by hand or use --write-to OVERLAY"
            ) from None
        edits.append((start, end, format_threshold(ch["to"])))
        line, _col = _line_col(text, start)
        done.append(f"  {path}:{line}: {ch['model']}.thresholds.{ch['concept']}: {src} -> {format_threshold(ch['to'])}")
    for start, end, new in sorted(edits, reverse=True):
        text = text[:start] + new + text[end:]
    _atomic_write(path, text)
    return done


def overlay_text(changes: Iterable[dict[str, Any]], header: str = "") -> str:
    by_model: dict[str, dict[str, float]] = defaultdict(dict)
    for ch in changes:
        by_model[ch["model"]][ch["concept"]] = ch["to"]
    lines = [f"# {h}" if h else "#" for h in header.splitlines()] if header else []
    lines.append("overlay: true  # merged onto its base: -f manifest.yaml -f this file")
    lines.append("models:")
    for model, th in by_model.items():
        lines.append(f"  - id: {json.dumps(model)}")
        lines.append("    thresholds:")
        lines += [f"      {c}: {format_threshold(v)}" for c, v in th.items()]  # keys are read as their source text
    return "\n".join(lines) + "\n"


def _atomic_write(path: str, text: str) -> None:
    """`text` replaces the manifest atomically (`fileio.write_atomic`: its line endings as given)."""
    from reconciler.core.fileio import write_atomic

    try:
        write_atomic(path, text)
    except OSError as err:
        raise ReconcilerError(f"cannot write {path}: {err.strerror or err}") from None
