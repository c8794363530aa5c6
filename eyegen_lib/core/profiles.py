"""Run profiles: how big a run is — the one place where run sizes live.

* ``smoke`` — CI on a 2-core CPU: every notebook finishes well under two minutes. Numbers are
  sanity checks, not results.
* ``cpu``   — a laptop: results a person can see; the main job takes hours on 2 cores.
* ``gpu``   — GPU CI runners: the papers' shapes and widths (as ``paper``) on fewer synthetic persons,
  with schedules cut so each notebook takes about ten minutes on one modern GPU.
* ``paper`` — a GPU: the papers' image sizes, widths and schedules.

A profile holds its data sizes, whether data is rendered once into memory (``smoke``, ``cpu``,
``gpu``) or streamed — rendered when a batch needs it, by ``num_workers`` DataLoader workers (``paper``) —, whether models take the papers' architectures and widths
(``paper_shapes``) or narrower ones (``width_multiplier``), and — in ``schedules`` — every model's
run size (steps, batch, learning rate …). Each paper's model config (one ``@dataclass`` per model
file) reads them in its ``for_profile``; nothing else names a profile.
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import torch

__all__ = ["Profile", "PROFILES", "DATA_SOURCES", "resolve_profile", "get_profile"]

# Where a run's eyes come from: the renderer (the default), or a user's licensed copy of a paper's
# dataset (the folder in $EYEGEN_OPENEDS_DIR, $EYEGEN_COLUMBIA_DIR, $EYEGEN_MPIIGAZE_DIR; see
# eyegen_lib/science/data/sources.py). Which notebooks take which source: eyegen_lib/suite/cards.py.
DATA_SOURCES = ("renderer", "openeds", "columbia", "mpiigaze")


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
    num_workers: int = 0  # DataLoader worker processes building training batches (streamed data)
    stream_data: bool = False  # render (or read) samples when a batch needs them, never a whole split
    ranking_size: tuple[int, int] | None = None  # masks compared at this size when ranking a streamed pool (None: full)
    paper_shapes: bool = False  # the papers' architectures and widths (paper, gpu); narrower ones otherwise
    pairs_per_image: int = 3  # redirection training pairs drawn per training image
    redirection_eyes: int | None = None  # test eyes of the redirection protocol (None: all)
    estimator_images_per_person: int = 200  # the independent gaze estimator's data (more than the others')
    # persons beyond n_persons that only the independent gaze estimator trains on (never a protocol's
    # test person): at smoke, 6 training persons are too few for it to read a seventh's gaze reliably
    estimator_extra_persons: int = 0
    # on OpenEDS: frames of each protocol person's generative set (unlabelled) added to the ranking
    # pool beside the semantic set's, as Seg2Eye drew references (None: every one; 0: none)
    openeds_generative_per_person: int | None = 16
    # per model: its run size (steps, batch_size, lr …); the for_profile constructors read these
    schedules: dict[str, dict[str, Any]] = field(default_factory=dict, hash=False, compare=False)
    data: str = "renderer"  # the run's data source (DATA_SOURCES): a run size applies to any of them

    @property
    def run_name(self) -> str:
        """The profile's name, plus the data source when it is not the renderer ("cpu+openeds"): what
        artifacts and records are filed under, so a real-data run and a renderer run never share one."""
        return self.name if self.data == "renderer" else f"{self.name}+{self.data}"

    def with_data(self, data: str | None) -> "Profile":
        """This run size on another data source (None or "renderer": the renderer)."""
        data = (data or "renderer").strip().lower()
        if data not in DATA_SOURCES:
            raise ValueError(f"unknown data source {data!r}: choose one of {', '.join(DATA_SOURCES)}")
        return replace(self, data=data)

    def to_dict(self) -> dict:
        return asdict(self)

    def schedule(self, model: str) -> dict[str, Any]:
        """``model``'s run size at this profile (a copy)."""
        if model not in self.schedules:
            raise KeyError(f"profile {self.name!r} has no schedule for {model!r}: add one in eyegen_lib/core/profiles.py")
        return dict(self.schedules[model])

    def width(self, paper_channels: int, minimum: int = 8) -> int:
        """A paper's channel count scaled to this profile (never below ``minimum``)."""
        return max(minimum, int(round(paper_channels * self.width_multiplier)))


PAPER_GAZE_GAN_STEPS = 300 * 44_100 // (32 * 5)  # He et al.: 300 epochs of 44,100 pairs, batch 32, 5 critic steps

PROFILES: dict[str, Profile] = {
    "smoke": Profile(
        name="smoke",
        description="CI on CPU: seconds to a minute per notebook; checks that everything runs",
        nir_size=(40, 64), patch_size=(64, 64), n_persons=8, images_per_person=16, width_multiplier=1 / 8,
        train_steps=30, batch_size=8, eval_images=32, pairs_per_image=1, redirection_eyes=2,
        estimator_images_per_person=128, estimator_extra_persons=16, openeds_generative_per_person=2,
        schedules={
            "segmenter": dict(steps=150, batch_size=8, lr=4e-3),
            "refiner": dict(steps=100, batch_size=8, top_n=4, lr=2e-3),
            "seg2eye": dict(steps=45, ablation_steps=15, batch_size=4, lr_g=4e-4, lr_d=1.6e-3),
            "deepwarp": dict(steps=60, batch_size=8, lr=3e-3),  # 30 left 05's smoke check failing on 1 seed in 20
            "gaze_gan": dict(steps=6, ablation_steps=3, batch_size=4, lr=5e-4),
            # 120 steps on 64 images a person failed 07's two estimator checks on 2 of 20 seeds (issue 33)
            "gaze_estimator": dict(steps=300, batch_size=32),
        },
    ),
    "cpu": Profile(
        name="cpu",
        description="a laptop CPU: results a person can see (the main job takes hours on 2 cores)",
        nir_size=(80, 128), patch_size=(64, 64), n_persons=32, images_per_person=64, width_multiplier=1 / 4,
        train_steps=1500, batch_size=16, eval_images=256, redirection_eyes=12, estimator_images_per_person=256,
        schedules={
            "segmenter": dict(steps=1000, batch_size=16, lr=4e-3),
            "refiner": dict(steps=1000, batch_size=16, top_n=10, lr=2e-3),
            "seg2eye": dict(steps=600, ablation_steps=200, batch_size=8, lr_g=4e-4, lr_d=1.6e-3),
            "deepwarp": dict(steps=400, batch_size=32, lr=3e-3),
            "gaze_gan": dict(steps=1000, ablation_steps=500, batch_size=8, lr=5e-4),
            "gaze_estimator": dict(steps=1500, batch_size=32),
        },
    ),
}

PAPER = Profile(
    name="paper",
    description="a GPU: the papers' sizes and schedules",
    nir_size=(400, 640), patch_size=(64, 64), n_persons=152, images_per_person=200, width_multiplier=1.0,
    train_steps=100_000, batch_size=32, eval_images=1471, num_workers=8, stream_data=True, ranking_size=(100, 160),
    openeds_generative_per_person=None,
    paper_shapes=True,
    estimator_images_per_person=200,
    schedules={
        "segmenter": dict(steps=30_000, batch_size=32, lr=1e-3),
        "refiner": dict(steps=30_000, batch_size=32, top_n=50, lr=1e-3),
        "seg2eye": dict(steps=100_000, ablation_steps=50_000, batch_size=1, lr_g=1e-4, lr_d=4e-4),
        "deepwarp": dict(steps=20_000, batch_size=128, lr=1e-3),
        "gaze_gan": dict(steps=PAPER_GAZE_GAN_STEPS, ablation_steps=None, batch_size=32, lr=2e-4),
        "gaze_estimator": dict(steps=20_000, batch_size=64),
    },
)

# GPU CI: the papers' shapes and widths on fewer persons, schedules cut to ~10 minutes a notebook
GPU = replace(
    PAPER, name="gpu",
    description="GPU CI: the papers' shapes and widths, fewer persons, ~10 minutes per notebook on one GPU",
    n_persons=32, images_per_person=40, train_steps=2000, eval_images=256, redirection_eyes=12,
    # 1,280 NIR images (0.3 GB) fit in memory: the notebooks' analyses (02's ranking study) hold
    # their splits, so this lane runs them as they are; `eyegen check paper` streams on the GPU
    stream_data=False, num_workers=0,
    estimator_images_per_person=160,
    schedules={
        "segmenter": dict(steps=1500, batch_size=16, lr=1e-3),
        "refiner": dict(steps=1500, batch_size=16, top_n=20, lr=1e-3),
        "seg2eye": dict(steps=2000, ablation_steps=500, batch_size=1, lr_g=1e-4, lr_d=4e-4),
        "deepwarp": dict(steps=3000, batch_size=128, lr=1e-3),
        "gaze_gan": dict(steps=2000, ablation_steps=500, batch_size=32, lr=2e-4),
        "gaze_estimator": dict(steps=3000, batch_size=64),
    },
)
PROFILES.update(gpu=GPU, paper=PAPER)


def resolve_profile(name: str | Profile = "auto", data: str | None = None) -> Profile:
    """The profile a notebook runs under, on data source ``data`` (a notebook's ``DATA``; default the renderer).

    ``$EYEGEN_PROFILE`` overrides ``name`` and ``$EYEGEN_DATA`` overrides ``data`` (so nbval, the
    tests, CI and ``eyegen run --data`` set them without touching notebooks); ``"auto"`` means ``gpu``
    where CUDA is available, else ``cpu``. ``paper`` (the papers' full schedules: days of GPU time,
    never run end to end here) only when asked for.
    """
    env = os.environ.get("EYEGEN_PROFILE", "").strip()
    if env:
        name = env
    data_env = os.environ.get("EYEGEN_DATA", "").strip()
    if data_env:
        data = data_env
    if isinstance(name, Profile):
        return name if data is None else name.with_data(data)
    if name == "auto":
        name = "gpu" if torch.cuda.is_available() else "cpu"
    if name not in PROFILES:
        raise ValueError(f"unknown profile {name!r}: choose one of {sorted(PROFILES)} or 'auto'"
                         + (" (it came from $EYEGEN_PROFILE)" if env else ""))
    try:
        return PROFILES[name].with_data(data)
    except ValueError as exc:
        raise ValueError(f"{exc}" + (" (it came from $EYEGEN_DATA)" if data_env else "")) from None


def get_profile(name: str) -> Profile:
    """A profile by name, ignoring ``$EYEGEN_PROFILE`` (for code that must pin one)."""
    if name not in PROFILES:
        raise ValueError(f"unknown profile {name!r}: choose one of {sorted(PROFILES)}")
    return PROFILES[name]
