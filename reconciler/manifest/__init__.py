"""manifest: the manifest language, from bytes on disk to a desired `State`.

Owns YAML loading with line:col positions (safe, no duplicate keys, no aliases), the JSON Schema
check, overlays and variables, the semantic checks (references, cycles, id rules), YAML writing,
and the conversion of Clarifai SDK workflow files. Pure: no network. May import `core` only.
"""
