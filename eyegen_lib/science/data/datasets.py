"""Person splits and whole-source caches, over any eye source: the renderer, a reader, or a cache
(training reads rows: :mod:`eyegen_lib.science.data.rows`; redirection pairs: :mod:`eyegen_lib.science.data.pairs`).

A *source* is one of

* a ``SyntheticEyes`` (renders on demand, and can re-render an image at another gaze);
* a reader (:class:`~eyegen_lib.science.data.openeds.OpenEDS`, ``ColumbiaPatches``, ``MPIIGazeNormalized``):
  random access plus ``person_of``/``side_of``/``has_mask``… metadata that needs no decoding;
* the dict :func:`render_all` returns: everything decoded once into stacked tensors, so training
  does not re-render or re-decode every epoch. Its ``indices`` are its rows.

``indices`` always select samples of the source (``None``: all). Images come out as float
tensors in [−1, 1] (``x / 127.5 − 1``), masks as int64 class ids, gaze as float32 (pitch, yaw).
"""
from __future__ import annotations

import numpy as np
import torch

from ...core.runtime import tqdm
from .errors import DatasetError

__all__ = ["split_persons", "indices_of_persons", "render_all", "to_float_image"]

SPLIT_NAMES = ("train", "validation", "test")


def to_float_image(image: torch.Tensor) -> torch.Tensor:
    """uint8 [0, 255] → float32 [−1, 1]."""
    return image.float() / 127.5 - 1.0


# -- person splits ---------------------------------------------------------------------------------
def split_persons(persons, fractions=(0.7, 0.15, 0.15), seed: int = 0, names=None) -> dict[str, list]:
    """Split person ids (duplicates allowed: per-sample lists work) into disjoint groups.

    ``fractions`` of 3 give ``train``/``validation``/``test``, of 2 ``train``/``test`` (or pass
    ``names``). Counts are rounded by largest remainder, and every split with a positive fraction
    gets at least one person when there are enough. Deterministic in ``seed``; each list sorted.
    """
    unique = sorted(set(int(p) for p in persons))
    fractions = [float(f) for f in fractions]
    names = tuple(names) if names is not None else (SPLIT_NAMES if len(fractions) == 3 else
                                                    ("train", "test") if len(fractions) == 2 else None)
    if names is None or len(names) != len(fractions):
        raise ValueError("give 2 or 3 fractions, or one name per fraction")
    if any(f < 0 for f in fractions) or sum(fractions) <= 0:
        raise ValueError(f"fractions must be non-negative with a positive sum, got {fractions}")
    total = sum(fractions)
    ideal = [f / total * len(unique) for f in fractions]
    counts = [int(np.floor(x)) for x in ideal]
    for k in sorted(range(len(ideal)), key=lambda k: counts[k] - ideal[k])[: len(unique) - sum(counts)]:
        counts[k] += 1
    # A split asked for but rounded to nobody takes a person from the largest split.
    for k, f in enumerate(fractions):
        if f > 0 and counts[k] == 0:
            donor = int(np.argmax(counts))
            if counts[donor] > 1:
                counts[donor] -= 1
                counts[k] += 1
    order = np.random.default_rng(seed).permutation(len(unique))
    out, start = {}, 0
    for name, c in zip(names, counts):
        out[name] = sorted(unique[i] for i in order[start:start + c])
        start += c
    return out


def indices_of_persons(source, persons) -> list[int]:
    """The sample indices of ``source`` that belong to ``persons``."""
    src, wanted = _as_source(source), {int(p) for p in persons}
    return [i for i in range(len(src)) if src.person_of(i) in wanted]


# -- one interface over renderer, readers and caches -----------------------------------------------
class _Source:
    """Uniform, read-only view of a source (see module doc)."""

    def __init__(self, obj):
        self.obj = obj
        self.cache = obj if isinstance(obj, dict) else None
        self.renders = self.cache is None and hasattr(obj, "render") and hasattr(obj, "spec")
        if self.cache is not None and not isinstance(obj.get("image"), torch.Tensor):
            raise TypeError("a cache must be the dict render_all returns (with an 'image' tensor)")

    def __len__(self):
        return len(self.cache["image"]) if self.cache is not None else len(self.obj)

    def person_of(self, i) -> int:
        return int(self.cache["person"][i]) if self.cache is not None else int(self.obj.person_of(i))

    def side_of(self, i) -> str:
        return self.cache["side"][i] if self.cache is not None else self.obj.side_of(i)

    def has(self, key: str, i: int) -> bool:
        """Whether sample ``i`` has ``key`` ("image", "mask", "gaze", "landmarks"), without decoding."""
        if self.cache is not None:
            return key in self.cache
        if self.renders:
            return True
        method = getattr(self.obj, f"has_{key}", None)
        if method is not None:
            return bool(method(i))
        if key == "gaze":
            return hasattr(self.obj, "gaze_of")
        return key == "image"

    def group_of(self, i):
        if self.cache is not None:
            return self.cache["group"][i] if "group" in self.cache else None
        return self.obj.group_of(i) if hasattr(self.obj, "group_of") else None

    def sample(self, i: int) -> dict:
        if self.cache is not None:
            return {k: v[i] for k, v in self.cache.items()}
        return self.obj[int(i)]

    def where(self, i) -> str:
        """How to name sample ``i`` in an error message."""
        if self.cache is None and hasattr(self.obj, "records"):
            rec = self.obj.records[i]
            return str(getattr(rec, "path", None) or getattr(rec, "image_path", None) or rec)
        return f"sample {i}"


def _as_source(obj) -> _Source:
    return obj if isinstance(obj, _Source) else _Source(obj)


def _check_indices(src: _Source, indices) -> list[int]:
    indices = list(range(len(src))) if indices is None else [int(i) for i in indices]
    bad = [i for i in indices if not 0 <= i < len(src)]
    if bad:
        raise IndexError(f"indices {bad[:5]} out of range for a source of {len(src)} samples")
    return indices


def _require(src: _Source, indices, key: str, why: str):
    missing = [i for i in indices if not src.has(key, i)]
    if missing:
        raise DatasetError(f"{len(missing)} of {len(indices)} samples have no {key}, which {why}; "
                           f"first: {src.where(missing[0])}", fix=f"select samples with a {key} (e.g. the semantic "
                           "OpenEDS subset for masks, a gaze-labelled source for gaze)")


def render_all(source, indices=None, batch_size: int = 64, progress: bool = True, *, unlabelled_ok: bool = False) -> dict:
    """Decode (render or read) ``indices`` of ``source`` once into stacked tensors.

    Returns ``image`` uint8 (N, C, H, W), ``person`` int64 (N,), ``side`` list, ``index`` int64
    (N,) (the source's indices), and ``mask``/``landmarks``/``eyelid``/``gaze`` when every
    sample has them, ``group`` when the source has (subject, pose, eye) groups, ``path`` when
    samples carry one. The dict is itself a source for the datasets below (rows = indices).
    ``unlabelled_ok``: a set partly without masks (OpenEDS's generative frames) still gets ``mask``,
    all 0 where a frame has none, and ``labelled`` (N,) bool says which rows are real masks.
    """
    src = _as_source(source)
    indices = _check_indices(src, indices)
    rows: dict[str, list] = {}
    bar = tqdm(total=len(indices), desc="rendering" if src.renders else "reading", disable=not progress)
    for start in range(0, len(indices), batch_size):
        chunk = indices[start:start + batch_size]
        if src.renders:
            out = src.obj.render(chunk)
            samples = [{k: (v[b] if isinstance(v, (torch.Tensor, list)) else v) for k, v in out.items()}
                       for b in range(len(chunk))]
        else:
            samples = [src.sample(i) for i in chunk]
        for i, s in zip(chunk, samples):
            s = dict(s, index=i, person=src.person_of(i), side=src.side_of(i))
            if unlabelled_ok:
                s["labelled"] = int("mask" in s)
                s.setdefault("mask", None)
            for k, v in s.items():
                rows.setdefault(k, []).append(v)
        bar.update(len(chunk))
    bar.close()
    n = len(indices)
    if unlabelled_ok and n:
        shape = next((tuple(m.shape) for m in rows["mask"] if m is not None), tuple(rows["image"][0].shape[-2:]))
        rows["mask"] = [torch.zeros(shape, dtype=torch.uint8) if m is None else m for m in rows["mask"]]
    cache = {}
    for k, vals in rows.items():
        if len(vals) != n:
            continue  # not every sample has it (e.g. masks of a partly labelled set)
        if k in ("side", "path"):
            cache[k] = list(vals)
        elif isinstance(vals[0], torch.Tensor) and len({tuple(v.shape) for v in vals}) == 1:
            cache[k] = torch.stack(vals)
        elif isinstance(vals[0], (int, np.integer)):
            cache[k] = torch.tensor([int(v) for v in vals], dtype=torch.int64)
    if n and any(src.group_of(i) is not None for i in indices[:1]):
        cache["group"] = [src.group_of(i) for i in indices]
    if "image" not in cache:
        raise DatasetError("the samples have no images of one common size to stack", fix="select samples of one size")
    if unlabelled_ok:
        cache["labelled"] = cache["labelled"].bool() if n else torch.zeros(0, dtype=torch.bool)
    return cache
