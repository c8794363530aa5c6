"""Mask similarity (Seg2Eye §4.1): colour masks by per-class mean intensity, compare by MSE.

Seg2Eye found matching works better when masks are "coloured" with the mean intensity of each
class over the training set, so that confusing pupil with iris costs less than pupil with skin.
"""
from __future__ import annotations

import torch

__all__ = ["OPENEDS_CLASS_MEANS", "colour_mask", "mask_distances", "rank_by_mask", "ranking_features",
           "feature_distances"]

# Mean grey value per class over OpenEDS training images: background/skin, sclera, iris, pupil.
OPENEDS_CLASS_MEANS = (125.73929, 103.19314, 76.50751, 34.1294)


def colour_mask(mask: torch.Tensor, class_means=OPENEDS_CLASS_MEANS) -> torch.Tensor:
    """(…, H, W) integer mask → float32 image of the same shape on 0..255."""
    if mask.dtype.is_floating_point:
        raise TypeError(f"masks hold class labels (integers), got {mask.dtype}")
    if mask.numel() and (int(mask.min()) < 0 or int(mask.max()) >= len(class_means)):
        raise ValueError(f"mask labels must lie in 0..{len(class_means) - 1}, found {sorted(mask.unique().tolist())}")
    return torch.as_tensor(class_means, dtype=torch.float32, device=mask.device)[mask.long()]


def ranking_features(masks: torch.Tensor, *, coloured: bool = True, size: tuple[int, int] | None = None) -> torch.Tensor:
    """(N, H, W) masks → (N, D) float32 rows whose mean squared difference is the masks' distance:
    the coloured (or raw) masks, area-averaged to ``size`` when given (a cheaper, low-pass
    distance for a pool too large to compare at full resolution)."""
    x = colour_mask(masks) if coloured else masks.float()
    if size is not None and tuple(x.shape[-2:]) != tuple(size):
        x = torch.nn.functional.adaptive_avg_pool2d(x[:, None], tuple(size))[:, 0]
    return x.flatten(1)


def feature_distances(targets: torch.Tensor, candidates: torch.Tensor, *, chunk: int = 256,
                      candidate_chunk: int = 4096) -> torch.Tensor:
    """(T, D) × (N, D) feature rows (any float dtype; computed in float32) → (T, N) mean squared distances."""
    c_sq = torch.cat([candidates[j:j + candidate_chunk].float().pow(2).sum(1)
                      for j in range(0, len(candidates), candidate_chunk)])
    rows = []
    for i in range(0, len(targets), chunk):
        ti = targets[i:i + chunk].float()
        # |a − b|² = |a|² − 2ab + |b|²: one matrix product instead of T×N image differences
        prod = torch.cat([ti @ candidates[j:j + candidate_chunk].float().T
                          for j in range(0, len(candidates), candidate_chunk)], 1)
        d = ti.pow(2).sum(1, keepdim=True) - 2 * prod + c_sq[None]
        rows.append(d.clamp(min=0) / targets.shape[1])
    return torch.cat(rows)


def mask_distances(targets: torch.Tensor, candidates: torch.Tensor, *, coloured: bool = True,
                   chunk: int = 256) -> torch.Tensor:
    """(T, H, W) target masks × (N, H, W) candidate masks → (T, N) mean squared distances.

    ``coloured=False`` compares one-hot-free raw labels as numbers (the ablation Seg2Eye argues against).
    """
    return feature_distances(ranking_features(targets, coloured=coloured), ranking_features(candidates, coloured=coloured),
                             chunk=chunk, candidate_chunk=max(len(candidates), 1))


def rank_by_mask(targets: torch.Tensor, candidates: torch.Tensor, top_n: int, *, coloured: bool = True,
                 candidate_ok: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices (T, top_n) of the most similar candidates per target and their distances.

    ``candidate_ok`` (T, N) bool excludes candidates per target (e.g. another eye mode, the target itself).
    """
    d = mask_distances(targets, candidates, coloured=coloured)
    if candidate_ok is not None:
        d = d.masked_fill(~candidate_ok, float("inf"))
    top_n = min(top_n, d.shape[1])
    dist, idx = d.topk(top_n, dim=1, largest=False)
    return idx, dist
