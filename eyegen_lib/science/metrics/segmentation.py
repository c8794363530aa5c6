"""Segmentation agreement: per-class IoU and mIoU (content preservation, segmenter quality)."""
from __future__ import annotations

import torch

__all__ = ["confusion_matrix", "iou_per_class", "iou_from_confusion", "mean_iou", "per_image_miou"]


def confusion_matrix(pred: torch.Tensor, target: torch.Tensor, n_classes: int = 4) -> torch.Tensor:
    """(n_classes, n_classes) counts, rows = target class, columns = predicted class."""
    if pred.shape != target.shape:
        raise ValueError(f"pred and target masks must have one shape, got {tuple(pred.shape)} and {tuple(target.shape)}")
    p, t = pred.reshape(-1).long(), target.reshape(-1).long()
    for name, m in (("pred", p), ("target", t)):
        if m.numel() and (int(m.min()) < 0 or int(m.max()) >= n_classes):
            raise ValueError(f"{name} mask has labels outside 0..{n_classes - 1}: {sorted(set(m.unique().tolist()))}")
    return torch.bincount(t * n_classes + p, minlength=n_classes ** 2).reshape(n_classes, n_classes)


def iou_per_class(pred: torch.Tensor, target: torch.Tensor, n_classes: int = 4) -> torch.Tensor:
    """IoU of each class over all pixels of the batch; NaN for a class absent from both."""
    return iou_from_confusion(confusion_matrix(pred, target, n_classes))


def iou_from_confusion(cm: torch.Tensor) -> torch.Tensor:
    """Per-class IoU of a confusion matrix (summed over batches for a streamed evaluation); NaN for a
    class absent from both prediction and target."""
    cm = cm.double()
    inter = cm.diag()
    union = cm.sum(0) + cm.sum(1) - inter
    return torch.where(union > 0, inter / union.clamp(min=1), torch.full_like(inter, float("nan")))


def mean_iou(pred: torch.Tensor, target: torch.Tensor, n_classes: int = 4) -> float:
    """Mean of the per-class IoUs over the classes present (pred or target)."""
    return float(torch.nanmean(iou_per_class(pred, target, n_classes)))


def per_image_miou(pred: torch.Tensor, target: torch.Tensor, n_classes: int = 4) -> torch.Tensor:
    """(B,) mIoU of each image of a batch of (B, H, W) masks (classes present in either mask), to find
    the worst-segmented images."""
    if pred.shape != target.shape or pred.ndim != 3:
        raise ValueError(f"pred and target must both be (B, H, W), got {tuple(pred.shape)} and {tuple(target.shape)}")
    return torch.tensor([mean_iou(p, t, n_classes) for p, t in zip(pred, target)], dtype=torch.float64)
