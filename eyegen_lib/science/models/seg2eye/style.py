"""Style control and style measurement with Seg2Eye's style space.

* ``group_style_codes``: one code per person×side group, aggregated over its images the way the
  model aggregates its K style images (max or mean).
* ``style_preservation``: does a generated image's code lie nearer its own group's code than any
  other group's? (accuracy, and the mean margin other − own distance).
* ``interpolate_style`` / ``transition_evenness``: the paper's Fig. 1 strip, and how evenly it moves.
* ``style_palette``: pix2pixHD's trick — k-means centres of the training groups' codes, decoded as
  new, sampleable identities.
"""
from __future__ import annotations

import numpy as np
import torch
from scipy.cluster.vq import kmeans2

from ....core.images import to_signed
from .encoder import StyleEncoder, aggregate
from .generator import Seg2Eye
from .trainer import generate

__all__ = ["group_style_codes", "style_preservation", "interpolate_style", "transition_evenness", "style_palette"]


@torch.no_grad()
def image_codes(encoder: StyleEncoder, images: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """One style code per image (N, D); images (N, 1, H, W) uint8 or [−1, 1]."""
    encoder.eval()
    return torch.cat([encoder.encode(to_signed(images[i:i + batch_size]))[0] for i in range(0, len(images), batch_size)])


@torch.no_grad()
def group_style_codes(encoder: StyleEncoder, images: torch.Tensor, groups: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(group ids (G,), their aggregated codes (G, D)), aggregating as the encoder does."""
    codes = image_codes(encoder, images)
    keys = torch.as_tensor(groups).unique()
    return keys, torch.stack([aggregate(codes[groups == g], encoder.aggregation, dim=0) for g in keys])


@torch.no_grad()
def style_preservation(encoder: StyleEncoder, generated: torch.Tensor, target_groups: torch.Tensor,
                       keys: torch.Tensor, group_codes: torch.Tensor) -> dict[str, float]:
    """How well generated images carry their target group's style, judged by ``encoder``.

    ``accuracy``: share of images whose code is nearest their own group's code (chance: 1/G);
    ``margin``: mean distance to the other groups minus the distance to the own group (> 0 is good)."""
    if len(keys) < 2:
        raise ValueError("style preservation needs at least two person×side groups to tell apart")
    d = torch.cdist(image_codes(encoder, generated), group_codes)
    own = (torch.as_tensor(target_groups)[:, None] == keys[None]).float()
    accuracy = (keys[d.argmin(1)] == target_groups).float().mean().item()
    margin = ((d * (1 - own)).sum(1) / (1 - own).sum(1) - (d * own).sum(1)).mean().item()
    return {"accuracy": accuracy, "margin": margin, "chance": 1 / len(keys)}


def interpolate_style(model: Seg2Eye, mask: torch.Tensor, w_a: torch.Tensor, w_b: torch.Tensor, n: int = 8) -> torch.Tensor:
    """``n`` uint8 images of one mask (H, W) as the style code moves linearly from ``w_a`` to ``w_b``."""
    t = torch.linspace(0, 1, n)[:, None]
    return generate(model, mask[None].expand(n, -1, -1), w=(1 - t) * w_a + t * w_b)


def transition_evenness(strip: torch.Tensor) -> float:
    """Largest step between neighbouring frames over the mean step (RMS grey levels): 1 means the
    image changes evenly along the interpolation, large values mean a jump."""
    steps = (strip[1:].float() - strip[:-1].float()).pow(2).mean(tuple(range(1, strip.ndim))).sqrt()
    return (steps.max() / steps.mean().clamp_min(1e-8)).item()


def style_palette(codes: torch.Tensor, k: int, *, seed: int = 0) -> torch.Tensor:
    """k-means (k-means++ start) centres of style codes (N, D) → (k, D): a palette of styles."""
    if len(codes) < k:
        raise ValueError(f"a palette of {k} styles needs at least {k} codes, got {len(codes)}")
    centres, _ = kmeans2(codes.double().numpy(), k, minit="++", seed=np.random.default_rng(seed))
    return torch.as_tensor(centres, dtype=codes.dtype)
