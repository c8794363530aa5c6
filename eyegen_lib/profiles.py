"""Run profiles: how big a run is.

* ``smoke`` — CI on a 2-core CPU: every notebook finishes well under two minutes. Numbers are
  sanity checks, not results.
* ``cpu``   — a laptop: minutes per notebook, results a person can see.
* ``paper`` — a GPU: the papers' image sizes, widths and schedules.

Each paper's model config (one ``@dataclass`` per model file) derives its sizes from a profile,
so the three profiles differ only here and in those ``for_profile`` constructors.
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass

import torch

__all__ = ["Profile", "PROFILES", "resolve_profile", "get_profile"]


@dataclass(frozen=True)
class Profile:
    name: str
    description: str
    nir_size: tuple[int, int]  # (rows, cols) working size of OpenEDS-like NIR images; native is 400×640
    patch_size: tuple[int, int]  # (rows, cols) of Columbia-like RGB eye patches (He et al.: 64×64)
    n_persons: int  # synthetic people in the embedded dataset
    images_per_person: int
    width_multiplier: float  # channel widths relative to the papers' (1.0 = as published)
    train_steps: int  # default optimisation steps of one model
    batch_size: int
    eval_images: int  # images used for a metric
    num_workers: int = 0

    def to_dict(self) -> dict:
        return asdict(self)

    def width(self, paper_channels: int, minimum: int = 8) -> int:
        """A paper's channel count scaled to this profile (never below ``minimum``)."""
        return max(minimum, int(round(paper_channels * self.width_multiplier)))


PROFILES: dict[str, Profile] = {
    "smoke": Profile(
        name="smoke",
        description="CI on CPU: seconds to a minute per notebook; checks that everything runs",
        nir_size=(40, 64),
        patch_size=(64, 64),
        n_persons=8,
        images_per_person=16,
        width_multiplier=1 / 8,
        train_steps=30,
        batch_size=8,
        eval_images=32,
    ),
    "cpu": Profile(
        name="cpu",
        description="a laptop CPU: minutes per notebook, results a person can see",
        nir_size=(80, 128),
        patch_size=(64, 64),
        n_persons=32,
        images_per_person=64,
        width_multiplier=1 / 4,
        train_steps=1500,
        batch_size=16,
        eval_images=256,
    ),
    "paper": Profile(
        name="paper",
        description="a GPU: the papers' sizes and schedules",
        nir_size=(400, 640),
        patch_size=(64, 64),
        n_persons=152,
        images_per_person=200,
        width_multiplier=1.0,
        train_steps=100_000,
        batch_size=32,
        eval_images=1471,
        num_workers=8,
    ),
}


def resolve_profile(name: str | Profile = "auto") -> Profile:
    """The profile a notebook runs under.

    ``$EYEGEN_PROFILE`` overrides ``name`` (so nbval, the tests and CI force ``smoke`` without
    touching notebooks); ``"auto"`` means ``paper`` where CUDA is available, else ``cpu``.
    """
    env = os.environ.get("EYEGEN_PROFILE", "").strip()
    if env:
        name = env
    if isinstance(name, Profile):
        return name
    if name == "auto":
        name = "paper" if torch.cuda.is_available() else "cpu"
    if name not in PROFILES:
        raise ValueError(f"unknown profile {name!r}: choose one of {sorted(PROFILES)} or 'auto'"
                         + (" (it came from $EYEGEN_PROFILE)" if env else ""))
    return PROFILES[name]


def get_profile(name: str) -> Profile:
    """A profile by name, ignoring ``$EYEGEN_PROFILE`` (for code that must pin one)."""
    if name not in PROFILES:
        raise ValueError(f"unknown profile {name!r}: choose one of {sorted(PROFILES)}")
    return PROFILES[name]
