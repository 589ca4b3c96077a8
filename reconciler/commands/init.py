"""`reconciler init`: write a commented starter manifest for a new app, one that validates and
applies as it is (on the embedded sandbox too), so a first run ends in a successful apply."""

from __future__ import annotations

import argparse
import os
import re
import sys
from typing import TYPE_CHECKING

from reconciler.commands.common import EXIT_OK, verb
from reconciler.core.errors import ReconcilerError

if TYPE_CHECKING:
    from reconciler.commands.common import Subparsers

STARTER = """\
{modeline}# A Clarifai app, declared: `reconciler plan {name}` shows what would change, `reconciler apply
# {name}` makes it so. With no CLARIFAI_PAT set, both run against the embedded local sandbox.
#
# The shape is Clarifai's auto-annotation workflow: a model's predictions are mapped to this app's
# concepts, then a "greater than" and a "less than" thresholder split them, and two annotation
# writers label each input: SUCCESS when the model is confident, PENDING (human review) when not.
version: 1

app:
  id: {app_id}
  description: Auto-annotation, declared in git
  default_workflow: auto-annotate   # the workflow every new input goes through

concepts:                           # ids: letters, digits, - and _, at most 32 characters
  - id: person
  - id: adult

concept_relations:                  # link this app's concepts to clarifai/main's general model's
  - subject: person
    predicate: synonym
    object: {{id: ai_l8TKp2h5, user_id: clarifai, app_id: main}}   # "people"
  - subject: adult
    predicate: synonym
    object: {{id: ai_VPmHr5bm, user_id: clarifai, app_id: main}}   # "adult"

models:
  - id: to-my-concepts
    type: concept-synonym-mapper    # clarifai/main's concepts -> this app's, by the relations above

  - id: confident
    type: concept-thresholder
    comparator: GREATER_THAN
    thresholds: {{person: 0.9, adult: 0.9}}   # a change here makes a new model version

  - id: unsure
    type: concept-thresholder
    comparator: LESS_THAN
    thresholds: {{person: 0.9, adult: 0.9}}

  - id: write-success
    type: annotation-writer
    annotation_status: SUCCESS

  - id: write-pending
    type: annotation-writer
    annotation_status: PENDING      # for human review

workflows:
  - id: auto-annotate
    nodes:
      - id: general
        model: {{id: general-image-recognition, user_id: clarifai, app_id: main,
                version: aa7f35c01e0642fda5cf400f543e7c40}}
      - id: mapper
        model: to-my-concepts
        inputs: [general]
      - id: confident
        model: confident
        inputs: [mapper]
      - id: accept
        model: write-success
        inputs: [confident]
      - id: unsure
        model: unsure
        inputs: [mapper]
      - id: review
        model: write-pending
        inputs: [unsure]
"""


def add_parser(sub: Subparsers) -> None:
    it = verb(sub, "init", "write a commented starter manifest", "reconciler init --app my-app")
    it.add_argument("--app", metavar="ID", help="the app's id (default: this folder's name, made a valid id)")
    it.add_argument("-o", "--output", default="manifest.yaml", metavar="FILE", help="where to write (default: manifest.yaml)")
    it.add_argument("--force", action="store_true", help="replace FILE if it exists")
    it.set_defaults(func=run)


def _app_id(text: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9_-]+", "-", text).strip("-_")[:32] or "my-app"
    return cleaned


def run(args: argparse.Namespace) -> int:
    from reconciler.commands.common import write_output
    from reconciler.core.idrules import CLARIFAI_ID

    app_id = args.app or _app_id(os.path.basename(os.getcwd()))
    problem = CLARIFAI_ID.problem(app_id)
    if problem:
        raise ReconcilerError(f"--app {app_id!r}: {problem}")
    if os.path.lexists(args.output) and not args.force:
        raise ReconcilerError(f"{args.output} exists; not replaced (give --force to replace it, or -o another file)")
    name = args.output if args.output != "-" else "manifest.yaml"
    schema = "schemas/manifest.schema.json"
    modeline = f"# yaml-language-server: $schema={schema}\n" if os.path.isfile(schema) and args.output == "manifest.yaml" else ""
    write_output(args.output, STARTER.format(app_id=app_id, name=name, modeline=modeline))
    if args.output != "-":
        print(
            f"Wrote {args.output} for app {app_id}. Next: reconciler plan {args.output}, then reconciler apply {args.output}",
            file=sys.stderr,
        )
    return EXIT_OK
