"""Data recipes: what an artifact's data was, as a small JSON-able description — the renderer spec and
version, the person split, which samples, how pairs or targets were drawn, the upstream artifacts it
learned from — never the pixels themselves (rendered pixels may differ in the last bit between CPUs,
the recipe does not). Its :func:`fingerprint` is what an artifact's provenance
(:mod:`eyegen_lib.runs.provenance`) compares.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any

from ...core.checkpoint import config_to_dict
from .synthetic import RENDERER_VERSIONS, SyntheticEyes

__all__ = ["fingerprint", "canonical", "source_recipe", "indices_recipe", "data_recipe", "identity"]


def canonical(obj: Any) -> Any:
    """Plain JSON types with a stable order: tuples → lists, numpy/torch scalars → Python numbers."""
    if hasattr(obj, "item") and getattr(obj, "ndim", 1) == 0:
        obj = obj.item()
    if isinstance(obj, Mapping):
        return {str(k): canonical(v) for k, v in sorted(obj.items(), key=lambda kv: str(kv[0]))}
    if isinstance(obj, (list, tuple)):
        return [canonical(v) for v in obj]
    if hasattr(obj, "tolist"):  # a tensor or array of indices
        return canonical(obj.tolist())
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    try:
        return config_to_dict(obj)
    except TypeError:
        raise TypeError(f"cannot fingerprint a {type(obj).__name__}: describe the data with plain values") from None


def fingerprint(obj: Any, length: int = 16) -> str:
    """A short sha256 of ``obj``'s canonical JSON (order of dict keys does not matter)."""
    text = json.dumps(canonical(obj), sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def source_recipe(source) -> dict:
    """A data source as a recipe: a ``SyntheticEyes`` by its spec and the renderer's version; a
    dataset read from disk by its class, root folder and length."""
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
    return canonical(recipe)


def identity(provenance: Mapping) -> str:
    """A fingerprint of what makes an artifact match a run (profile, seed, config, data): how a
    downstream artifact (a refiner trained on a segmenter's pseudo-labels) cites it."""
    return fingerprint({"profile": provenance.get("profile"), "seed": provenance.get("seed"),
                        "config": provenance.get("config"), "data": (provenance.get("data") or {}).get("fingerprint")})
