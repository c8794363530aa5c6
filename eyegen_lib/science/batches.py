"""Batch sources that resume exactly and shard under ``torchrun``.

Every source is a pure function of the step: ``batch(i)`` is the i-th batch this process trains
on, computed from (seed, rank, i) alone. Resuming a killed training at step i therefore needs no
sampler state beyond i itself, and a resumed run draws exactly the batches an uninterrupted one
would have drawn.

Under ``torchrun`` each rank owns a disjoint shard of the samples (:func:`rank_shard`): N
processes train on N different batches per step, their gradients averaged by DDP. Random draws
(style images, pair weights, augmentations) use rank-offset streams. ``sample_ids(i)`` names the
dataset rows batch i holds (what a test checks for disjointness).

Batches are built from row stores (:mod:`eyegen_lib.science.data.rows`): tensors in memory, or samples
rendered on demand. :meth:`BatchSource.iterate` yields batches ``start … stop − 1``; with
``workers`` > 0 (the ``paper`` and ``gpu`` profiles) a ``DataLoader``'s worker processes build
them ahead of training — each worker computes whole batches, ``batch(i)`` unchanged, so a run
draws the same batches with or without workers.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from ..core.distributed import DistInfo
from ..core.memory import release_free_memory
from .data.rows import Rows, TensorRows

__all__ = ["BatchSource", "EpochBatches", "rank_shard", "step_generator", "step_rng", "rank_generator", "as_rows"]


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
    training state (:attr:`eyegen_lib.core.training.Trainer.generators`)."""
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


def as_rows(data) -> Rows:
    """A row store (passed through) or a mapping of equal-length tensors (held in memory)."""
    if isinstance(data, Rows):
        return data
    if isinstance(data, Mapping):
        return TensorRows(data)
    raise TypeError(f"training data must be a row store (eyegen_lib.science.data.rows) or a dict of tensors, got {type(data).__name__}")


class _Steps(Dataset):
    """Item i is batch i of a batch source: what a DataLoader's workers compute ahead of training."""

    def __init__(self, source: "BatchSource"):
        self.source = source

    def __getitem__(self, step: int):
        raw = self.source.raw(int(step))
        release_free_memory()
        return raw


class BatchSource:
    """Base class: ``batch(step)`` and ``sample_ids(step)``, both pure functions of the step.

    A batch is made in two parts: :meth:`raw` renders or reads its rows (compact: uint8 images and
    masks), :meth:`assemble` turns them into what the trainer takes (floats in [−1, 1], int64
    labels, gathered). ``workers`` (default 0: all in the training process) sets how many
    DataLoader worker processes :meth:`iterate` runs :meth:`raw` in, ``prefetch`` batches each
    ahead; only uint8 rows cross between processes."""

    workers: int = 0
    prefetch: int = 2

    def __init__(self, n: int, *, seed: int, dist: DistInfo | None):
        self.dist = dist or DistInfo()
        self.seed = int(seed)
        self.rows = rank_shard(n, self.dist, seed)

    def iterate(self, start: int, stop: int):
        """Batches ``start`` … ``stop − 1``, in order."""
        if self.workers <= 0:
            for step in range(int(start), int(stop)):
                yield self.batch(step)
            return
        loader = DataLoader(_Steps(self), batch_size=None, sampler=range(int(start), int(stop)),
                            num_workers=self.workers, prefetch_factor=self.prefetch,
                            pin_memory=torch.cuda.is_available())
        for raw in loader:
            batch = self.assemble(raw)
            del raw
            release_free_memory()  # the training process too, or the converted batches' pages pile up
            yield batch

    def raw(self, step: int):
        """The rows of batch ``step``, rendered or read (what a worker process makes)."""
        return self.batch(step)

    def assemble(self, raw):
        """The trainer's batch from :meth:`raw`'s rows (in the training process)."""
        return raw

    def generator(self, step: int) -> torch.Generator:
        return step_generator(self.seed, self.dist.rank, step)

    def sample_ids(self, step: int) -> torch.Tensor:
        raise NotImplementedError

    def batch(self, step: int):
        raise NotImplementedError


class EpochBatches(BatchSource):
    """Shuffled epochs over this rank's shard of a row store, ``batch_size`` rows per batch, the
    last incomplete batch of an epoch dropped. ``data`` is a row store or a mapping of tensors
    (batches are dicts), or a tuple of tensors (batches are tuples). ``prepare`` turns a fetched
    batch into what the trainer takes (conversions, resizing: done per batch, in the workers)."""

    def __init__(self, data: Rows | Sequence[torch.Tensor] | Mapping[str, torch.Tensor], batch_size: int, *,
                 seed: int = 0, dist: DistInfo | None = None, prepare=None):
        self.as_tuple = isinstance(data, (tuple, list))
        if self.as_tuple:
            lengths = [len(t) for t in data]
            if len(set(lengths)) != 1:
                raise ValueError(f"the training tensors differ in length: {lengths}")
            data = {str(k): t for k, t in enumerate(data)}
        self.data = as_rows(data)
        self.prepare = prepare
        n = len(self.data)
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

    def raw(self, step: int):
        return self.data.fetch(self.sample_ids(step))

    def assemble(self, raw):
        out = tuple(raw[str(k)] for k in range(len(raw))) if self.as_tuple else raw
        return self.prepare(out) if self.prepare is not None else out

    def batch(self, step: int):
        return self.assemble(self.raw(step))
