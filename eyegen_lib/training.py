"""The one training loop every model uses.

A model-specific trainer subclasses :class:`Trainer` and implements ``train_step(batch)``, which
does its own forward/backward/optimizer steps and returns a dict of named losses (a GAN trainer
calls its ``discriminator_step`` and ``generator_step`` there, SPADE style). :meth:`Trainer.fit`
streams batches, keeps the history, shows a progress bar, and runs unchanged under ``torchrun``:
models are DDP-wrapped and logged values are averaged over ranks.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .checkpoint import load_checkpoint, save_checkpoint
from .distributed import DistInfo, all_reduce_mean, init_distributed, wrap_ddp
from .runtime import choose_device, tqdm

__all__ = ["Trainer", "SupervisedTrainer", "move_to", "history_metrics"]


def move_to(batch: Any, device: torch.device) -> Any:
    """Tensors (nested in tuples, lists, dicts) to ``device``; everything else unchanged."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, Mapping):
        return {k: move_to(v, device) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(move_to(v, device) for v in batch)
    return batch


def history_metrics(history: list[dict]) -> dict:
    """A training history as checkpoint metrics: ``loss_steps`` and one list per named loss."""
    keys = sorted({k for h in history for k in h} - {"step"})
    return {"loss_steps": [h["step"] for h in history], **{k: [h.get(k, float("nan")) for h in history] for k in keys}}


class Trainer:
    """Base class: holds named models and optimizers, runs :meth:`train_step` over batches."""

    def __init__(self, models: Mapping[str, nn.Module], optimizers: Mapping[str, torch.optim.Optimizer], *,
                 device: torch.device | str | None = None, schedulers: Mapping[str, Any] | None = None,
                 dist_info: DistInfo | None = None):
        self.dist = dist_info or init_distributed()
        self.device = torch.device(device) if device is not None else choose_device(local_rank=self.dist.local_rank)
        self.models = {k: wrap_ddp(m.to(self.device), self.dist, self.device) for k, m in models.items()}
        self.optimizers = dict(optimizers)
        self.schedulers = dict(schedulers or {})
        self.step = 0
        self.history: list[dict[str, float]] = []

    def module(self, name: str) -> nn.Module:
        """The bare model (without its DDP wrapper)."""
        m = self.models[name]
        return getattr(m, "module", m)

    def train_step(self, batch) -> dict[str, float]:
        raise NotImplementedError("subclasses implement train_step(batch) -> dict of named losses")

    def fit(self, batches: Iterable, steps: int, *, log_every: int = 1, desc: str = "training",
            on_log: Callable[[int, dict[str, float]], None] | None = None, progress: bool = True) -> list[dict[str, float]]:
        """Run ``steps`` optimisation steps, cycling through ``batches`` (re-iterated each epoch).

        Every ``log_every`` steps the losses (averaged over ranks) are appended to ``history``
        with their ``step`` and passed to ``on_log`` (live plots). Returns the history.
        """
        for m in self.models.values():
            m.train()
        epoch = 0
        iterator = iter(batches)
        bar = tqdm(total=steps, desc=desc, disable=not (progress and self.dist.is_main), leave=False)
        done = 0
        while done < steps:
            try:
                batch = next(iterator)
            except StopIteration:
                epoch += 1
                sampler = getattr(batches, "sampler", None)
                if hasattr(sampler, "set_epoch"):
                    sampler.set_epoch(epoch)  # a new shuffle per epoch under DDP
                iterator = iter(batches)
                try:
                    batch = next(iterator)
                except StopIteration:
                    raise ValueError("the training data yielded no batch: is the dataset smaller than one batch with drop_last?") from None
            losses = self.train_step(move_to(batch, self.device))
            for s in self.schedulers.values():
                s.step()
            self.step += 1
            done += 1
            bar.update(1)
            if self.step % log_every == 0 or done == steps:
                losses = all_reduce_mean({k: float(v) for k, v in losses.items()}, self.dist)
                record = {"step": self.step, **losses}
                self.history.append(record)
                bar.set_postfix({k: f"{v:.4g}" for k, v in losses.items()})
                if on_log is not None and self.dist.is_main:
                    on_log(self.step, losses)
        bar.close()
        for m in self.models.values():
            m.eval()
        return self.history

    def fit_with_snapshot(self, batches: Iterable, steps: int, *, snapshot_at: int | None = None,
                          on_snapshot: Callable[[list[dict[str, float]]], None] | None = None,
                          **fit_kwargs) -> list[dict[str, float]]:
        """:meth:`fit` for ``steps`` steps, pausing once ``snapshot_at`` of them are done to call
        ``on_snapshot(history so far)`` — where an ablation's reference is saved: with a constant
        learning rate up to that step, the models then are exactly a run of ``snapshot_at`` steps."""
        first = snapshot_at if snapshot_at and 0 < snapshot_at < steps else steps
        self.fit(batches, first, **fit_kwargs)
        if first == snapshot_at and on_snapshot is not None:
            on_snapshot(list(self.history))
        if steps > first:
            self.fit(batches, steps - first, **fit_kwargs)
        return self.history

    def save(self, path: str | Path, *, kind: str, config: Any, metrics: Mapping | None = None) -> Path | None:
        """Checkpoint all models and optimizers (rank 0 writes; the others skip)."""
        if not self.dist.is_main:
            return None
        return save_checkpoint(path, kind=kind, model=self.models, optimizer=self.optimizers, config=config,
                               step=self.step, metrics=metrics, extra={"history": self.history[-1000:]})

    def load(self, path: str | Path, *, kind: str, config: Any) -> dict:
        ckpt = load_checkpoint(path, kind=kind, model=self.models, optimizer=self.optimizers, config=config,
                               map_location=self.device)
        self.step = ckpt["step"]
        self.history = list(ckpt.get("extra", {}).get("history", []))
        return ckpt


class SupervisedTrainer(Trainer):
    """One model, one optimizer, ``loss_fn(model(inputs), targets)``: segmenters, gaze estimators …"""

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer, loss_fn: Callable, **kwargs):
        super().__init__({"model": model}, {"model": optimizer}, **kwargs)
        self.loss_fn = loss_fn

    def train_step(self, batch) -> dict[str, float]:
        inputs, targets = batch[0], batch[1]
        model, opt = self.models["model"], self.optimizers["model"]
        loss = self.loss_fn(model(inputs), targets)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return {"loss": loss.detach().item()}
