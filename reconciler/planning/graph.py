"""`reconciler graph`: a manifest's workflow DAG as Mermaid or Graphviz DOT. Pure, offline.

Contract:
- `select_workflow(state, workflow_id)`: the named workflow; with no id, the app's default
  workflow, else the manifest's only workflow; a ReconcilerError naming the choices otherwise.
- `render_mermaid(state, wf)` / `render_dot(state, wf)`: nodes labelled with their id, the model
  (id and type, or the external `user/app/model@version`) and its key settings (comparator and
  thresholds, annotation status, knowledge graph, classifier concepts), edges from `inputs`.
  The Mermaid drawing is `render.mermaid_flowchart`, the same one plan comments use.
"""

from __future__ import annotations

from reconciler.core.errors import ReconcilerError
from reconciler.core.state import State, Workflow
from reconciler.planning.render import mermaid_flowchart, node_label

FORMATS = ("mermaid", "dot")


def select_workflow(state: State, workflow_id: str | None = None) -> Workflow:
    ids = [w.id for w in state.workflows]
    if workflow_id:
        wf = state.workflow(workflow_id)
        if wf is None:
            raise ReconcilerError(f"workflow {workflow_id!r} is not in the manifest (workflows: {', '.join(ids) or 'none'})")
        return wf
    default = state.workflow(state.app.default_workflow) if state.app.default_workflow else None
    if default is not None:
        return default
    if len(ids) == 1:
        return state.workflows[0]
    if not ids:
        raise ReconcilerError(f"the manifest of app {state.app.id} declares no workflow")
    raise ReconcilerError(f"the app has no default workflow in the manifest; pick one with --workflow ({', '.join(ids)})")


def render_mermaid(state: State, wf: Workflow) -> str:
    return "\n".join(mermaid_flowchart(wf, {m.id: m for m in state.models})) + "\n"


def _dot_str(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def render_dot(state: State, wf: Workflow) -> str:
    models = {m.id: m for m in state.models}
    lines = [
        f"digraph {_dot_str(wf.id)} {{",
        "  rankdir=LR;",
        '  node [shape=box, fontname="Helvetica"];',
        f"  label={_dot_str(f'workflow {wf.id} (app {state.app.id})')};",
    ]
    for n in wf.nodes:
        label = "\\n".join(part.replace("\\", "\\\\").replace('"', '\\"') for part in node_label(n, models))
        lines.append(f'  {_dot_str(n.id)} [label="{label}"];')
    for n in wf.nodes:
        for src in n.inputs:
            lines.append(f"  {_dot_str(src)} -> {_dot_str(n.id)};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def render(state: State, workflow_id: str | None = None, fmt: str = "mermaid") -> str:
    if fmt not in FORMATS:
        raise ReconcilerError(f"--format {fmt!r}: use one of {', '.join(FORMATS)}")
    wf = select_workflow(state, workflow_id)
    return render_mermaid(state, wf) if fmt == "mermaid" else render_dot(state, wf)
