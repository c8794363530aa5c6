"""Procedural eye data: the renderer behind the project's embedded default datasets.

* :class:`SyntheticEyes` / :class:`SyntheticEyeSpec` — seeded random-access datasets of
  OpenEDS-like NIR frames (``modality="nir"``) or Columbia-like RGB patches (``"rgb"``) with
  4-class masks, 7 DeepWarp landmarks (:data:`LANDMARK_NAMES`), 64 eyelid points, gaze labels.
* :func:`render_nir_eye` / :func:`render_rgb_eye` — the low-level renderers on explicit
  parameter batches, stage by stage (:data:`ALL_STAGES`), for step-by-step figures.
* :mod:`eye_model` — the 3-D eye: geometry, identity ranges, per-image state.
* Readers of the real datasets' layouts — :class:`OpenEDS`, :class:`ColumbiaPatches`,
  :class:`MPIIGazeNormalized` — and :func:`export_dataset`, which writes synthetic data in those
  layouts; every reader problem raises :class:`DatasetError` saying what to fix.
* Training data as rows (:mod:`rows`: in memory, rendered when a batch asks, compressed masks) and
  redirection pairs (:mod:`pairs`); :func:`split_persons` splits by person, :func:`render_all` caches a source.
"""
from . import eye_model, render_nir, render_rgb, synthetic
from .columbia import ColumbiaPatches
from .datasets import indices_of_persons, render_all, split_persons
from .errors import DatasetError
from .export import export_dataset
from .eye_model import GEOMETRY_RANGES, LANDMARK_NAMES, N_EYELID_POINTS, STATE_KEYS
from .mpiigaze import MPIIGazeNormalized
from .openeds import OpenEDS
from .render_nir import ALL_STAGES
from .render_nir import render_eye as render_nir_eye
from .render_rgb import render_eye as render_rgb_eye
from .synthetic import SyntheticEyes, SyntheticEyeSpec

__all__ = ["SyntheticEyeSpec", "SyntheticEyes", "render_nir_eye", "render_rgb_eye", "ALL_STAGES",
           "LANDMARK_NAMES", "N_EYELID_POINTS", "GEOMETRY_RANGES", "STATE_KEYS",
           "eye_model", "render_nir", "render_rgb", "synthetic",
           "ColumbiaPatches", "OpenEDS", "MPIIGazeNormalized", "DatasetError", "export_dataset",
           "indices_of_persons",
           "render_all", "split_persons"]
