"""Runs the pipeline's stages in order and records each run in ``ops_runs``.

A stage is a function ``(con, config, progress) -> {table_name: row_count}`` that reads tables of
earlier stages and writes only its own. Stages register themselves in :data:`STAGES` in run order;
later capabilities (identity, profiles, impact, predict, ...) append to it.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import pyarrow as pa

from spillover import __version__
from spillover.engine import append_rows
from spillover.errors import SpilloverInputError, SpilloverStageError
from spillover.ingest.quarantine import now_utc
from spillover.progress import NullProgress, Progress

if TYPE_CHECKING:
    from ibis.backends import BaseBackend

    from spillover.config import Config

RUNS_TABLE = "ops_runs"

StageFn = Callable[["BaseBackend", "Config", Progress], dict[str, int]]


def _stage_ga4(con: BaseBackend, config: Config, progress: Progress) -> dict[str, int]:
    from spillover.stage.ga4_events import build_ga4_staging

    return build_ga4_staging(con, config=config, progress=progress)


def _identity(con: BaseBackend, config: Config, progress: Progress) -> dict[str, int]:
    from spillover.identity.graph import build_identity

    return build_identity(con, config, progress)


def _profiles(con: BaseBackend, config: Config, progress: Progress) -> dict[str, int]:
    from spillover.profiles.build import build_profiles

    return build_profiles(con, config, progress)


def _predict(con: BaseBackend, config: Config, progress: Progress) -> dict[str, int]:
    from spillover.predict.build import build_predictions

    return build_predictions(con, config, progress)


def _impact(con: BaseBackend, config: Config, progress: Progress) -> dict[str, int]:
    from spillover.impact.run import build_impact

    return build_impact(con, config, progress)


#: Stage name -> function, in run order.
STAGES: dict[str, StageFn] = {
    "stage": _stage_ga4, "identity": _identity, "profiles": _profiles, "predict": _predict, "impact": _impact,
}


def config_hash(config: Config) -> str:
    return hashlib.sha256(config.model_dump_json().encode()).hexdigest()[:16]


def run_pipeline(
    con: BaseBackend,
    config: Config,
    *,
    stages: Sequence[str] | None = None,
    progress: Progress | None = None,
) -> list[dict[str, object]]:
    """Run ``stages`` (default: all, in order); return one summary per stage run."""
    progress = progress or NullProgress()
    wanted = list(STAGES) if not stages else list(stages)
    unknown = [s for s in wanted if s not in STAGES]
    if unknown:
        raise SpilloverInputError(f"unknown stage(s) {', '.join(unknown)}; known: {', '.join(STAGES)}")
    task = progress.task("building", total=len(wanted))
    runs = []
    for name in (s for s in STAGES if s in wanted):
        progress.advance(task, 0, description=f"stage {name}")
        started = now_utc()
        clock = time.perf_counter()
        try:
            tables = STAGES[name](con, config, progress)
        except (SpilloverStageError, SpilloverInputError):
            raise
        except Exception as exc:
            raise SpilloverStageError(name, "run", exc) from exc
        run = {
            "stage": name,
            "started_at": started.isoformat(),
            "seconds": time.perf_counter() - clock,
            "tables": tables,
        }
        append_rows(
            con,
            RUNS_TABLE,
            pa.table(
                {
                    "stage": [name],
                    "started_at": [started],
                    "finished_at": [now_utc()],
                    "row_counts": [",".join(f"{t}={n}" for t, n in tables.items())],
                    "config_hash": [config_hash(config)],
                    "spillover_version": [__version__],
                }
            ),
        )
        runs.append(run)
        progress.advance(task, 1)
    return runs
