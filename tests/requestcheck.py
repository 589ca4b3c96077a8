"""Every request the tool's `Client` sends, checked against clarifai-grpc's own REST bindings.

The sandbox was written from the same assumptions as the client, so a green suite only proves the
two agree. This module judges the client's requests with nothing of the project's: not the
sandbox's route table (`reconciler/sandbox/routes.py`), only the installed clarifai-grpc package.

- The table: every binding of every method of the V2 service, read from its ``google.api.http``
  option (the primary binding and its ``additional_bindings``): HTTP verb, path template, ``body``
  and the request message. Built once per process (`bindings`).
- Routing: the request's wire path (relative to the client's API base) is split on '/' and each
  segment percent-decoded, as a gateway does before binding variables; ``{field.path}`` matches one
  non-empty segment (every V2 template is of that simple form; `_parse_template` refuses others).
  Where several templates fit, literal words win over variables segment by segment from the left,
  so ``GET .../concepts/relations`` is ListConceptRelations, never GetConcept with concept_id
  "relations": Clarifai's own JSON channel (clarifai_grpc/channel/grpc_json_channel.py, used by
  Clarifai/clarifai-python-grpc's tests/client against the real API) sends exactly such paths, and
  /work/shared/clarifai-api/REFERENCE.md section 1.3 lists the collisions.
- The message, as grpc-gateway maps REST to gRPC: path variables set their (possibly nested)
  fields; ``body: "*"`` makes the JSON body the whole message, ``body: "field"`` that field, and
  with no body the query parameters set fields by (dotted) proto or JSON name, a repeated field
  taking the parameter repeated. Values are parsed with protobuf's json_format, unknown fields
  refused: a gateway drops what it does not know (or answers 400), and either way what the tool
  meant is lost.
- Problems: no binding for the verb and path; a body the binding does not take; query parameters
  the binding does not read (a body binding reads none); an unknown field, a value of the wrong
  type, a bad enum name, a repeated scalar parameter; a body field contradicting a path variable.

`RequestChecker.check(method, url_path, query, body)` returns the RPC and the problems;
`checker.record` keeps every checked request for assertions (tests/conftest.py installs the checker
around `Client.request`).
"""

from __future__ import annotations

import base64
import functools
import json
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote

#: Go's strconv.ParseBool, which grpc-gateway uses for boolean query parameters.
_BOOL_WORDS = {
    **dict.fromkeys(("1", "t", "T", "TRUE", "true", "True"), True),
    **dict.fromkeys(("0", "f", "F", "FALSE", "false", "False"), False),
}
#: Well-known message types a query parameter may carry as a string (grpc-gateway's query parser).
_WKT_FROM_STRING = {
    "google.protobuf.Timestamp",
    "google.protobuf.Duration",
    "google.protobuf.FieldMask",
    "google.protobuf.StringValue",
    "google.protobuf.BytesValue",
}
_WKT_WRAPPED_SCALAR = {
    "google.protobuf.DoubleValue",
    "google.protobuf.FloatValue",
    "google.protobuf.Int64Value",
    "google.protobuf.UInt64Value",
    "google.protobuf.Int32Value",
    "google.protobuf.UInt32Value",
    "google.protobuf.BoolValue",
}


@dataclass(frozen=True)
class Binding:
    """One ``google.api.http`` binding of a V2 method."""

    rpc: str
    verb: str  # GET, POST, PATCH, DELETE, PUT
    template: str
    #: per path segment: the literal word, or the field path of a variable as a tuple of names
    segments: tuple[str | tuple[str, ...], ...]
    body: str  # "" (none), "*" (whole message) or a field name
    input_type: Any  # the request message's Descriptor

    @property
    def rank(self) -> tuple[int, ...]:
        """Lower is more literal: 0 for a literal word, 1 for a variable, per segment from the left."""
        return tuple(0 if isinstance(s, str) else 1 for s in self.segments)


def _parse_template(template: str) -> tuple[str | tuple[str, ...], ...]:
    segs: list[str | tuple[str, ...]] = []
    for seg in template.strip("/").split("/"):
        if seg.startswith("{") and seg.endswith("}"):
            name = seg[1:-1]
            if "=" in name or not name:  # {name=**} and friends: not used by V2 today
                raise ValueError(f"unsupported path template segment {seg!r} in {template}")
            segs.append(tuple(name.split(".")))
        elif "{" in seg or "}" in seg or ":" in seg or "*" in seg:
            raise ValueError(f"unsupported path template segment {seg!r} in {template}")
        else:
            segs.append(seg)
    return tuple(segs)


@functools.lru_cache(maxsize=1)
def bindings() -> tuple[Binding, ...]:
    """Every binding of clarifai-grpc's V2 service, in declaration order."""
    from clarifai_grpc.grpc.api import service_pb2
    from google.api import annotations_pb2

    out: list[Binding] = []
    for method in service_pb2.DESCRIPTOR.services_by_name["V2"].methods:
        rule = method.GetOptions().Extensions[annotations_pb2.http]
        for b in (rule, *rule.additional_bindings):
            kind = b.WhichOneof("pattern")
            if kind is None:
                continue
            if kind == "custom":
                verb, template = b.custom.kind.upper(), b.custom.path
            else:
                verb, template = kind.upper(), getattr(b, kind)
            out.append(Binding(method.name, verb, template, _parse_template(template), b.body, method.input_type))
    return tuple(out)


@functools.lru_cache(maxsize=1)
def _by_shape() -> dict[int, list[Binding]]:
    index: dict[int, list[Binding]] = {}
    for b in bindings():
        index.setdefault(len(b.segments), []).append(b)
    return index


def _fit(b: Binding, parts: list[str]) -> dict[tuple[str, ...], str] | None:
    found: dict[tuple[str, ...], str] = {}
    for seg, part in zip(b.segments, parts):
        if isinstance(seg, str):
            if seg != part:
                return None
        elif not part:
            return None
        else:
            found[seg] = part
    return found


def route(method: str, path: str) -> tuple[Binding | None, dict[tuple[str, ...], str], str]:
    """(binding, path variables, problem) for a request path (no query string, still encoded)."""
    try:
        parts = [unquote(p, errors="strict") for p in path.strip("/").split("/")]
    except UnicodeDecodeError:
        return None, {}, "a path segment does not percent-decode to UTF-8"
    if not path.startswith("/") or "//" in path or path.endswith("/") and path != "/":
        return None, {}, "not a clean path (empty segment, or no leading '/')"
    fits = [(b, v) for b in _by_shape().get(len(parts), []) if (v := _fit(b, parts)) is not None]
    mine = [(b, v) for b, v in fits if b.verb == method.upper()]
    if not mine:
        verbs = sorted({b.verb for b, _ in fits})
        if verbs:
            return None, {}, f"no V2 binding for {method} on this path (bound for {', '.join(verbs)})"
        return None, {}, "no V2 binding has this path"
    best = min(b.rank for b, _ in mine)
    mine = [(b, v) for b, v in mine if b.rank == best]
    if len({b.rpc for b, _ in mine}) > 1:  # not so today: two RPCs on one template would be a conflict
        return None, {}, f"path bound by several RPCs: {sorted({b.rpc for b, _ in mine})}"
    # the most literal of all verbs names the resource: a verb bound only on a less literal template
    # (GET .../models/types is ListModelTypes; DELETE there is not DeleteModel of model 'types')
    if min(b.rank for b, _ in fits) < best:
        better = sorted({b.rpc for b, _ in fits if b.rank < best})
        return None, {}, f"no V2 binding for {method} on this path (a more literal template is {', '.join(better)})"
    return mine[0][0], mine[0][1], ""


# --- building the request message -------------------------------------------------------------------


def _field(desc: Any, name: str) -> Any:
    """A field of message `desc` by proto name or JSON name (as a gateway accepts both)."""
    f = desc.fields_by_name.get(name)
    if f is None:
        f = next((x for x in desc.fields if x.json_name == name), None)
    return f


def _query_value(f: Any, raw: str) -> Any:
    """A query parameter's text as the JSON value json_format takes for field `f` (ValueError if it
    is not one a gateway would parse)."""
    from google.protobuf.descriptor import FieldDescriptor as F

    t = f.type
    if t == F.TYPE_BOOL:
        if raw not in _BOOL_WORDS:
            raise ValueError(f"{raw!r} is not a boolean")
        return _BOOL_WORDS[raw]
    if t == F.TYPE_STRING:
        return raw
    if t == F.TYPE_BYTES:
        base64.b64decode(raw, validate=True)
        return raw
    if t == F.TYPE_ENUM:
        return int(raw) if raw.lstrip("-").isdigit() else raw
    if t in (F.TYPE_FLOAT, F.TYPE_DOUBLE):
        return float(raw)
    if t == F.TYPE_MESSAGE:
        full = f.message_type.full_name
        if full in _WKT_FROM_STRING:
            return raw
        if full in _WKT_WRAPPED_SCALAR:
            inner = f.message_type.fields_by_name["value"]
            return _query_value(inner, raw)
        raise ValueError(f"field of message type {full} cannot be set from a query parameter")
    return int(raw, 10)  # every integer type: decimal digits (json_format checks the range)


def _set_path(tree: dict[str, Any], names: tuple[str, ...], value: Any) -> str:
    """Put `value` at `names` in a JSON-like dict; '' or the conflicting existing value."""
    cur = tree
    for n in names[:-1]:
        nxt = cur.setdefault(n, {})
        if not isinstance(nxt, dict):
            return f"{'.'.join(names)}: {n} is not an object"
        cur = nxt
    old = cur.get(names[-1])
    cur[names[-1]] = value
    return "" if old is None or old == value else repr(old)


def build_message(b: Binding, variables: dict[tuple[str, ...], str], query: list[tuple[str, str]], body: Any) -> list[str]:
    """The problems met building `b`'s request message from the request; none when it is valid."""
    from google.protobuf import json_format, message_factory

    problems: list[str] = []
    tree: dict[str, Any] = {}
    if b.body == "":
        if body is not None:
            problems.append("a body was sent, but this binding declares none (a gateway ignores it)")
    elif body is not None and b.body == "*":
        if not isinstance(body, dict):
            problems.append(f"the body is a JSON {type(body).__name__}, not an object")
        else:
            tree = json.loads(json.dumps(body))  # a copy: path variables go in next
    elif body is not None:
        tree = {b.body: body}
    if query and b.body == "*":
        names = sorted({k for k, _ in query})
        problems.append(f"query parameters {names} on a binding whose body is the whole message (a gateway reads none)")
        query = []
    # path variables: they set their fields, whatever the body says (a gateway overrides)
    path_fields = set()
    for names, value in variables.items():
        path_fields.add(".".join(names))
        clash = _set_path(tree, names, value)
        if clash:
            problems.append(f"the body sets {'.'.join(names)} to {clash}, the path to {value!r}")
    # query parameters (bindings with no body, or whose body is one field)
    grouped: dict[str, list[str]] = {}
    for k, v in query:
        grouped.setdefault(k, []).append(v)
    for key, values in grouped.items():
        desc, fd, names = b.input_type, None, []
        for part in key.split("."):
            if desc is None:
                fd = None
                break
            fd = _field(desc, part)
            if fd is None:
                break
            names.append(fd.name)
            desc = fd.message_type if fd.type == fd.TYPE_MESSAGE else None
        if fd is None or not names or len(names) != len(key.split(".")):
            problems.append(f"query parameter {key!r}: no such field in {b.input_type.name}")
            continue
        if ".".join(names) in path_fields or names[0] == b.body:
            problems.append(f"query parameter {key!r} names a field the path or body binds (a gateway ignores it)")
            continue
        repeated = fd.is_repeated if hasattr(fd, "is_repeated") else fd.label == fd.LABEL_REPEATED
        if len(values) > 1 and not repeated:
            problems.append(f"query parameter {key!r} given {len(values)} times for a field that is not repeated")
            continue
        try:
            converted = [_query_value(fd, v) for v in values]
        except ValueError as err:
            problems.append(f"query parameter {key!r}={values[0]!r}: {err}")
            continue
        _set_path(tree, tuple(names), converted if repeated else converted[0])
    cls = message_factory.GetMessageClass(b.input_type)
    try:
        json_format.ParseDict(tree, cls(), ignore_unknown_fields=False)
    except (json_format.ParseError, TypeError, ValueError, AttributeError) as err:
        text = " ".join(str(err).split()).split(" Available Fields")[0]
        problems.append(f"not a valid {b.input_type.name}: {text[:400]}")
    return problems


# --- the checker ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Checked:
    """One request as the checker saw it."""

    method: str
    path: str  # relative to the API base, still encoded, no query string
    rpc: str  # "" when no binding matched
    problems: tuple[str, ...]
    test: str


@dataclass
class RequestChecker:
    """Checks requests and keeps what it saw; thread-safe (the client sends from a thread pool)."""

    record: list[Checked] = field(default_factory=list)
    current_test: str = ""
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def check(self, method: str, path: str, query: list[tuple[str, str]], body: Any) -> Checked:
        """Check one request: `path` relative to the API base (percent-encoded as sent), `query`
        the decoded query parameters in order, `body` the parsed JSON body or None."""
        b, variables, why = route(method, path)
        problems = [why] if why else build_message(b, variables, query, body)  # type: ignore[arg-type]
        seen = Checked(method.upper(), path, b.rpc if b else "", tuple(problems), self.current_test)
        with self._lock:
            self.record.append(seen)
        return seen

    def check_url(self, method: str, raw_path: str, base_path: str, query: str, body: Any) -> Checked:
        """`check` for a wire request: the URL's raw path and query string; `base_path` is the API
        base's own path (stripped first)."""
        base_path = base_path.rstrip("/")
        path = raw_path[len(base_path):] if base_path and raw_path.startswith(base_path + "/") else raw_path
        try:
            params = parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query), errors="strict")
        except (ValueError, UnicodeDecodeError) as err:
            seen = Checked(method.upper(), path, "", (f"bad query string: {err}",), self.current_test)
            with self._lock:
                self.record.append(seen)
            return seen
        return self.check(method, path, params, body)

    def add(self, seen: Checked) -> None:
        """Record a request judged before (the same request again)."""
        with self._lock:
            self.record.append(seen)

    def problems_of(self, test: str) -> list[Checked]:
        with self._lock:
            return [c for c in self.record if c.test == test and c.problems]

    def by_rpc(self, since: int = 0) -> Counter[str]:
        with self._lock:
            return Counter(c.rpc for c in self.record[since:] if c.rpc)

    def forget(self, seen: list[Checked]) -> None:
        """Drop `seen` from the record: requests a test sent to prove the check reports them."""
        drop = {id(c) for c in seen}
        with self._lock:
            self.record[:] = [c for c in self.record if id(c) not in drop]

    @contextmanager
    def watching(self) -> Iterator[list[Checked]]:
        """The requests checked inside the `with` block (a list filled when it ends)."""
        with self._lock:
            start = len(self.record)
        seen: list[Checked] = []
        try:
            yield seen
        finally:
            with self._lock:
                seen.extend(self.record[start:])


def describe(problems: list[Checked]) -> str:
    return "\n".join(f"  {c.method} {c.path} [{c.rpc or 'no RPC'}] ({c.test}): {'; '.join(c.problems)}" for c in problems)
