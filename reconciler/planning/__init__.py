"""planning: from two states to a reviewed plan, and the views of it.

Owns the pure diff and planner (ordered `Action`s, version bumps, repoints, the default workflow,
delete policy), the plan's serialisation (JSON, saved plans bound to their app), rendering (text,
Markdown), the workflow graph view, and the read-then-plan pipeline that `plan`, `drift` and
`export` share. May import `api`, `manifest` and `core`.
"""
