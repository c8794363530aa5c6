"""DeepWarp's input encoding (anchor maps, angle embedding), the warp, and the networks: warping
modules, coarse-to-fine warping, lightness correction (package doc)."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..layers import conv_bn_relu
from .config import N_LANDMARKS, DeepWarpConfig

__all__ = ["anchor_maps", "warp", "WarpTrunk", "FlowHead", "WarpModule", "LightnessCorrection", "AngleEmbedding", "DeepWarp"]


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


class WarpTrunk(nn.Sequential):
    """conv5×5, conv3×3, conv3×3 (BN + ReLU): its output is the "third layer" features the LCM reads."""

    def __init__(self, c_in: int, widths: tuple[int, ...]):
        super().__init__(conv_bn_relu(c_in, widths[0], 5), conv_bn_relu(widths[0], widths[1], 3),
                         conv_bn_relu(widths[1], widths[2], 3))


class FlowHead(nn.Module):
    """conv1×1 (BN + ReLU), conv1×1 → 2 channels, tanh × ``max_flow_px``; starts at zero flow."""

    def __init__(self, c_in: int, width: int, max_flow_px: float):
        super().__init__()
        self.hidden = conv_bn_relu(c_in, width, 1)
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
        self.hidden = conv_bn_relu(c_in + 3, width, 3)
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
