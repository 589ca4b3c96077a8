"""Projects: many apps and environments in one repository, declared in `reconciler.yaml`.

Owns the project file (`load.py`: finding it the way git finds `.git`, its schema, its apps),
choosing apps (`select.py`: `--app`, `--changed-since`), running a verb on many apps at once with
one rate limit per credential (`run.py`), presenting the results together (`report.py`: sections,
the summary table, one Markdown comment, one JSON document) and saved plan sets (`planset.py`:
`plan --out DIR`, `apply DIR`).

May import `apply`, `planning`, `api`, `manifest` and `core`; the commands (`commands/project.py`)
import it. Connecting is the commands' (`commands.connect`): `run.ClientPool` is given a connect
function. Nothing here prints (but the one line `run.run_lanes` says on Ctrl-C); the commands do.
"""
