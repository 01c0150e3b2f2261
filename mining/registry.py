"""A model registry on disk: one folder per version, a champion pointer, nothing hidden.

Layout under ``settings.models``::

    churn/
      churn-0001/  model.joblib  metadata.json
      churn-0002/  ...
      champion.json   {"version": "churn-0002", "history": [...]}

Why files: a registry must survive the process and be inspectable without code (metadata is
plain JSON: training window, cut-offs, metrics, feature list); a version folder is written
completely before the champion pointer names it, and the pointer is replaced atomically, so
a crash never leaves the scorer pointing at half a model.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import joblib

FAMILY = "churn"


def _root(models_dir: Path) -> Path:
    return Path(models_dir) / FAMILY


def versions(models_dir: Path) -> list[str]:
    """Registered versions, oldest first."""
    root = _root(models_dir)
    if not root.exists():
        return []
    return sorted(p.name for p in root.iterdir() if p.is_dir() and (p / "metadata.json").exists())


def _plain(value: Any) -> Any:
    """JSON-safe copy: NaN and infinities (an AUC of a one-class slice) become null."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "item") and not isinstance(value, str | bytes):  # numpy scalars
        return _plain(value.item())
    return value


def _write_json_atomic(path: Path, payload: dict[str, Any]) -> None:
    payload = _plain(payload)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as handle:
        json.dump(payload, handle, indent=2, sort_keys=True, default=str, allow_nan=False)
    os.replace(tmp, path)


def register(models_dir: Path, artifact: dict[str, Any], metadata: dict[str, Any]) -> str:
    """Store a new version (artifact via joblib, metadata as JSON) and return its name."""
    root = _root(models_dir)
    root.mkdir(parents=True, exist_ok=True)
    existing = versions(models_dir)
    number = int(existing[-1].rsplit("-", 1)[1]) + 1 if existing else 1
    version = f"{FAMILY}-{number:04d}"
    folder = root / version
    folder.mkdir()
    joblib.dump(artifact, folder / "model.joblib", compress=3)
    meta = dict(metadata, version=version, registered_at=datetime.now(UTC).isoformat(timespec="seconds"))
    _write_json_atomic(folder / "metadata.json", meta)
    return version


def metadata(models_dir: Path, version: str) -> dict[str, Any]:
    path = _root(models_dir) / version / "metadata.json"
    if not path.exists():
        raise FileNotFoundError(
            f"model version {version} has no {path}: list versions with `crmwh train --list`"
        )
    return json.loads(path.read_text())


def load(models_dir: Path, version: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(artifact, metadata) of a version."""
    meta = metadata(models_dir, version)
    return joblib.load(_root(models_dir) / version / "model.joblib"), meta


def champion(models_dir: Path) -> str | None:
    """The promoted version, or None before the first promotion."""
    path = _root(models_dir) / "champion.json"
    if not path.exists():
        return None
    return json.loads(path.read_text())["version"]


def promote(models_dir: Path, version: str, reason: str) -> None:
    """Point the champion at ``version``, keeping the history of promotions."""
    metadata(models_dir, version)  # must exist
    path = _root(models_dir) / "champion.json"
    history = json.loads(path.read_text()).get("history", []) if path.exists() else []
    history.append(
        {"version": version, "promoted_at": datetime.now(UTC).isoformat(timespec="seconds"), "reason": reason}
    )
    _write_json_atomic(path, {"version": version, "history": history})
