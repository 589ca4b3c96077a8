"""The live read of an app's review side (a part of `live.read_live`): collaborators, datasets with
their versions, and tasks, each listed only when asked for (`state.SECTION_KINDS`).

- Collaborators: ListCollaborators (`.../collaborators`), one per user (the API's collaborator id
  is kept as `server_id`, for DeleteCollaborators).
- Datasets: ListDatasets, leaving out the app lease's (`idrules.is_lease_dataset`: they come and go
  with every apply, and are no manifest's), then ListDatasetVersions for each (concurrently); versions newest first by
  parsed `created_at` (`live.timestamp_key`, server order breaking ties); a dataset's `version` is
  its newest version's definition.
- Tasks: ListTasks. A task carrying the tool's marker is known by the manifest id the marker names
  (`state.marker_key`); a second task with the same id (an apply whose answer was lost posted it
  again) reads as ``ID~SERVER_ID`` -- managed and in no manifest, so the next plan deletes it. A
  task without the marker is unmanaged and known by its API id.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

from reconciler.api import liveshape
from reconciler.api.client import Client
from reconciler.api.codecs import CollaboratorCodec, DatasetCodec, TaskCodec
from reconciler.api.transport import api_path
from reconciler.core.idrules import is_lease_dataset
from reconciler.core.state import Collaborator, Dataset, Task

#: How a duplicate of a managed task is known in a live state: its manifest id, this, its API id.
DUPLICATE_MARK = "~"


@dataclass(frozen=True)
class ReviewSide:
    collaborators: tuple[Collaborator, ...] = ()
    datasets: tuple[Dataset, ...] = ()
    tasks: tuple[Task, ...] = ()


def read(
    client: Client, pool: ThreadPoolExecutor, base: str, lists: dict[str, Future[list[dict[str, Any]]]], app_id: str, owner: str
) -> ReviewSide:
    """The review side from the listings already started (`lists`: section key -> future)."""
    from reconciler.api.live import timestamp_key

    out = ReviewSide()
    if "collaborators" in lists:
        raw = lists["collaborators"].result()
        liveshape.check("collaborators", raw, "GET", base + api_path("collaborators"))
        out = replace(out, collaborators=tuple(CollaboratorCodec.from_api(c) for c in raw))
    if "datasets" in lists:
        raw = lists["datasets"].result()
        liveshape.check("datasets", raw, "GET", base + api_path("datasets"))
        raw = [d for d in raw if not is_lease_dataset(str(d["id"]))]  # the app lease: never a resource
        versions = {str(d["id"]): pool.submit(list_dataset_versions, client, base, str(d["id"])) for d in raw}
        datasets = []
        for d in raw:
            vs = sorted(versions[str(d["id"])].result(), key=lambda v: timestamp_key(v.get("created_at")), reverse=True)
            datasets.append(DatasetCodec.from_api(d, vs))
        out = replace(out, datasets=tuple(datasets))
    if "tasks" in lists:
        raw = lists["tasks"].result()
        liveshape.check("tasks", raw, "GET", base + api_path("tasks"))
        ordered = sorted(raw, key=lambda t: timestamp_key(t.get("created_at")))  # the oldest keeps the id
        tasks: list[Task] = []
        seen: set[str] = set()
        for t in ordered:
            task = TaskCodec.from_api(t, app_id, owner)
            if task.managed and task.id in seen:
                task = replace(task, id=f"{task.id}{DUPLICATE_MARK}{task.server_id}")
            seen.add(task.id)
            tasks.append(task)
        out = replace(out, tasks=tuple(tasks))
    return out


def list_dataset_versions(client: Client, base: str, dataset_id: str) -> list[dict[str, Any]]:
    path = base + api_path("datasets", dataset_id, "versions")
    versions = client.list_all(path, "dataset_versions")
    liveshape.check("dataset_versions", versions, "GET", path)
    return versions
