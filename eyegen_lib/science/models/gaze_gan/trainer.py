"""Training the gaze GAN: its paired batches (n_critic + 1 mini-batches per iteration), the learning-
rate schedule, and the trainer's critic and generator steps (package doc)."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ....core.distributed import DistInfo, init_distributed
from ....core.images import to_signed
from ....core.training import Trainer, TrainingRun, frozen
from ...batches import BatchSource
from ...data.pairs import pair_parts
from .config import GazeGANConfig, gaze_to_code
from .losses import VGG16Perceptual, gradient_penalty, random_interpolates, wgan_critic_loss
from .networks import GazeGAN

__all__ = ["IterationBatches", "linear_decay", "GazeGANTrainer", "gaze_gan_run", "train_gaze_gan"]




def _check_pairs(data, config: GazeGANConfig) -> None:
    rows, meta = pair_parts(data, ("source", "target"))
    n = len(rows)
    if n == 0 or any(len(meta[k]) != n for k in ("source_gaze", "target_gaze")):
        raise ValueError("source, target and both gazes must hold the same (non-zero) number of pairs")
    H, W = config.image_size
    probe = rows.fetch([0])
    for k in ("source", "target"):
        if tuple(probe[k].shape[1:]) != (3, H, W):
            raise ValueError(f"{k} images must be (N, 3, {H}, {W}) for this config, got {(n, *probe[k].shape[1:])} "
                             "(render pairs with border=0 at the config's image_size)")
    for k in ("source_gaze", "target_gaze"):
        if tuple(meta[k].shape) != (n, 2):
            raise ValueError(f"{k} must be (N, 2) = (pitch, yaw) radians, got {tuple(meta[k].shape)}")


class IterationBatches(BatchSource):
    """Batch i holds the mini-batches of one training iteration (``n_minibatches`` = n_critic for
    the critic + 1 for the generator), stacked on a leading axis: ``source``/``target`` (n, B, 3,
    H, W) in [−1, 1] and ``source_gaze``/``target_gaze`` (n, B, 2) radians. Each mini-batch is B
    distinct pairs of this process's shard, drawn uniformly from the (seed, rank, i) stream. Pairs
    come from :func:`~eyegen_lib.science.data.pairs.pair_parts` (uint8 in memory, or rendered when drawn)."""

    def __init__(self, data, *, batch_size: int, n_minibatches: int, seed: int = 0, dist: DistInfo | None = None):
        self.data, meta = pair_parts(data, ("source", "target"))
        self.source_gaze, self.target_gaze = meta["source_gaze"].float(), meta["target_gaze"].float()
        super().__init__(len(self.data), seed=seed, dist=dist)
        self.batch_size = min(batch_size, len(self.rows))
        self.n_minibatches = n_minibatches

    def sample_ids(self, step: int) -> torch.Tensor:
        g = self.generator(step)
        return torch.stack([self.rows[torch.randperm(len(self.rows), generator=g)[: self.batch_size]]
                            for _ in range(self.n_minibatches)])

    def raw(self, step: int):
        picks = self.sample_ids(step)
        rows, where = torch.unique(picks, return_inverse=True)  # a pair in two mini-batches is fetched once
        return {"rows": self.data.fetch(rows), "where": where, "picks": picks}

    def assemble(self, raw):
        got, where, picks = raw["rows"], raw["where"], raw["picks"]
        return {"source": to_signed(got["source"][where]), "target": to_signed(got["target"][where]),
                "source_gaze": self.source_gaze[picks], "target_gaze": self.target_gaze[picks]}

    def batch(self, step: int):
        return self.assemble(self.raw(step))



def linear_decay(steps: int, decay_start: float):
    """LambdaLR factor: 1 until ``decay_start · steps``, then linearly to 0 at ``steps`` (official:
    ``lr · (2 − 2·epoch / epochs)`` in the second half)."""
    start = int(decay_start * steps)

    def factor(step: int) -> float:
        return 1.0 if step < start else max(0.0, (steps - step) / max(1, steps - start))

    return factor


class GazeGANTrainer(Trainer):
    """WGAN-GP with a gaze head, cycle and perceptual losses; Adam (lr, β1, β2) for both networks,
    and the linear decay as ``schedulers`` (stepped once per iteration).

    ``train_step`` takes the stacked mini-batches of :class:`IterationBatches`: ``n_critic`` calls of
    :meth:`discriminator_step`, then one of :meth:`generator_step`. It returns the critic's losses
    averaged over its steps (``d_adv``, ``d_gp``, ``d_gaze``) and the generator's (``g_adv``,
    ``g_gaze``, ``g_cycle``, ``g_content``, ``g_style``), each multiplied by its λ; a term whose λ is
    0 is neither computed nor returned. ``perceptual`` is the VGG-16 feature extractor (built from the
    offline weights when not given; never loaded when λ_perceptual is 0)."""

    def __init__(self, model: GazeGAN, config: GazeGANConfig | None = None, *,
                 perceptual: VGG16Perceptual | None = None, **kwargs):
        config = config or model.config
        betas = (config.beta1, config.beta2)
        opts = {"generator": torch.optim.Adam(model.generator.parameters(), lr=config.lr, betas=betas),
                "discriminator": torch.optim.Adam(model.discriminator.parameters(), lr=config.lr, betas=betas)}
        decay = linear_decay(config.steps, config.decay_start)
        schedulers = {k: torch.optim.lr_scheduler.LambdaLR(o, decay) for k, o in opts.items()}
        super().__init__({"generator": model.generator, "discriminator": model.discriminator}, opts,
                         schedulers=schedulers, **kwargs)
        self.config = config
        self.perceptual = None
        if config.lambda_perceptual > 0:
            self.perceptual = (perceptual or VGG16Perceptual()).to(self.device)

    def _code(self, gaze: torch.Tensor) -> torch.Tensor:
        return gaze_to_code(gaze, self.config.gaze_scale_deg)

    def discriminator_step(self, batch: dict) -> dict[str, float]:
        """One critic update on a mini-batch: WGAN + λ_gp·GP (+ λ_gaze·gaze MSE on the real images)."""
        c, d, opt = self.config, self.models["discriminator"], self.optimizers["discriminator"]
        real = batch["source"]
        with torch.no_grad():
            fake = self.module("generator")(real, self._code(batch["target_gaze"]))
        mixed = random_interpolates(real, fake)
        # one pass over real ⊕ fake ⊕ interpolates: exact, since the critic treats samples independently
        scores, gaze = d(torch.cat([real, fake, mixed]))
        real_scores, fake_scores, mixed_scores = scores.split(len(real))
        losses = {"d_adv": wgan_critic_loss(real_scores, fake_scores),
                  "d_gp": c.lambda_gp * gradient_penalty(mixed_scores, mixed)}
        if c.lambda_gaze > 0:
            losses["d_gaze"] = c.lambda_gaze * F.mse_loss(gaze[: len(real)], self._code(batch["source_gaze"]))
        opt.zero_grad(set_to_none=True)
        sum(losses.values()).backward()
        opt.step()
        return {k: v.detach().item() for k, v in losses.items()}

    def generator_losses(self, batch: dict) -> dict[str, torch.Tensor]:
        """The generator's named losses on a mini-batch (each × its λ, with their graphs), the
        discriminator fixed: what :meth:`generator_step` minimises."""
        c, g = self.config, self.models["generator"]
        source, target = batch["source"], batch["target"]
        fake = g(source, self._code(batch["target_gaze"]))
        with frozen(self.module("discriminator")) as d:  # bare: under DDP only G's gradients are reduced here
            scores, gaze = d(fake)
        losses = {"g_adv": -scores.mean()}
        if c.lambda_gaze > 0:
            losses["g_gaze"] = c.lambda_gaze * F.mse_loss(gaze, self._code(batch["target_gaze"]))
        # the second and third passes through G use the bare module: one DDP forward per backward
        if c.lambda_cycle > 0:
            back = self.module("generator")(fake, self._code(batch["source_gaze"]))
            losses["g_cycle"] = c.lambda_cycle * F.l1_loss(back, source)
        if c.lambda_identity > 0:
            same = self.module("generator")(source, self._code(batch["source_gaze"]))
            losses["g_identity"] = c.lambda_identity * F.l1_loss(same, source)
        if c.lambda_target > 0:
            losses["g_target"] = c.lambda_target * F.l1_loss(fake, target)
        if c.lambda_perceptual > 0:
            content, style = self.perceptual.losses(fake, target, c.vgg_input)
            losses["g_content"] = c.lambda_perceptual * content
            losses["g_style"] = c.lambda_perceptual * style
        return losses

    def generator_step(self, batch: dict) -> dict[str, float]:
        """One generator update on a mini-batch, the discriminator fixed."""
        opt = self.optimizers["generator"]
        losses = self.generator_losses(batch)
        opt.zero_grad(set_to_none=True)
        sum(losses.values()).backward()
        opt.step()
        return {k: v.detach().item() for k, v in losses.items()}

    def train_step(self, batch: dict) -> dict[str, float]:
        n = self.config.n_critic + 1
        if batch["source"].ndim != 5 or len(batch["source"]) != n:
            raise ValueError(f"a training iteration needs n_critic + 1 = {n} stacked mini-batches (IterationBatches), "
                             f"got source of shape {tuple(batch['source'].shape)}")
        minibatches = [{k: v[i] for k, v in batch.items()} for i in range(n)]
        critic = [self.discriminator_step(mb) for mb in minibatches[:-1]]
        logs = {k: sum(log[k] for log in critic) / len(critic) for k in critic[0]}
        logs.update(self.generator_step(minibatches[-1]))
        return logs


def gaze_gan_run(pairs, config: GazeGANConfig, *, seed: int = 0, device=None, perceptual: VGG16Perceptual | None = None,
                 dist: DistInfo | None = None) -> TrainingRun:
    """A training run of a GazeGAN on redirection ``pairs`` (the dict of
    :func:`~eyegen_lib.science.data.pairs.render_redirection_pairs`, a ``PairRows`` or a ``GroupPairRows``): WGAN-GP
    with its gaze head, cycle and perceptual losses, and the linear decay of the learning rate."""
    _check_pairs(pairs, config)
    dist = dist or init_distributed()
    model = GazeGAN(config)
    trainer = GazeGANTrainer(model, config, perceptual=perceptual, device=device, dist_info=dist)
    batches = IterationBatches(pairs, batch_size=config.batch_size, n_minibatches=config.n_critic + 1, seed=seed, dist=dist)
    return TrainingRun(trainer, batches, model)


def train_gaze_gan(pairs, config: GazeGANConfig, *, seed: int = 0, device=None, progress: bool = True, on_log=None,
                   log_every: int | None = None, perceptual: VGG16Perceptual | None = None):
    """Train in memory for ``config.steps`` iterations (no checkpoint; :func:`eyegen_lib.runs.registry.gaze_gan`
    keeps one). Returns (model in eval mode, history of {step, d_*, g_*})."""
    torch.manual_seed(seed)
    return gaze_gan_run(pairs, config, seed=seed, device=device, perceptual=perceptual).fit(
        config.steps, log_every=log_every, desc="gaze GAN", on_log=on_log, progress=progress)
