"""`reconciler completion bash|zsh`: a shell completion script for every verb and flag, generated
from the same argparse parser the CLI runs (shtab), so it cannot fall out of date."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from reconciler.commands.common import EXIT_OK, verb

if TYPE_CHECKING:
    from reconciler.commands.common import Subparsers


def add_parser(sub: Subparsers) -> None:
    c = verb(
        sub,
        "completion",
        "print a shell completion script",
        'eval "$(reconciler completion bash)"   # or, for zsh: reconciler completion zsh > ~/.zfunc/_reconciler',
    )
    c.add_argument("shell", choices=("bash", "zsh"), help="the shell to complete in")
    c.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import shtab

    # the whole CLI's parser, which `cli.build_parser` hands every verb (commands never import cli)
    print(shtab.complete(args.root_parser, shell=args.shell))
    return EXIT_OK
