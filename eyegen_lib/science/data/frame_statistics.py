"""What an OpenEDS-like frame holds, measured from its mask (and image): the statistics that say
how far rendered frames are from real ones (notebook 01's sim-to-real section, issue 29).

Per frame, from the 4-class mask (0 skin, 1 sclera, 2 iris, 3 pupil):

* ``share_<class>``: the fraction of the frame's pixels of each class;
* ``eye_centre_y`` / ``eye_centre_x``: the centroid of the visible eye (classes 1–3), as a fraction
  of the frame's height / width;
* ``eye_height`` / ``eye_width``: the visible eye's extent (rows / columns holding any eye pixel)
  as a fraction of the frame's height / width — the eyelid aperture and the fissure's length;
* ``pupil_to_iris``: the pupil's width over the iris's (iris + pupil columns), along the row
  through the pupil's centre (widths survive a lid that covers the iris's top);
* ``iris_to_eye``: the iris's width over the eye's;
* ``mean_<class>``: the mean grey level of each class (with the image).

:data:`OPENEDS_REFERENCE` holds the values of real OpenEDS frames that could be found, each with its
source. Few are published: the dataset paper prints none of these; the per-class grey means come
from Seg2Eye's code, the class shares from a third party's count on 500 label maps, and the eye's
position and extent from issue 29's measurement on real frames that the project keeps out of its
repository. They disagree where they overlap (the sclera's share): see notebook 01.
"""
from __future__ import annotations

import torch

__all__ = ["frame_statistics", "summarise", "OPENEDS_REFERENCE", "CLASSES"]

CLASSES = ("skin", "sclera", "iris", "pupil")

# name → (value, what it is, source). None where no source gives a value.
OPENEDS_REFERENCE: dict[str, tuple[float, str]] = {
    "mean_skin": (125.73929, "Seg2Eye's code: mean grey of class 0 over the OpenEDS training set"),
    "mean_sclera": (103.19314, "Seg2Eye's code: mean grey of class 1 over the OpenEDS training set"),
    "mean_iris": (76.50751, "Seg2Eye's code: mean grey of class 2 over the OpenEDS training set"),
    "mean_pupil": (34.1294, "Seg2Eye's code: mean grey of class 3 over the OpenEDS training set"),
    "share_skin": (0.8342, "a third party's count on 500 OpenEDS label maps (not a publication)"),
    "share_sclera": (0.0794, "a third party's count on 500 OpenEDS label maps (not a publication)"),
    "share_iris": (0.0765, "a third party's count on 500 OpenEDS label maps (not a publication)"),
    "share_pupil": (0.0099, "a third party's count on 500 OpenEDS label maps (not a publication)"),
    "eye_centre_y": (0.61, "issue 29: measured on real frames held out of the project"),
    "eye_height": (0.29, "issue 29: measured on real frames held out of the project"),
}


def _extent(on: torch.Tensor, dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    """First and last index along ``dim`` (of the other dims collapsed) where ``on`` (B, H, W) holds."""
    any_ = on.any(dim=3 - dim)                                    # (B, L): rows (dim 1) or columns (dim 2)
    idx = torch.arange(any_.shape[1])
    first = torch.where(any_, idx, any_.shape[1]).min(1).values
    last = torch.where(any_, idx, -1).max(1).values
    return first, last


def frame_statistics(masks: torch.Tensor, images: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """Per-frame statistics (see the module's docstring), each a (B,) float tensor (NaN where a
    frame lacks what it needs, e.g. a closed eye has no eye centre). ``masks`` (B, H, W) labels
    0..3; ``images`` (B, 1, H, W) or (B, H, W) grey 0..255, optional."""
    if masks.ndim != 3:
        raise ValueError(f"masks must be (B, H, W), got shape {tuple(masks.shape)}")
    B, H, W = masks.shape
    nan = torch.full((B,), float("nan"))
    out = {f"share_{c}": (masks == k).float().mean(dim=(1, 2)) for k, c in enumerate(CLASSES)}
    eye = masks > 0
    n_eye = eye.sum(dim=(1, 2)).float()
    has_eye = n_eye > 0
    rows = torch.arange(H, dtype=torch.float32)[None, :, None]
    cols = torch.arange(W, dtype=torch.float32)[None, None, :]
    out["eye_centre_y"] = torch.where(has_eye, ((eye * rows).sum(dim=(1, 2)) / n_eye.clamp_min(1) + 0.5) / H, nan)
    out["eye_centre_x"] = torch.where(has_eye, ((eye * cols).sum(dim=(1, 2)) / n_eye.clamp_min(1) + 0.5) / W, nan)
    r0, r1 = _extent(eye, 1)
    c0, c1 = _extent(eye, 2)
    out["eye_height"] = torch.where(has_eye, (r1 - r0 + 1).float() / H, nan)
    out["eye_width"] = torch.where(has_eye, (c1 - c0 + 1).float() / W, nan)
    # Widths along the row through the pupil's centre.
    pupil = masks == 3
    n_pupil = pupil.sum(dim=(1, 2))
    centre_row = ((pupil * rows).sum(dim=(1, 2)) / n_pupil.clamp_min(1)).round().long().clamp(0, H - 1)
    line = masks[torch.arange(B), centre_row]                     # (B, W)
    pupil_w = (line == 3).sum(1).float()
    iris_w = (line >= 2).sum(1).float()
    eye_w = (c1 - c0 + 1).float()
    ok = (n_pupil > 0) & (iris_w > 0)
    out["pupil_to_iris"] = torch.where(ok, pupil_w / iris_w.clamp_min(1), nan)
    out["iris_to_eye"] = torch.where(ok, iris_w / eye_w.clamp_min(1), nan)
    if images is not None:
        grey = images.reshape(B, H, W).float()
        for k, c in enumerate(CLASSES):
            on = masks == k
            n = on.sum(dim=(1, 2))
            out[f"mean_{c}"] = torch.where(n > 0, (grey * on).sum(dim=(1, 2)) / n.clamp_min(1), nan)
    return out


def summarise(stats: dict[str, torch.Tensor]) -> dict[str, dict[str, float]]:
    """Per statistic: mean, standard deviation and the 5th / 95th percentiles over frames (NaNs left out)."""
    out = {}
    for name, values in stats.items():
        v = values[~torch.isnan(values)].double()
        if not len(v):
            out[name] = {"mean": float("nan"), "sd": float("nan"), "p5": float("nan"), "p95": float("nan")}
            continue
        out[name] = {"mean": float(v.mean()), "sd": float(v.std()) if len(v) > 1 else 0.0,
                     "p5": float(torch.quantile(v, 0.05)), "p95": float(torch.quantile(v, 0.95))}
    return out
