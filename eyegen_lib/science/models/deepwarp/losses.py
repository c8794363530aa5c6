"""DeepWarp's losses: L2 / L1, and the registration-aware loss of §4.5."""
from __future__ import annotations

import torch

from ...data.pairs import centre_crop

__all__ = ["shift_distances", "registration_aware_loss", "best_shifts", "border_of"]


def border_of(output: torch.Tensor, target: torch.Tensor) -> int:
    """How many pixels larger than ``output`` the ground truth is on each side (ValueError if uneven)."""
    (h, w), (th, tw) = output.shape[-2:], target.shape[-2:]
    if th - h != tw - w or (th - h) % 2 or th < h or output.shape[:-2] != target.shape[:-2]:
        raise ValueError(f"the ground truth must be the output's size plus the same border on every side, got "
                         f"output {tuple(output.shape)} and target {tuple(target.shape)}")
    return (th - h) // 2


def shift_distances(output: torch.Tensor, target: torch.Tensor, k: int, distance: str = "l2") -> torch.Tensor:
    """(B, 2k + 1, 2k + 1) per-sample mean distance between ``output`` (B, C, H, W) and every H × W
    window of ``target`` within k pixels of its centre (eq. 7's ``O_gt[i:i+H, j:j+W]``). ``target``
    may have a border larger than k: it is centre-cropped to (H + 2k) × (W + 2k) first."""
    border = border_of(output, target)
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
