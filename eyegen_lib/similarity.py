"""Mask similarity (Seg2Eye §4.1): colour masks by per-class mean intensity, compare by MSE.

Seg2Eye found matching works better when masks are "coloured" with the mean intensity of each
class over the training set, so that confusing pupil with iris costs less than pupil with skin.
"""
from __future__ import annotations

import torch

__all__ = ["OPENEDS_CLASS_MEANS", "colour_mask", "mask_distances", "rank_by_mask"]

# Mean grey value per class over OpenEDS training images: background/skin, sclera, iris, pupil.
OPENEDS_CLASS_MEANS = (125.73929, 103.19314, 76.50751, 34.1294)


def colour_mask(mask: torch.Tensor, class_means=OPENEDS_CLASS_MEANS) -> torch.Tensor:
    """(…, H, W) integer mask → float32 image of the same shape on 0..255."""
    if mask.dtype.is_floating_point:
        raise TypeError(f"masks hold class labels (integers), got {mask.dtype}")
    if mask.numel() and (int(mask.min()) < 0 or int(mask.max()) >= len(class_means)):
        raise ValueError(f"mask labels must lie in 0..{len(class_means) - 1}, found {sorted(mask.unique().tolist())}")
    return torch.as_tensor(class_means, dtype=torch.float32, device=mask.device)[mask.long()]


def mask_distances(targets: torch.Tensor, candidates: torch.Tensor, *, coloured: bool = True,
                   chunk: int = 256) -> torch.Tensor:
    """(T, H, W) target masks × (N, H, W) candidate masks → (T, N) mean squared distances.

    ``coloured=False`` compares one-hot-free raw labels as numbers (the ablation Seg2Eye argues against).
    """
    def prep(m):
        return (colour_mask(m) if coloured else m.float()).flatten(1)

    t, c = prep(targets), prep(candidates)
    rows = []
    c_sq = c.pow(2).sum(1)
    for i in range(0, len(t), chunk):
        ti = t[i:i + chunk]
        # |a − b|² = |a|² − 2ab + |b|²: one matrix product instead of T×N image differences
        d = ti.pow(2).sum(1, keepdim=True) - 2 * ti @ c.T + c_sq[None]
        rows.append(d.clamp(min=0) / t.shape[1])
    return torch.cat(rows)


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
