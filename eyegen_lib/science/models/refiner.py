"""Seg2Eye's refiner (§4.2): the network that won the OpenEDS Synthetic Eye Generation Challenge.

Given a target mask, the refiner takes the most similar unlabelled image of the target's mode
(the similarity ranking, :mod:`eyegen_lib.science.ranking`) and corrects it: a DeepLab v3+ network sees
3 channels — the target mask coloured by class mean intensities, the reference image, and the
reference's coloured pseudo-label — and predicts a residual map that is added to the reference::

    output = clamp(reference + DeepLab(colour(target mask), reference, colour(pseudo-label)))

It is trained end-to-end on the challenge score itself (:func:`eyegen_lib.science.losses.challenge_loss`).
Training references are drawn at random from the target's top N; at test time the top-1 is used.
The residual head starts at zero, so an untrained refiner *is* the copy-the-reference baseline.
(The official training script does not run as committed; this one is written from the paper.)
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ...core.distributed import DistInfo, init_distributed
from ...core.images import to_signed, to_uint8
from ...core.profiles import Profile
from ...core.runtime import tqdm
from ...core.training import Trainer, TrainingRun
from ..batches import EpochBatches, as_rows
from ..data.rows import TensorRows
from ..losses import challenge_loss
from ..similarity import colour_mask
from .deeplab import DeepLabConfig, DeepLabV3Plus, check_masks

__all__ = ["RefinerConfig", "Refiner", "RefinerBatches", "refiner_run", "train_refiner", "refine"]


@dataclass
class RefinerConfig:
    net: DeepLabConfig
    top_n: int = 50  # training references: random among the target's top N (Seg2Eye's style images: top 40–200)
    steps: int = 30_000
    batch_size: int = 16
    lr: float = 1e-3
    weight_decay: float = 1e-4

    @classmethod
    def for_profile(cls, profile: Profile) -> "RefinerConfig":
        return cls(net=DeepLabConfig.for_profile(profile, in_channels=3, out_channels=1), **profile.schedule("refiner"))


def _coloured(mask: torch.Tensor) -> torch.Tensor:
    """(B, H, W) labels → (B, 1, H, W) class-mean intensities scaled to [−1, 1]."""
    return colour_mask(check_masks(mask))[:, None] / 127.5 - 1


class Refiner(nn.Module):
    """``forward(target_mask, reference, reference_mask) → (output, residual)``; images in [−1, 1]."""

    def __init__(self, config: RefinerConfig):
        super().__init__()
        if config.net.in_channels != 3 or config.net.out_channels != 1:
            raise ValueError("the refiner's DeepLab takes 3 input channels and predicts 1 residual channel")
        self.config = config
        self.net = DeepLabV3Plus(config.net)
        nn.init.zeros_(self.net.head.weight)  # start as the copy-the-reference baseline
        nn.init.zeros_(self.net.head.bias)

    def forward(self, target_mask: torch.Tensor, reference: torch.Tensor, reference_mask: torch.Tensor):
        if reference.ndim != 4 or reference.shape[1] != 1:
            raise ValueError(f"reference must be grey (B, 1, H, W) in [-1, 1], got shape {tuple(reference.shape)}")
        if target_mask.shape[-2:] != reference.shape[-2:] or reference_mask.shape[-2:] != reference.shape[-2:]:
            raise ValueError("target mask, reference and its pseudo-label must have one size, got "
                             f"{tuple(target_mask.shape)}, {tuple(reference.shape)}, {tuple(reference_mask.shape)}")
        x = torch.cat([_coloured(target_mask).to(reference), reference, _coloured(reference_mask).to(reference)], 1)
        residual = self.net(x)
        return (reference + residual).clamp(-1, 1), residual


class RefinerBatches(EpochBatches):
    """Epochs over the targets (a row store with ``mask`` and ``image``); each target's reference is
    one of its ``ranked`` top-N pool rows, drawn from the step's stream, its ``image`` and
    ``pseudo``-label fetched from the pool store. Batches: (target mask, target image in [−1, 1],
    reference in [−1, 1], reference pseudo-label)."""

    def __init__(self, targets, ranked: torch.Tensor, pool, batch_size: int, *, seed: int = 0,
                 dist: DistInfo | None = None):
        super().__init__(targets, batch_size, seed=seed, dist=dist)
        self.ranked, self.pool = torch.as_tensor(ranked).long(), as_rows(pool)
        if len(self.ranked) != len(self.data):
            raise ValueError(f"{len(self.data)} targets but {len(self.ranked)} ranked lists")
        if len(self.ranked) and (int(self.ranked.min()) < 0 or int(self.ranked.max()) >= len(self.pool)):
            raise ValueError(f"ranked references must index the pool's {len(self.pool)} rows")

    def raw(self, step: int):
        rows = self.sample_ids(step)
        ranked = self.ranked[rows]
        pick = torch.randint(ranked.shape[1], (len(rows),), generator=self.generator(step))
        refs = ranked.gather(1, pick[:, None])[:, 0]
        unique, where = torch.unique(refs, return_inverse=True)
        return {"target": self.data.fetch(rows), "reference": self.pool.fetch(unique), "where": where}

    def assemble(self, raw):
        target, ref, where = raw["target"], raw["reference"], raw["where"]
        return (check_masks(target["mask"]), to_signed(target["image"]), to_signed(ref["image"][where]),
                check_masks(ref["pseudo"][where]))


class RefinerTrainer(Trainer):
    """Batches are (target mask, target image, reference, reference pseudo-label): :class:`RefinerBatches`."""

    def __init__(self, model: Refiner, optimizer, **kwargs):
        super().__init__({"refiner": model}, {"refiner": optimizer}, **kwargs)

    def train_step(self, batch):
        mask, target, reference, reference_mask = batch
        out, _ = self.models["refiner"](mask, reference, reference_mask)
        loss = challenge_loss(out, target)
        opt = self.optimizers["refiner"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return {"challenge_loss": loss.detach().item()}


def refiner_run(targets, ranked: torch.Tensor, pool, config: RefinerConfig, *, seed: int = 0, device=None,
                dist: DistInfo | None = None) -> TrainingRun:
    """A training run of the refiner on ``targets`` (a row store or dict: ``mask`` (T, H, W), ``image``
    (T, 1, H, W)) with their ranked references ``ranked`` (T, ≥ top_n) into ``pool`` (a row store or
    dict: ``image`` (N, 1, H, W), ``pseudo`` (N, H, W) pseudo-labels); images uint8 or float in
    [−1, 1]. This process trains on its shard of the targets."""
    targets, pool = as_rows(targets), as_rows(pool)
    for store, key in ((targets, "mask"), (pool, "pseudo")):
        if isinstance(store, TensorRows):  # in memory: bad labels are found before training starts
            check_masks(store.tensors[key])
    if isinstance(targets, TensorRows) and len(targets.tensors["image"]) != len(targets.tensors["mask"]):
        raise ValueError("target masks and images differ in number")
    dist = dist or init_distributed()
    model = Refiner(config)
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=config.lr, total_steps=config.steps, pct_start=0.1)
    trainer = RefinerTrainer(model, opt, device=device, schedulers={"lr": sched}, dist_info=dist)
    batches = RefinerBatches(targets, torch.as_tensor(ranked)[:, : config.top_n], pool,
                             min(config.batch_size, len(targets) // dist.world_size), seed=seed, dist=dist)
    return TrainingRun(trainer, batches, model)


def train_refiner(target_masks: torch.Tensor, target_images: torch.Tensor, ranked: torch.Tensor,
                  pool_images: torch.Tensor, pool_masks: torch.Tensor, config: RefinerConfig, *, seed: int = 0,
                  device=None, progress: bool = True):
    """Train a refiner in memory (no checkpoint; :func:`eyegen_lib.runs.registry.refiner` keeps one).
    Returns (refiner, history)."""
    torch.manual_seed(seed)
    if ranked.shape[0] != len(target_masks) or len(target_images) != len(target_masks):
        raise ValueError(f"{len(target_masks)} target masks, {len(target_images)} images, {ranked.shape[0]} ranked lists")
    run = refiner_run({"mask": target_masks, "image": target_images}, ranked,
                      {"image": pool_images, "pseudo": pool_masks}, config, seed=seed, device=device)
    return run.fit(config.steps, desc="refiner", progress=progress)


@torch.no_grad()
def refine(model: Refiner, target_masks: torch.Tensor, references: torch.Tensor, reference_masks: torch.Tensor,
           *, batch_size: int = 64, progress: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """(outputs uint8 (T, 1, H, W), residuals float on the 0..255 scale) for each target with its reference."""
    model.eval()
    device = next(model.parameters()).device
    outs, res = [], []
    for i in tqdm(range(0, len(target_masks), batch_size), desc="refining", disable=not progress, leave=False):
        o, r = model(target_masks[i:i + batch_size].to(device), to_signed(references[i:i + batch_size]).to(device),
                     reference_masks[i:i + batch_size].to(device))
        outs.append(to_uint8(o))
        res.append((r * 127.5).cpu())
    return torch.cat(outs), torch.cat(res)
