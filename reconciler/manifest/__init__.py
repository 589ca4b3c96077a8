"""manifest: the manifest language, from bytes on disk to a desired `State`.

Owns YAML loading with line:col positions (safe, no duplicate keys, aliases expanded under a cap),
the JSON Schema check, overlays and variables, the semantic checks (references, cycles, id rules),
YAML writing, locating values for edits in place (`yamledit`),
and the conversion of Clarifai SDK workflow files. Pure: no network. May import `core` only.
"""
