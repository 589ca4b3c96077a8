"""Where a client writes, as plans record it: an API base, or the embedded sandbox's file."""

from __future__ import annotations

from pathlib import Path

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
