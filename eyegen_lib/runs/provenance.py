"""What made an artifact: profile, seed, model config, a fingerprint of its data, the code.

Every checkpoint and every saved prediction carries a *provenance* record::

    {"profile": "cpu", "seed": 0, "config": {...}, "data": {"fingerprint": "3f1c…", "recipe": {...}},
     "library_version": "0.1.0", "code_version": "0459d9f" | "unknown", "created": "2026-…"}

Two records *match* when profile, seed, config and data fingerprint are equal: that is what
decides whether an artifact may be loaded for a run. The library and code versions are recorded
for the reader, not compared (a commit that only touches a notebook must not invalidate every
model); what changes the data — the renderer — is versioned inside the data recipe
(:data:`eyegen_lib.science.data.synthetic.RENDERER_VERSIONS`, one per modality).

The data it was made from is a *data recipe* (:mod:`eyegen_lib.science.data.recipes`, where the
data is described), whose fingerprint the record carries.
"""
from __future__ import annotations

import functools
import subprocess
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from ..core.checkpoint import config_to_dict, provenance_differences  # the second re-exported here
from ..core.paths import PACKAGE_DIR
from ..core.version import __version__
from ..science.data.recipes import canonical, fingerprint

__all__ = ["make_provenance", "provenance_differences", "code_version", "MATCH_KEYS", "with_config"]

# The fields that must be equal for an artifact to serve a run.
MATCH_KEYS = ("profile", "seed", "config", "data fingerprint")


@functools.lru_cache(maxsize=1)
def code_version() -> str:
    """The checkout's commit (with ``+dirty`` when files differ from it), else ``"unknown"``."""
    root = PACKAGE_DIR.parent
    try:
        commit = subprocess.run(["git", "-C", str(root), "rev-parse", "--short=12", "HEAD"], capture_output=True,
                                text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return commit + ("+dirty" if dirty else "") if commit else "unknown"


def make_provenance(*, profile, seed: int, config: Any, data: Mapping) -> dict:
    """The provenance record of an artifact made now (``data`` is a :func:`data_recipe`)."""
    recipe = canonical(dict(data))
    # a real-data run is filed as "cpu+openeds": it never matches (or is served) a renderer run's artifact
    return {"profile": getattr(profile, "run_name", getattr(profile, "name", profile)), "seed": int(seed), "config": config_to_dict(config),
            "data": {"fingerprint": fingerprint(recipe), "recipe": recipe},
            "library_version": __version__, "code_version": code_version(),
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds")}


def with_config(provenance: Mapping | None, config: Any) -> dict | None:
    """The same run's provenance for a model of another config (a snapshot of a shorter run)."""
    return None if provenance is None else {**provenance, "config": config_to_dict(config)}
