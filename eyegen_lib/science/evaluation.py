"""Evaluation protocols shared by the method notebooks and ``07_evaluation``.

* **Redirection** (He et al. §5.3): every test eye at each of the 21 Columbia grid directions is
  redirected to the 20 others; LPIPS, blurriness and gaze error are reported against the correction
  angle (the angle between source and target gaze).
* **OpenEDS generation** (Seg2Eye §5): the challenge L2 score, LPIPS, blurriness and content
  preservation (segmenter mIoU of the generated image against the input mask).
* **He et al. Table 1**: blurred, noisy and shifted copies of eye patches under MSE and LPIPS.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
import torchvision.transforms.functional as TF

from ..core.gaze import angular_error_deg
from ..core.images import to_signed  # noqa: F401  (re-exported: notebooks import it from here)
from .data.rows import fetch_in_chunks, gaze_labels, rows_of
from .metrics import blurriness, challenge_score, lpips_distance, mean_iou, mse
from .models.gaze_estimator import predict_gaze

__all__ = ["GRID_YAW_DEG", "GRID_PITCH_DEG", "gaze_grid", "RedirectionSet", "build_redirection_set",
           "grid_groups", "redirection_set_of_groups", "evaluate_redirection", "by_correction_angle", "table1_corruptions", "table1",
           "evaluate_openeds", "to_signed", "ANGLE_BINS_DEG", "estimator_error"]

GRID_YAW_DEG = (-15, -10, -5, 0, 5, 10, 15)  # Columbia Gaze horizontal gaze directions
GRID_PITCH_DEG = (-10, 0, 10)  # Columbia Gaze vertical gaze directions
ANGLE_BINS_DEG = (0, 10, 15, 20, 25, 40)  # correction-angle bins; the grid's range is about 5°–32°


def gaze_grid() -> torch.Tensor:
    """The 21 grid directions as (pitch, yaw) radians, pitch-major."""
    return torch.tensor([[np.radians(p), np.radians(y)] for p in GRID_PITCH_DEG for y in GRID_YAW_DEG], dtype=torch.float32)


@dataclass
class RedirectionSet:
    """All (source, target) pairs of the protocol; images uint8 (N, C, H, W)."""
    source: torch.Tensor
    target: torch.Tensor  # ground truth: the same eye rendered/photographed at the target gaze
    source_gaze: torch.Tensor
    target_gaze: torch.Tensor
    person: torch.Tensor
    group: torch.Tensor  # which (person, eye) grid each pair comes from
    landmarks: torch.Tensor | None = None  # of the source image
    # class masks (N, H, W) uint8 (0 skin, 1 sclera, 2 iris, 3 pupil) where the data has them (the
    # renderer): the identity measures (metrics.identity) read skin and iris through them
    source_mask: torch.Tensor | None = None
    target_mask: torch.Tensor | None = None

    @property
    def angle_deg(self) -> torch.Tensor:
        return torch.as_tensor(angular_error_deg(self.source_gaze.double(), self.target_gaze.double())).float()

    def __len__(self) -> int:
        return len(self.source)

    def subset(self, keep: torch.Tensor) -> "RedirectionSet":
        """The pairs where boolean ``keep`` (N,) is true (e.g. Δyaw = 0 for a vertical-only model)."""
        keep = torch.as_tensor(keep, dtype=torch.bool)
        if keep.shape != (len(self),):
            raise ValueError(f"keep must be a boolean mask of shape ({len(self)},), got {tuple(keep.shape)}")
        return RedirectionSet(**{f: None if getattr(self, f) is None else getattr(self, f)[keep]
                                 for f in self.__dataclass_fields__})

    def same_yaw(self) -> "RedirectionSet":
        """Only the vertical redirections (yaw unchanged): the protocol of a vertical-only model."""
        return self.subset(self.target_gaze[:, 1] == self.source_gaze[:, 1])


def build_redirection_set(source, indices, grid: torch.Tensor | None = None) -> RedirectionSet:
    """Render each of ``indices`` (one per test eye) at every grid gaze and pair all ordered
    combinations of distinct directions: 21 × 20 pairs per eye. ``source`` is a SyntheticEyes."""
    grid = gaze_grid() if grid is None else grid
    g = len(grid)
    src_i, tgt_i = zip(*[(i, j) for i in range(g) for j in range(g) if i != j])
    src_i, tgt_i = torch.tensor(src_i), torch.tensor(tgt_i)
    parts = {k: [] for k in ("source", "target", "source_gaze", "target_gaze", "person", "group", "landmarks",
                             "source_mask", "target_mask")}
    for group, index in enumerate(indices):
        out = source.render([index] * g, gaze=grid)
        parts["source"].append(out["image"][src_i])
        parts["target"].append(out["image"][tgt_i])
        parts["source_gaze"].append(grid[src_i])
        parts["target_gaze"].append(grid[tgt_i])
        parts["person"].append(out["person"][src_i])
        parts["group"].append(torch.full((len(src_i),), group))
        parts["landmarks"].append(out["landmarks"][src_i])
        parts["source_mask"].append(out["mask"][src_i])
        parts["target_mask"].append(out["mask"][tgt_i])
    return RedirectionSet(**{k: torch.cat(v) for k, v in parts.items()})


def grid_groups(source, indices, *, pose: int = 0) -> list[list[int]]:
    """The (subject, ``pose``, eye) groups of a photographed source (Columbia Gaze) among ``indices``
    that hold all 21 grid gazes, each as its 21 indices in :func:`gaze_grid`'s order: He et al.'s
    test eyes."""
    wanted = {(p, y): k for k, (p, y) in enumerate((p, y) for p in GRID_PITCH_DEG for y in GRID_YAW_DEG)}
    groups: dict = {}
    for i in indices:
        subject, p, eye = source.group_of(int(i))
        if p != pose:
            continue
        pitch, yaw = np.degrees(np.asarray(source.gaze_of(int(i)), dtype=np.float64))  # the stored patch's gaze
        slot = wanted.get((int(round(pitch)), int(round(yaw))))
        if slot is not None:
            groups.setdefault((subject, eye), {})[slot] = int(i)
    return [[members[k] for k in range(len(wanted))] for _, members in sorted(groups.items()) if len(members) == len(wanted)]


def redirection_set_of_groups(source, groups) -> RedirectionSet:
    """He et al.'s protocol on photographs: in each group (one eye's 21 grid photos, :func:`grid_groups`)
    every photo is redirected to the 20 others; the target is the photo at that gaze. No masks; the
    landmarks are the source's where it gives them (the template eye of
    :func:`~eyegen_lib.science.data.columbia.patch_landmarks` on Columbia: photos carry none)."""
    g = len(gaze_grid())
    src_i, tgt_i = zip(*[(i, j) for i in range(g) for j in range(g) if i != j])
    src_i, tgt_i = torch.tensor(src_i), torch.tensor(tgt_i)
    parts = {k: [] for k in ("source", "target", "source_gaze", "target_gaze", "person", "group", "landmarks")}
    for group, members in enumerate(groups):
        samples = [source[i] for i in members]
        images = torch.stack([s["image"] for s in samples])
        if all("landmarks" in s for s in samples):
            parts["landmarks"].append(torch.stack([torch.as_tensor(s["landmarks"]) for s in samples])[src_i])
        gaze = torch.tensor(np.stack([source.gaze_of(i) for i in members]), dtype=torch.float32)
        parts["source"].append(images[src_i])
        parts["target"].append(images[tgt_i])
        parts["source_gaze"].append(gaze[src_i])
        parts["target_gaze"].append(gaze[tgt_i])
        parts["person"].append(torch.full((len(src_i),), source.person_of(members[0])))
        parts["group"].append(torch.full((len(src_i),), group))
    if len(parts["landmarks"]) != len(parts["source"]):
        del parts["landmarks"]
    return RedirectionSet(**{k: torch.cat(v) for k, v in parts.items()})


@torch.no_grad()
def evaluate_redirection(pred: torch.Tensor, rset: RedirectionSet, estimator=None, *, method: str = "") -> pd.DataFrame:
    """One row per pair: correction angle, LPIPS to the ground truth, blurriness, and (with an
    ``estimator``) the gaze error of the prediction against the target gaze."""
    if pred.shape != rset.target.shape:
        raise ValueError(f"predictions must match the targets' shape {tuple(rset.target.shape)}, got {tuple(pred.shape)}")
    p = to_signed(pred)
    df = pd.DataFrame({
        "method": method,
        "angle_deg": rset.angle_deg.numpy(),
        "lpips": lpips_distance(p, to_signed(rset.target)).numpy(),
        "blurriness": blurriness(p, value_range=(-1, 1)).numpy(),
        "person": rset.person.numpy(),
    })
    if estimator is not None:
        est = predict_gaze(estimator, p)
        df["gaze_error_deg"] = angular_error_deg(est.double(), rset.target_gaze.double()).numpy()
    return df


def by_correction_angle(df: pd.DataFrame, bins=ANGLE_BINS_DEG) -> pd.DataFrame:
    """Mean of every metric per (method, correction-angle bin)."""
    binned = df.assign(angle_bin=pd.cut(df["angle_deg"], bins=list(bins)))
    metrics = [c for c in df.columns if c not in ("method", "angle_deg", "person")]
    return binned.groupby(["method", "angle_bin"], observed=True)[metrics].mean().reset_index()


def table1_corruptions(images: torch.Tensor, *, blur_sigma: float = 1.0, noise_sigma: float = 12.5,
                       shift_px: int = 2, seed: int = 0) -> dict[str, torch.Tensor]:
    """He et al. Table 1's three corruptions of (B, C, H, W) uint8 eye patches, as float 0..255.

    Gaussian blur (σ px), additive Gaussian noise (σ grey levels; its MSE is ≈ σ²), and a shift
    of the whole patch by ``shift_px`` to the right and down (edges replicated). The paper does not
    give its parameters; these are typical ones.
    """
    x = images.float()
    k = 2 * int(np.ceil(3 * blur_sigma)) + 1
    g = torch.Generator().manual_seed(seed)
    padded = torch.nn.functional.pad(x, (shift_px, 0, shift_px, 0), mode="replicate")
    return {
        "blurred": TF.gaussian_blur(x, [k, k], [blur_sigma, blur_sigma]),
        "noisy": (x + noise_sigma * torch.randn(x.shape, generator=g)).clamp(0, 255),
        "shifted": padded[..., : x.shape[-2], : x.shape[-1]],
    }


def table1(images: torch.Tensor, **kwargs) -> pd.DataFrame:
    """MSE (0..255) and LPIPS of each corruption against the original patches (mean over images)."""
    rows = []
    ref = to_signed(images)
    for name, corrupted in table1_corruptions(images, **kwargs).items():
        rows.append({"corruption": name, "MSE": mse(corrupted, images.float()).mean().item(),
                     "LPIPS": lpips_distance(corrupted / 127.5 - 1, ref).mean().item()})
    return pd.DataFrame(rows).set_index("corruption")


@torch.no_grad()
def evaluate_openeds(pred: torch.Tensor, target: torch.Tensor, target_mask: torch.Tensor, *, segment=None,
                     method: str = "") -> pd.DataFrame:
    """One row per image: challenge score (0..255 at 400×640), LPIPS, blurriness and, with a
    ``segment`` function (images in [-1, 1] → masks), content preservation as mIoU against the
    input mask. ``pred``/``target`` are uint8 or float 0..255 (B, 1, H, W)."""
    if pred.shape != target.shape:
        raise ValueError(f"pred and target must have one shape, got {tuple(pred.shape)} and {tuple(target.shape)}")
    p, t = pred.float(), target.float()
    df = pd.DataFrame({
        "method": method,
        "challenge_score": challenge_score(p, t).numpy(),
        "lpips": lpips_distance(p / 127.5 - 1, t / 127.5 - 1).numpy(),
        "blurriness": blurriness(p).numpy(),
    })
    if segment is not None:
        masks = segment(p / 127.5 - 1)
        df["content_miou"] = [mean_iou(m, tm) for m, tm in zip(masks, target_mask)]
    return df


def estimator_error(estimator, source, indices=None, *, chunk: int = 256, progress: bool = False) -> dict:
    """A gaze estimator's mean angular error (°) on ``indices`` of ``source`` (all of it by default),
    read ``chunk`` images at a time, beside the best constant's: always predicting the set's own mean
    gaze, which no estimator that reads nothing from the eye can beat. Also the numbers of images and
    persons."""
    indices = list(range(len(source))) if indices is None else list(indices)
    rows = rows_of(source, indices, ("image", "gaze"), in_memory=False, progress=False)
    pred = torch.cat([predict_gaze(estimator, to_signed(b["image"])) for _, b in
                      fetch_in_chunks(rows, chunk=chunk, progress=progress, desc="gaze")]).double()
    truth = gaze_labels(rows).double()
    constant = truth.mean(0, keepdim=True).expand_as(truth)
    return {"error_deg": float(angular_error_deg(pred, truth).mean()),
            "best_constant_error_deg": float(angular_error_deg(constant, truth).mean()),
            "images": len(indices), "persons": len({source.person_of(i) for i in indices})}
