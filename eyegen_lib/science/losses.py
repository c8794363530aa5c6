"""Losses shared by the models (one place, so notebooks and tests agree on conventions)."""
from __future__ import annotations

import torch

__all__ = ["challenge_loss", "gram_matrix", "GRAM_OVER"]

GRAM_OVER = ("image", "batch")


def gram_matrix(features: torch.Tensor, over: str = "image") -> torch.Tensor:
    """Gram matrices of (B, C, H, W) features, the style statistic of both style losses here.

    ``over="image"``: one (C, C) matrix per image, ``φ φᵀ / (C·H·W)`` — He et al.'s official ``gram``
    (gaze GAN). ``over="batch"``: one (B·C, B·C) matrix over the whole batch, ``F Fᵀ / (B·C·H·W)``
    with ``F = x.view(B·C, H·W)`` — the PyTorch style-transfer tutorial's, which Seg2Eye's official
    code uses (its batches are one image). The two agree for a batch of one."""
    if features.ndim != 4:
        raise ValueError(f"gram_matrix takes (B, C, H, W) features, got shape {tuple(features.shape)}")
    B, C, H, W = features.shape
    if over == "image":
        flat = features.reshape(B, C, H * W)
        return flat @ flat.transpose(1, 2) / (C * H * W)
    if over == "batch":
        flat = features.reshape(B * C, H * W)
        return flat @ flat.t() / (B * C * H * W)
    raise ValueError(f"gram_matrix over must be one of {GRAM_OVER}, got {over!r}")


def challenge_loss(pred: torch.Tensor, target: torch.Tensor, *, value_range: tuple[float, float] = (-1.0, 1.0),
                   eps: float = 1e-6) -> torch.Tensor:
    """The OpenEDS challenge score as a differentiable loss at the working resolution: per image
    ``sqrt(Σ (p − t)²) / (H·W)`` on 0..255 grey values, averaged over the batch.

    At 400×640 it equals :func:`eyegen_lib.science.metrics.challenge_score`; at a smaller size it is the
    same quantity up to a constant factor (``sqrt(400·640 / (H·W))`` for smooth images), so
    minimising it minimises the score. ``eps`` keeps the square root's gradient finite at 0.
    """
    if pred.shape != target.shape:
        raise ValueError(f"pred and target must have one shape, got {tuple(pred.shape)} and {tuple(target.shape)}")
    lo, hi = value_range
    d = (pred - target) * (255.0 / (hi - lo))
    h, w = pred.shape[-2:]
    return ((d.pow(2).flatten(1).sum(1) + eps).sqrt() / (h * w)).mean()
