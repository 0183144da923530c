"""Generates docs/cli.md from the CLI itself, so the reference can never drift from ``--help``.

Run ``python -m spillover.clidocs > docs/cli.md`` (or ``make docs``); a test fails when the file is
out of date.
"""

from __future__ import annotations

import typer
from typer.testing import CliRunner

from spillover.cli import app

HEADER = """# Command-line reference

Generated from `spillover --help` by `make docs`; do not edit by hand.
Every command takes `-h/--help`. Exit codes: 0 success, 2 bad input (the message says which file,
line and column, and what to do), 1 internal error (`--debug` shows the traceback).
"""


def command_paths(typer_app: typer.Typer = app, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every command and group of the CLI, as argument paths (the root is the empty path)."""
    paths = [prefix]
    for command in typer_app.registered_commands:
        name = command.name or command.callback.__name__.replace("_", "-")
        paths.append((*prefix, name))
    for group in typer_app.registered_groups:
        paths.extend(command_paths(group.typer_instance, (*prefix, group.name)))
    return paths


def help_text(path: tuple[str, ...]) -> str:
    result = CliRunner().invoke(app, [*path, "--help"], prog_name="spillover", env={"COLUMNS": "100", "NO_COLOR": "1", "TERM": "dumb"})
    if result.exit_code != 0:
        raise RuntimeError(f"`spillover {' '.join(path)} --help` failed: {result.output}")
    return result.output.rstrip()


def render() -> str:
    """The whole reference as Markdown."""
    parts = [HEADER]
    for path in command_paths():
        name = " ".join(("spillover", *path))
        parts.append(f"\n## `{name}`\n\n```text\n{help_text(path)}\n```\n")
    return "".join(parts)


if __name__ == "__main__":
    print(render(), end="")
