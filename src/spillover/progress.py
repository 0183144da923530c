"""Progress reporting for long work, decoupled from the terminal.

Library code reports through a :class:`Progress`; the CLI passes one that draws a Rich progress bar,
tests and library users get the silent default.
"""

from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    def task(self, description: str, total: float | None = None) -> object:
        """Start a task (e.g. "reading GA4 files") and return its handle."""

    def advance(self, task: object, amount: float = 1, description: str | None = None) -> None:
        """Advance a task, optionally changing its description (e.g. to the current file)."""


class NullProgress:
    """Reports nothing."""

    def task(self, description: str, total: float | None = None) -> object:
        return None

    def advance(self, task: object, amount: float = 1, description: str | None = None) -> None:
        return None


class RichProgress:
    """Draws Rich progress bars on stderr; use as a context manager."""

    def __init__(self, *, transient: bool = False, enabled: bool = True):
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress as _RichProgress,
            TextColumn,
            TimeElapsedColumn,
        )

        self._progress = _RichProgress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=Console(stderr=True),
            transient=transient,
            disable=not enabled,
        )

    def __enter__(self) -> RichProgress:
        self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.stop()

    def task(self, description: str, total: float | None = None) -> object:
        return self._progress.add_task(description, total=total)

    def advance(self, task: object, amount: float = 1, description: str | None = None) -> None:
        if description is None:
            self._progress.advance(task, amount)
        else:
            self._progress.update(task, advance=amount, description=description)
