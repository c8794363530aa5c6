"""Pixel metrics: the OpenEDS challenge score, MSE, PSNR, SSIM and He et al.'s blurriness.

All functions take batched torch tensors (B, C, H, W) (or (B, H, W) for grey), say which value
range they expect, and return one value per image (shape (B,)) unless noted.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["OPENEDS_SIZE", "OPENEDS_TEST_MASKS", "to_255", "challenge_score", "leaderboard_score",
           "mse", "psnr", "ssim", "blurriness", "to_grey"]

OPENEDS_SIZE = (400, 640)  # rows × columns of OpenEDS frames; the challenge scores at this size
OPENEDS_TEST_MASKS = 1471  # generative-track test set: the leaderboard sums over these


def _bchw(x: torch.Tensor, name: str) -> torch.Tensor:
    if x.ndim == 3:
        x = x[:, None]
    if x.ndim != 4:
        raise ValueError(f"{name} must be (B, C, H, W) or (B, H, W), got shape {tuple(x.shape)}")
    return x


def to_255(x: torch.Tensor, value_range: tuple[float, float]) -> torch.Tensor:
    """Images in ``value_range`` (e.g. (-1, 1), (0, 1), (0, 255)) as float64 on 0..255."""
    lo, hi = value_range
    if hi <= lo:
        raise ValueError(f"value_range must be (low, high) with low < high, got {value_range}")
    x = x.to(torch.float64)
    return (x - lo) * (255.0 / (hi - lo))


def challenge_score(pred: torch.Tensor, target: torch.Tensor, *, value_range: tuple[float, float] = (0, 255)) -> torch.Tensor:
    """OpenEDS Synthetic Eye Generation Challenge score per image (lower is better).

    ``score_i = sqrt(Σ (pred − target)²) / (H·W)`` on 0..255 grey values at 400×640. Images at any
    other size are first upsampled bilinearly to 400×640 (both of them, as Seg2Eye does with its
    smaller outputs), so scores from every working resolution are comparable.
    """
    pred, target = _bchw(pred, "pred"), _bchw(target, "target")
    if pred.shape != target.shape:
        raise ValueError(f"pred and target must have one shape, got {tuple(pred.shape)} and {tuple(target.shape)}")
    if pred.shape[1] != 1:
        raise ValueError(f"the challenge scores grey images (1 channel), got {pred.shape[1]} channels")
    p, t = to_255(pred, value_range), to_255(target, value_range)
    if p.shape[-2:] != OPENEDS_SIZE:
        p = F.interpolate(p, size=OPENEDS_SIZE, mode="bilinear", align_corners=False)
        t = F.interpolate(t, size=OPENEDS_SIZE, mode="bilinear", align_corners=False)
    h, w = OPENEDS_SIZE
    return (p - t).pow(2).sum(dim=(1, 2, 3)).sqrt() / (h * w)


def leaderboard_score(per_image: torch.Tensor) -> float:
    """The leaderboard value: the sum over the 1,471 test masks, i.e. mean score × 1,471."""
    return float(per_image.mean()) * OPENEDS_TEST_MASKS


def mse(a: torch.Tensor, b: torch.Tensor, *, value_range: tuple[float, float] = (0, 255), scale: str = "255") -> torch.Tensor:
    """Mean squared error per image, on a 0..255 scale (``scale="255"``, He et al. Table 1) or 0..1 (``scale="1"``)."""
    a, b = _bchw(a, "a"), _bchw(b, "b")
    d = to_255(a, value_range) - to_255(b, value_range)
    if scale == "1":
        d = d / 255.0
    elif scale != "255":
        raise ValueError("scale must be '255' or '1'")
    return d.pow(2).mean(dim=(1, 2, 3))


def psnr(a: torch.Tensor, b: torch.Tensor, *, value_range: tuple[float, float] = (0, 255)) -> torch.Tensor:
    """Peak signal-to-noise ratio in dB (peak 255); identical images give +inf."""
    return 10 * torch.log10(255.0 ** 2 / mse(a, b, value_range=value_range))


def _gaussian_window(size: int, sigma: float, dtype) -> torch.Tensor:
    x = torch.arange(size, dtype=dtype) - (size - 1) / 2
    g = torch.exp(-x ** 2 / (2 * sigma ** 2))
    g = g / g.sum()
    return (g[:, None] * g[None, :])[None, None]


def ssim(a: torch.Tensor, b: torch.Tensor, *, value_range: tuple[float, float] = (0, 255), window: int = 11,
         sigma: float = 1.5) -> torch.Tensor:
    """Structural similarity (Wang et al. 2004), Gaussian 11×11 σ 1.5 window, averaged over channels
    and valid positions; 1 for identical images. Images smaller than the window use a smaller one."""
    a, b = to_255(_bchw(a, "a"), value_range), to_255(_bchw(b, "b"), value_range)
    window = min(window, a.shape[-1], a.shape[-2])
    c = a.shape[1]
    w = _gaussian_window(window, sigma, a.dtype).expand(c, 1, window, window)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    mu_a, mu_b = F.conv2d(a, w, groups=c), F.conv2d(b, w, groups=c)
    var_a = F.conv2d(a * a, w, groups=c) - mu_a ** 2
    var_b = F.conv2d(b * b, w, groups=c) - mu_b ** 2
    cov = F.conv2d(a * b, w, groups=c) - mu_a * mu_b
    s = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a ** 2 + mu_b ** 2 + c1) * (var_a + var_b + c2))
    return s.mean(dim=(1, 2, 3))


def to_grey(x: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) RGB → (B, 1, H, W) luma (ITU-R BT.601, as OpenCV's cvtColor); grey passes through."""
    x = _bchw(x, "image")
    if x.shape[1] == 1:
        return x
    if x.shape[1] != 3:
        raise ValueError(f"expected 1 or 3 channels, got {x.shape[1]}")
    weights = torch.tensor([0.299, 0.587, 0.114], dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return (x * weights).sum(1, keepdim=True)


_LAPLACIAN = torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]])  # OpenCV's Laplacian, ksize=1


def blurriness(x: torch.Tensor, *, value_range: tuple[float, float] = (0, 255)) -> torch.Tensor:
    """He et al.'s image blurriness: ``1 / Var(Laplacian(grey image))`` on 0..255 grey values
    (higher = blurrier). The Laplacian is the 3×3 4-neighbour kernel, over valid pixels only so
    that image borders add nothing. A flat image is infinitely blurry (inf)."""
    grey = to_grey(to_255(_bchw(x, "image"), value_range))
    lap = F.conv2d(grey, _LAPLACIAN.to(grey)[None, None])
    return 1.0 / lap.flatten(1).var(dim=1, unbiased=False)
