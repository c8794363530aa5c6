"""The project's one gaze convention.

Gaze is ``(pitch, yaw)`` in radians. The unit vector of a gaze label is

    v(pitch, yaw) = (cos p · sin y,  sin p,  cos p · cos y)

in camera coordinates (x to the image right, y down, z away from the camera); ``v`` is the
*negated* eye→target direction, so ``(0, 0)`` looks straight into the camera. This is the
MPIIGaze normalised convention (``pitch = arcsin(-g_y)``, ``yaw = arctan2(-g_x, -g_z)`` for the
eye→target vector ``g``). In image terms:

* pitch > 0 looks **up**: the pupil moves towards row 0;
* yaw > 0 moves the pupil towards **column 0** (the image left, the subject's right).

Every reader converts its labels into this convention; ``tests/test_gaze.py`` pins it.
"""
from __future__ import annotations

import numpy as np
import torch

__all__ = ["pitchyaw_to_vector", "vector_to_pitchyaw", "eye_to_target_to_pitchyaw", "angular_error_deg"]


def pitchyaw_to_vector(pitchyaw):
    """(…, 2) pitch/yaw in radians → (…, 3) unit vectors. Works on numpy arrays and torch tensors."""
    lib = torch if isinstance(pitchyaw, torch.Tensor) else np
    p, y = pitchyaw[..., 0], pitchyaw[..., 1]
    return lib.stack([lib.cos(p) * lib.sin(y), lib.sin(p), lib.cos(p) * lib.cos(y)], -1)


def vector_to_pitchyaw(vector):
    """(…, 3) vectors in the project convention (any length) → (…, 2) pitch/yaw in radians."""
    if isinstance(vector, torch.Tensor):
        n = vector / vector.norm(dim=-1, keepdim=True)
        return torch.stack([torch.asin(n[..., 1].clamp(-1.0, 1.0)), torch.atan2(n[..., 0], n[..., 2])], -1)
    n = vector / np.linalg.norm(vector, axis=-1, keepdims=True)
    return np.stack([np.arcsin(np.clip(n[..., 1], -1.0, 1.0)), np.arctan2(n[..., 0], n[..., 2])], -1)


def eye_to_target_to_pitchyaw(g):
    """MPIIGaze-style eye→target vectors g → project pitch/yaw (``pitch = arcsin(-g_y)``, ``yaw = arctan2(-g_x, -g_z)``)."""
    return vector_to_pitchyaw(-g)


def angular_error_deg(a, b):
    """Angle in degrees between gaze labels.

    ``a`` and ``b`` are either (…, 2) pitch/yaw in radians or (…, 3) vectors (of any length).
    Returns ``arccos(clip(a·b / (|a||b|), -1, 1))`` in degrees, one value per leading index.
    """
    is_torch = isinstance(a, torch.Tensor)
    if a.shape[-1] == 2:
        a = pitchyaw_to_vector(a)
    if b.shape[-1] == 2:
        b = pitchyaw_to_vector(b)
    if a.shape[-1] != 3 or b.shape[-1] != 3:
        raise ValueError(f"gaze must be (…, 2) pitch/yaw or (…, 3) vectors, got {tuple(a.shape)} and {tuple(b.shape)}")
    if is_torch:
        cos = (a * b).sum(-1) / (a.norm(dim=-1) * b.norm(dim=-1))
        return torch.rad2deg(torch.acos(cos.clamp(-1.0, 1.0)))
    cos = (a * b).sum(-1) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1))
    return np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))
