"""Baselines that are not methods: what a method must beat on the shared protocols."""
from __future__ import annotations

import torch

from .data.synthetic import SyntheticEyes

__all__ = ["nearest_same_person_baseline"]


def nearest_same_person_baseline(source: SyntheticEyes, rset, eyes: list[int]) -> torch.Tensor:
    """A real image of the same person and eye at exactly the target gaze, but from another
    capture (another index: other pupil size, lid opening, camera jitter) — what a dataset
    lookup could give at best."""
    out = torch.empty_like(rset.target)
    for k, eye in enumerate(eyes):
        person, side = source.person_of(eye), source.side_of(eye)
        alt = next(i for i in range(len(source)) if i != eye and source.person_of(i) == person and source.side_of(i) == side)
        rows = (rset.group == k).nonzero().flatten()
        out[rows] = source.render([alt] * len(rows), gaze=rset.target_gaze[rows])["image"]
    return out
