"""The renderer's per-process caches: mip pyramids that keep only the levels in use, and an LRU
bounded by bytes rather than entries.

A renderer runs in every DataLoader worker, so what it caches is paid once per worker. Two things
are worth caching: per-person textures (lashes, lid shading, iris relief, skin; drawing them replays
fractal noise and takes tens of milliseconds) and per-(person, camera side, size) frames (skin ×
vignette maps, as large as the image). Both are pure functions of their seeds, so anything evicted
is rebuilt bit for bit when it is wanted again; the cache only trades memory for speed.
"""
from __future__ import annotations

import os
from collections import OrderedDict
from typing import Callable

import torch

__all__ = ["mip_levels", "MipPyramid", "ByteLRU", "nbytes_of", "process_cache", "DEFAULT_CACHE_MB", "to_device", "cached_on", "PersonTextures"]


def mip_levels(tex: torch.Tensor, n: int = 5) -> list[torch.Tensor]:
    """(C, H, W) texture → list of 2×2-average-pooled versions (level 0 = full resolution)."""
    levels = [tex]
    for _ in range(n - 1):
        if min(levels[-1].shape[-2:]) < 8:
            break
        levels.append(torch.nn.functional.avg_pool2d(levels[-1][None], 2, ceil_mode=True)[0])
    return levels


class MipPyramid:
    """A texture's mip levels (as :func:`mip_levels`), keeping the finest level sampled so far and
    every coarser one.

    A person's lash textures are 6.5 MB at full resolution, yet a renderer of small patches samples
    only a coarse level, and one render size always samples about the same level. The pyramid is
    built whole; the first lookup drops the levels finer than the one it asks for (the coarser ones
    cost at most a third of it and are kept, so a slightly smaller image never rebuilds). A finer
    level wanted later is rebuilt once from ``make()``, which must return the same base texture (it
    replays the person's seeded draws), so every lookup returns what a full pyramid would.
    ``keep_from``: the finest level the caller expects to sample, to drop the finer ones at once
    (a renderer fetching a batch's new persons would otherwise hold every one's full pyramid until
    its first lookup)."""

    def __init__(self, levels: list[torch.Tensor | None], make: Callable[[], torch.Tensor], keep_from: int = 0):
        self._levels: list[torch.Tensor | None] = list(levels)
        self._settled = False           # False until the first lookup: every level is still held
        self._make = make
        if keep_from > 0:               # the caller knows the finest level it will sample: drop the rest now
            self[min(keep_from, len(self._levels) - 1)]

    def __len__(self) -> int:
        return len(self._levels)

    def __getitem__(self, level: int) -> torch.Tensor:
        level = range(len(self._levels))[level]
        if self._levels[level] is None:
            self._levels = mip_levels(self._make(), len(self._levels))
            self._settled = False
        if not self._settled:
            self._levels[:level] = [None] * level
            self._settled = True
        return self._levels[level]

    def to(self, device) -> "MipPyramid":
        """The same pyramid on ``device`` (a rebuild replays on the CPU, then moves)."""
        make = self._make
        moved = MipPyramid([lv if lv is None else lv.to(device) for lv in self._levels], lambda: make().to(device))
        moved._settled = self._settled
        return moved

    @property
    def settled(self) -> bool:
        return self._settled

    @property
    def kept_levels(self) -> list[int]:
        return [i for i, lv in enumerate(self._levels) if lv is not None]

    @property
    def nbytes(self) -> int:
        return sum(lv.nbytes for lv in self._levels if lv is not None)


def to_device(value, device):
    """A cached value (tensors, pyramids, and dicts / lists / tuples of them) on ``device``."""
    if isinstance(value, (torch.Tensor, MipPyramid)):
        return value.to(device)
    if isinstance(value, dict):
        return {k: to_device(v, device) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(to_device(v, device) for v in value)
    return value


def cached_on(cache: "ByteLRU", key, build: Callable[[], object], device: torch.device):
    """``cache.get`` of ``key`` built on the CPU (textures are drawn with numpy), and, for another
    device, a copy there cached under its own key (so a GPU renderer uploads each person once)."""
    if device.type == "cpu":    # no device mode active (SyntheticEyes enters one for other devices only)
        return cache.get(key, build)

    def on_cpu():               # inside the render's device mode: make the CPU original on the CPU
        with torch.device("cpu"):
            return build()
    return cache.get((key, str(device)), lambda: to_device(cache.get(key, on_cpu), device))


def _leaves(value):
    """The tensors and pyramids in a cached value (a tensor, a pyramid, or dicts / lists / tuples of them)."""
    if isinstance(value, (torch.Tensor, MipPyramid)):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _leaves(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _leaves(v)


def _settled(value) -> bool:
    """Whether every pyramid in a cached value has had its first lookup (its size is final)."""
    return all(leaf.settled for leaf in _leaves(value) if isinstance(leaf, MipPyramid))


def nbytes_of(value) -> int:
    """Bytes held by a cached value: tensors, pyramids, and dicts / lists / tuples of them."""
    return sum(int(leaf.nbytes) for leaf in _leaves(value))


class ByteLRU:
    """A least-recently-used cache bounded by the bytes of its values (:func:`nbytes_of`).

    ``get(key, build)`` returns the cached value or builds, stores and returns it, then evicts the
    least recently used entries until the total fits ``max_bytes`` (the newest entry always stays).
    An entry is measured again at every fetch until its pyramids have had their first lookup (a
    :class:`MipPyramid` shrinks then). A pyramid that later rebuilds a finer level (the same seed's
    persons drawn at a larger size) is not measured again: the bound can be exceeded by that much."""

    def __init__(self, max_bytes: int):
        if max_bytes < 0:
            raise ValueError(f"max_bytes must be ≥ 0, got {max_bytes}")
        self.max_bytes = int(max_bytes)
        self._entries: OrderedDict = OrderedDict()
        self._sizes: dict = {}
        self._unsettled: dict = {}   # key → how many more times to measure it
        self.total_bytes = 0
        self.hits = self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key) -> bool:
        return key in self._entries

    def values(self):
        return self._entries.values()

    def get(self, key, build: Callable[[], object]):
        if key in self._entries:
            self.hits += 1
            self._entries.move_to_end(key)
            value = self._entries[key]
        else:
            self.misses += 1
            value = self._entries[key] = build()
            self._sizes[key] = 0
            self._unsettled[key] = self.REMEASURE
        self._remeasure()
        while self.total_bytes > self.max_bytes and len(self._entries) > 1:
            old, _ = self._entries.popitem(last=False)
            self.total_bytes -= self._sizes.pop(old)
            self._unsettled.pop(old, None)
        return value

    # An entry holding a pyramid not yet looked up is measured again at every fetch (of any entry)
    # until it has been, or for at most this many fetches (a render that skips the lids never looks).
    REMEASURE = 64

    def _remeasure(self) -> None:
        for key in list(self._unsettled):
            value = self._entries[key]
            size = nbytes_of(value)
            self.total_bytes += size - self._sizes[key]
            self._sizes[key] = size
            self._unsettled[key] -= 1
            if not self._unsettled[key] or _settled(value):
                del self._unsettled[key]


DEFAULT_CACHE_MB = 128


def _cache_budget() -> int:
    raw = os.environ.get("EYEGEN_RENDER_CACHE_MB", str(DEFAULT_CACHE_MB))
    try:
        mb = float(raw)
    except ValueError:
        raise ValueError(f"EYEGEN_RENDER_CACHE_MB must be a number of megabytes, got {raw!r}") from None
    if mb < 0:
        raise ValueError(f"EYEGEN_RENDER_CACHE_MB must be ≥ 0, got {raw!r}")
    return int(mb * 2 ** 20)


_PROCESS_CACHE: ByteLRU | None = None


def process_cache() -> ByteLRU:
    """The renderers' one cache in this process (every :class:`~eyegen_lib.science.data.SyntheticEyes`
    shares it; keys name the modality, seed and person, so sources of one seed share persons).
    Its bound is ``EYEGEN_RENDER_CACHE_MB`` (default 128 MB), read when it is first used; a
    DataLoader worker forked from a process that already holds one starts with a copy of its
    entries (shared pages until written)."""
    global _PROCESS_CACHE
    if _PROCESS_CACHE is None:
        _PROCESS_CACHE = ByteLRU(_cache_budget())
    return _PROCESS_CACHE


class PersonTextures:
    """What the NIR and RGB renderers' texture caches share: a :class:`ByteLRU` (the process cache
    unless ``cache`` is given) of per-person textures made by the subclass's ``_person``."""

    modality = ""

    def __init__(self, cache: ByteLRU | None = None):
        self.cache = cache if cache is not None else process_cache()

    def __getstate__(self):   # a pickled renderer (a spawned worker's) uses that process's cache
        return {"cache": None if self.cache is process_cache() else self.cache}

    def __setstate__(self, state):
        self.cache = state["cache"] if state["cache"] is not None else process_cache()

    def person(self, key, rng_seed: int, geom_row: dict, look_row: dict, device=torch.device("cpu"),
               lid_level: int = 0) -> dict:
        """The person's textures; ``lid_level``: the finest lid mip level the caller will sample."""
        return cached_on(self.cache, (self.modality, "person", key),
                         lambda: self._person(rng_seed, geom_row, look_row, lid_level), device)

    @staticmethod
    def _person(rng_seed: int, geom_row: dict, look_row: dict, lid_level: int = 0) -> dict:
        raise NotImplementedError
