"""spillover: a warehouse-native customer data platform.

The public API is small; heavy modules (Ibis, engines, models) are imported lazily so that the CLI
starts fast.
"""

from __future__ import annotations

from spillover.errors import (
    SpilloverConfigError,
    SpilloverEngineError,
    SpilloverError,
    SpilloverInputError,
    SpilloverStageError,
)

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "SpilloverError",
    "SpilloverInputError",
    "SpilloverConfigError",
    "SpilloverEngineError",
    "SpilloverStageError",
]
