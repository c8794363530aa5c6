"""The project's independent gaze estimator: a compact VGG-style regressor of (pitch, yaw).

He et al. measure redirection precision with a separate, pretrained gaze estimator (Park et al.);
ours is trained on the training persons only and is never any GAN's own gaze head. Its error on
real (rendered) test images is the floor of the gaze-error metric. It takes 64×64 RGB patches,
DeepWarp's 41×51 crops, or grey images: global average pooling makes it size-agnostic.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ...core.distributed import DistInfo, init_distributed
from ...core.images import to_signed
from ...core.profiles import Profile
from ...core.runtime import tqdm
from ...core.training import SupervisedTrainer, TrainingRun
from ..batches import EpochBatches, as_rows, rank_generator
from ..data.rows import TensorRows

__all__ = ["GazeEstimatorConfig", "GazeEstimator", "gaze_estimator_run", "predict_gaze"]


@dataclass
class GazeEstimatorConfig:
    in_channels: int = 3
    widths: tuple[int, ...] = (64, 128, 256, 512)  # one VGG stage (2 convs + pool) per width
    hidden: int = 256
    dropout: float = 0.2
    steps: int = 20_000
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 1e-4
    jitter_px: int = 2  # random translation during training: GAN outputs are not pixel-aligned

    @classmethod
    def for_profile(cls, profile: Profile, in_channels: int = 3) -> "GazeEstimatorConfig":
        """Paper: the widths above. The small profiles keep the four VGG stages but narrow them so
        a 2-core CPU trains one in seconds (smoke) or a few minutes (cpu); a 64×64 step costs
        ≈ 0.66 GFLOP per image at widths 16…128, a quarter of that at 8…64."""
        if profile.paper_shapes:
            return cls(in_channels=in_channels, **profile.schedule("gaze_estimator"))
        return cls(in_channels=in_channels, widths=(8, 16, 32, 64), hidden=64, **profile.schedule("gaze_estimator"))


class GazeEstimator(nn.Module):
    def __init__(self, config: GazeEstimatorConfig):
        super().__init__()
        self.config = config
        layers, c = [], config.in_channels
        for w in config.widths:
            layers += [nn.Conv2d(c, w, 3, padding=1, bias=False), nn.BatchNorm2d(w), nn.ReLU(inplace=True),
                       nn.Conv2d(w, w, 3, padding=1, bias=False), nn.BatchNorm2d(w), nn.ReLU(inplace=True),
                       nn.MaxPool2d(2, ceil_mode=True)]
            c = w
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(c, config.hidden), nn.ReLU(inplace=True),
                                  nn.Dropout(config.dropout), nn.Linear(config.hidden, 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) images in [-1, 1] → (B, 2) (pitch, yaw) in radians."""
        if x.shape[1] != self.config.in_channels:
            raise ValueError(f"this gaze estimator takes {self.config.in_channels}-channel images, got {x.shape[1]}")
        return self.head(F.adaptive_avg_pool2d(self.features(x), 1))


def _jitter(x: torch.Tensor, px: int, generator: torch.Generator) -> torch.Tensor:
    """Random integer translation per image (replicate padding) and brightness/contrast jitter."""
    if px <= 0:
        return x
    b, _, h, w = x.shape
    padded = F.pad(x, (px, px, px, px), mode="replicate")
    dy = torch.randint(0, 2 * px + 1, (b,), generator=generator)
    dx = torch.randint(0, 2 * px + 1, (b,), generator=generator)
    out = torch.stack([padded[i, :, dy[i]:dy[i] + h, dx[i]:dx[i] + w] for i in range(b)])
    gain = (1 + 0.15 * (torch.rand(b, 1, 1, 1, generator=generator) - 0.5)).to(x)
    bias = (0.1 * (torch.rand(b, 1, 1, 1, generator=generator) - 0.5)).to(x)
    return (out * gain + bias).clamp(-1, 1)


class _JitteredGazeTrainer(SupervisedTrainer):
    def __init__(self, *args, jitter_px: int, generator: torch.Generator, **kwargs):
        super().__init__(*args, generators={"jitter": generator}, **kwargs)
        self.jitter_px = jitter_px

    def train_step(self, batch):
        images, gaze = batch
        images = _jitter(images, self.jitter_px, self.generators["jitter"])  # the generator lives on the CPU
        return super().train_step((images, gaze))


def _gaze_batch(batch):
    return to_signed(batch["image"]), batch["gaze"].float()


def gaze_estimator_run(data, config: GazeEstimatorConfig, *, seed: int = 0, device: torch.device | str | None = None,
                       dist: DistInfo | None = None, evaluate=None) -> TrainingRun:
    """A training run on ``data``: a row store (:mod:`eyegen_lib.science.data.rows`) or dict with ``image``
    (N, C, H, W) uint8 or float in [−1, 1] and ``gaze`` (N, 2) pitch/yaw labels (AdamW, one-cycle
    schedule, translation and brightness jitter); this process trains on its shard."""
    data = as_rows(data)
    if isinstance(data, TensorRows):
        images, gaze = data.tensors["image"], data.tensors["gaze"]
        if images.ndim != 4 or tuple(gaze.shape) != (len(images), 2):
            raise ValueError(f"expected images (N, C, H, W) and gaze (N, 2), got {tuple(images.shape)} and {tuple(gaze.shape)}")
    dist = dist or init_distributed()
    model = GazeEstimator(config)
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=config.lr, total_steps=config.steps, pct_start=0.15)
    trainer = _JitteredGazeTrainer(model, opt, F.mse_loss, device=device, schedulers={"lr": sched}, dist_info=dist,
                                   jitter_px=config.jitter_px, generator=rank_generator(seed, dist))
    batches = EpochBatches(data, min(config.batch_size, len(data) // dist.world_size), seed=seed, dist=dist,
                           prepare=_gaze_batch)
    return TrainingRun(trainer, batches, model, evaluate)


@torch.no_grad()
def predict_gaze(model: GazeEstimator, images: torch.Tensor, *, batch_size: int = 256, progress: bool = False) -> torch.Tensor:
    """(N, C, H, W) images in [-1, 1] → (N, 2) pitch/yaw predictions (on CPU)."""
    model.eval()
    device = next(model.parameters()).device
    chunks = range(0, len(images), batch_size)
    return torch.cat([model(images[i:i + batch_size].to(device).float()).cpu()
                      for i in tqdm(chunks, desc="gaze", disable=not progress, leave=False)])
