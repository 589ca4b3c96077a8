"""The PAT: held so that it never shows, masked where it can appear, refused when no HTTP header
can carry it or when it is too short to be one.

Where the PAT is masked, and where not:
- Text for people (the CLI's stdout and stderr, `cli._Masked`): `mask_secrets` replaces the PAT
  in every form it can take there: as is, JSON-escaped (``\\"`` and ``\\\\`` in `--json`
  output), repr-escaped and YAML single-quoted.
- Data the tool writes and reads back (saved plans, exported manifests): masked as data, in the
  strings of the value before it is serialised (`mask_data`), so the file stays valid JSON or
  YAML; the written text is then checked, never rewritten (`holds_secret`): a PAT that would still
  show is refused, not masked into the file's own syntax.
- Server answers: never rewritten before they are interpreted (`api.status.outcome_words` reads
  the words apply recognises first); the error shown is then redacted (`Client.error`).
"""

from __future__ import annotations

import json
import threading
from typing import Any

from reconciler.core.errors import ReconcilerError
from reconciler.core.fileio import read_regular_text

#: The PATs `connect` resolved in this process, each with the forms it takes once escaped:
#: `mask_secrets` masks them in anything the CLI prints.
_IN_USE: dict[str, tuple[str, ...]] = {}
_IN_USE_LOCK = threading.Lock()
MASK = "***"

#: A PAT shorter than this is refused (`check_pat_length`). Clarifai's PATs and app keys are 32
#: characters: Clarifai's docs show only placeholders ("YOUR_PAT_HERE"), but secret scanners match
#: Clarifai keys as exactly 32 alphanumerics (kingfisher's rule `kingfisher.clarifai.1`, validated
#: against the API with ``Authorization: Key``), and keys pasted into public code are 32 hex digits
#: ([UNVERIFIED] against Clarifai's own spec). Compatible servers may use other keys (`reconciler
#: sandbox serve`'s is "sandbox-key", 11 characters), so the floor is far below 32: under 8
#: characters a value is a placeholder or a typo, and masking it would hit ordinary words (a PAT
#: "a" turned every "a" the tool printed into ***).
MIN_PAT_CHARS = 8


def _forms(pat: str) -> tuple[str, ...]:
    """`pat` and the other spellings it takes in output: JSON-escaped, repr-escaped, YAML
    single-quoted (longest first, so a longer form is masked before a part of it)."""
    forms = {pat, json.dumps(pat)[1:-1], repr(pat)[1:-1], pat.replace("'", "''")}
    return tuple(sorted(forms, key=len, reverse=True))


def _secrets() -> list[str]:
    with _IN_USE_LOCK:
        return sorted({f for forms in _IN_USE.values() for f in forms}, key=len, reverse=True)


def mask_secrets(text: str) -> str:
    """`text` with every PAT in use, in any of its escaped forms, replaced by ***: for text shown
    to people, never for data read back (module docstring)."""
    for s in _secrets():
        text = text.replace(s, MASK)
    return text


def holds_secret(value: Any) -> bool:
    """Whether a PAT in use shows anywhere in `value`: a str (in any escaped form), or the keys
    and values of a JSON-like value."""
    secrets = _secrets()
    if not secrets:
        return False
    if isinstance(value, str):
        return any(s in value for s in secrets)
    return holds_secret(json.dumps(value, default=str, ensure_ascii=False))


def mask_data(value: Any) -> Any:
    """A JSON-like value with every PAT in use replaced by *** inside its strings (keys and
    values), so that the file it is written to stays valid; other values as they are."""
    with _IN_USE_LOCK:
        pats = sorted(_IN_USE, key=len, reverse=True)
    if not pats:
        return value

    def walk(v: Any) -> Any:
        if isinstance(v, str):
            for p in pats:
                v = v.replace(p, MASK)
            return v
        if isinstance(v, dict):
            return {walk(k): walk(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [walk(x) for x in v]
        return v

    return walk(value)


def remember_secret(pat: str) -> None:
    with _IN_USE_LOCK:
        _IN_USE[pat] = _forms(pat)


def check_pat_length(pat: str, source: str) -> None:
    """Refuse a PAT too short to be one (`MIN_PAT_CHARS`), naming where it came from, not it."""
    if len(pat) < MIN_PAT_CHARS:
        raise ReconcilerError(
            f"{source} is {len(pat)} character(s) long: too short to be a PAT (Clarifai's are 32 "
            f"characters; at least {MIN_PAT_CHARS} are needed); check the value (not shown here)"
        )


class Secret:
    """Holds the PAT; its repr and str never show it."""

    __slots__ = ("_value",)

    def __init__(self, value: str):
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "'***'"

    __str__ = __repr__


def read_pat_file(pat_file: str) -> str:
    try:
        text = read_regular_text(pat_file, 64 * 1024)  # a FIFO or device is refused, not waited on
    except OSError as exc:
        raise ReconcilerError(f"cannot read PAT file {pat_file}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ReconcilerError(f"cannot read PAT file {pat_file}: not UTF-8 text") from None
    pat = text.strip()
    if pat and pat_flaw(pat) not in (None, "a space"):  # NUL, line break, ...: say which
        check_pat(pat, f"the PAT in {pat_file}")
    if not pat or len(pat.split()) != 1:
        raise ReconcilerError(f"PAT file {pat_file} must contain exactly one token")
    return pat


def pat_flaw(pat: str) -> str | None:
    """What makes `pat` unsendable as ``Authorization: Key <pat>``, or None. HTTP header values
    are visible ASCII (RFC 9110 section 5.5 allows obs-text and spaces too, but httpx and most
    servers refuse them, and a Clarifai PAT is 32 hex digits); a NUL or line break could also
    split the header. Named by kind, never by value."""
    for ch in pat:
        if ch == "\0":
            return "a NUL byte"
        if ch in "\r\n":
            return "a line break"
        if ord(ch) < 0x20 or ord(ch) == 0x7F:
            return "a control character"
        if ord(ch) > 0x7F:
            return "a non-ASCII character"
        if ch == " ":
            return "a space"
    return None


def check_pat(pat: str, source: str) -> None:
    """Refuse, before any request, a PAT that an HTTP header cannot carry: otherwise the HTTP
    library's own error (which quotes the header, PAT included) would be what the user sees."""
    flaw = pat_flaw(pat)
    if flaw:
        raise ReconcilerError(
            f"{source} contains {flaw}: a PAT is one token of visible ASCII, the "
            "only kind an HTTP header carries safely; check the value (not shown here)"
        )
