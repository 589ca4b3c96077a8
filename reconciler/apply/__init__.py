"""apply: executes a `planning.plan.Plan` against the API.

Owns the scheduler (a task graph run on a thread pool, interrupt handling, the report) and the
executors, one module per resource kind, registered in one `(Op, Kind) -> executor` table that is
checked at import against every pair the planner can emit. May import `planning`, `api`, `core`.
"""
