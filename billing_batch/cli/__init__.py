"""The command line: `main` parses the options (parser) and hands the command to dispatch, which runs it
through its module (billing, post, tools); terminal holds what the terminal shows, exits the exit codes.

Nothing heavy is imported before the options are parsed: `--version` and `--help` answer at once."""
from __future__ import annotations

from billing_batch.cli.parser import parser


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    from billing_batch.cli.dispatch import (
        dispatch,  # the whole program: imported once there is a command to run
    )

    return dispatch(args)
