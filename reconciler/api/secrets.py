"""The PAT: held so that it never shows, masked in what the CLI prints, refused when no HTTP header
can carry it."""

from __future__ import annotations

import threading

from reconciler.core.errors import ReconcilerError
from reconciler.core.fileio import read_regular_text

#: The PATs `connect` resolved in this process: `mask_secrets` masks them in anything the CLI
#: prints or writes (values the API returns are shown as they are, except for a PAT in them).
_IN_USE: set[str] = set()
_IN_USE_LOCK = threading.Lock()


def mask_secrets(text: str) -> str:
    """`text` with every PAT in use replaced by ***."""
    with _IN_USE_LOCK:
        secrets = sorted(_IN_USE, key=len, reverse=True)
    for s in secrets:
        text = text.replace(s, "***")
    return text


def remember_secret(pat: str) -> None:
    with _IN_USE_LOCK:
        _IN_USE.add(pat)


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
