"""The ``dfkd`` command: one module per subcommand, each registering its flags and calling one library function.

Bad input raises :class:`dfkd.errors.DfkdError`, printed as one ``error: ...`` line (exit status 2).
"""

from __future__ import annotations

import argparse
import os
import sys

from ..errors import DfkdError
from . import assets, compare, corpus, distill, evaluate, general, generate, label, mlm, teacher
from . import list as list_command

#: the subcommands, in the order ``dfkd --help`` lists them
COMMANDS = (compare, teacher, generate, label, distill, evaluate, mlm, corpus, general, assets, list_command)


def build_parser() -> argparse.ArgumentParser:
    """The parser of every subcommand."""
    from .. import __version__

    parser = argparse.ArgumentParser(prog="dfkd", description="Knowledge distillation for NLP with little or "
                                     "no task data: transfer-set generators, one distiller, GLUE evaluation.")
    parser.add_argument("--version", action="version", version=f"dfkd {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        command.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run ``dfkd`` with ``argv`` (default: the command line); the exit status."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except DfkdError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; re-run the same command to resume", file=sys.stderr)
        return 130
    return 0
