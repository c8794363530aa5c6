"""Training DeepWarp: its pairs, sampled so that redirection-angle bins are balanced (§4.2), and
the trainer (package doc)."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ....core.distributed import DistInfo, init_distributed
from ....core.images import to_signed
from ....core.training import Trainer, TrainingRun
from ...batches import BatchSource
from ...data.pairs import centre_crop, pair_parts
from .config import DeepWarpConfig
from .losses import border_of, registration_aware_loss
from .networks import DeepWarp

__all__ = ["angle_bin_ids", "pair_sampling_weights", "PairBatches", "DeepWarpTrainer", "deepwarp_run",
           "train_deepwarp"]


def angle_bin_ids(redirection_deg: torch.Tensor, n_bins: int = 15) -> torch.Tensor:
    """(N,) bin of each redirection (N, 2) (Δpitch, Δyaw) in degrees. Equal-width bins over the
    range of each component that varies: ``n_bins`` along one axis (vertical-only: the paper's 15
    over ±30°), or round(√n_bins) along each of two (a grid)."""
    r = torch.as_tensor(redirection_deg, dtype=torch.float64).reshape(-1, 2)
    varying = [a for a in range(2) if float(r[:, a].max() - r[:, a].min()) > 1e-6]
    per_axis = n_bins if len(varying) == 1 else max(1, round(math.sqrt(n_bins)))
    ids = torch.zeros(len(r), dtype=torch.int64)
    for a in varying:
        lo, hi = r[:, a].min(), r[:, a].max()
        b = ((r[:, a] - lo) / (hi - lo) * per_axis).long().clamp(max=per_axis - 1)
        ids = ids * per_axis + b
    return ids


def pair_sampling_weights(redirection_deg: torch.Tensor, tilt_deg: torch.Tensor | None = None, *,
                          n_bins: int = 15, hard_tilt_deg: float = 8.0, hard_share: float = 0.25) -> torch.Tensor:
    """§4.2's sampling as per-pair probabilities (sum 1): every non-empty redirection-angle bin is
    equally likely, and within a bin the "hard" pairs (tilt ≥ ``hard_tilt_deg``) get
    ``hard_share`` of the mass (the paper's 8 of 32) when the bin has any, the "easy" ones the rest.
    Draw with replacement (``torch.multinomial``): rare angles and rare poses are oversampled."""
    bins = angle_bin_ids(redirection_deg, n_bins)
    hard = torch.zeros(len(bins), dtype=torch.bool) if tilt_deg is None else torch.as_tensor(tilt_deg) >= hard_tilt_deg
    weights = torch.zeros(len(bins), dtype=torch.float64)
    present = bins.unique()
    for b in present:
        in_bin = bins == b
        n_hard, n_easy = int((in_bin & hard).sum()), int((in_bin & ~hard).sum())
        share_hard = hard_share if n_hard and n_easy else float(n_hard > 0)
        if n_hard:
            weights[in_bin & hard] = share_hard / n_hard
        if n_easy:
            weights[in_bin & ~hard] = (1 - share_hard) / n_easy
    return (weights / len(present)).float()


class PairBatches(BatchSource):
    """{source, target, landmarks, angle} batches of training pairs (:func:`~eyegen_lib.science.data.pairs.pair_parts`:
    tensors in memory, or :class:`~eyegen_lib.science.data.pairs.PairRows` rendered when drawn): batch i draws
    pairs of this process's shard with :func:`pair_sampling_weights` (with replacement) from the
    (seed, rank, i) stream."""

    def __init__(self, data, config: DeepWarpConfig, *, batch_size: int, seed: int = 0,
                 dist: DistInfo | None = None):
        self.data, meta = pair_parts(data, ("source", "target", "landmarks"))
        self.angle_dims = config.angle_dims
        super().__init__(len(self.data), seed=seed, dist=dist)
        tilt = meta.get("tilt_deg")
        rows = self.rows
        self.weights = pair_sampling_weights(torch.rad2deg(meta["target_gaze"] - meta["source_gaze"])[rows],
                                             None if tilt is None else tilt[rows], n_bins=config.angle_bins,
                                             hard_tilt_deg=config.hard_tilt_deg, hard_share=config.hard_share)
        self.angle = (meta["target_gaze"] - meta["source_gaze"]).float()[:, : self.angle_dims]
        self.batch_size = batch_size

    def sample_ids(self, step: int) -> torch.Tensor:
        return self.rows[torch.multinomial(self.weights, self.batch_size, replacement=True, generator=self.generator(step))]

    def raw(self, step: int):
        pick = self.sample_ids(step)
        rows, where = torch.unique(pick, return_inverse=True)  # drawn with replacement: fetch each pair once
        return {"rows": self.data.fetch(rows), "where": where, "pick": pick}

    def assemble(self, raw):
        got, where = raw["rows"], raw["where"]
        return {"source": to_signed(got["source"][where]), "target": to_signed(got["target"][where]),
                "landmarks": got["landmarks"][where].float(), "angle": self.angle[raw["pick"]]}

    def batch(self, step: int):
        return self.assemble(self.raw(step))


class DeepWarpTrainer(Trainer):
    """Adam on the L2/L1 or registration-aware loss. Logs ``loss`` (the objective) and ``mse`` (plain
    L2 against the central H × W window of the target, comparable between k = 0 and k > 0 runs)."""

    def __init__(self, model: DeepWarp, config: DeepWarpConfig, **kwargs):
        opt = torch.optim.Adam(model.parameters(), lr=config.lr)
        super().__init__({"deepwarp": model}, {"deepwarp": opt}, **kwargs)
        self.config = config

    def train_step(self, batch) -> dict[str, float]:
        c = self.config
        output = self.models["deepwarp"](batch["source"], batch["landmarks"], batch["angle"])
        loss = registration_aware_loss(output, batch["target"], c.registration_k, c.distance)
        opt = self.optimizers["deepwarp"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        with torch.no_grad():
            target = batch["target"]
            mse = F.mse_loss(output, centre_crop(target, border_of(output, target)))
        return {"loss": loss.detach().item(), "mse": mse.item()}


def _check_pairs(data, config: DeepWarpConfig) -> None:
    rows, meta = pair_parts(data, ("source", "target", "landmarks"))
    n = len(rows)
    if n == 0 or any(len(meta[k]) != n for k in ("source_gaze", "target_gaze")):
        raise ValueError("source, target, landmarks and gazes must hold the same (non-zero) number of pairs")
    border = meta["border"]
    if border < config.registration_k:
        raise ValueError(f"registration_k={config.registration_k} needs targets {config.registration_k} px larger on "
                         f"each side than the sources, but they are {2 * border} px larger in all: render pairs with "
                         f"render_redirection_pairs(..., border={config.registration_k}) or set registration_k=0")
    if config.angle_dims == 1 and bool((meta["target_gaze"][:, 1] != meta["source_gaze"][:, 1]).any()):
        raise ValueError("a vertical-only model (angle_dims=1) needs pairs with unchanged yaw: "
                         "render_redirection_pairs(..., vertical_only=True)")


def deepwarp_run(pairs, config: DeepWarpConfig, *, seed: int = 0, device=None, dist: DistInfo | None = None) -> TrainingRun:
    """A training run of a DeepWarp model on ``pairs``: the dict of :func:`render_redirection_pairs`, a
    :class:`~eyegen_lib.science.data.pairs.PairRows` (rendered when drawn) or a
    :class:`~eyegen_lib.science.data.pairs.GroupPairRows` (photographs), with landmarks. The angle input is
    target − source gaze; batches follow :func:`pair_sampling_weights` (Adam, constant rate)."""
    _check_pairs(pairs, config)
    dist = dist or init_distributed()
    model = DeepWarp(config)
    trainer = DeepWarpTrainer(model, config, device=device, dist_info=dist)
    n_pairs = len(pair_parts(pairs, ("source",))[0])
    batches = PairBatches(pairs, config, batch_size=min(config.batch_size, n_pairs // dist.world_size), seed=seed, dist=dist)
    return TrainingRun(trainer, batches, model)


def train_deepwarp(pairs, config: DeepWarpConfig, *, seed: int = 0, device=None, progress: bool = True,
                   on_log=None, log_every: int | None = None):
    """Train in memory (no checkpoint; :func:`eyegen_lib.runs.registry.deepwarp` keeps one). Returns
    (model in eval mode, history of {step, loss, mse})."""
    torch.manual_seed(seed)
    return deepwarp_run(pairs, config, seed=seed, device=device).fit(
        config.steps, log_every=log_every, desc=f"deepwarp {config.variant}", on_log=on_log, progress=progress)
