"""What made an artifact: profile, seed, model config, a fingerprint of its data, the code.

Every checkpoint and every saved prediction carries a *provenance* record::

    {"profile": "cpu", "seed": 0, "config": {...}, "data": {"fingerprint": "3f1c…", "recipe": {...}},
     "library_version": "0.1.0", "code_version": "0459d9f" | "unknown", "created": "2026-…"}

Two records *match* when profile, seed, config and data fingerprint are equal: that is what
decides whether an artifact may be loaded for a run. The library and code versions are recorded
for the reader, not compared (a commit that only touches a notebook must not invalidate every
model); what changes the data — the renderer — is versioned inside the data recipe
(:data:`eyegen_lib.data.synthetic.RENDERER_VERSIONS`, one per modality).

A *data recipe* is a small JSON-able description of the data an artifact was trained or computed
on — the renderer spec and version, the person split, how pairs or targets were drawn — never
the pixels themselves: rendered pixels may differ in the last bit between CPUs, the recipe does not.
"""
from __future__ import annotations

import functools
import hashlib
import json
import subprocess
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from typing import Any

from .checkpoint import config_to_dict, provenance_differences  # the second re-exported here
from .paths import PACKAGE_DIR
from .version import __version__

__all__ = ["fingerprint", "source_recipe", "indices_recipe", "data_recipe", "make_provenance",
           "provenance_differences", "code_version", "MATCH_KEYS", "with_config", "identity"]

# The fields that must be equal for an artifact to serve a run.
MATCH_KEYS = ("profile", "seed", "config", "data fingerprint")


def _canonical(obj: Any) -> Any:
    """Plain JSON types with a stable order: tuples → lists, numpy/torch scalars → Python numbers."""
    if hasattr(obj, "item") and getattr(obj, "ndim", 1) == 0:
        obj = obj.item()
    if isinstance(obj, Mapping):
        return {str(k): _canonical(v) for k, v in sorted(obj.items(), key=lambda kv: str(kv[0]))}
    if isinstance(obj, (list, tuple)):
        return [_canonical(v) for v in obj]
    if hasattr(obj, "tolist"):  # a tensor or array of indices
        return _canonical(obj.tolist())
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    try:
        return config_to_dict(obj)
    except TypeError:
        raise TypeError(f"cannot fingerprint a {type(obj).__name__}: describe the data with plain values") from None


def fingerprint(obj: Any, length: int = 16) -> str:
    """A short sha256 of ``obj``'s canonical JSON (order of dict keys does not matter)."""
    text = json.dumps(_canonical(obj), sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def source_recipe(source) -> dict:
    """A data source as a recipe: a ``SyntheticEyes`` by its spec and the renderer's version; a
    dataset read from disk by its class, root folder and length."""
    from .data.synthetic import RENDERER_VERSIONS, SyntheticEyes

    if isinstance(source, SyntheticEyes):
        return {"renderer": source.spec.modality, "renderer_version": RENDERER_VERSIONS[source.spec.modality],
                "spec": config_to_dict(source.spec)}
    if hasattr(source, "recipe"):  # a run's dataset: its name, roles of its splits and a manifest of the files read
        return source.recipe()
    root = getattr(source, "root", None)
    return {"dataset": type(source).__name__, "root": str(root) if root is not None else None, "length": len(source)}


def indices_recipe(indices: Iterable[int] | None) -> dict:
    """Which samples: their count and a fingerprint of the sorted list (None = all)."""
    if indices is None:
        return {"indices": "all"}
    values = sorted(int(i) for i in indices)
    return {"count": len(values), "indices": fingerprint(values)}


def data_recipe(source=None, *, split: Mapping | None = None, indices=None, upstream: Mapping | None = None,
                **details) -> dict:
    """The recipe of an artifact's data: its source, the person split, which indices, the
    fingerprints of upstream artifacts it depends on (e.g. the segmenter whose pseudo-labels a
    refiner trained on), and any further ``details`` (pairs per image, seeds of target draws …)."""
    recipe: dict[str, Any] = {}
    if source is not None:
        recipe["source"] = source_recipe(source)
    if split is not None:
        recipe["split"] = {str(k): sorted(int(p) for p in v) for k, v in split.items()}
    if indices is not None:
        recipe["samples"] = indices_recipe(indices)
    if upstream:
        recipe["upstream"] = dict(upstream)
    recipe.update(details)
    return _canonical(recipe)


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
    recipe = _canonical(dict(data))
    # a real-data run is filed as "cpu+openeds": it never matches (or is served) a renderer run's artifact
    return {"profile": getattr(profile, "run_name", getattr(profile, "name", profile)), "seed": int(seed), "config": config_to_dict(config),
            "data": {"fingerprint": fingerprint(recipe), "recipe": recipe},
            "library_version": __version__, "code_version": code_version(),
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds")}


def with_config(provenance: Mapping | None, config: Any) -> dict | None:
    """The same run's provenance for a model of another config (a snapshot of a shorter run)."""
    return None if provenance is None else {**provenance, "config": config_to_dict(config)}


def identity(provenance: Mapping) -> str:
    """A fingerprint of what makes an artifact match a run (profile, seed, config, data): how a
    downstream artifact (a refiner trained on a segmenter's pseudo-labels) cites it."""
    return fingerprint({"profile": provenance.get("profile"), "seed": provenance.get("seed"),
                        "config": provenance.get("config"), "data": (provenance.get("data") or {}).get("fingerprint")})
