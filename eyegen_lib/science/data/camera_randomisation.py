"""Domain randomisation of the headset camera, and the fixed perturbations that test it.

A segmenter trained on rendered eyes learns whatever the renderer holds constant: its exposure,
its lens vignette, its sharpness, its noise level, where it puts the eye. A real headset varies all
of them (and the renderer gets some of them wrong), so the segmenter's training images are
randomised in each, far beyond the renderer's own spread (domain randomisation: Tobin et al.,
IROS 2017), with the masks moved along with any geometric change:

* exposure (a gain, log-uniform), contrast about the image mean, gamma;
* a dark lens ring / vignette of random centre, radius and depth;
* defocus (a Gaussian blur) and sensor noise;
* a small shift, scale and rotation of the frame (the eye sits elsewhere in a real camera).

:data:`PERTURBATIONS` are fixed, harder-than-typical versions of the photometric ones, applied at
test time to check that a segmenter keeps its masks under them (issue 29's acceptance check).
Images are (B, 1, H, W) floats in [−1, 1]; masks (B, H, W) labels.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .render_nir import defocus_blur

__all__ = ["CameraRandomisation", "randomise_camera", "perturb", "PERTURBATIONS", "vignette"]


@dataclass(frozen=True)
class CameraRandomisation:
    """Ranges of the randomisation at ``strength`` 1 (0 turns it off; ranges scale linearly
    towards no change). Blur and noise are given for a 128-column image and scaled with width."""
    strength: float = 1.0
    probability: float = 0.8                      # of an image being randomised at all
    exposure: tuple[float, float] = (0.45, 1.6)   # gain, drawn log-uniformly
    contrast: tuple[float, float] = (0.7, 1.3)
    gamma: tuple[float, float] = (0.7, 1.4)       # drawn log-uniformly
    vignette_depth: tuple[float, float] = (0.0, 0.8)
    blur_px: tuple[float, float] = (0.0, 1.6)     # Gaussian σ at 128 columns
    noise: tuple[float, float] = (0.0, 0.07)      # σ on the 0..1 scale
    shift: float = 0.06                           # of the frame's side
    scale: tuple[float, float] = (0.9, 1.12)
    rotate_deg: float = 6.0

    def __post_init__(self):
        if not 0.0 <= self.strength <= 2.0:
            raise ValueError(f"camera randomisation strength must lie in 0..2, got {self.strength}")


def _uniform(n: int, lo: float, hi: float, gen: torch.Generator) -> torch.Tensor:
    return lo + (hi - lo) * torch.rand(n, generator=gen)


def _towards(value: torch.Tensor, neutral: float, strength: float) -> torch.Tensor:
    """``value`` moved towards ``neutral`` for strength < 1 (and beyond it for > 1)."""
    return neutral + strength * (value - neutral)


def vignette(shape: tuple[int, int], depth: torch.Tensor, radius: torch.Tensor, cx: torch.Tensor,
             cy: torch.Tensor) -> torch.Tensor:
    """A dark lens ring (B, 1, H, W) in 0..1: 1 inside ``radius`` (of the half-diagonal) around
    (cx, cy) (−1..1 frame coordinates), falling quadratically to 1 − ``depth`` at the corners."""
    H, W = shape
    y = torch.linspace(-1, 1, H)[None, :, None] * (H / W)
    x = torch.linspace(-1, 1, W)[None, None, :]
    r = torch.sqrt((x - cx[:, None, None]) ** 2 + (y - cy[:, None, None] * (H / W)) ** 2) / math.hypot(1, H / W)
    fall = ((r - radius[:, None, None]) / (1.0 - radius[:, None, None]).clamp_min(0.05)).clamp(0, 1) ** 2
    return (1.0 - depth[:, None, None] * fall)[:, None]


def randomise_camera(images: torch.Tensor, masks: torch.Tensor, config: CameraRandomisation,
                     generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Randomised copies of a training batch (see the module's docstring); every draw comes from
    ``generator`` (on the CPU), so a resumed run draws what it would have drawn."""
    if config.strength == 0:
        return images, masks
    B, _, H, W = images.shape
    s, g, dev = config.strength, generator, images.device
    on = (torch.rand(B, generator=g) < config.probability).float()
    lg = lambda lo, hi: torch.exp(_uniform(B, math.log(lo), math.log(hi), g))
    gain = _towards(lg(*config.exposure), 1.0, s * on)
    contrast = _towards(_uniform(B, *config.contrast, g), 1.0, s * on)
    gamma = _towards(lg(*config.gamma), 1.0, s * on)
    depth = (s * on * _uniform(B, *config.vignette_depth, g)).clamp(0, 0.95)
    radius, vcx, vcy = _uniform(B, 0.25, 0.7, g), _uniform(B, -0.3, 0.3, g), _uniform(B, -0.3, 0.3, g)
    blur = s * on * _uniform(B, *config.blur_px, g) * (W / 128.0)
    noise_sd = s * on * _uniform(B, *config.noise, g)
    angle = s * on * _uniform(B, -1, 1, g) * math.radians(config.rotate_deg)
    zoom = _towards(_uniform(B, *config.scale, g), 1.0, s * on)
    tx, ty = (s * on * _uniform(B, -1, 1, g) * 2 * config.shift for _ in range(2))
    noise = torch.randn(B, 1, H, W, generator=g)

    # Geometry first (image and mask together): frame → source coordinates.
    cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
    theta = torch.stack([torch.stack([cos, -sin * H / W, tx], -1), torch.stack([sin * W / H, cos, ty], -1)], 1)
    grid = F.affine_grid(theta.to(dev), [B, 1, H, W], align_corners=False)
    x = F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)
    m = F.grid_sample(masks[:, None].float(), grid, mode="nearest", padding_mode="border", align_corners=False)
    m = m[:, 0].round().to(masks.dtype)

    col = lambda t: t.to(dev)[:, None, None, None]
    x = (x + 1.0) / 2.0
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    x = (col(gain) * ((x - mean) * col(contrast) + mean)).clamp(0, 1) ** col(gamma)
    x = x * vignette((H, W), depth, radius, vcx, vcy).to(dev)
    x = defocus_blur(x, blur.to(dev)) + noise.to(dev) * col(noise_sd)
    return x.clamp(0, 1) * 2.0 - 1.0, m


def _dark(x):
    return x * 0.4


def _vignette(x):
    B, _, H, W = x.shape
    one = torch.ones(B)
    return x * vignette((H, W), 0.8 * one, 0.3 * one, 0.0 * one, 0.0 * one).to(x.device)


def _blur(x):
    return defocus_blur(x, torch.full((x.shape[0],), 1.5 * x.shape[-1] / 128.0, device=x.device))


def _noise(x):
    g = torch.Generator().manual_seed(0)
    return x + 0.08 * torch.randn(x.shape, generator=g).to(x.device)


# Each maps 0..1 images to 0..1 images: harder than a typical frame, fixed (no draws but the noise's seed).
PERTURBATIONS = {"dark exposure": _dark, "strong vignette": _vignette, "blur": _blur, "noise": _noise}


def perturb(images: torch.Tensor, name: str) -> torch.Tensor:
    """``images`` (B, 1, H, W) uint8 or [−1, 1] floats under the test-time perturbation ``name``
    (:data:`PERTURBATIONS`), returned as [−1, 1] floats."""
    if name not in PERTURBATIONS:
        raise ValueError(f"unknown perturbation {name!r}: choose from {', '.join(PERTURBATIONS)}")
    x = images.float() / 255.0 if images.dtype == torch.uint8 else (images.float() + 1.0) / 2.0
    return PERTURBATIONS[name](x).clamp(0, 1) * 2.0 - 1.0
