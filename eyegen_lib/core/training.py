"""The one training loop every model uses.

A model-specific trainer subclasses :class:`Trainer` and implements ``train_step(batch)``, which
does its own forward/backward/optimizer steps and returns a dict of named losses (a GAN trainer
calls its ``discriminator_step`` and ``generator_step`` there, SPADE style). :meth:`Trainer.fit`
draws batch i from a :mod:`~eyegen_lib.science.batches` source, keeps the history, shows a progress bar,
and runs unchanged under ``torchrun``: models are DDP-wrapped and logged values are averaged over
ranks. Its :meth:`~Trainer.state_dict` is everything a resumed run needs besides the process's RNGs;
:mod:`eyegen_lib.runs.engine` saves both and resumes.
"""
from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from .distributed import DistInfo, all_reduce_mean, init_distributed, wrap_ddp
from .runtime import autocast, choose_device, resolve_precision, tqdm

__all__ = ["Trainer", "SupervisedTrainer", "TrainingRun", "move_to", "history_columns", "TrainingStopped", "frozen"]


def move_to(batch: Any, device: torch.device) -> Any:
    """Tensors (nested in tuples, lists, dicts) to ``device``; everything else unchanged."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, Mapping):
        return {k: move_to(v, device) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(move_to(v, device) for v in batch)
    return batch


def history_columns(history: list[dict]) -> dict[str, list]:
    """The one history format of every artifact: ``{"step": [...], "<loss>": [...], ...}``, one
    column per named loss (NaN where a step did not log it)."""
    keys = sorted({k for h in history for k in h} - {"step"})
    return {"step": [int(h["step"]) for h in history], **{k: [float(h.get(k, float("nan"))) for h in history] for k in keys}}



@contextlib.contextmanager
def frozen(module: nn.Module):
    """No parameter gradients for ``module`` inside the block — a GAN's generator step keeps its
    discriminator fixed (gaze GAN, Seg2Eye) — and each parameter's own flag back afterwards."""
    flags = [p.requires_grad for p in module.parameters()]
    module.requires_grad_(False)
    try:
        yield module
    finally:
        for p, flag in zip(module.parameters(), flags):
            p.requires_grad_(flag)


class TrainingStopped(KeyboardInterrupt):
    """Raised by :meth:`Trainer.fit` when ``on_step`` asks to stop (Ctrl-C after the state was saved)."""


class Trainer:
    """Base class: holds named models, optimizers and schedulers, runs :meth:`train_step` over batches.

    ``generators`` are the torch generators a subclass draws augmentations from; their states are
    part of the training state (:meth:`rng_state`), so a resumed run draws what it would have."""

    def __init__(self, models: Mapping[str, nn.Module], optimizers: Mapping[str, torch.optim.Optimizer], *,
                 device: torch.device | str | None = None, schedulers: Mapping[str, Any] | None = None,
                 dist_info: DistInfo | None = None, generators: Mapping[str, torch.Generator] | None = None,
                 precision: str | None = None):
        self.dist = dist_info or init_distributed()
        self.device = torch.device(device) if device is not None else choose_device(local_rank=self.dist.local_rank)
        self.precision = resolve_precision(precision, self.device)  # every step runs under autocast to this
        self.models = {k: wrap_ddp(m.to(self.device), self.dist, self.device) for k, m in models.items()}
        self.optimizers = dict(optimizers)
        self.schedulers = dict(schedulers or {})
        self.generators = dict(generators or {})
        self.step = 0
        self.history: list[dict[str, float]] = []

    def module(self, name: str) -> nn.Module:
        """The bare model (without its DDP wrapper)."""
        m = self.models[name]
        return getattr(m, "module", m)

    def train_step(self, batch) -> dict[str, float]:
        raise NotImplementedError("subclasses implement train_step(batch) -> dict of named losses")

    # -- the training state (what a resumed run needs; the RNGs are per process: see engine) ---------------
    def state_dict(self) -> dict:
        return {"step": self.step, "history": list(self.history),
                "models": {k: self.module(k).state_dict() for k in self.models},
                "optimizers": {k: o.state_dict() for k, o in self.optimizers.items()},
                "schedulers": {k: s.state_dict() for k, s in self.schedulers.items()}}

    def load_state_dict(self, state: Mapping) -> None:
        for k in self.models:
            self.module(k).load_state_dict(state["models"][k])
        for k, o in self.optimizers.items():
            o.load_state_dict(state["optimizers"][k])
        for k, s in self.schedulers.items():
            s.load_state_dict(state["schedulers"][k])
        self.step = int(state["step"])
        self.history = [dict(h) for h in state["history"]]

    def generator_states(self) -> dict[str, torch.Tensor]:
        return {k: g.get_state() for k, g in self.generators.items()}

    def set_generator_states(self, states: Mapping[str, torch.Tensor]) -> None:
        for k, g in self.generators.items():
            g.set_state(states[k])

    def fit(self, batches, steps: int, *, log_every: int | None = None, desc: str = "training",
            on_log: Callable[[int, dict[str, float]], None] | None = None, progress: bool = True,
            on_step: Callable[[int], bool | None] | None = None) -> list[dict[str, float]]:
        """Train until ``self.step`` reaches ``steps`` (a resumed trainer continues where it stopped).

        Step i trains on ``batches.batch(i)`` (:mod:`eyegen_lib.science.batches`; built ahead by its DataLoader workers, if it has any). Every ``log_every``
        steps the losses (averaged over ranks) are appended to ``history`` and passed to ``on_log``
        (live plots; default: a hundred times per run). ``on_step(step)`` runs after each step (saving, snapshots); when it returns
        True training stops with :class:`TrainingStopped`. The bar shows the loss, the step rate
        and the time left. Returns the history.
        """
        log_every = log_every or max(1, steps // 100)
        for m in self.models.values():
            m.train()
        bar = tqdm(total=steps, initial=self.step, desc=desc, disable=not (progress and self.dist.is_main), leave=False)
        stream = batches.iterate(self.step, steps)  # batch i, built here or by DataLoader workers
        try:
            for batch in stream:
                with autocast(self.device, self.precision):
                    losses = self.train_step(move_to(batch, self.device))
                for s in self.schedulers.values():
                    s.step()
                self.step += 1
                bar.update(1)
                if self.step % log_every == 0 or self.step == steps:
                    losses = all_reduce_mean({k: float(v) for k, v in losses.items()}, self.dist)
                    self.history.append({"step": self.step, **losses})
                    bar.set_postfix({k: f"{v:.4g}" for k, v in losses.items()})
                    if on_log is not None and self.dist.is_main:
                        on_log(self.step, losses)
                if on_step is not None and on_step(self.step):
                    raise TrainingStopped(f"training stopped at step {self.step}")
        finally:
            stream.close()  # stops a DataLoader's workers when training stops early
            bar.close()
            for m in self.models.values():
                m.eval()
        return self.history


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


@dataclass
class TrainingRun:
    """What training needs: the trainer (models, optimizers, schedulers), the batch source, the
    model the artifact holds (sharing its weights with the trainer's models) and, optionally, an
    evaluation of the finished model whose figures go into the artifact's metrics."""
    trainer: Trainer
    batches: Any
    model: nn.Module
    evaluate: Callable[[nn.Module], dict] | None = None

    def fit(self, steps: int, **fit_options) -> tuple[nn.Module, list[dict]]:
        """Train in memory to ``steps`` (no checkpoint: :func:`eyegen_lib.runs.engine.obtain` keeps those); returns
        (model in eval mode, history). ``fit_options`` go to :meth:`Trainer.fit`."""
        self.trainer.fit(self.batches, steps, **fit_options)
        return self.model.eval(), self.trainer.history
