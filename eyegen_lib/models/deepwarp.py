"""DeepWarp (Ganin, Kononenko, Sungatullina, Lempitsky, ECCV 2016): gaze redirection by warping.

The network never paints an eye: it predicts a pixel-flow field ``D`` and resamples the input,
``O(x, y) = I(x + D_x(x, y), y + D_y(x, y))`` (bilinear, eq. 2), so every output pixel is an input
pixel and fine detail survives. Inputs, as in the paper (§3.3), are 33 maps at 41 × 51:

* the eye crop, 3 channels in [−1, 1];
* 14 anchor maps ``(x − x_i, y − y_i)`` of the 7 landmarks (6 eyelid points + pupil centre),
  divided by the crop width so they stay within about ±1;
* 16 constant maps: the redirection angle (target − source gaze, radians) through
  FC16-ReLU-FC16-ReLU.

Variants (the paper's comparison, §4.3):

* ``ss``  — single scale: one warping module at full scale predicts the flow.
* ``ms``  — multi-scale without coarse warping: the module's convolutions run on the input at
  half and at full scale; the half-scale features, upsampled, and the full-scale features are
  concatenated and one head predicts the flow ("uses features from both scales to predict the
  final warping transformation"). Nothing is warped before the final flow.
* ``cfw`` — coarse-to-fine warping (§3.2): a half-scale module predicts ``D_coarse``; it is
  upsampled and the input warped by it (``O_coarse``); a full-scale module sees the 33 maps ⊕
  ``O_coarse`` ⊕ ``D_coarse`` and predicts a residual: ``D = D_coarse + D_res`` (eq. 3, 4).
* ``cfw_lcm`` — CFW + the lightness correction module (§3.4): from the third-layer features of
  both modules and the warped image, a map ``M`` ∈ (0, 1) blends towards white,
  ``O_final = O·(1 − M) + M`` (eq. 6; with images in [−1, 1] white is 1 and the formula is the same).
* ``cfw_lcm_palette`` — the paper's generalisation: softmax weights over the warped image and a
  few learned palette colours.

A warping module (layer sizes as in the public ports): conv5×5-16, conv3×3-32, conv3×3-32 (the
"third layer" features), conv1×1-32 — each with BatchNorm and ReLU — then conv1×1-2 with tanh,
scaled to ``max_flow_px``. Flows are in full-resolution pixels at every scale. The last flow layer
and the LCM's output layer start at zero (M at ~0), so an untrained model returns its input.

Loss: L2, or the registration-aware loss of §4.5 (the minimum over (2k + 1)² shifts of a
k-pixel-larger ground truth). Training pairs are sampled so that redirection-angle bins are
balanced, with a share of "hard" (tilted) eyes per bin (§4.2).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..batches import BatchSource
from ..data.pairs import (PairRows, centre_crop, eye_tilt_deg, pair_parts, redirection_pairs_recipe,
                          render_redirection_pairs)
from ..data.rows import Rows
from ..distributed import DistInfo, init_distributed
from ..engine import TrainingRun
from ..profiles import Profile
from ..runtime import tqdm
from ..training import Trainer
from ..images import to_signed, to_uint8

__all__ = ["VARIANTS", "DeepWarpConfig", "DeepWarp", "warp", "anchor_maps", "centre_crop", "shift_distances",
           "registration_aware_loss", "best_shifts", "render_redirection_pairs", "pairs_to_tensors",
           "eye_tilt_deg", "angle_bin_ids", "pair_sampling_weights", "PairBatches", "DeepWarpTrainer",
           "deepwarp_run", "train_deepwarp", "redirection_pairs_recipe", "redirect", "redirect_set", "PairRows"]

VARIANTS = ("ss", "ms", "cfw", "cfw_lcm", "cfw_lcm_palette")
N_LANDMARKS = 7


# ----------------------------------------------------------------------------------------------
# Configuration
# ----------------------------------------------------------------------------------------------
@dataclass
class DeepWarpConfig:
    variant: str = "cfw_lcm"
    image_size: tuple[int, int] = (41, 51)  # (rows, cols): the paper's W × H = 51 × 41
    angle_dims: int = 2  # 2: (pitch, yaw) redirection; 1: vertical only (pitch; yaw must be 0)
    angle_embedding: int = 16  # FC16-ReLU-FC16-ReLU → 16 constant maps
    widths: tuple[int, int, int, int] = (16, 32, 32, 32)  # conv5×5, 3×3, 3×3, 1×1 of a warping module
    lcm_width: int = 16  # hidden channels of the lightness correction module
    n_palette: int = 3  # cfw_lcm_palette: learned colours mixed in besides the warped image
    max_flow_px: float = 12.0  # tanh × this: the largest displacement one flow head can predict
    # §4.5: ground truth k px larger on each side, loss = min over (2k + 1)² shifts; 0 = plain loss
    # (the paper's main objective). It makes the loss blind to global shifts of up to k px, so on
    # perfectly registered pairs a model drifts by a pixel or two (measured: a (1, 1) px drift that
    # makes its plain MSE worse than the unchanged input); use it on misaligned pairs.
    registration_k: int = 0
    distance: str = "l2"  # "l2" (the paper's objective) or "l1" (§4.5: slightly sharper)
    lr: float = 1e-3
    batch_size: int = 128  # the paper's
    steps: int = 20_000
    angle_bins: int = 15  # §4.2: the correction range split into 15 bins, sampled uniformly
    hard_tilt_deg: float = 8.0  # §4.2: an eye tilted by at least this much is "hard"
    hard_share: float = 0.25  # §4.2: 8 hard of 32 examples per bin

    def __post_init__(self):
        if self.variant not in VARIANTS:
            raise ValueError(f"unknown DeepWarp variant {self.variant!r}: choose one of {VARIANTS}")
        if self.angle_dims not in (1, 2):
            raise ValueError(f"angle_dims must be 1 (pitch only) or 2 (pitch, yaw), got {self.angle_dims}")
        if len(self.widths) != 4:
            raise ValueError(f"widths are the 4 conv widths of a warping module, got {self.widths}")
        if self.registration_k < 0:
            raise ValueError(f"registration_k must be ≥ 0, got {self.registration_k}")
        if self.distance not in ("l1", "l2"):
            raise ValueError(f"distance must be 'l1' or 'l2', got {self.distance!r}")
        if not 0 <= self.hard_share < 1:
            raise ValueError(f"hard_share must be in [0, 1), got {self.hard_share}")
        self.image_size = tuple(int(s) for s in self.image_size)
        self.widths = tuple(int(w) for w in self.widths)

    @property
    def lcm(self) -> str | None:
        """None, "white" (eq. 6) or "palette"."""
        return {"cfw_lcm": "white", "cfw_lcm_palette": "palette"}.get(self.variant)

    @classmethod
    def for_profile(cls, profile: Profile, **overrides) -> "DeepWarpConfig":
        """The paper's widths at every profile (the model is tiny: ≈ 30 k parameters for SS, 70 k
        for CFW + LCM); the small profiles train shorter, on smaller batches, at a higher learning
        rate. A CFW + LCM step at batch 32 costs ≈ 0.5 s on one CPU core (SS ≈ 0.25 s), so ``cpu``'s
        400 steps take about 1–3 minutes per variant on a 2-core laptop; ``smoke`` a few seconds."""
        kw = profile.schedule("deepwarp")
        kw.update(overrides)
        return cls(**kw)


# ----------------------------------------------------------------------------------------------
# Input encoding and warping
# ----------------------------------------------------------------------------------------------
def anchor_maps(landmarks: torch.Tensor, image_size: tuple[int, int], grid_size: tuple[int, int] | None = None
                ) -> torch.Tensor:
    """(B, 7, 2) pixel (x, y) landmarks of an ``image_size`` crop → (B, 14, h, w) maps
    ``(x − x_i) / W`` then ``(y − y_i) / W`` (eq. 5), sampled at the pixel centres of a ``grid_size``
    grid over the same crop (default: the crop's own pixels; the half-scale module uses a coarser one).
    Dividing both by the width keeps the maps within about ±1 and isotropic."""
    H, W = image_size
    h, w = grid_size or image_size
    xs = (torch.arange(w, device=landmarks.device, dtype=landmarks.dtype) + 0.5) * (W / w) - 0.5
    ys = (torch.arange(h, device=landmarks.device, dtype=landmarks.dtype) + 0.5) * (H / h) - 0.5
    B, n = landmarks.shape[:2]
    dx = (xs[None, None, None, :] - landmarks[..., 0, None, None]) / W
    dy = (ys[None, None, :, None] - landmarks[..., 1, None, None]) / W
    return torch.cat([dx.expand(B, n, h, w), dy.expand(B, n, h, w)], 1)


def warp(image: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """Backward warping (eq. 2): ``out(x, y) = image(x + flow_x, y + flow_y)``, bilinear, border pixels
    repeated outside the crop. ``flow`` (B, 2, H, W) is in pixels. With ``align_corners=True`` the
    normalised coordinate −1 is the centre of pixel 0 and +1 that of pixel W − 1, so a pixel is
    2 / (W − 1) normalised units; a zero flow samples every pixel at its own centre (identity)."""
    B, _, H, W = image.shape
    ys = torch.arange(H, device=image.device, dtype=image.dtype)[:, None]
    xs = torch.arange(W, device=image.device, dtype=image.dtype)[None, :]
    gx = (xs + flow[:, 0]) * (2 / max(W - 1, 1)) - 1
    gy = (ys + flow[:, 1]) * (2 / max(H - 1, 1)) - 1
    return F.grid_sample(image, torch.stack([gx, gy], -1), mode="bilinear", padding_mode="border",
                         align_corners=True)


def _resize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


def _half(size: tuple[int, int]) -> tuple[int, int]:
    return (math.ceil(size[0] / 2), math.ceil(size[1] / 2))


# ----------------------------------------------------------------------------------------------
# Modules
# ----------------------------------------------------------------------------------------------
def _conv_bn_relu(c_in: int, c_out: int, k: int) -> nn.Sequential:
    # 'same' zero padding, stride 1, no pooling: the resolution is kept throughout (§3.2)
    return nn.Sequential(nn.Conv2d(c_in, c_out, k, padding=k // 2, bias=False), nn.BatchNorm2d(c_out),
                         nn.ReLU(inplace=True))


class WarpTrunk(nn.Sequential):
    """conv5×5, conv3×3, conv3×3 (BN + ReLU): its output is the "third layer" features the LCM reads."""

    def __init__(self, c_in: int, widths: tuple[int, ...]):
        super().__init__(_conv_bn_relu(c_in, widths[0], 5), _conv_bn_relu(widths[0], widths[1], 3),
                         _conv_bn_relu(widths[1], widths[2], 3))


class FlowHead(nn.Module):
    """conv1×1 (BN + ReLU), conv1×1 → 2 channels, tanh × ``max_flow_px``; starts at zero flow."""

    def __init__(self, c_in: int, width: int, max_flow_px: float):
        super().__init__()
        self.hidden = _conv_bn_relu(c_in, width, 1)
        self.out = nn.Conv2d(width, 2, 1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)
        self.max_flow_px = max_flow_px

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.out(self.hidden(features))) * self.max_flow_px


class WarpModule(nn.Module):
    """One warping module: ``features → (flow in pixels, third-layer features)``."""

    def __init__(self, c_in: int, widths: tuple[int, ...], max_flow_px: float):
        super().__init__()
        self.trunk = WarpTrunk(c_in, widths)
        self.head = FlowHead(widths[2], widths[3], max_flow_px)

    def forward(self, maps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.trunk(maps)
        return self.head(features), features


class LightnessCorrection(nn.Module):
    """§3.4: conv3×3 (BN + ReLU) over [features ⊕ warped image], conv1×1 to the mixing logits.

    ``palette=False``: one logit, ``M = sigmoid`` and ``O·(1 − M) + M·white`` (eq. 6).
    ``palette=True``: ``1 + n_palette`` logits, softmax weights over the warped image and learned
    colours (kept in [−1, 1] by tanh). Either way the output is a convex blend of values in
    [−1, 1], so it stays there. The output layer starts at zero weights with the image favoured
    (M ≈ 0.02), so training starts from plain warping."""

    def __init__(self, c_in: int, width: int, *, palette: bool, n_palette: int):
        super().__init__()
        self.palette = palette
        n_out = 1 + n_palette if palette else 1
        self.hidden = _conv_bn_relu(c_in + 3, width, 3)
        self.out = nn.Conv2d(width, n_out, 1)
        nn.init.zeros_(self.out.weight)
        with torch.no_grad():
            self.out.bias.fill_(0.0)
            self.out.bias[0] = 4.0 if palette else -4.0  # softmax: image weight ≈ 0.95; sigmoid: M ≈ 0.018
        if palette:
            # white, then greys towards black: pre-tanh colours, one per palette entry
            start = torch.linspace(2.0, -2.0, n_palette)[:, None].repeat(1, 3)
            self.colours = nn.Parameter(start)

    def forward(self, features: torch.Tensor, warped: torch.Tensor) -> dict:
        logits = self.out(self.hidden(torch.cat([features, warped], 1)))
        if not self.palette:
            mask = torch.sigmoid(logits)
            return {"output": warped * (1 - mask) + mask, "lcm_mask": mask, "palette_weights": None}
        weights = torch.softmax(logits, 1)
        colours = torch.tanh(self.colours)  # (P, 3)
        mixed = torch.einsum("bphw,pc->bchw", weights[:, 1:], colours)
        return {"output": weights[:, :1] * warped + mixed, "lcm_mask": 1 - weights[:, :1], "palette_weights": weights}


class AngleEmbedding(nn.Sequential):
    """FC16 → ReLU → FC16 → ReLU (§3.3): one position-independent vector per redirection angle."""

    def __init__(self, angle_dims: int, dim: int):
        super().__init__(nn.Linear(angle_dims, dim), nn.ReLU(inplace=True), nn.Linear(dim, dim), nn.ReLU(inplace=True))


# ----------------------------------------------------------------------------------------------
# The model
# ----------------------------------------------------------------------------------------------
class DeepWarp(nn.Module):
    """``model(image, landmarks, angle) → image``: (B, 3, 41, 51) in [−1, 1], (B, 7, 2) pixel (x, y),
    (B, 2) radians (target − source (pitch, yaw); (B, 1) or yaw = 0 for a vertical-only model).
    ``return_parts=True`` returns a dict with the intermediate results (see :meth:`parts`)."""

    def __init__(self, config: DeepWarpConfig):
        super().__init__()
        self.config = c = config
        n_maps = 3 + 2 * N_LANDMARKS + c.angle_embedding  # 33 at the paper's sizes
        self.angle_embedding = AngleEmbedding(c.angle_dims, c.angle_embedding)
        if c.variant == "ss":
            self.fine = WarpModule(n_maps, c.widths, c.max_flow_px)
        elif c.variant == "ms":
            self.coarse_trunk = WarpTrunk(n_maps, c.widths)
            self.fine_trunk = WarpTrunk(n_maps, c.widths)
            self.head = FlowHead(2 * c.widths[2], c.widths[3], c.max_flow_px)
        else:
            self.coarse = WarpModule(n_maps, c.widths, c.max_flow_px)
            self.fine = WarpModule(n_maps + 3 + 2, c.widths, c.max_flow_px)  # ⊕ O_coarse ⊕ D_coarse
        if c.lcm is not None:
            self.lcm = LightnessCorrection(2 * c.widths[2], c.lcm_width, palette=c.lcm == "palette",
                                           n_palette=c.n_palette)

    # -- inputs ----------------------------------------------------------------------------------
    def check_inputs(self, image: torch.Tensor, landmarks: torch.Tensor, angle: torch.Tensor) -> torch.Tensor:
        """Validate shapes; return the angle as (B, angle_dims)."""
        c = self.config
        if image.ndim != 4 or image.shape[1] != 3 or tuple(image.shape[-2:]) != c.image_size:
            raise ValueError(f"image must be (B, 3, {c.image_size[0]}, {c.image_size[1]}) in [-1, 1] (rows, cols = "
                             f"config.image_size), got {tuple(image.shape)}")
        B = image.shape[0]
        if tuple(landmarks.shape) != (B, N_LANDMARKS, 2):
            raise ValueError(f"landmarks must be (B, {N_LANDMARKS}, 2) pixel (x, y) — 6 eyelid points and the pupil "
                             f"centre — for B = {B}, got {tuple(landmarks.shape)}")
        if angle.ndim != 2 or angle.shape[0] != B or angle.shape[1] not in (1, 2):
            raise ValueError(f"angle must be (B, 2) radians (Δpitch, Δyaw) for B = {B}, got {tuple(angle.shape)}")
        if c.angle_dims == 2:
            if angle.shape[1] != 2:
                raise ValueError("this model redirects pitch and yaw: give angle as (B, 2) (Δpitch, Δyaw)")
            return angle
        if angle.shape[1] == 2:
            if bool((angle[:, 1] != 0).any()):
                raise ValueError("this model was built for vertical redirection only (angle_dims=1) but some Δyaw "
                                 "are not 0: select pairs whose yaw is unchanged")
            angle = angle[:, :1]
        return angle

    def input_maps(self, image, landmarks, angle, size: tuple[int, int]) -> torch.Tensor:
        """The 33 input maps at ``size`` (the crop's own or the half scale)."""
        B = image.shape[0]
        picture = image if tuple(image.shape[-2:]) == size else F.interpolate(
            image, size=size, mode="bilinear", align_corners=False, antialias=True)
        anchors = anchor_maps(landmarks.to(image.dtype), self.config.image_size, size)
        embedded = self.angle_embedding(angle.to(image.dtype))[:, :, None, None].expand(B, -1, *size)
        return torch.cat([picture, anchors, embedded], 1)

    # -- forward ---------------------------------------------------------------------------------
    def parts(self, image: torch.Tensor, landmarks: torch.Tensor, angle: torch.Tensor) -> dict:
        """All intermediate results: ``output``, ``flow`` (the final D, pixels), ``warped`` (O, before
        the LCM); for the cfw* variants ``coarse_flow`` (D_coarse, upsampled), ``coarse_warped`` (O_coarse)
        and ``residual_flow`` (D_res); for the LCM variants ``lcm_mask`` (M; with a palette, 1 − the
        warped image's weight) and ``palette_weights``. Absent parts are None."""
        c = self.config
        angle = self.check_inputs(image, landmarks, angle)
        size = c.image_size
        full = self.input_maps(image, landmarks, angle, size)
        out = dict.fromkeys(("coarse_flow", "coarse_warped", "residual_flow", "lcm_mask", "palette_weights"))
        if c.variant == "ss":
            flow, _ = self.fine(full)
        elif c.variant == "ms":
            half = self.input_maps(image, landmarks, angle, _half(size))
            coarse_features = _resize(self.coarse_trunk(half), size)
            flow = self.head(torch.cat([coarse_features, self.fine_trunk(full)], 1))
        else:
            half = self.input_maps(image, landmarks, angle, _half(size))
            coarse_flow, coarse_features = self.coarse(half)
            coarse_flow = _resize(coarse_flow, size)  # values are full-resolution pixels already
            coarse_warped = warp(image, coarse_flow)
            residual, fine_features = self.fine(
                torch.cat([full, coarse_warped, coarse_flow / c.max_flow_px], 1))
            flow = coarse_flow + residual
            out.update(coarse_flow=coarse_flow, coarse_warped=coarse_warped, residual_flow=residual)
        warped = warp(image, flow)
        out.update(flow=flow, warped=warped, output=warped)
        if c.lcm is not None:
            features = torch.cat([_resize(coarse_features, size), fine_features], 1)
            out.update(self.lcm(features, warped))
        return out

    def forward(self, image, landmarks, angle, *, return_parts: bool = False):
        parts = self.parts(image, landmarks, angle)
        return parts if return_parts else parts["output"]


# ----------------------------------------------------------------------------------------------
# Losses: L2 / L1 and the registration-aware loss (§4.5)
# ----------------------------------------------------------------------------------------------
def _border_of(output: torch.Tensor, target: torch.Tensor) -> int:
    (h, w), (th, tw) = output.shape[-2:], target.shape[-2:]
    if th - h != tw - w or (th - h) % 2 or th < h or output.shape[:-2] != target.shape[:-2]:
        raise ValueError(f"the ground truth must be the output's size plus the same border on every side, got "
                         f"output {tuple(output.shape)} and target {tuple(target.shape)}")
    return (th - h) // 2


def shift_distances(output: torch.Tensor, target: torch.Tensor, k: int, distance: str = "l2") -> torch.Tensor:
    """(B, 2k + 1, 2k + 1) per-sample mean distance between ``output`` (B, C, H, W) and every H × W
    window of ``target`` within k pixels of its centre (eq. 7's ``O_gt[i:i+H, j:j+W]``). ``target``
    may have a border larger than k: it is centre-cropped to (H + 2k) × (W + 2k) first."""
    border = _border_of(output, target)
    if k > border:
        raise ValueError(f"registration_k={k} needs a ground truth {k} px larger on each side, but it has a "
                         f"{border}-px border: render targets with border ≥ {k} (render_redirection_pairs) "
                         "or lower registration_k (0 = plain loss)")
    target = centre_crop(target, border - k)
    H, W = output.shape[-2:]
    rows = []
    for i in range(2 * k + 1):
        row = []
        for j in range(2 * k + 1):
            diff = output - target[..., i:i + H, j:j + W]
            row.append((diff.square() if distance == "l2" else diff.abs()).mean(dim=tuple(range(1, diff.ndim))))
        rows.append(torch.stack(row, 1))
    return torch.stack(rows, 1)


def registration_aware_loss(output: torch.Tensor, target: torch.Tensor, k: int, distance: str = "l2") -> torch.Tensor:
    """§4.5, eq. 7: for each sample the smallest distance over the (2k + 1)² shifts of the larger
    ground truth, averaged over the batch. ``k = 0`` is the plain (per-pixel mean) L2 or L1 loss on
    the target's central H × W window."""
    return shift_distances(output, target, k, distance).flatten(1).min(1).values.mean()


def best_shifts(output: torch.Tensor, target: torch.Tensor, k: int, distance: str = "l2") -> torch.Tensor:
    """(B, 2) integer (dy, dx): where the best-matching window of ``target`` lies relative to its centre,
    i.e. ``target`` content at (y + dy, x + dx) matches ``output`` at (y, x)."""
    d = shift_distances(output, target, k, distance).flatten(1).argmin(1)
    n = 2 * k + 1
    return torch.stack([d // n - k, d % n - k], 1)


# ----------------------------------------------------------------------------------------------
# Training pairs
# ----------------------------------------------------------------------------------------------
def pairs_to_tensors(pairs) -> dict:
    """A :class:`~eyegen_lib.data.datasets.RedirectionPairs` (pre-rendered, with landmarks) as the
    tensor dict :func:`train_deepwarp` takes (float images in [−1, 1], border 0)."""
    items = [pairs[k] for k in range(len(pairs))]
    if not items or "landmarks" not in items[0]:
        raise ValueError("DeepWarp needs redirection pairs with source landmarks (a SyntheticEyes or a source "
                         "with 7 eye landmarks)")
    out = {k: torch.stack([it[k] for it in items]) for k in ("source", "target", "landmarks", "source_gaze",
                                                                  "target_gaze")}
    out["tilt_deg"] = eye_tilt_deg(out["landmarks"])
    out["border"] = 0
    return out


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
    """{source, target, landmarks, angle} batches of training pairs (:func:`~eyegen_lib.data.pairs.pair_parts`:
    tensors in memory, or :class:`~eyegen_lib.data.pairs.PairRows` rendered when drawn): batch i draws
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


# ----------------------------------------------------------------------------------------------
# Training and inference
# ----------------------------------------------------------------------------------------------
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
            mse = F.mse_loss(output, centre_crop(target, _border_of(output, target)))
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
    """A training run of a DeepWarp model on ``pairs``: the dict of :func:`render_redirection_pairs`
    (or of :func:`pairs_to_tensors`), a :class:`~eyegen_lib.data.pairs.PairRows` (rendered when
    drawn), or a pre-rendered ``RedirectionPairs``. The angle input is target − source gaze; batches
    follow :func:`pair_sampling_weights` (Adam, constant rate)."""
    data = pairs if isinstance(pairs, (dict, PairRows)) else pairs_to_tensors(pairs)
    _check_pairs(data, config)
    dist = dist or init_distributed()
    model = DeepWarp(config)
    trainer = DeepWarpTrainer(model, config, device=device, dist_info=dist)
    n_pairs = len(pair_parts(data, ("source",))[0])
    batches = PairBatches(data, config, batch_size=min(config.batch_size, n_pairs // dist.world_size), seed=seed, dist=dist)
    return TrainingRun(trainer, batches, model)


def train_deepwarp(pairs, config: DeepWarpConfig, *, seed: int = 0, device=None, progress: bool = True,
                   on_log=None, log_every: int | None = None):
    """Train in memory (no checkpoint; :func:`eyegen_lib.registry.deepwarp` keeps one). Returns
    (model in eval mode, history of {step, loss, mse})."""
    torch.manual_seed(seed)
    return deepwarp_run(pairs, config, seed=seed, device=device).fit(
        config.steps, log_every=log_every, desc=f"deepwarp {config.variant}", on_log=on_log, progress=progress)


@torch.no_grad()
def redirect(model: DeepWarp, images: torch.Tensor, landmarks: torch.Tensor, angle: torch.Tensor, *,
             batch_size: int = 256, return_parts: bool = False, progress: bool = False):
    """Redirect uint8 (N, 3, H, W) eye crops (or floats in [−1, 1]) by ``angle`` (N, 2) radians
    (target − source (pitch, yaw)); returns uint8 (N, 3, H, W). ``return_parts=True`` also returns
    the intermediate results (dict of CPU tensors, flows in pixels, images in [−1, 1])."""
    model.eval()
    device = next(model.parameters()).device
    outs, parts = [], {}
    for i in tqdm(range(0, len(images), batch_size), desc="redirecting", disable=not progress, leave=False):
        p = model.parts(to_signed(images[i:i + batch_size]).to(device), landmarks[i:i + batch_size].float().to(device),
                        angle[i:i + batch_size].float().to(device))
        outs.append(to_uint8(p["output"]))
        if return_parts:
            for k, v in p.items():
                if v is not None:
                    parts.setdefault(k, []).append(v.cpu())
    result = torch.cat(outs) if outs else torch.empty(0, 3, *model.config.image_size, dtype=torch.uint8)
    if return_parts:
        return result, {k: torch.cat(v) for k, v in parts.items()}
    return result


def redirect_set(model: DeepWarp, rset, *, batch_size: int = 256, progress: bool = False) -> torch.Tensor:
    """Predictions for an :class:`~eyegen_lib.evaluation.RedirectionSet` (uint8, the set's order)."""
    if rset.landmarks is None:
        raise ValueError("DeepWarp needs the source landmarks, and this redirection set has none")
    angle = rset.target_gaze.float() - rset.source_gaze.float()
    return redirect(model, rset.source, rset.landmarks, angle, batch_size=batch_size, progress=progress)
