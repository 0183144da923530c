"""Trained models on disk: one joblib file per model in ``models/`` beside ``spillover.toml``.

A file holds the fitted estimator and what scoring needs to use it safely (feature names, windows,
the versions it was made with). Loading refuses a file written by another format or scikit-learn
version, or for other features, with a message to retrain, instead of scoring with a model that may
behave differently. Like any pickle, a model file runs code when loaded: load only your own.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from spillover.errors import SpilloverInputError

if TYPE_CHECKING:
    from spillover.config import Config

__all__ = ["ARTEFACT_FORMAT", "load_artefact", "model_path", "models_dir", "save_artefact"]

#: Bumped whenever the contents of a model file change shape.
ARTEFACT_FORMAT = 1
RETRAIN = "retrain with `spillover predict train`"


def models_dir(config: Config) -> Path:
    path = Path(config.predict.models_dir)
    return path if path.is_absolute() else config.project_dir / path


def model_path(config: Config, name: str) -> Path:
    return models_dir(config) / f"{name}.joblib"


def _versions() -> dict[str, str]:
    import sklearn

    from spillover import __version__

    return {"spillover_version": __version__, "sklearn_version": sklearn.__version__}


def save_artefact(config: Config, name: str, payload: dict[str, Any]) -> Path:
    """Write ``payload`` (with the format and versions added) to ``models/<name>.joblib`` atomically."""
    import joblib

    path = model_path(config, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    content = {"format": ARTEFACT_FORMAT, "model": name, "saved_at": dt.datetime.now(dt.timezone.utc), **_versions(), **payload}
    partial = path.with_suffix(".joblib.partial")
    joblib.dump(content, partial)
    os.replace(partial, path)
    return path


def load_artefact(config: Config, name: str) -> dict[str, Any]:
    """Read ``models/<name>.joblib``; refuses a missing file or one made by other versions."""
    import joblib

    path = model_path(config, name)
    if not path.is_file():
        raise SpilloverInputError(f"{path}: no trained {name} model; train it first with `spillover predict train`")
    try:
        content = joblib.load(path)
    except Exception as exc:  # unpickling raises many unrelated types
        raise SpilloverInputError(f"{path}: cannot be read as a spillover model ({exc}); {RETRAIN}") from exc
    if not isinstance(content, dict) or content.get("format") != ARTEFACT_FORMAT or content.get("model") != name:
        raise SpilloverInputError(f"{path}: not a spillover {name} model of format {ARTEFACT_FORMAT}; {RETRAIN}")
    current = _versions()["sklearn_version"]
    if content.get("sklearn_version") != current:
        raise SpilloverInputError(
            f"{path}: trained with scikit-learn {content.get('sklearn_version')}, this is {current}; "
            f"models are not portable between versions, {RETRAIN}"
        )
    return content
