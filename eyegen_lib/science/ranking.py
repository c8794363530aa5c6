"""Seg2Eye §4.1: pseudo-labels, the two modes (left/right eyes) and similarity ranking.

The pipeline, as the winning OpenEDS entry ran it:

1. a DeepLab v3+ segmenter (:mod:`eyegen_lib.science.models.deeplab`), trained on the labelled split,
   predicts **pseudo-labels** for every unlabelled image;
2. the unlabelled images fall into **two modes** (left and right eyes, with different glints and
   head-mount shadows); references must come from the target's mode. Nothing in OpenEDS says which
   image is which eye, so :func:`split_modes` finds the modes without labels: a left eye is
   roughly a mirrored right eye, so the *antisymmetric part* ``x − flip(x)`` of a blurred,
   downsampled image has opposite signs in the two modes, and k-means (k = 2) on it separates them.
   A target is a mask, not an image: :func:`mask_modes` gives it the mode of the nearest mode
   centroid of the pseudo-labels' antisymmetric parts;
3. **ranking**: masks are coloured with the per-class mean intensities, and unlabelled images of
   the target's mode are ranked by the MSE between the coloured target mask and their coloured
   pseudo-labels (:func:`rank_pool`); the top N are the references.

:func:`ranking_quality` measures how good the references are with the pool's TRUE masks (which
the ranking never sees): the coloured-mask MSE of the top-N references against the target,
against N random images of the same mode and of the other mode.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .similarity import colour_mask, mask_distances

__all__ = ["mode_features", "kmeans", "split_modes", "mode_accuracy", "mask_mode_features", "mask_modes",
           "candidates_ok", "rank_pool", "ranking_quality", "random_references"]


def mode_features(images: torch.Tensor, size: tuple[int, int] = (10, 16)) -> torch.Tensor:
    """(N, 1, H, W) grey images (uint8 or float) → (N, D) antisymmetric features: the image
    area-averaged to ``size`` minus its own mirror image, per-image standardised."""
    x = images.float()
    if x.ndim == 3:
        x = x[:, None]
    x = F.adaptive_avg_pool2d(x, size)
    x = x - x.mean(dim=(1, 2, 3), keepdim=True)
    anti = (x - x.flip(-1))[..., : size[1] // 2]  # the other half is its negative: drop it
    return anti.flatten(1)


def kmeans(x: torch.Tensor, k: int = 2, *, iters: int = 50, restarts: int = 8, seed: int = 0
           ) -> tuple[torch.Tensor, torch.Tensor]:
    """Lloyd's k-means with k-means++ seeding, best of ``restarts``. Returns (labels (N,), centroids (k, D))."""
    if len(x) < k:
        raise ValueError(f"k-means with k={k} needs at least {k} points, got {len(x)}")
    x = x.double()
    g = torch.Generator().manual_seed(seed)
    best = (float("inf"), None, None)
    for _ in range(restarts):
        centroids = x[torch.randint(len(x), (1,), generator=g)]
        for _ in range(1, k):  # k-means++: next centroid with probability ∝ squared distance
            d = torch.cdist(x, centroids).min(1).values.pow(2)
            p = d / d.sum() if d.sum() > 0 else torch.full_like(d, 1 / len(d))
            centroids = torch.cat([centroids, x[torch.multinomial(p, 1, generator=g)]])
        for _ in range(iters):
            labels = torch.cdist(x, centroids).argmin(1)
            new = torch.stack([x[labels == j].mean(0) if (labels == j).any() else centroids[j] for j in range(k)])
            if torch.allclose(new, centroids):
                break
            centroids = new
        labels = torch.cdist(x, centroids).argmin(1)
        inertia = float((x - centroids[labels]).pow(2).sum())
        if inertia < best[0]:
            best = (inertia, labels, centroids)
    labels, centroids = best[1], best[2].float()
    # a canonical order: the cluster of the first point is 0, so the same data gives the same labels
    if k == 2 and labels[0] == 1:
        labels, centroids = 1 - labels, centroids.flip(0)
    return labels, centroids


def split_modes(images: torch.Tensor, *, seed: int = 0, size: tuple[int, int] = (10, 16)) -> torch.Tensor:
    """Two modes (0/1) of grey eye images, found without eye-side labels (k-means on :func:`mode_features`)."""
    return kmeans(mode_features(images, size), 2, seed=seed)[0]


def mode_accuracy(modes: torch.Tensor, sides) -> dict:
    """How well unsupervised modes match the true eye sides ('L'/'R'): the better of the two
    ways to name the clusters. Returns accuracy and which side each mode id stands for."""
    modes = torch.as_tensor(modes).long()
    is_left = torch.tensor([s == "L" for s in sides])
    if len(is_left) != len(modes):
        raise ValueError(f"{len(modes)} modes but {len(is_left)} sides")
    agree = float((modes.bool() == is_left).float().mean())
    if agree >= 0.5:
        return {"accuracy": agree, "mode_to_side": {0: "R", 1: "L"}}
    return {"accuracy": 1 - agree, "mode_to_side": {0: "L", 1: "R"}}


def mask_mode_features(masks: torch.Tensor, size: tuple[int, int] = (10, 16)) -> torch.Tensor:
    """Antisymmetric features of coloured masks (the eye-corner and lid asymmetry)."""
    return mode_features(colour_mask(masks)[:, None], size)


def mask_modes(target_masks: torch.Tensor, pool_masks: torch.Tensor, pool_modes: torch.Tensor,
               size: tuple[int, int] = (10, 16)) -> torch.Tensor:
    """The mode of each target MASK: that of the nearest centroid of the pool's (pseudo-label)
    features, per image mode. Targets are masks only, so their mode must come from the mask."""
    f = mask_mode_features(pool_masks, size)
    centroids = torch.stack([f[pool_modes == m].mean(0) for m in (0, 1)])
    return torch.cdist(mask_mode_features(target_masks, size), centroids).argmin(1)


def candidates_ok(target_modes: torch.Tensor | None, pool_modes: torch.Tensor | None, *,
                  target_index: torch.Tensor | None = None, pool_index: torch.Tensor | None = None,
                  n_targets: int | None = None, n_pool: int | None = None,
                  usable: torch.Tensor | None = None) -> torch.Tensor:
    """(T, N) bool: which pool images may serve a target — same mode (when modes are given),
    never the target's own image (same source index), and only pool rows that are ``usable`` (N,)
    when given (e.g. ``pool["labelled"]``: a study measured with true masks ranks among those)."""
    t = len(target_modes) if target_modes is not None else (len(target_index) if target_index is not None else n_targets)
    n = len(pool_modes) if pool_modes is not None else (len(pool_index) if pool_index is not None else n_pool)
    ok = torch.ones(t, n, dtype=torch.bool)
    if target_modes is not None and pool_modes is not None:
        ok &= torch.as_tensor(target_modes)[:, None] == torch.as_tensor(pool_modes)[None]
    if target_index is not None and pool_index is not None:
        ok &= torch.as_tensor(target_index)[:, None] != torch.as_tensor(pool_index)[None]
    if usable is not None:
        ok &= torch.as_tensor(usable, dtype=torch.bool)[None]
    return ok


def rank_pool(target_masks: torch.Tensor, pool_masks: torch.Tensor, top_n: int, *, ok: torch.Tensor | None = None,
              coloured: bool = True, distances: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices (T, top_n) into the pool, best first, and their distances: MSE between the
    (coloured) target mask and each pool image's (pseudo-)mask, among the allowed candidates.
    Pass precomputed ``distances`` (T, N) to rank again cheaply (e.g. for another N)."""
    d = mask_distances(target_masks, pool_masks, coloured=coloured) if distances is None else distances.clone()
    if ok is not None:
        d = d.masked_fill(~ok, float("inf"))
    allowed = int(ok.sum(1).min()) if ok is not None else d.shape[1]
    top_n = min(top_n, allowed)
    if top_n < 1:
        raise ValueError("a target has no allowed candidate in the pool (is its mode empty?)")
    dist, idx = d.topk(top_n, dim=1, largest=False)
    return idx, dist


def random_references(ok: torch.Tensor, n: int, *, seed: int = 0) -> torch.Tensor:
    """(T, n) random allowed pool indices per target (with replacement), a baseline for the ranking."""
    g = torch.Generator().manual_seed(seed)
    w = ok.double()
    if (w.sum(1) == 0).any():
        raise ValueError("a target has no allowed candidate")
    return torch.multinomial(w, n, replacement=True, generator=g)


def ranking_quality(target_masks: torch.Tensor, pool_true_masks: torch.Tensor, references: torch.Tensor,
                    *, coloured: bool = True) -> torch.Tensor:
    """(T,) mean coloured-mask MSE between each target's TRUE mask and the TRUE masks of its
    references (T, n) — lower means the references look more like the target."""
    t = colour_mask(target_masks) if coloured else target_masks.float()
    p = colour_mask(pool_true_masks) if coloured else pool_true_masks.float()
    return torch.stack([(p[references[i]] - t[i]).pow(2).mean(dim=(1, 2)).mean() for i in range(len(t))])
