"""Writing manifest data as YAML that the manifest loader reads back to the same values (export,
convert, tune's overlays)."""

from __future__ import annotations

import re
from typing import Any

import yaml

from reconciler.manifest.yamlload import _EXP_FLOAT

#: characters YAML 1.1 reads as line breaks (folded to a space or a newline unless escaped)
_FOLDED = re.compile("[\x85\u2028\u2029]")

# --- YAML --------------------------------------------------------------------------------------


class _Dumper(yaml.SafeDumper):
    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        # indent list items under their key, as the examples are written
        return super().increase_indent(flow, False)


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    # The manifest loader reads 1e3 as a number (YAML 1.2); PyYAML's 1.1 resolver would write it
    # plain. Quote such strings so an id like "1e3" round-trips.
    style = "'" if _EXP_FLOAT.match(value) else None
    if "\n" in value:
        style = "|"
    if _FOLDED.search(value):
        style = '"'  # NEL and the Unicode line / paragraph separators: escaped, or YAML reads them as breaks
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def dump_yaml(data: dict[str, Any], schema_ref: str | None = None, header: tuple[str, ...] = ()) -> str:
    """Manifest data as YAML, keys in the order given, with an optional schema modeline."""
    lines = [f"# yaml-language-server: $schema={schema_ref}"] if schema_ref else []
    lines += [f"# {h}" if h else "#" for h in header]
    body = yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True, default_flow_style=False, width=100)
    return "\n".join(lines) + ("\n" if lines else "") + body
