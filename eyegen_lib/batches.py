"""Batch sources that resume exactly and shard under ``torchrun``.

Every source is a pure function of the step: ``batch(i)`` is the i-th batch this process trains
on, computed from (seed, rank, i) alone. Resuming a killed training at step i therefore needs no
sampler state beyond i itself, and a resumed run draws exactly the batches an uninterrupted one
would have drawn.

Under ``torchrun`` each rank owns a disjoint shard of the samples (:func:`rank_shard`): N
processes train on N different batches per step, their gradients averaged by DDP. Random draws
(style images, pair weights, augmentations) use rank-offset streams. ``sample_ids(i)`` names the
dataset rows batch i holds (what a test checks for disjointness).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch

from .distributed import DistInfo

__all__ = ["BatchSource", "EpochBatches", "rank_shard", "step_generator", "step_rng", "rank_generator"]


def _stream_seed(*parts: int) -> int:
    """A 63-bit seed for the stream named by ``parts`` (seed, rank, step …): independent streams."""
    a, b = np.random.SeedSequence([int(p) for p in parts]).generate_state(2, np.uint32)
    return (int(a) << 31) ^ int(b)


def step_generator(seed: int, rank: int, step: int) -> torch.Generator:
    """The torch generator of one (seed, rank, step): what batch ``step`` of this rank draws with."""
    return torch.Generator().manual_seed(_stream_seed(seed, rank, step))


def step_rng(seed: int, rank: int, step: int) -> np.random.Generator:
    """The numpy generator of one (seed, rank, step)."""
    return np.random.default_rng(_stream_seed(seed, rank, step))


def rank_generator(seed: int, dist: DistInfo | None) -> torch.Generator:
    """A trainer's own generator (augmentations): one stream per rank. Its state is saved with the
    training state (:attr:`eyegen_lib.training.Trainer.generators`)."""
    rank = (dist or DistInfo()).rank
    return torch.Generator().manual_seed(int(seed) if rank == 0 else _stream_seed(seed, rank, 65537))


def rank_shard(n: int, dist: DistInfo | None, seed: int) -> torch.Tensor:
    """The rows of an ``n``-sample dataset this process trains on: all of them in one process; under
    DDP a seeded permutation dealt round-robin, cut to equal sizes so every rank has as many."""
    dist = dist or DistInfo()
    if not dist.enabled:
        return torch.arange(n)
    size = n // dist.world_size
    if size == 0:
        raise ValueError(f"{n} samples cannot be shared by {dist.world_size} processes: use fewer processes or more data")
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(_stream_seed(seed, 7919)))
    return perm[dist.rank::dist.world_size][:size].sort().values


class BatchSource:
    """Base class: ``batch(step)`` and ``sample_ids(step)``, both pure functions of the step."""

    def __init__(self, n: int, *, seed: int, dist: DistInfo | None):
        self.dist = dist or DistInfo()
        self.seed = int(seed)
        self.rows = rank_shard(n, self.dist, seed)

    def generator(self, step: int) -> torch.Generator:
        return step_generator(self.seed, self.dist.rank, step)

    def sample_ids(self, step: int) -> torch.Tensor:
        raise NotImplementedError

    def batch(self, step: int):
        raise NotImplementedError


class EpochBatches(BatchSource):
    """Shuffled epochs over this rank's shard of equal-length tensors, ``batch_size`` rows per
    batch, the last incomplete batch of an epoch dropped. ``tensors`` is a tuple (batches are
    tuples) or a mapping (batches are dicts)."""

    def __init__(self, tensors: Sequence[torch.Tensor] | Mapping[str, torch.Tensor], batch_size: int, *, seed: int = 0,
                 dist: DistInfo | None = None):
        self.named = isinstance(tensors, Mapping)
        self.tensors = dict(tensors) if self.named else tuple(tensors)
        values = list(self.tensors.values()) if self.named else list(self.tensors)
        n = len(values[0])
        if any(len(t) != n for t in values):
            raise ValueError(f"the training tensors differ in length: {[len(t) for t in values]}")
        super().__init__(n, seed=seed, dist=dist)
        if len(self.rows) < batch_size or batch_size < 1:
            raise ValueError(f"the training data yielded no batch: this process has {len(self.rows)} samples, fewer than "
                             f"one batch of {batch_size} (lower the batch size or use more data)")
        self.batch_size = int(batch_size)
        self.per_epoch = len(self.rows) // self.batch_size
        self._epoch, self._order = -1, None

    def sample_ids(self, step: int) -> torch.Tensor:
        epoch, j = divmod(int(step), self.per_epoch)
        if epoch != self._epoch:
            g = torch.Generator().manual_seed(_stream_seed(self.seed, self.dist.rank, epoch, 104729))
            self._epoch, self._order = epoch, self.rows[torch.randperm(len(self.rows), generator=g)]
        return self._order[j * self.batch_size:(j + 1) * self.batch_size]

    def batch(self, step: int):
        rows = self.sample_ids(step)
        if self.named:
            return {k: t[rows] for k, t in self.tensors.items()}
        return tuple(t[rows] for t in self.tensors)
