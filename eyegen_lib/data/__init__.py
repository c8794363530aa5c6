"""Procedural eye data: the renderer (NIR OpenEDS-like frames, RGB Columbia-like patches)."""
from .eye_model import LANDMARK_NAMES, N_EYELID_POINTS, GEOMETRY_RANGES
from .synthetic import SyntheticEyeSpec, SyntheticEyes
from . import render_nir, render_rgb, eye_model

__all__ = ["SyntheticEyeSpec", "SyntheticEyes", "LANDMARK_NAMES", "N_EYELID_POINTS", "GEOMETRY_RANGES",
           "render_nir", "render_rgb", "eye_model"]
