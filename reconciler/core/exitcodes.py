"""The command line's exit codes, said once (README "Exit codes"; `cli.main` maps errors to them).

- 0 `EXIT_OK`: success; no changes (`plan --detailed-exitcode`), no drift.
- 1 `EXIT_ERROR`: an error: bad input, API failure, a refused or failed apply, a saved plan the
  live app changed since. Usage errors too (not argparse's 2).
- 2 `EXIT_CHANGES`: changes present (`plan --detailed-exitcode`), drift (`drift`).
- 3 `EXIT_DEFERRED`: apply applied what it could, and some actions wait for a model that cannot
  train yet (no labelled inputs): label them and apply again. Non-zero, so `set -e` still stops.
`combine_exit_codes` gives a project (many apps) one code: 1 if any app failed, else 3 if any
was deferred, else 2 if any has changes, else 0.
"""

from __future__ import annotations

from collections.abc import Iterable

EXIT_OK, EXIT_ERROR, EXIT_CHANGES, EXIT_DEFERRED = 0, 1, 2, 3


def combine_exit_codes(codes: Iterable[int]) -> int:
    """One exit code for many apps (see the module docstring)."""
    seen = set(codes)
    for code in (EXIT_ERROR, EXIT_DEFERRED, EXIT_CHANGES):
        if code in seen:
            return code
    return EXIT_OK
