"""The plan pipeline, once: read the live app a manifest describes, plan, and re-check a saved plan.

Contract:
- `read_app(client, desired) -> State | None` reads the live app `desired` names (its user, else
  the client's), asking only for the manifest's models' versions and for as many concept pages as
  the manifest's concept count needs at once, and for the optional kinds the manifest has sections
  for (`live.read_live`); None when the app does not exist.
  It also refuses relations in knowledge graphs the app lacks (`check_knowledge_graphs`) and
  counts the app's inputs when the default workflow changes (`count_inputs`).
- `plan_app(client, desired, *, targets=()) -> Plan` reads the live app and plans with
  `plan.make_plan`, recording the live app's fingerprint and the client's endpoint, as every plan
  shown, saved, applied or checked for drift is made.
- `saved_plan_client(stored, connect, *, source, user_id=None) -> Client` connects for applying a
  plan loaded from a file (`source` names it in messages): refused (`PlanError`, one line) when
  `user_id` (an explicit --user) is not the plan's user, or when the client `connect(user_id,
  sandbox_db)` gives writes to another endpoint or as another user.
- `check_reviewed(reviewed, fresh, *, saved, source)`: the plan someone reviewed (saved, or shown
  at the terminal) against the plan made again under the app lease (`apply/locked.py`): refused
  when the live app changed since (the endpoint-bound fingerprints differ) or the actions differ.
No output here and no exit codes: callers present the plan and map errors (`cli.main`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from reconciler.core.errors import PlanError, StalePlan
from reconciler.core.state import Kind
from reconciler.planning.actions import Action, Op

if TYPE_CHECKING:
    from reconciler.api.client import Client
    from reconciler.core.state import State
    from reconciler.planning.actions import Plan


def read_app(client: Client, desired: State) -> State | None:
    """The live app `desired` describes, or None when it does not exist; with its input count
    when `desired` changes its default workflow (`count_inputs`)."""
    from reconciler.api.live import read_live

    live = read_live(
        client,
        desired.app.id,
        user_id=desired.user_id,
        want_models={m.id for m in desired.models},
        expect_concepts=len(desired.concepts),
        sections=desired.sections,
    )
    check_knowledge_graphs(client, desired, live)
    return count_inputs(client, desired, live) if live is not None else None


def check_knowledge_graphs(client: Client, desired: State, live: State | None) -> None:
    """Refuse (PlanError, one line) a relation the manifest puts in a knowledge graph the app does
    not have: a non-empty `knowledge_graph_id` names a graph made with PostKnowledgeGraphs, ""
    being the app's own (clarifai-grpc resources.proto ConceptRelation.knowledge_graph_id), and
    the API may refuse a relation in a missing one (quirk knowledge-graph-must-exist). The tool
    does not create knowledge graphs: the API can neither change nor delete them (service.proto
    has ListKnowledgeGraphs and PostKnowledgeGraphs only), so it could not own their lifecycle.
    One ListKnowledgeGraphs, only when the manifest names a graph; a new app has none."""
    named = sorted({r.knowledge_graph_id for r in desired.relations if r.knowledge_graph_id})
    if not named:
        return
    from reconciler.api.live import knowledge_graph_ids

    have = knowledge_graph_ids(client, desired.app.id, desired.user_id) if live is not None else set()
    missing = [kg for kg in named if kg not in have]
    if missing:
        rel = next(r for r in desired.relations if r.knowledge_graph_id == missing[0])
        raise PlanError(
            f"concept_relation/{rel.key}: knowledge graph {missing[0]} does not exist in app {desired.app.id}"
            + (f" (nor {', '.join(missing[1:])})" if missing[1:] else "")
            + "; the tool does not create knowledge graphs (the API cannot change or delete them): create it "
            "with PostKnowledgeGraphs first, or leave knowledge_graph_id out to use the app's own graph"
        )


def count_inputs(client: Client, desired: State, live: State) -> State:
    """`live` with `app.input_count` read when `desired` changes the app's default workflow:
    changing the default (base) workflow re-indexes the app's inputs, which may take long and
    cost money (Clarifai/docs docs/create/workflows/base-workflows.md), so the plan says how many
    and insists on the manifest's `app.reindex`. One GetInputCount, only then. If it cannot be
    read, a manifest that states `reindex` still plans (the words then give no number); one that
    does not is refused here, since nobody can tell it whether the change is harmless."""
    import dataclasses

    from reconciler.api.live import read_input_count
    from reconciler.core.errors import ApiError

    want = desired.app.default_workflow
    if not want or want == live.app.default_workflow:
        return live
    try:
        count: int | None = read_input_count(client, desired.app.id, desired.user_id)
    except ApiError as err:
        if desired.app.reindex is None:
            raise PlanError(
                f"app/{desired.app.id}: changing default_workflow to {want} re-indexes the app's inputs, and "
                f"their number could not be read ({err}); state app.reindex: true or false in the manifest"
            ) from None
        count = None
    return dataclasses.replace(live, app=dataclasses.replace(live.app, input_count=count))


def plan_app(client: Client, desired: State, *, targets: Sequence[str] = ()) -> Plan:
    """The plan that turns the live app into `desired`, with the live fingerprint and endpoint."""
    from reconciler.api.live import fingerprint
    from reconciler.planning.plan import make_plan

    live = read_app(client, desired)
    return make_plan(desired, live, live_fingerprint=fingerprint(live) if live else "", targets=targets, endpoint=client.endpoint)


def saved_plan_client(
    stored: Plan, connect: Callable[[str | None, str | None], Client], *, source: str, user_id: str | None = None
) -> Client:
    """The client for applying the saved plan `stored` (see the module docstring): refused when
    `user_id` is not the plan's user, or when the client writes to another endpoint or as another
    user. `connect(user_id, sandbox_db)` makes it: `sandbox_db` is the embedded sandbox file the
    plan was made on, when it was made on one."""
    from reconciler.api.endpoint import sandbox_of_endpoint

    if user_id and user_id != stored.user_id:
        raise PlanError(f"the plan in {source} was made for user {stored.user_id or 'me'}, not {user_id}; make a new plan")
    client = connect(stored.user_id, sandbox_of_endpoint(stored.endpoint))
    if client.endpoint != stored.endpoint:
        raise PlanError(
            f"the plan in {source} was made against {stored.endpoint}, but this apply would "
            f"write to {client.endpoint}; apply it where it was made, or make a new plan"
        )
    if client.user_id != stored.user_id:
        raise PlanError(
            f"the plan in {source} was made for user {stored.user_id or 'me'}, but this apply "
            f"would write as user {client.user_id or 'me'}; make a new plan"
        )
    return client


def apply_saved_plan(
    stored: Plan, connect: Callable[[str | None, str | None], Client], *, source: str, user_id: str | None = None
) -> tuple[Client, Plan]:
    """The client and the re-checked plan for applying `stored` outside the app lease (a project's
    plan set is prepared this way, then applied under the lease by `apply.locked.apply_app`, which
    checks it again): `saved_plan_client`, then planning again must give the same live app and
    the same actions (`check_reviewed`)."""
    client = saved_plan_client(stored, connect, source=source, user_id=user_id)
    fresh = plan_app(client, stored.desired, targets=stored.targets)
    if creates_app(stored) and creates_app(fresh):  # the app is still missing: the same actions
        if [_what(a) for a in fresh.actions] != [_what(a) for a in stored.actions]:
            raise StalePlan(f"the plan in {source} no longer matches what applying it would do; make a new plan")
        return client, fresh
    check_reviewed(stored, fresh, saved=True, source=source)
    return client, fresh


def creates_app(plan: Plan) -> bool:
    """Whether `plan` was made while its app did not exist (its first action creates it)."""
    return any(a.op is Op.CREATE and a.kind is Kind.APP for a in plan.actions)


def check_reviewed(reviewed: Plan, fresh: Plan, *, saved: bool, source: str, app_created: bool = False) -> None:
    """Refuse (`PlanError`, one line, nothing written yet) to apply `reviewed` -- the plan someone
    saw, saved in `source` (`saved`) or shown at the terminal -- unless planning again now, under
    the app lease, gives `fresh` with the same live app and the same actions. A plan made while the
    app did not exist is compared after the app was created (by this apply: `app_created`, or by
    someone else): `fresh` must then be the same actions without the app's creation."""
    from reconciler.planning.planfile import same_plan
    from reconciler.planning.serialize import bound_fingerprint

    done = "only the app was created" if app_created else "nothing was changed"
    if saved:
        changed = f"the live app {reviewed.app_id} changed since the plan in {source} was made; {done}; make a new plan"
    else:
        changed = (
            f"app {reviewed.app_id} changed since the plan shown (another apply finished meanwhile?); {done}; run apply again"
        )
    if creates_app(reviewed):
        # The same resources created, nothing else (no update, adopt or delete: nobody else filled
        # the app). The contents are not compared: the plan made without an app could not know
        # the owner's user id that fills an annotation writer's default (`plan.fill_implicit`).
        want = [_what(a) for a in reviewed.actions if not (a.op is Op.CREATE and a.kind is Kind.APP)]
        if [_what(a) for a in fresh.actions] != want:
            raise StalePlan(changed)
        return
    if bound_fingerprint(fresh.endpoint, fresh.user_id, fresh.app_id, fresh.live_fingerprint) != bound_fingerprint(
        reviewed.endpoint, reviewed.user_id, reviewed.app_id, reviewed.live_fingerprint
    ):
        raise StalePlan(changed)
    if not same_plan(fresh, reviewed):
        raise PlanError(
            f"the plan in {source} no longer matches what applying it would do "
            "(was it made by another version of reconciler?); make a new plan"
            if saved
            else changed
        )


def _what(a: Action) -> tuple[Op, Kind, str]:
    return (a.op, a.kind, a.id)
