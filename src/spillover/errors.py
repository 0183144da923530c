"""The spillover exception tree.

Every error a user can cause derives from :class:`SpilloverError` and from the matching builtin, so
callers may catch either. Messages say what was wrong, where (file, line, column, stage) and what to
do; only ``cli.py`` turns them into exit codes.
"""

from __future__ import annotations

__all__ = [
    "SpilloverError",
    "SpilloverInputError",
    "SpilloverConfigError",
    "SpilloverIneligibleError",
    "SpilloverEngineError",
    "SpilloverStageError",
    "SpilloverQueryError",
]


class SpilloverError(Exception):
    """Base class of every error spillover raises on purpose."""

    exit_code = 1


class SpilloverInputError(ValueError, SpilloverError):
    """Input files or arguments are unusable as given (missing columns, unreadable file, bad flag)."""

    exit_code = 2


class SpilloverConfigError(SpilloverInputError):
    """``spillover.toml`` or the project key is missing, unreadable or invalid."""


class SpilloverIneligibleError(SpilloverInputError):
    """The data is too thin to train a model honestly (too few positives, negatives or days of history)."""


class SpilloverQueryError(SpilloverInputError):
    """A user query was rejected (not read-only) or failed in the engine."""


class SpilloverEngineError(RuntimeError, SpilloverError):
    """The engine could not be reached or refused an operation spillover needed."""


class SpilloverStageError(RuntimeError, SpilloverError):
    """A pipeline stage failed; the message names the stage and the step."""

    def __init__(self, stage: str, step: str, cause: BaseException | str):
        self.stage = stage
        self.step = step
        super().__init__(f"stage {stage!r}, step {step!r} failed: {cause}")
