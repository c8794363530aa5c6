"""Figures the notebooks share: image grids, metric-vs-angle plots, live loss curves, flow fields."""
from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch

__all__ = ["to_display", "image_grid", "metric_vs_angle", "metrics_vs_length", "LiveLossPlot", "flow_arrows"]


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


def metrics_vs_length(by_step, metrics: Sequence[str], *, baselines=None, points=None, labels=None,
                      model: str = "", title: str = ""):
    """Each metric of one model against its training length (log x): ``by_step`` a DataFrame indexed
    by step (one column per metric); ``baselines`` {label: {metric: value}} drawn as horizontal lines
    (another method, the unchanged input); ``points`` {label: (step, {metric: value})} as markers
    (ablations at their length). Where a claim starts, or fails, to hold, as a reader sees it."""
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.3 * len(metrics), 3.4), squeeze=False)
    styles = ["--", ":", "-."]
    for ax, m in zip(axes[0], metrics):
        ax.plot(by_step.index, by_step[m], "o-", color="C0", lw=2, label=model or "model")
        for i, (label, values) in enumerate((baselines or {}).items()):
            if m in values:
                ax.axhline(values[m], ls=styles[i % len(styles)], color=f"C{i + 1}", label=label)
        for j, (label, (step, values)) in enumerate((points or {}).items()):
            if m in values:
                ax.plot([step], [values[m]], marker="sovD^<>"[j % 7], ls="none", ms=8, color=f"C{j + 4}", label=label)
        ax.set_xscale("log")
        steps = sorted(set(by_step.index) | {step for step, _ in (points or {}).values()})
        ax.set_xticks(steps, [f"{s:,}" for s in steps], rotation=45 if len(steps) > 4 else 0)
        ax.minorticks_off()
        ax.set_xlabel("training iterations")
        ax.set_ylabel((labels or {}).get(m, m))
    handles, names = axes[0][0].get_legend_handles_labels()
    for ax in axes[0][1:]:
        h, n = ax.get_legend_handles_labels()
        for hh, nn in zip(h, n):
            if nn not in names:
                handles.append(hh)
                names.append(nn)
    fig.legend(handles, names, loc="lower center", ncol=min(4, len(names)), fontsize=8, bbox_to_anchor=(0.5, -0.02))
    if title:
        fig.suptitle(title)
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    return fig


class LiveLossPlot:
    """A loss plot redrawn in place while a model trains: pass ``on_log`` to a trainer's ``fit``.

    Redraws every ``every`` logged steps (drawing is slow next to a small training step); call
    :meth:`close` when done so the notebook keeps one final static figure of its own. Nothing is
    shown until the first loss arrives: a model loaded rather than trained leaves no empty frame."""

    def __init__(self, title: str, *, every: int = 10, logy: bool = True):
        self.title, self.every, self.logy, self.logs = title, every, logy, []
        self.fig = self.ax = self.handle = None

    def on_log(self, step: int, losses: dict) -> None:
        self.logs.append({"step": step, **losses})
        if self.fig is None:  # the first loss: only now is there something to draw
            from IPython.display import display

            self.fig, self.ax = plt.subplots(figsize=(6, 3))
            self.handle = display(self.fig, display_id=True)
        if len(self.logs) % self.every == 0:
            import pandas as pd

            self.ax.clear()
            pd.DataFrame(self.logs).set_index("step").plot(ax=self.ax, logy=self.logy, title=self.title)
            if self.handle is not None:  # None outside IPython (a script): nothing to redraw in place
                self.handle.update(self.fig)

    def close(self) -> None:
        if self.fig is not None:
            plt.close(self.fig)


def flow_arrows(ax, image: torch.Tensor, flow: torch.Tensor, *, step: int = 3, title: str = "", color: str = "yellow"):
    """An image with its flow field as arrows, every ``step`` px. ``flow`` (2, H, W) in pixels is the
    backward map of a warp (output (x, y) reads input (x + Dx, y + Dy)), so each arrow points from
    an output pixel to where its colour comes from."""
    ax.imshow(to_display(image), cmap="gray" if image.shape[0] == 1 else None)
    h, w = flow.shape[-2:]
    ys, xs = np.mgrid[step // 2:h:step, step // 2:w:step]
    f = flow.detach().cpu().numpy()
    ax.quiver(xs, ys, f[0][ys, xs], f[1][ys, xs], color=color, angles="xy", scale_units="xy", scale=1, width=0.006)
    ax.set_title(title, fontsize=9)
    ax.axis("off")
    return ax
