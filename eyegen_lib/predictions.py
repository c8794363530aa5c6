"""Method outputs on the shared evaluation protocols, saved by the method notebooks and read by
``07_evaluation``: ``<outputs>/predictions/<profile>/<task>/<method>.pt``, tensors only, read with
``weights_only=True``."""
from __future__ import annotations

from pathlib import Path

import torch

from .paths import output_dir

__all__ = ["save_predictions", "load_predictions", "TASKS"]

TASKS = ("openeds", "redirection")


def _folder(profile: str, task: str) -> Path:
    if task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}, got {task!r}")
    return output_dir() / "predictions" / profile / task


def save_predictions(profile: str, task: str, method: str, images: torch.Tensor, **extra: torch.Tensor) -> Path:
    """Store a method's outputs (uint8 images in protocol order) for the evaluation notebook."""
    path = _folder(profile, task) / f"{method}.pt"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save({"images": images.cpu(), **{k: v.cpu() for k, v in extra.items()}}, tmp)
    tmp.replace(path)
    return path


def load_predictions(profile: str, task: str) -> dict[str, dict[str, torch.Tensor]]:
    """Every saved method's outputs for a task: {method: {"images": …, …}} (empty if none yet)."""
    folder = _folder(profile, task)
    return {p.stem: torch.load(p, map_location="cpu", weights_only=True) for p in sorted(folder.glob("*.pt"))}
