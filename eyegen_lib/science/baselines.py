"""Baselines that are not methods: what a method must beat on the shared protocols."""
from __future__ import annotations

import numpy as np
import torch

__all__ = ["nearest_same_person_baseline"]


def nearest_same_person_baseline(source, rset, eyes: list[int]) -> torch.Tensor | None:
    """A real image of the same person and eye at exactly the target gaze, but from another
    capture (another index: other pupil size, lid opening, camera jitter) — what a dataset
    lookup could give at best. On photographs (Columbia Gaze) the other capture is the same eye at
    the nearest other head pose; None where the copy has no photo of an eye at another pose."""
    if not hasattr(source, "render"):
        return _same_eye_at_another_pose(source, rset, eyes)
    out = torch.empty_like(rset.target)
    for k, eye in enumerate(eyes):
        person, side = source.person_of(eye), source.side_of(eye)
        alt = next(i for i in range(len(source)) if i != eye and source.person_of(i) == person and source.side_of(i) == side)
        rows = (rset.group == k).nonzero().flatten()
        out[rows] = source.render([alt] * len(rows), gaze=rset.target_gaze[rows])["image"]
    return out


def _same_eye_at_another_pose(source, rset, eyes: list[int]) -> torch.Tensor | None:
    out = torch.empty_like(rset.target)
    for k, eye in enumerate(eyes):
        subject, pose, side = source.group_of(eye)
        nearest: dict[tuple[int, int], tuple[int, int]] = {}  # grid gaze (deg) → (|pose|, index) of the nearest other pose
        for i in range(len(source)):
            s, p, e = source.group_of(i)
            if s == subject and e == side and p != pose:
                key = tuple(int(v) for v in np.round(np.degrees(source.gaze_of(i))))
                if key not in nearest or abs(p - pose) < nearest[key][0]:
                    nearest[key] = (abs(p - pose), i)
        for r in (rset.group == k).nonzero().flatten().tolist():
            key = tuple(int(v) for v in np.round(np.degrees(rset.target_gaze[r].numpy())))
            if key not in nearest:
                return None
            out[r] = source[nearest[key][1]]["image"]
    return out

