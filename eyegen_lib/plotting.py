"""Figures the notebooks share: image grids and metric-vs-angle plots."""
from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch

__all__ = ["to_display", "image_grid", "metric_vs_angle"]


def to_display(image: torch.Tensor) -> np.ndarray:
    """(C, H, W) uint8 or [-1, 1] float → (H, W[, 3]) array for imshow."""
    x = image.detach().cpu()
    if x.dtype != torch.uint8:
        x = ((x.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    if x.ndim == 3:
        x = x[0] if x.shape[0] == 1 else x.permute(1, 2, 0)
    return x.numpy()


def image_grid(rows: Sequence[Sequence[torch.Tensor]], *, row_titles: Sequence[str] | None = None,
               col_titles: Sequence[str] | None = None, cell: float = 1.4, suptitle: str = ""):
    """A grid of images (each (C, H, W)); grey images in grey. Returns the figure."""
    n_rows, n_cols = len(rows), max(len(r) for r in rows)
    aspect = rows[0][0].shape[-1] / rows[0][0].shape[-2]
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(cell * aspect * n_cols, cell * n_rows), squeeze=False)
    for r, row in enumerate(rows):
        for c in range(n_cols):
            ax = axes[r][c]
            ax.set_xticks([]), ax.set_yticks([])
            for s in ax.spines.values():
                s.set_visible(False)
            if c < len(row):
                ax.imshow(to_display(row[c]), cmap="gray", vmin=0, vmax=255)
            if c == 0 and row_titles:
                ax.set_ylabel(row_titles[r], fontsize=8)
            if r == 0 and col_titles and c < len(col_titles):
                ax.set_title(col_titles[c], fontsize=8)
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    return fig


def metric_vs_angle(binned, metrics: Sequence[str], *, title: str = ""):
    """Line plots of each metric's mean per correction-angle bin, one line per method (He et al. Figs. 5, 7)."""
    import seaborn as sns

    data = binned.assign(angle=binned["angle_bin"].map(lambda b: b.mid).astype(float))
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.2 * len(metrics), 3.4), squeeze=False)
    for ax, m in zip(axes[0], metrics):
        sns.lineplot(data=data, x="angle", y=m, hue="method", marker="o", ax=ax)
        ax.set_xlabel("correction angle (°)")
        ax.set_ylabel(m)
        if ax is not axes[0][-1]:
            ax.get_legend().remove()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig
