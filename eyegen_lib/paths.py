"""Where things live: the project root, the outputs folder, the notebooks (artifact files: :mod:`eyegen_lib.registry`)."""
from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent


def project_root() -> Path | None:
    """The checkout that holds ``pyproject.toml`` and ``notebooks/`` (None for a non-editable install)."""
    root = PACKAGE_DIR.parent
    return root if (root / "pyproject.toml").exists() and (root / "notebooks").is_dir() else None


def output_dir() -> Path:
    """Root of everything a run writes: ``$EYEGEN_OUTPUT_DIR``, else ``<project>/outputs``, else ``./outputs``."""
    env = os.environ.get("EYEGEN_OUTPUT_DIR")
    if env:
        return Path(env).expanduser().resolve()
    root = project_root()
    return (root / "outputs") if root else Path.cwd() / "outputs"


def notebooks_dir() -> Path:
    root = project_root()
    if root is None:
        raise FileNotFoundError("the notebooks live in the eyegen checkout; install it with `pip install -e .` from a clone")
    return root / "notebooks"
