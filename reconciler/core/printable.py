"""Showing text that came from a user or a server on a terminal, safely: the one escaping function.

A manifest's metadata key, a description, a note, an id a server returns: any of them can hold
ESC (``\\x1b[4A`` moves the cursor up, ``\\x1b[J`` erases), a carriage return, a line feed, a C1
control (``\\x9b`` is a one-byte CSI on some terminals), or a bidi override (U+202E reverses what
follows). Printed raw into a plan, such a string can erase or reorder the lines above it and hide
a change from the reviewer. Every human output (text plan, apply's confirmation and progress,
`show`, drift, Markdown, error lines) passes user- and server-controlled strings through
`printable` before they are joined into lines; the tool's own colour codes are added afterwards.
Machine output (``--json``) is written by `json.dumps` with its default ``ensure_ascii``, which
escapes every non-ASCII and control character, so it stays valid JSON and inert on a terminal.

What is escaped: every character Python itself does not print in a `repr` (``str.isprintable``
is False: categories Cc, Cf, Cs, Co, Cn, Zl, Zp and every Zs but the ASCII space), so control
characters, bidi and zero-width format characters, line and paragraph separators, lone
surrogates and odd spaces (U+00A0, U+3000) that can make two ids look alike. Escapes are
JSON-style, the same as the JSON-encoded values beside them in a plan: ``\\n`` ``\\r`` ``\\t``,
``\\uXXXX`` in the Basic Multilingual Plane, ``\\UXXXXXXXX`` beyond it.
"""

from __future__ import annotations

_SHORT = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(ch: str) -> str:
    if ch in _SHORT:
        return _SHORT[ch]
    code = ord(ch)
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def printable(text: object) -> str:
    """`text` (made a str) with every character a terminal could act on written as an escape
    (module docstring); text that is already printable comes back unchanged."""
    s = text if isinstance(text, str) else str(text)
    if s.isprintable():
        return s
    return "".join(ch if ch == " " or ch.isprintable() else _escape(ch) for ch in s)


def printable_lines(text: str) -> str:
    """`text` with each of its lines made `printable` and the line breaks (``\\n``) kept: for a
    multi-line report whose lines quote user or server strings."""
    return "\n".join(printable(line) for line in text.split("\n"))
