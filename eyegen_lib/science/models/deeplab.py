"""DeepLab v3+ (Chen et al. 2018): the network behind both halves of Seg2Eye's winning entry.

* as a **segmenter** (Seg2Eye §4.1) it predicts 4-class pseudo-labels (skin, sclera, iris, pupil)
  for unlabelled images; the official code uses a ResNet-101 backbone at output stride 16, trained
  with cross-entropy on grey images repeated to 3 channels;
* as the **refiner** (§4.2, :mod:`eyegen_lib.science.models.refiner`) the same network with 3 other input
  channels and one output channel predicts a residual image.

The architecture, top to bottom:

* **encoder** — a ResNet whose last stage replaces its stride by dilation (atrous convolution), so
  features stay at 1/16 of the input (output stride 16) with the receptive field of a deeper net;
* **ASPP** — atrous spatial pyramid pooling: a 1×1 conv, three 3×3 convs at atrous rates (6, 12,
  18 at OpenEDS size) and an image-level pooling branch, concatenated and fused by a 1×1 conv;
* **decoder** — the ASPP output upsampled ×4 and concatenated with 48 channels reduced from the
  encoder's stride-4 (low-level) features, two 3×3 convs, a 1×1 classifier, bilinear ×4 to the input.

Widths follow the profile's width multiplier; the small profiles use basic residual blocks (a
ResNet-18-like encoder) and atrous rates scaled with the image height (rate × rows / 400), since
a rate of 18 on a 5×8 feature map would only see padding.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ...core.checkpoint import field_added_later
from ...core.distributed import DistInfo, init_distributed
from ...core.images import to_signed
from ...core.profiles import Profile
from ...core.runtime import tqdm
from ...core.training import SupervisedTrainer, TrainingRun
from ..batches import EpochBatches, as_rows, rank_generator
from ..data.camera_randomisation import PERTURBATIONS, CameraRandomisation, perturb, randomise_camera
from ..data.rows import TensorRows, fetch_in_chunks
from ..metrics import iou_from_confusion
from ..metrics.segmentation import confusion_matrix
from .layers import conv_bn_relu

__all__ = ["DeepLabConfig", "DeepLabV3Plus", "ResNetEncoder", "ASPP", "segmentation_loss", "check_masks", "segmenter_run", "segmentation_batches", "segmentation_confusion", "segmentation_scores",
           "SegmenterConfig", "train_segmenter", "segment"]


@dataclass
class DeepLabConfig:
    in_channels: int = 3  # the segmenter repeats grey input to 3 channels, as the official code does
    out_channels: int = 4  # 4 classes for the segmenter, 1 residual channel for the refiner
    block: str = "bottleneck"  # "bottleneck" (ResNet-50/101) or "basic" (ResNet-18/34)
    layers: tuple[int, ...] = (3, 4, 23, 3)  # ResNet-101
    widths: tuple[int, ...] = (64, 128, 256, 512)  # stage widths (bottlenecks expand them ×4)
    stem: int = 64
    output_stride: int = 16  # 16 or 8
    atrous_rates: tuple[int, ...] = (6, 12, 18)
    aspp_channels: int = 256
    low_level_channels: int = 48
    decoder_channels: int = 256
    dropout: float = 0.1
    input_size: tuple[int, int] = (400, 640)  # the (rows, cols) it is trained at; other sizes are resized

    @classmethod
    def for_profile(cls, profile: Profile, *, in_channels: int = 3, out_channels: int = 4) -> "DeepLabConfig":
        size = tuple(profile.nir_size)
        if profile.paper_shapes:
            return cls(in_channels=in_channels, out_channels=out_channels, input_size=size)
        scale = size[0] / 400  # atrous rates were chosen for OpenEDS' 400 rows
        rates = tuple(max(1, round(r * scale)) for r in cls.atrous_rates)
        return cls(in_channels=in_channels, out_channels=out_channels, block="basic",
                   layers=(1, 1, 1, 1) if profile.width_multiplier < 1 / 4 else (2, 2, 2, 2),  # ResNet-10 / -18
                   widths=tuple(profile.width(w, minimum=8) for w in cls.widths),
                   stem=profile.width(cls.stem, minimum=8), atrous_rates=rates,
                   aspp_channels=profile.width(cls.aspp_channels, minimum=16),
                   low_level_channels=profile.width(cls.low_level_channels, minimum=8),
                   # the stride-4 decoder dominates the cost on a CPU: half the scaled width
                   decoder_channels=profile.width(cls.decoder_channels // 2, minimum=16), input_size=size)


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, cin: int, width: int, stride: int = 1, dilation: int = 1):
        super().__init__()
        cout = width * self.expansion
        self.conv1 = nn.Conv2d(cin, width, 3, stride, padding=dilation, dilation=dilation, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, cout, 3, padding=dilation, dilation=dilation, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = (nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
                         if stride != 1 or cin != cout else nn.Identity())

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)), inplace=True)
        return F.relu(self.bn2(self.conv2(y)) + self.shortcut(x), inplace=True)


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, cin: int, width: int, stride: int = 1, dilation: int = 1):
        super().__init__()
        cout = width * self.expansion
        self.conv1 = nn.Conv2d(cin, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride, padding=dilation, dilation=dilation, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, cout, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(cout)
        self.shortcut = (nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
                         if stride != 1 or cin != cout else nn.Identity())

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)), inplace=True)
        y = F.relu(self.bn2(self.conv2(y)), inplace=True)
        return F.relu(self.bn3(self.conv3(y)) + self.shortcut(x), inplace=True)


class ResNetEncoder(nn.Module):
    """ResNet with a 7×7/2 stem and 3×3/2 max-pool (stride 4), then four stages at strides
    4, 8, 16, 32 — except that stages past the output stride dilate instead of striding.
    Returns (low-level features at stride 4, high-level features at the output stride)."""

    def __init__(self, c: DeepLabConfig):
        super().__init__()
        if c.output_stride not in (8, 16):
            raise ValueError(f"output_stride must be 8 or 16, got {c.output_stride}")
        if c.block not in ("basic", "bottleneck"):
            raise ValueError(f"block must be 'basic' or 'bottleneck', got {c.block!r}")
        block = BasicBlock if c.block == "basic" else Bottleneck
        self.stem = nn.Sequential(nn.Conv2d(c.in_channels, c.stem, 7, 2, 3, bias=False), nn.BatchNorm2d(c.stem),
                                  nn.ReLU(inplace=True), nn.MaxPool2d(3, 2, 1))
        stages, cin, stride, dilation = [], c.stem, 4, 1
        for k, (n, width) in enumerate(zip(c.layers, c.widths)):
            s = 1 if k == 0 else 2
            if k > 0 and stride * s > c.output_stride:  # atrous: keep the resolution, widen the view
                dilation *= s
                s = 1
            stride *= s
            blocks = []
            for j in range(n):
                blocks.append(block(cin, width, s if j == 0 else 1, dilation))
                cin = width * block.expansion
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.ModuleList(stages)
        self.low_channels = c.widths[0] * block.expansion
        self.out_channels = cin

    def forward(self, x):
        x = self.stem(x)
        low = x = self.stages[0](x)
        for stage in self.stages[1:]:
            x = stage(x)
        return low, x


class ASPP(nn.Module):
    """Atrous spatial pyramid pooling: 1×1, three dilated 3×3, image pooling; fused by 1×1."""

    def __init__(self, cin: int, cout: int, rates: tuple[int, ...], dropout: float = 0.1):
        super().__init__()
        self.branches = nn.ModuleList([conv_bn_relu(cin, cout, 1)] + [conv_bn_relu(cin, cout, 3, r) for r in rates])
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(cin, cout, 1, bias=False), nn.ReLU(inplace=True))
        self.project = nn.Sequential(conv_bn_relu(cout * (len(rates) + 2), cout, 1), nn.Dropout(dropout))

    def forward(self, x):
        pooled = self.pool(x).expand(-1, -1, *x.shape[-2:])  # no BN on a 1×1 map (batch 1 would fail)
        return self.project(torch.cat([b(x) for b in self.branches] + [pooled], 1))


class DeepLabV3Plus(nn.Module):
    """(B, C, H, W) → (B, out_channels, H, W) for any H, W (features are interpolated to fit)."""

    def __init__(self, config: DeepLabConfig):
        super().__init__()
        self.config = c = config
        self.encoder = ResNetEncoder(c)
        self.aspp = ASPP(self.encoder.out_channels, c.aspp_channels, tuple(c.atrous_rates), c.dropout)
        self.reduce = conv_bn_relu(self.encoder.low_channels, c.low_level_channels, 1)
        self.decoder = nn.Sequential(conv_bn_relu(c.aspp_channels + c.low_level_channels, c.decoder_channels),
                                     conv_bn_relu(c.decoder_channels, c.decoder_channels))
        self.head = nn.Conv2d(c.decoder_channels, c.out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4:
            raise ValueError(f"expected (B, C, H, W) images, got shape {tuple(x.shape)}")
        if x.shape[1] == 1 and self.config.in_channels == 3:
            x = x.expand(-1, 3, -1, -1)  # grey repeated to 3 channels (the official segmenter)
        if x.shape[1] != self.config.in_channels:
            raise ValueError(f"this DeepLab takes {self.config.in_channels} channels, got {x.shape[1]}")
        size = x.shape[-2:]
        low, high = self.encoder(x)
        high = F.interpolate(self.aspp(high), size=low.shape[-2:], mode="bilinear", align_corners=False)
        y = self.head(self.decoder(torch.cat([high, self.reduce(low)], 1)))
        return F.interpolate(y, size=size, mode="bilinear", align_corners=False)


def check_masks(masks: torch.Tensor, n_classes: int = 4) -> torch.Tensor:
    """Masks as int64 (B, H, W) with labels in 0..n_classes−1, or a ValueError saying what is wrong."""
    if masks.dtype.is_floating_point:
        raise TypeError(f"masks hold class labels (integers), got {masks.dtype}")
    if masks.ndim != 3:
        raise ValueError(f"masks must be (B, H, W), got shape {tuple(masks.shape)}")
    if masks.numel() and (int(masks.min()) < 0 or int(masks.max()) >= n_classes):
        raise ValueError(f"mask labels must lie in 0..{n_classes - 1} (skin, sclera, iris, pupil), "
                         f"found {sorted(masks.unique().tolist())[:10]}")
    return masks.long()


def segmentation_loss(logits: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """Pixel-wise cross-entropy of (B, K, H, W) logits against (B, H, W) labels in 0..K−1."""
    return F.cross_entropy(logits, check_masks(masks, logits.shape[1]))


# -- the segmenter (Seg2Eye §4.1) ------------------------------------------------------------------
field_added_later("camera_randomisation", 0.0)  # segmenters saved before it trained without it

@dataclass
class SegmenterConfig:
    net: DeepLabConfig
    steps: int = 30_000
    batch_size: int = 16
    lr: float = 1e-3
    weight_decay: float = 1e-4
    flip: bool = True  # random horizontal flips: a left eye mirrored looks like a right eye
    # Domain randomisation of the camera (exposure, contrast, gamma, vignette, blur, noise, small
    # shifts; data/camera_randomisation.py) at this strength, 0 = off. Ours, not the paper's: Seg2Eye's
    # segmenter trains on real OpenEDS frames, ours on rendered ones that must transfer to real frames.
    camera_randomisation: float = 1.0

    @classmethod
    def for_profile(cls, profile: Profile) -> "SegmenterConfig":
        return cls(net=DeepLabConfig.for_profile(profile, in_channels=3, out_channels=4), **profile.schedule("segmenter"))


def _as_signed(images: torch.Tensor) -> torch.Tensor:
    """uint8 0..255 → float [−1, 1]; floats are taken to be in [−1, 1] already."""
    if images.ndim == 3:
        images = images[:, None]
    if images.ndim != 4:
        raise ValueError(f"expected images (B, 1, H, W) or (B, H, W), got shape {tuple(images.shape)}")
    return to_signed(images)


class _SegmenterTrainer(SupervisedTrainer):
    """Cross-entropy steps on flipped and camera-randomised copies of each batch."""

    def __init__(self, *args, flip: bool, camera: CameraRandomisation, generator: torch.Generator,
                 camera_generator: torch.Generator, **kwargs):
        super().__init__(*args, generators={"flip": generator, "camera": camera_generator}, **kwargs)
        self.flip, self.camera = flip, camera

    def train_step(self, batch):
        images, masks = batch
        if self.flip:
            f = (torch.rand(len(images), generator=self.generators["flip"]) < 0.5).to(images.device)
            images = torch.where(f[:, None, None, None], images.flip(-1), images)
            masks = torch.where(f[:, None, None], masks.flip(-1), masks)
        images, masks = randomise_camera(images, masks, self.camera, self.generators["camera"])
        return super().train_step((images, masks))


def segmentation_batches(data, config: SegmenterConfig, *, seed: int = 0, dist: DistInfo | None = None) -> EpochBatches:
    """Epochs of (images float [−1, 1] (B, 1, h, w), labels (B, h, w)) at the net's input size, from a
    row store (or dict of tensors) with ``image`` (N, 1, H, W) uint8 or float and ``mask`` (N, H, W)."""
    dist = dist or DistInfo()
    data = as_rows(data)
    if isinstance(data, TensorRows):  # in memory: bad labels are found before training starts
        check_masks(data.tensors["mask"], config.net.out_channels)
    size = tuple(config.net.input_size)

    def prepare(batch):
        x, y = _as_signed(batch["image"]), check_masks(batch["mask"], config.net.out_channels)
        if tuple(x.shape[-2:]) != size:
            x = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
        if tuple(y.shape[-2:]) != size:
            y = F.interpolate(y[:, None].float(), size=size, mode="nearest")[:, 0].long()
        return x, y

    return EpochBatches(data, min(config.batch_size, len(data) // dist.world_size), seed=seed, dist=dist,
                        prepare=prepare)


def segmenter_run(data, config: SegmenterConfig, *, seed: int = 0, device=None, dist: DistInfo | None = None,
                  evaluate=None) -> TrainingRun:
    """A training run of DeepLab v3+ with cross-entropy on ``data``: a row store
    (:mod:`eyegen_lib.science.data.rows`) or dict with grey ``image`` (N, 1, H, W) (uint8, or float in
    [−1, 1]) and ``mask`` (N, H, W) labels in 0..3 (AdamW, one-cycle schedule, random flips and
    camera randomisation); this
    process trains on its shard of the rows."""
    dist = dist or init_distributed()
    batches = segmentation_batches(data, config, seed=seed, dist=dist)
    model = DeepLabV3Plus(config.net)
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=config.lr, total_steps=config.steps, pct_start=0.1)
    trainer = _SegmenterTrainer(model, opt, segmentation_loss, device=device, schedulers={"lr": sched}, dist_info=dist,
                                flip=config.flip, camera=CameraRandomisation(strength=config.camera_randomisation),
                                generator=rank_generator(seed, dist), camera_generator=rank_generator(seed + 7919, dist))
    return TrainingRun(trainer, batches, model, evaluate)


def train_segmenter(images: torch.Tensor, masks: torch.Tensor, config: SegmenterConfig, *, seed: int = 0,
                    device=None, progress: bool = True):
    """Train DeepLab v3+ in memory (no checkpoint; :func:`eyegen_lib.runs.registry.segmenter` keeps one).
    Returns (model, history)."""
    torch.manual_seed(seed)
    if len(images) != len(masks):
        raise ValueError(f"{len(images)} images but {len(masks)} masks")
    return segmenter_run({"image": images, "mask": masks}, config, seed=seed, device=device).fit(
        config.steps, desc="segmenter", progress=progress)


@torch.no_grad()
def segmentation_confusion(model: "DeepLabV3Plus", data, *, batch_size: int = 32, progress: bool = False,
                           perturbations: tuple[str, ...] = ()) -> torch.Tensor | dict[str, torch.Tensor]:
    """The (C, C) confusion matrix of ``model`` on a row store with ``image`` and ``mask``, read a
    batch at a time (a test split need not fit in memory): :func:`~eyegen_lib.science.metrics.iou_from_confusion`.
    With ``perturbations`` (names of :data:`~eyegen_lib.science.data.camera_randomisation.PERTURBATIONS`), a
    dict of matrices: ``"clean"`` and one per perturbation, from one read of the rows."""
    n = model.config.out_channels
    cms = {name: torch.zeros(n, n, dtype=torch.int64) for name in ("clean", *perturbations)}
    for _, batch in fetch_in_chunks(as_rows(data), chunk=batch_size, progress=progress, desc="segmenting"):
        for name in cms:
            images = batch["image"] if name == "clean" else perturb(batch["image"], name)
            cms[name] += confusion_matrix(segment(model, images, batch_size=batch_size), batch["mask"], n)
    return cms if perturbations else cms["clean"]


def segmentation_scores(model: "DeepLabV3Plus", data, *, perturbations: bool = True, progress: bool = False) -> dict:
    """mIoU and per-class IoU of ``model`` on ``data`` (see :func:`segmentation_confusion`), and with
    ``perturbations`` its mIoU under each test-time camera perturbation (``miou_<name>``, spaces as
    underscores) and the worst of those (``miou_worst_perturbed``)."""
    cms = segmentation_confusion(model, data, progress=progress, perturbations=tuple(PERTURBATIONS) if perturbations else ())
    iou = iou_from_confusion(cms["clean"] if perturbations else cms)
    out = {"miou": float(torch.nanmean(iou)),
           **{f"iou_{name}": float(v) for name, v in zip(("skin", "sclera", "iris", "pupil"), iou)}}
    if perturbations:
        perturbed = {"miou_" + name.replace(" ", "_"): float(torch.nanmean(iou_from_confusion(cms[name])))
                     for name in PERTURBATIONS}
        out.update(perturbed, miou_worst_perturbed=min(perturbed.values()))
    return out


@torch.no_grad()
def segment(model: DeepLabV3Plus, images: torch.Tensor, *, batch_size: int = 64, progress: bool = False,
            return_logits: bool = False) -> torch.Tensor:
    """Masks (B, H, W) int64 for grey images of ANY size (B, 1, H, W) (uint8, or float in [−1, 1]):
    resized to the size the model was trained at, logits resized back, arg-max per pixel."""
    x = _as_signed(images)
    model.eval()
    device = next(model.parameters()).device
    size, work = tuple(x.shape[-2:]), tuple(model.config.input_size)
    out = []
    for i in tqdm(range(0, len(x), batch_size), desc="segmenting", disable=not progress, leave=False):
        xi = x[i:i + batch_size].to(device)
        if tuple(xi.shape[-2:]) != work:
            xi = F.interpolate(xi, size=work, mode="bilinear", align_corners=False)
        logits = model(xi)
        if tuple(logits.shape[-2:]) != size:
            logits = F.interpolate(logits, size=size, mode="bilinear", align_corners=False)
        out.append((logits if return_logits else logits.argmax(1)).cpu())
    if not out:
        return torch.zeros((0, *size), dtype=torch.int64)
    return torch.cat(out)
