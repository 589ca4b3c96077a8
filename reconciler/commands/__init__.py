"""One module per verb of the command line.

Contract of a verb module `reconciler/commands/<verb>.py`:
- `add_parser(sub)` adds the verb to the `reconciler` parser's subcommands (with `common.verb`:
  a one-line summary and an example) with its arguments, and sets ``func`` to its command
  function (`run`; `sandbox serve`'s is `sandbox.serve_run`);
- `run(args: argparse.Namespace) -> int` does the verb and returns its exit code for a result
  (`common.EXIT_OK`, `EXIT_CHANGES` for changes present, `EXIT_ERROR` for a refusal it words
  itself). Errors are raised (`ReconcilerError`, `ManifestError`), never printed here:
  `cli.main` is the only place that maps them to a line on stderr and an exit code.
Heavy imports stay inside `run` (and behind `TYPE_CHECKING` for annotations), so `--help` and
`validate` start fast. A new verb is listed in `cli.VERBS`, which builds the parser.
Shared argument groups, the connect helper and the output writer are in `common.py`.
"""
