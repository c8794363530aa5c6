"""Training Seg2Eye: TTUR Adam (β = (0, 0.9)), a discriminator step then a generator step per batch.

Generator objective: hinge GAN + λ_fm·feature matching + λ_l2·pixel MSE + λ_style·MSE(code of
the generated image, aggregated code) + λ_gram·Gram consistency of style-encoder features.
Batches come from pre-rendered tensors (:class:`StyleBatches`), K style images per target drawn
from the other images of the target's person and eye side (as ``MaskToImageWithStyle`` does, but
without re-rendering per item).
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch
import torch.nn.functional as F

from ...checkpoint import load_or_train, save_checkpoint
from ...provenance import with_config
from ...runtime import tqdm
from ...training import Trainer, history_metrics
from .config import Seg2EyeConfig
from .discriminator import MultiScaleDiscriminator
from .generator import Seg2Eye, one_hot
from .loss import feature_matching_loss, gram_loss, hinge_d_loss, hinge_g_loss
from ...images import to_signed, to_uint8

__all__ = ["StyleBatches", "Seg2EyeTrainer", "train_seg2eye", "load_or_train_seg2eye", "generate"]


class StyleBatches:
    """An endless-epoch iterable of {mask, image, style (B, K, 1, H, W)} batches.

    ``groups`` (N,) says which images share a person and side; style images for a target are K
    others of its group (never itself), drawn with ``seed``."""

    def __init__(self, images, masks, groups, *, k_style: int, batch_size: int, seed: int = 0, batches_per_epoch=None):
        self.images, self.masks = to_signed(images), masks.long()
        self.groups = torch.as_tensor(groups)
        self.k, self.batch_size = k_style, batch_size
        self.members = {}
        for i, g in enumerate(self.groups.tolist()):
            self.members.setdefault(g, []).append(i)
        small = [g for g, m in self.members.items() if len(m) <= k_style]
        if small:
            raise ValueError(f"groups {small[:5]} have ≤ k_style={k_style} images: lower k_style")
        self.rng = np.random.default_rng(seed)
        self.batches_per_epoch = batches_per_epoch or max(1, len(self.images) // batch_size)

    def style_for(self, targets) -> torch.Tensor:
        rows = []
        for t in targets:
            others = [i for i in self.members[int(self.groups[t])] if i != t]
            rows.append(self.rng.choice(others, self.k, replace=False))
        return torch.as_tensor(np.stack(rows), dtype=torch.int64)

    def __iter__(self):
        for _ in range(self.batches_per_epoch):
            t = torch.as_tensor(self.rng.choice(len(self.images), self.batch_size, replace=False))
            yield {"mask": self.masks[t], "image": self.images[t], "style": self.images[self.style_for(t.tolist())]}


class Seg2EyeTrainer(Trainer):
    def __init__(self, model: Seg2Eye, discriminator: MultiScaleDiscriminator, config: Seg2EyeConfig, **kwargs):
        betas = (config.beta1, config.beta2)
        opts = {"generator": torch.optim.Adam(model.parameters(), lr=config.lr_g, betas=betas),
                "discriminator": torch.optim.Adam(discriminator.parameters(), lr=config.lr_d, betas=betas)}
        super().__init__({"seg2eye": model, "discriminator": discriminator}, opts, **kwargs)
        self.config = config

    def _d_input(self, mask, image):
        return torch.cat([one_hot(mask, self.config.n_classes), image], 1)

    def discriminator_step(self, mask, image, fake) -> dict[str, float]:
        d, opt = self.models["discriminator"], self.optimizers["discriminator"]
        outs = d(torch.cat([self._d_input(mask, image), self._d_input(mask, fake.detach())], 0))
        real_outs = [[f[: len(image)] for f in scale] for scale in outs]
        fake_outs = [[f[len(image):] for f in scale] for scale in outs]
        loss = hinge_d_loss(real_outs, fake_outs)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return {"d_hinge": loss.detach().item()}

    def generator_step(self, mask, image, style, fake, w, feats) -> dict[str, float]:
        c, model = self.config, self.models["seg2eye"]
        d, opt = self.models["discriminator"], self.optimizers["generator"]
        for p in d.parameters():
            p.requires_grad_(False)
        outs = d(torch.cat([self._d_input(mask, image), self._d_input(mask, fake)], 0))
        for p in d.parameters():
            p.requires_grad_(True)
        real_outs = [[f[: len(image)] for f in scale] for scale in outs]
        fake_outs = [[f[len(image):] for f in scale] for scale in outs]
        losses = {"g_hinge": hinge_g_loss(fake_outs),
                  "g_fm": c.lambda_fm * feature_matching_loss(real_outs, fake_outs),
                  "g_l2": c.lambda_l2 * F.mse_loss(fake, image)}
        if c.use_style and (c.lambda_style > 0 or c.lambda_gram > 0):
            enc = getattr(model, "module", model).encoder
            w_fake, feats_fake = enc.encode(fake)
            losses["g_style"] = c.lambda_style * F.mse_loss(w_fake, w)
            losses["g_gram"] = c.lambda_gram * gram_loss(feats_fake, feats)
        total = sum(losses.values())
        opt.zero_grad(set_to_none=True)
        total.backward()
        opt.step()
        return {k: v.detach().item() for k, v in losses.items()}

    def train_step(self, batch) -> dict[str, float]:
        mask, image, style = batch["mask"], batch["image"], batch["style"]
        model = self.models["seg2eye"]
        bare = getattr(model, "module", model)
        if self.config.use_style:
            w, feats = bare.encode(style)
            fake = bare.generator(mask, w)
        else:
            w, feats = None, None
            fake = model(mask, style)
        out = self.discriminator_step(mask, image, fake)
        out.update(self.generator_step(mask, image, style, fake, w, feats))
        return out


def train_seg2eye(images, masks, groups, config: Seg2EyeConfig, *, seed: int = 0, device=None, progress: bool = True,
                  on_log=None, log_every: int | None = None, snapshot_at: int | None = None, on_snapshot=None):
    """Train on images (N, 1, H, W) uint8 or [−1, 1], masks (N, H, W), groups (N,) (person × side ids).
    Returns (Seg2Eye model in eval mode, discriminator, history).

    ``on_snapshot(model, history)`` is called once ``snapshot_at`` steps are done (the learning rates
    are constant, so that snapshot equals a run of ``snapshot_at`` steps: the ablations' reference)."""
    torch.manual_seed(seed)
    model = Seg2Eye(config)
    disc = MultiScaleDiscriminator(config.n_classes + 1, config.ndf, config.d_layers, config.n_scales)
    trainer = Seg2EyeTrainer(model, disc, config, device=device)
    batches = StyleBatches(images, masks, groups, k_style=config.k_style, batch_size=min(config.batch_size, len(images)),
                           seed=seed)

    def snapshot(history):
        if on_snapshot is not None:
            on_snapshot(trainer.module("seg2eye").eval(), history)

    trainer.fit_with_snapshot(batches, config.steps, snapshot_at=snapshot_at, on_snapshot=snapshot,
                              log_every=log_every or max(1, config.steps // 100), desc="seg2eye", on_log=on_log,
                              progress=progress)
    return trainer.module("seg2eye").eval(), trainer.module("discriminator").eval(), trainer.history


def load_or_train_seg2eye(path, config: Seg2EyeConfig, images, masks, groups, *, seed: int = 0, retrain: bool = False,
                          on_log=None, progress: bool = True, snapshot_path=None, **load_options):
    """Load the Seg2Eye checkpoint at ``path`` if present, else train and save it
    (``load_options``: ``provenance``, ``allow_training``, ``how_to_make`` of
    :func:`~eyegen_lib.checkpoint.load_or_train`; the snapshot gets the same provenance).

    With ``snapshot_path``, training also saves the model at ``config.ablation_steps`` there, as a
    checkpoint of a ``steps = ablation_steps`` run: the reference the ablations are compared with.
    Returns (model in eval mode, checkpoint info with ``metrics`` holding the loss history)."""
    model = Seg2Eye(config)
    short = replace(config, steps=config.ablation_steps)

    def save_snapshot(snap, history):
        save_checkpoint(snapshot_path, kind="seg2eye", model=snap, config=short, step=short.steps,
                        metrics=history_metrics(history), provenance=with_config(load_options.get("provenance"), short))

    def train():
        trained, _, history = train_seg2eye(images, masks, groups, config, seed=seed, on_log=on_log, progress=progress,
                                            snapshot_at=config.ablation_steps if snapshot_path else None,
                                            on_snapshot=save_snapshot if snapshot_path else None)
        model.load_state_dict(trained.state_dict())
        return {"step": config.steps, **history_metrics(history)}

    info = load_or_train(path, kind="seg2eye", model=model, config=config, train=train, retrain=retrain, **load_options)
    return model.eval(), info


@torch.no_grad()
def generate(model: Seg2Eye, masks: torch.Tensor, style: torch.Tensor | None = None, *, w: torch.Tensor | None = None,
             batch_size: int = 64) -> torch.Tensor:
    """uint8 (B, 1, H, W) images for masks (B, H, W) with K style images (B, K, 1, H, W) or codes w (B, D)."""
    model.eval()
    device = next(model.parameters()).device
    outs = []
    for i in range(0, len(masks), batch_size):
        m = masks[i:i + batch_size].to(device)
        if w is not None:
            o = model(m, w=w[i:i + batch_size].to(device))
        else:
            o = model(m, to_signed(style[i:i + batch_size]).to(device))
        outs.append(to_uint8(o))
    return torch.cat(outs)
