"""Error interpretation: what a Clarifai response body means.

Contract: the body's ``status.code`` is authoritative (Clarifai can answer HTTP 200 with an error
status and vice versa). Every ``status.code`` in a body sent as a name is turned into its number
once (`normalise_status_codes`), so no caller ever sees a name. `interpret` turns one HTTP
response into the success body or the one-line ApiError it means.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import httpx

from reconciler.api.transport import CONN_EXCEED_HOURLY_LIMIT, retry_after
from reconciler.core.errors import ApiError
from reconciler.core.status_codes import BY_NAME, NAME_OF

SUCCESS = BY_NAME["SUCCESS"]

#: What a status says when an object already exists, and when it does not: apply recognises a
#: duplicate or a missing object by code AND these words (sources at `apply.base`'s codes).
DUPLICATE_WORDS = ("duplicate", "already exist")
NOT_FOUND_WORDS = ("does not exist", "not found", "doesn't exist")
OUTCOME_WORDS = DUPLICATE_WORDS + NOT_FOUND_WORDS


def server_words(description: str, body: Any) -> str:
    """The server's own words in an error answer, lower-cased: its status description and
    details, never the request path (ids in it may themselves hold such words)."""
    status = body.get("status") if isinstance(body, dict) else None
    details = status.get("details") if isinstance(status, dict) else ""
    return f"{description} {details if isinstance(details, str) else ''}".lower()


def outcome_words(description: str, body: Any) -> frozenset[str]:
    """Which `OUTCOME_WORDS` the server's own words hold: read from the raw answer, before the
    PAT is redacted from it (`Client.error`)."""
    text = server_words(description, body)
    return frozenset(w for w in OUTCOME_WORDS if w in text)


#: Every status code by name (clarifai-grpc's StatusCode enum, kept in `reconciler.core.status_codes`):
#: a server may send `code` as a name ("CONN_THROTTLED") -- one docs example does, and protobuf's
#: JSON mapping allows enum names -- in the top-level status and in any nested one (a model
#: version's "MODEL_TRAINED"). `_interpret` turns every one into its number once, so nothing
#: downstream ever sees a name. Unknown names read as code 0 and keep their name in messages.
STATUS_CODES: dict[str, int] = BY_NAME
STATUS_NAMES: dict[int, str] = NAME_OF


def status_code_of(raw: Any) -> int:
    """A status code sent as 10000, "10000" or "SUCCESS" -> 10000; anything unknown -> 0."""
    if isinstance(raw, bool):
        return 0
    if isinstance(raw, int):
        return raw
    if isinstance(raw, str):
        s = raw.strip()
        if s.isdigit():
            return int(s)
        return STATUS_CODES.get(s.upper(), 0)
    return 0


def normalise_status_codes(obj: Any) -> None:
    """Turn every ``status.code`` in a response body that is a name or a numeric string into its
    number, in place, at any depth (the response's own status, a model version's, an input's...).
    Unknown names become 0, which matches no code the tool acts on."""
    stack = [obj]
    while stack:
        cur = stack.pop()
        if isinstance(cur, dict):
            st = cur.get("status")
            if isinstance(st, dict) and isinstance(st.get("code"), str):
                st["code"] = status_code_of(st["code"])
            stack.extend(v for v in cur.values() if isinstance(v, (dict, list)))
        elif isinstance(cur, list):
            stack.extend(v for v in cur if isinstance(v, (dict, list)))


def hourly_limit_hint(resp: httpx.Response | None) -> str:
    """CONN_EXCEED_HOURLY_LIMIT (11003): the account's hourly quota is spent, so retrying within
    seconds (as for CONN_THROTTLED) only burns more of it. Say when to come back: the server's
    Retry-After if it sends one, else an hour from now (the limit is per hour)."""
    wait = retry_after(resp)
    seconds = wait if wait is not None and wait > 0 else 3600.0
    when = time.strftime("%H:%M UTC", time.gmtime(time.time() + seconds))
    return (
        f"the hourly request limit of this Clarifai account is used up; not retried: run again "
        f"after {when} (in about {max(1, round(seconds / 60))} minutes)"
    )


def _not_json(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def interpret(
    method: str, path: str, resp: httpx.Response, label: str, error: Callable[..., ApiError]
) -> dict[str, Any] | ApiError:
    """The success body, or the ApiError this response means (to raise or to retry)."""
    http_status = resp.status_code
    try:  # NaN and infinities are not JSON (RFC 8259 section 6): refused, so none reaches a plan
        data = json.loads(resp.content, parse_constant=_not_json)
    except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: absurdly deep nesting
        ctype = resp.headers.get("content-type", "no content type").split(";")[0]
        kind = "an empty" if not resp.content else ("a truncated or invalid JSON" if "json" in ctype else f"a non-JSON ({ctype})")
        return error(f"{kind} response (HTTP {http_status}) from {label}", method, path, http_status=http_status)
    if not isinstance(data, dict):
        return error(
            f"unexpected response shape (HTTP {http_status}): a JSON {type(data).__name__}, not an object",
            method,
            path,
            http_status=http_status,
        )
    status = data.get("status")
    if not isinstance(status, dict) or "code" not in status:
        return error(
            f"unexpected response shape (HTTP {http_status}): no status.code",
            method,
            path,
            http_status=http_status,
            body=data,
        )
    raw = status.get("code")
    code = status_code_of(raw)
    normalise_status_codes(data)
    if code == SUCCESS and http_status < 400:
        return data
    name = STATUS_NAMES.get(code) or (raw if isinstance(raw, str) and raw else "")
    desc = str(status.get("description") or "")
    details = str(status.get("details") or "")
    if code == SUCCESS:  # success body on an HTTP error: believe neither, report the HTTP side
        name, desc = "HTTP error", desc or resp.reason_phrase
    what = f"{name} ({code})" if name and code else (name or f"status {code}")
    text = f"{what}, HTTP {http_status}"
    if desc:
        text += f": {desc}"
    if details and details != desc:
        text += f" ({details[:200]})"
    if code == CONN_EXCEED_HOURLY_LIMIT:
        text += "; " + hourly_limit_hint(resp)
    return error(
        text,
        method,
        path,
        code=code,
        http_status=http_status,
        description=desc,
        req_id=str(status.get("req_id") or ""),
        body=data,
    )
