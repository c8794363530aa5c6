"""Training Seg2Eye: TTUR Adam (β = (0, 0.9)), a discriminator step then a generator step per batch.

Generator objective: hinge GAN + λ_fm·feature matching + λ_l2·pixel MSE + λ_style·MSE(code of
the generated image, aggregated code) + λ_gram·Gram consistency of style-encoder features.
Batches come from a row store (:class:`StyleBatches`: tensors in memory, or images rendered when
drawn), K style images per target drawn from the other images of the target's person and eye side;
batch i is a function of (seed, rank, i), so training resumes exactly.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ....core.distributed import DistInfo, init_distributed
from ....core.images import to_signed, to_uint8
from ....core.training import Trainer, TrainingRun, frozen
from ...batches import BatchSource, as_rows, step_rng
from .config import Seg2EyeConfig
from .discriminator import MultiScaleDiscriminator
from .generator import Seg2Eye, one_hot
from .loss import feature_matching_loss, gram_loss, hinge_d_loss, hinge_g_loss

__all__ = ["StyleBatches", "Seg2EyeTrainer", "seg2eye_run", "train_seg2eye", "generate"]


class StyleBatches(BatchSource):
    """{mask, image, style (B, K, 1, H, W)} batches: batch i holds B targets drawn from this
    process's shard and, per target, K style images — others of its group (never itself), from any
    shard: they condition, they are not targets. Both are drawn with the (seed, rank, i) stream, so
    batch i is the same in a resumed run.

    ``data`` is a row store (:mod:`eyegen_lib.science.data.rows`) or dict with ``image`` (N, 1, H, W) uint8
    or [−1, 1] and ``mask`` (N, H, W); ``groups`` (N,) says which images share a person and side.
    A batch fetches each row it needs once (a style image may be another target's)."""

    def __init__(self, data, groups, *, k_style: int, batch_size: int, seed: int = 0, dist: DistInfo | None = None,
                 targets: torch.Tensor | None = None):
        self.data = as_rows(data)
        self.groups = torch.as_tensor(groups)
        if len(self.groups) != len(self.data):
            raise ValueError(f"{len(self.data)} images but {len(self.groups)} group ids")
        self.k, self.batch_size = k_style, batch_size
        self.members = {}
        for i, g in enumerate(self.groups.tolist()):
            self.members.setdefault(g, []).append(i)
        small = [g for g, m in self.members.items() if len(m) <= k_style]
        if small:
            raise ValueError(f"groups {small[:5]} have ≤ k_style={k_style} images: lower k_style")
        super().__init__(len(self.data), seed=seed, dist=dist)
        if targets is not None:  # only these rows are targets (labelled); the others serve as style images only
            self.rows = self.rows[torch.as_tensor(targets, dtype=torch.bool)[self.rows]]
        if len(self.rows) < batch_size:
            raise ValueError(f"this process has {len(self.rows)} training images, fewer than one batch of {batch_size}")

    def style_for(self, targets, rng: np.random.Generator | None = None) -> torch.Tensor:
        """(len(targets), K) indices: K other images of each target's group (``rng``: default seeded)."""
        rng = rng if rng is not None else np.random.default_rng(self.seed)
        rows = []
        for t in targets:
            others = [i for i in self.members[int(self.groups[int(t)])] if i != int(t)]
            rows.append(rng.choice(others, self.k, replace=False))
        return torch.as_tensor(np.stack(rows), dtype=torch.int64)

    def _draw(self, step: int):
        rng = step_rng(self.seed, self.dist.rank, step)
        targets = self.rows[torch.as_tensor(rng.choice(len(self.rows), self.batch_size, replace=False))]
        return targets, self.style_for(targets.tolist(), rng)

    def sample_ids(self, step: int) -> torch.Tensor:
        return self._draw(step)[0]

    def raw(self, step: int):
        t, style = self._draw(step)
        rows, where = torch.unique(torch.cat([t, style.flatten()]), return_inverse=True)
        return {"rows": self.data.fetch(rows), "target": where[: len(t)], "style": where[len(t):].reshape(style.shape)}

    def assemble(self, raw):
        got, t, style = raw["rows"], raw["target"], raw["style"]
        images = to_signed(got["image"])
        return {"mask": got["mask"][t].long(), "image": images[t], "style": images[style]}

    def batch(self, step: int):
        return self.assemble(self.raw(step))


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
        c = self.config
        # D fixed, called bare: under DDP only the generator's gradients are reduced in this step
        d, opt = self.module("discriminator"), self.optimizers["generator"]
        with frozen(d):
            outs = d(torch.cat([self._d_input(mask, image), self._d_input(mask, fake)], 0))
        real_outs = [[f[: len(image)] for f in scale] for scale in outs]
        fake_outs = [[f[len(image):] for f in scale] for scale in outs]
        losses = {"g_hinge": hinge_g_loss(fake_outs),
                  "g_fm": c.lambda_fm * feature_matching_loss(real_outs, fake_outs),
                  "g_l2": c.lambda_l2 * F.mse_loss(fake, image)}
        if c.use_style and (c.lambda_style > 0 or c.lambda_gram > 0):
            enc = self.module("seg2eye").encoder  # same backward as the DDP forward: reduced once
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
        fake, w, feats = self.models["seg2eye"](mask, style, return_style=True)  # through DDP: gradients reduced
        out = self.discriminator_step(mask, image, fake)
        out.update(self.generator_step(mask, image, style, fake, w, feats))
        return out


def seg2eye_run(data, groups, config: Seg2EyeConfig, *, seed: int = 0, device=None,
                dist: DistInfo | None = None, targets: torch.Tensor | None = None) -> TrainingRun:
    """A training run on ``data`` (a row store or dict: ``image`` (N, 1, H, W) uint8 or [−1, 1],
    ``mask`` (N, H, W)) and ``groups`` (N,) (person × side ids): Seg2Eye and its multi-scale
    discriminator, TTUR Adam at constant rates. ``targets`` (N,) bool: the rows that may be targets
    (labelled), the rest style images only (OpenEDS's generative frames); default all."""
    dist = dist or init_distributed()
    data = as_rows(data)
    model = Seg2Eye(config)
    disc = MultiScaleDiscriminator(config.n_classes + 1, config.ndf, config.d_layers, config.n_scales)
    trainer = Seg2EyeTrainer(model, disc, config, device=device, dist_info=dist)
    n_targets = len(data) if targets is None else int(torch.as_tensor(targets).sum())
    batches = StyleBatches(data, groups, k_style=config.k_style,
                           batch_size=min(config.batch_size, n_targets // dist.world_size), seed=seed, dist=dist,
                           targets=targets)
    return TrainingRun(trainer, batches, model)


def train_seg2eye(images, masks, groups, config: Seg2EyeConfig, *, seed: int = 0, device=None, progress: bool = True,
                  on_log=None, log_every: int | None = None):
    """Train in memory (no checkpoint; :func:`eyegen_lib.runs.registry.seg2eye` keeps one).
    Returns (Seg2Eye model in eval mode, discriminator, history)."""
    torch.manual_seed(seed)
    run = seg2eye_run({"image": images, "mask": masks}, groups, config, seed=seed, device=device)
    model, history = run.fit(config.steps, log_every=log_every, desc="seg2eye", on_log=on_log, progress=progress)
    return model, run.trainer.module("discriminator").eval(), history


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
