"""Generated manifests of any size, shared by the robustness tests (`tests/test_crash_anywhere.py`,
`tests/test_concurrent_apply.py`, through `tests/robust.py`) and the benchmarks
(`bench/bench_table.py`, which imports it from here).

Contract: `generate(n_concepts, n_models, n_workflows, app_id="gen-app") -> str` is a valid
manifest (YAML text) exercising every resource kind the auto-annotation walkthrough uses, scaled:

- the app, with a description, metadata and a default workflow (`wf-0`);
- `n_concepts` concepts (every third with a description, every fifth with a display name);
- concept relations: one synonym per 50 concepts between neighbours, and one synonym to
  clarifai/main's "people" concept;
- `n_models` models (at least 4): one embedding-classifier (trainable) over the first five
  concepts, one concept-synonym-mapper, then greater-than / less-than thresholders and
  SUCCESS / PENDING annotation writers in turn, each thresholder over ten concepts;
- `n_workflows` workflows: embed (clarifai/main) -> classify -> map -> up to three thresholder ->
  writer branches, spread round-robin over the thresholders and writers.

Deterministic: the same arguments give the same text. `scale(n_concepts)` is the models /
workflows count the benchmark table pairs with a concept count.
"""

from __future__ import annotations

EMBED = ("general-image-embedding", "clarifai", "main", "bb186755eda04f9cbb6fe32e816be104")
MAIN_PEOPLE = "ai_l8TKp2h5"


def scale(n_concepts: int) -> tuple[int, int]:
    """(models, workflows) to pair with `n_concepts` in the benchmark: about 6% and 1%."""
    return max(6, min(600, n_concepts * 3 // 50)), max(1, min(100, n_concepts // 100))


def generate(n_concepts: int, n_models: int, n_workflows: int, app_id: str = "gen-app") -> str:
    n_concepts = max(5, n_concepts)
    n_models = max(4, n_models)
    n_workflows = max(1, n_workflows)
    out = ["version: 1", "app:", f"  id: {app_id}", "  description: generated app",
           "  default_workflow: wf-0", "  reindex: false", "  metadata: {generated: true}", "concepts:"]
    for i in range(n_concepts):
        out.append(f"  - id: c{i}")
        if i % 5 == 0:
            out.append(f"    name: concept {i}")
        if i % 3 == 0:
            out.append(f"    description: generated concept number {i}")
    out.append("concept_relations:")
    for i in range(0, n_concepts - 1, 50):
        out += [f"  - subject: c{i}", "    predicate: synonym", f"    object: c{i + 1}"]
    out += ["  - subject: c0", "    predicate: synonym",
            f"    object: {{id: {MAIN_PEOPLE}, user_id: clarifai, app_id: main}}"]
    emb = "{id: %s, user_id: %s, app_id: %s, version: %s}" % EMBED
    out += ["models:",
            "  - id: classifier", "    type: embedding-classifier", "    description: context-based classifier",
            "    concepts: [c0, c1, c2, c3, c4]", f"    base_embed_model: {emb}",
            "  - id: mapper", "    type: concept-synonym-mapper", "    description: maps through relations"]
    thresholders: list[str] = []
    writers: list[str] = []
    for j in range(n_models - 2):
        kind = j % 4
        if kind in (0, 1):
            mid = f"th-{j}"
            thresholders.append(mid)
            comparator = "GREATER_THAN" if kind == 0 else "LESS_THAN"
            out += [f"  - id: {mid}", "    type: concept-thresholder", f"    description: thresholder {j}",
                    f"    comparator: {comparator}", "    thresholds:"]
            out += [f"      c{(j * 10 + t) % n_concepts}: 0.{50 + (j + t) % 45}" for t in range(10)]
        else:
            mid = f"wr-{j}"
            writers.append(mid)
            status = "SUCCESS" if kind == 2 else "PENDING"
            out += [f"  - id: {mid}", "    type: annotation-writer", f"    description: writer {j}",
                    f"    annotation_status: {status}"]
            if j % 8 == 2:
                out.append("    metadata: {team: vision}")
    writers = writers or ["mapper"]
    thresholders = thresholders or ["mapper"]
    out.append("workflows:")
    for w in range(n_workflows):
        out += [f"  - id: wf-{w}", f"    description: generated workflow {w}", "    nodes:",
                "      - id: embed", f"        model: {emb}",
                "      - id: classify", "        model: classifier", "        inputs: [embed]",
                "      - id: map", "        model: mapper", "        inputs: [classify]"]
        for b in range(3):
            t = thresholders[(w * 3 + b) % len(thresholders)]
            wr = writers[(w * 3 + b) % len(writers)]
            out += [f"      - id: th{b}", f"        model: {t}", "        inputs: [map]",
                    f"      - id: wr{b}", f"        model: {wr}", f"        inputs: [th{b}]"]
    return "\n".join(out) + "\n"
