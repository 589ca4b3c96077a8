"""Where a client writes, as plans record it: an API base, or the embedded sandbox's file."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

DEFAULT_API_BASE = "https://api.clarifai.com"

#: How plans name the embedded sandbox as their endpoint: this, then the sandbox file's path.
SANDBOX_ENDPOINT_PREFIX = "local sandbox at "


def sandbox_endpoint(db: Path) -> str:
    """How plans name the embedded sandbox as their endpoint."""
    return f"{SANDBOX_ENDPOINT_PREFIX}{db}"


def sandbox_of_endpoint(endpoint: str) -> str | None:
    """The embedded sandbox file an endpoint names (`sandbox_endpoint`'s inverse), or None when it
    names an API base."""
    return endpoint[len(SANDBOX_ENDPOINT_PREFIX) :] if endpoint.startswith(SANDBOX_ENDPOINT_PREFIX) else None


def check_api_base(base: str, source: str = "API base") -> str:
    """`base` (``--api-base`` or ``CLARIFAI_API_BASE``) as the client's base URL: http(s), a
    host, a numeric port in range, no user or password, no ``/v2`` suffix. Anything else is one `ReconcilerError`
    line (`source` names where it came from): a control character or space, an unclosed or
    invalid IPv6 bracket, a port that is not a number, or any other URL httpx refuses. The value
    is quoted escaped (never raw), and the caller registers the PAT for masking first, so a PAT
    pasted into the URL is not printed either."""
    import httpx

    from reconciler.core.errors import ReconcilerError
    from reconciler.core.printable import printable

    shown = printable(base)

    def refuse(why: str) -> ReconcilerError:
        return ReconcilerError(f"{source} '{shown}' is not a usable URL: {why}; give http(s)://HOST[:PORT]")

    if any(ch.isspace() or not ch.isprintable() for ch in base):
        raise refuse("it contains a space, line break or control character")
    try:
        parts = urlsplit(base)
        host = parts.hostname
        parts.port  # noqa: B018 (raises on a port of "abc" or 99999)
    except ValueError as err:  # "Invalid IPv6 URL", "'zz' does not appear to be an IPv4 or IPv6 address"
        raise refuse(printable(err)) from None
    if parts.scheme not in ("http", "https"):
        raise ReconcilerError(f"{source} '{shown}' must be an http:// or https:// URL")
    if not host:
        raise refuse("it names no host")
    if parts.query or parts.fragment:
        raise refuse("it has a query or fragment")
    if "@" in parts.netloc:  # credentials belong in CLARIFAI_PAT / --pat-file, not in plans
        raise refuse("it holds a user name or password; give the PAT with CLARIFAI_PAT or --pat-file")
    try:
        httpx.URL(base)
    except (httpx.InvalidURL, ValueError) as err:
        raise refuse(printable(err)) from None
    return base.rstrip("/").removesuffix("/v2")
