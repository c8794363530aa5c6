"""Row stores: what training draws its batches from, held in memory or rendered on demand.

A row store is a map-style torch ``Dataset`` whose :meth:`Rows.fetch` returns, for a list of rows,
a dict of stacked tensors in one call (the renderer draws a batch at once, which is much faster
than image by image). The batch sources of :mod:`eyegen_lib.science.batches` fetch the rows of step i;
at the ``paper`` and ``gpu`` profiles a ``DataLoader``'s workers do, ahead of the training step.

* :class:`TensorRows` — tensors in memory: the small profiles render their data once and draw
  from it every epoch;
* :class:`RenderedRows` — samples of a source (the renderer, or a reader of real data) rendered
  or read when a batch asks for them: what the large profiles train on, since 152 persons × 200
  images of 400 × 640 are 7.8 GB as uint8 and four times that as float;
* :class:`MaskStore` — label masks kept zlib-compressed (a 400 × 640 eye mask of four classes
  packs into a few kB): the pseudo-labels of a pool too large to hold decoded.

:func:`rows_of` picks the first or the second by the profile's ``stream_data``.
"""
from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from ...core.memory import release_free_memory
from ...core.runtime import tqdm
from .datasets import _as_source, _check_indices, _require, render_all

__all__ = ["Rows", "TensorRows", "RenderedRows", "MaskStore", "ZipRows", "rows_of", "fetch_in_chunks", "gaze_labels"]


def _as_rows(rows) -> list[int]:
    return [int(r) for r in (rows.tolist() if torch.is_tensor(rows) else rows)]


class Rows(Dataset):
    """Base class: ``len(store)`` rows of named tensors, ``fetch(rows)`` stacks them."""

    keys: tuple[str, ...] = ()

    def fetch(self, rows) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        if isinstance(i, (slice, list, tuple)) or (torch.is_tensor(i) and i.numel() != 1):
            raise TypeError(f"{type(self).__name__} is a row store, not a tensor: use .fetch(rows) for a batch of rows "
                            "(a notebook analysis that holds a whole split in memory runs at the smoke, cpu and gpu "
                            "profiles; at paper the data is streamed)")
        return {k: v[0] for k, v in self.fetch([int(i)]).items()}


class TensorRows(Rows):
    """Rows of equal-length tensors held in memory (of a mapping such as a ``render_all`` dict, its
    tensors: lists like ``side`` are metadata, not rows)."""

    def __init__(self, tensors: Mapping[str, torch.Tensor]):
        self.tensors = {k: v for k, v in tensors.items() if torch.is_tensor(v)}
        lengths = {k: len(v) for k, v in self.tensors.items()}
        if not lengths or len(set(lengths.values())) != 1:
            raise ValueError(f"row tensors must be non-empty and of one length, got {lengths}")
        self.keys = tuple(self.tensors)

    def __len__(self) -> int:
        return len(next(iter(self.tensors.values())))

    def fetch(self, rows) -> dict[str, torch.Tensor]:
        rows = torch.as_tensor(_as_rows(rows), dtype=torch.int64)
        return {k: t[rows] for k, t in self.tensors.items()}


class RenderedRows(Rows):
    """Samples ``indices`` of ``source`` (a ``SyntheticEyes``, a reader, or a ``render_all`` dict),
    rendered or read when fetched; ``keys`` are the fields kept ("image", "mask", "gaze", "landmarks" …),
    or a mapping {name in the batch: field} to rename them. Rendering goes ``chunk`` images at a
    time, which bounds the renderer's working memory."""

    def __init__(self, source, indices: Sequence[int], keys: Sequence[str] | Mapping[str, str] = ("image",), *,
                 chunk: int = 16, unlabelled_ok: bool = False):
        self.src = _as_source(source)
        self.indices = _check_indices(self.src, indices)
        self.fields = dict(keys) if isinstance(keys, Mapping) else {k: k for k in keys}
        self.keys = tuple(self.fields)
        self.chunk = int(chunk)
        self.unlabelled_ok = unlabelled_ok  # a frame without a mask fetches an all-0 one (OpenEDS's generative set)
        for key in set(self.fields.values()) - ({"mask"} if unlabelled_ok else set()):
            _require(self.src, self.indices, key, "this training data needs")

    def __len__(self) -> int:
        return len(self.indices)

    def fetch(self, rows) -> dict[str, torch.Tensor]:
        idx = [self.indices[r] for r in _as_rows(rows)]
        parts: dict[str, list] = {k: [] for k in self.keys}
        for start in range(0, len(idx), self.chunk):
            chunk = idx[start:start + self.chunk]
            if self.src.renders:
                out = self.src.obj.render(chunk)
                for k, field in self.fields.items():
                    parts[k].append(out[field])
                del out
                release_free_memory()  # the renderer's temporaries (and new persons' texture pyramids)
            else:
                samples = [self.src.sample(i) for i in chunk]
                if self.unlabelled_ok:
                    for s in samples:
                        s.setdefault("mask", torch.zeros(s["image"].shape[-2:], dtype=torch.uint8))
                for k, field in self.fields.items():
                    parts[k].append(torch.stack([torch.as_tensor(s[field]) for s in samples]))
        return {k: torch.cat(v) for k, v in parts.items()}


class MaskStore(Rows):
    """(N, H, W) class masks, each kept zlib-compressed as uint8; ``fetch`` decodes ``{key: uint8}``."""

    def __init__(self, shape: tuple[int, int], key: str = "mask"):
        self.shape = tuple(int(s) for s in shape)
        self.keys = (key,)
        self.blobs: list[bytes] = []

    @classmethod
    def of(cls, masks: torch.Tensor, key: str = "mask") -> "MaskStore":
        store = cls(tuple(masks.shape[-2:]), key)
        store.extend(masks)
        return store

    def extend(self, masks: torch.Tensor) -> None:
        if tuple(masks.shape[-2:]) != self.shape:
            raise ValueError(f"masks of {tuple(masks.shape[-2:])} do not fit a store of {self.shape}")
        if masks.numel() and (int(masks.min()) < 0 or int(masks.max()) > 255):
            raise ValueError("class masks must hold labels in 0..255")
        for m in masks.to(torch.uint8).cpu().numpy():
            self.blobs.append(zlib.compress(m.tobytes(), 1))

    def __len__(self) -> int:
        return len(self.blobs)

    @property
    def nbytes(self) -> int:
        return sum(len(b) for b in self.blobs)

    def fetch(self, rows) -> dict[str, torch.Tensor]:
        out = np.stack([np.frombuffer(zlib.decompress(self.blobs[r]), np.uint8).reshape(self.shape)
                        for r in _as_rows(rows)])
        return {self.keys[0]: torch.from_numpy(out)}


class ZipRows(Rows):
    """Stores of one length side by side: ``fetch`` merges their fields (e.g. pool images rendered on
    demand and their pseudo-labels from a :class:`MaskStore`)."""

    def __init__(self, *stores: Rows):
        if not stores or len({len(s) for s in stores}) != 1:
            raise ValueError(f"zipped stores must have one length, got {[len(s) for s in stores]}")
        self.stores = stores
        self.keys = tuple(k for s in stores for k in s.keys)

    def __len__(self) -> int:
        return len(self.stores[0])

    def fetch(self, rows) -> dict[str, torch.Tensor]:
        rows = _as_rows(rows)
        return {k: v for s in self.stores for k, v in s.fetch(rows).items()}


def gaze_labels(store: Rows) -> torch.Tensor:
    """(N, 2) float32 gaze labels of a store's rows without decoding images: the renderer's sampled
    gaze, a reader's labels, or the held tensor."""
    if isinstance(store, TensorRows):
        return store.tensors["gaze"].float()
    if isinstance(store, RenderedRows):
        src = store.src
        if src.renders:
            states = [src.obj.image_state(i) for i in store.indices]
            return torch.tensor([[st["pitch"], st["yaw"]] for st in states], dtype=torch.float32)
        if src.cache is not None:
            return src.cache["gaze"][store.indices].float()
        if hasattr(src.obj, "gaze_of"):
            return torch.tensor(np.array([src.obj.gaze_of(i) for i in store.indices]), dtype=torch.float32)
    return torch.cat([b["gaze"] for _, b in fetch_in_chunks(store)]).float()


def fetch_in_chunks(store: Rows, rows=None, *, chunk: int = 64, progress: bool = False, desc: str = "reading"):
    """Yield ``(rows, fetched dict)`` over ``rows`` (default: all) ``chunk`` at a time: a streamed
    evaluation or pass over a store."""
    rows = list(range(len(store))) if rows is None else _as_rows(rows)
    for start in tqdm(range(0, len(rows), chunk), desc=desc, disable=not progress, leave=False):
        part = rows[start:start + chunk]
        yield part, store.fetch(part)


def rows_of(source, indices: Sequence[int] | None, keys: Sequence[str], *, in_memory: bool,
            progress: bool = True, unlabelled_ok: bool = False) -> Rows:
    """The training rows of ``indices`` of ``source``: rendered once into a :class:`TensorRows`
    (``in_memory``), or a :class:`RenderedRows` that renders them when a batch asks.
    ``unlabelled_ok``: a frame without a mask gets an all-0 one (it may serve as a style image,
    never as a target)."""
    indices = _check_indices(_as_source(source), indices)
    if not in_memory:
        return RenderedRows(source, indices, keys, unlabelled_ok=unlabelled_ok)
    cache = render_all(source, indices, progress=progress, unlabelled_ok=unlabelled_ok)
    missing = [k for k in keys if k not in cache]
    if missing:
        raise KeyError(f"the samples have no {missing} for every index")
    return TensorRows({k: cache[k] for k in keys})
