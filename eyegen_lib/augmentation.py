"""He et al. §5.6: redirected eyes as extra training data for a gaze estimator.

The paper's controlled experiment, on the synthetic RGB eyes: a *raw* training set that holds only
one sign of pitch (all persons' images looking up), and an *augmented* set that adds the GAN's
held-out persons' raw images redirected to the missing pitches (looking down). Two estimators of
the same architecture and training budget, one per set, are tested on the pitches nobody trained on
(the GAN's training persons looking down: unseen by both estimators) and on other persons (a
different synthetic population: the paper's cross-dataset test on MPIIGaze).
"""
from __future__ import annotations

import numpy as np
import torch

from .data.datasets import render_all
from .images import to_signed
from .gaze import angular_error_deg
from .models.gaze_estimator import GazeEstimator, predict_gaze
from .profiles import Profile
from .protocols import REDIRECTION_GAZE_RANGE_DEG, person_split, rgb_source, split_indices
from .provenance import data_recipe, identity

__all__ = ["subset", "pitch_split_sets", "lower_pitch_targets", "training_set_recipe", "training_sets",
           "split_description", "score_estimator", "OTHER_POPULATION_SEED_OFFSET", "TARGETS_PER_IMAGE"]

OTHER_POPULATION_SEED_OFFSET = 1000  # another seed: other identities, skin, light — another "dataset"
TARGETS_PER_IMAGE = 2  # redirected copies of each donor image


def subset(data: dict, keep: torch.Tensor) -> dict:
    """Rows ``keep`` (bool mask or indices) of a :func:`render_all` dict (tensors and lists alike)."""
    rows = keep.nonzero().flatten() if keep.dtype == torch.bool else torch.as_tensor(keep)
    out = {}
    for k, v in data.items():
        if torch.is_tensor(v):
            out[k] = v[rows]
        elif isinstance(v, list):
            out[k] = [v[int(i)] for i in rows]
        else:
            out[k] = v
    return out


def pitch_split_sets(profile: Profile, *, seed: int = 0, progress: bool = True) -> dict:
    """The experiment's sets, all from the suite's RGB source and person split:

    * ``raw`` — every person's images with pitch > 0 (looking up);
    * ``donors`` — the raw images of the *test* persons (held out from the GAN), to be redirected;
    * ``held_out_pitch`` — the GAN's *training* persons looking down (pitch ≤ 0): no estimator sees them;
    * ``other_persons`` — the test persons of another synthetic population, at every pitch.

    Each is a :func:`render_all` dict (``image`` uint8, ``gaze`` (pitch, yaw) radians, ``person``,
    ``index``, …); ``source`` is the RGB source the indices refer to."""
    described = split_description(profile, seed=seed)
    source, split = described["source"], described["split"]
    idx = split_indices(source, split)
    data = render_all(source, sorted(i for ids in idx.values() for i in ids), progress=progress)
    up = data["gaze"][:, 0] > 0

    def of(persons):
        return torch.isin(data["person"], torch.as_tensor(persons))

    other_seed = seed + OTHER_POPULATION_SEED_OFFSET
    other_source = rgb_source(profile, seed=other_seed)
    other_test = split_indices(other_source, person_split(profile, seed=other_seed))["test"]
    return {"source": source, "split": split,
            "raw": subset(data, up), "donors": subset(data, up & of(split["test"])),
            "held_out_pitch": subset(data, ~up & of(split["train"])),
            "other_persons": render_all(other_source, other_test, progress=progress)}


def lower_pitch_targets(gaze: torch.Tensor, *, per_image: int, seed: int = 0,
                        max_pitch_deg: float = REDIRECTION_GAZE_RANGE_DEG[0]) -> tuple[torch.Tensor, torch.Tensor]:
    """For each (pitch, yaw) of ``gaze`` (N, 2) radians, ``per_image`` targets with the same yaw and a
    pitch drawn uniformly in [−``max_pitch_deg``, 0] — the range the raw set lacks. Returns
    (row of the source image (N·per_image,), target gaze (N·per_image, 2))."""
    if per_image < 1:
        raise ValueError(f"per_image must be ≥ 1, got {per_image}")
    g = torch.Generator().manual_seed(seed)
    rows = torch.arange(len(gaze)).repeat_interleave(per_image)
    pitch = -torch.rand(len(rows), generator=g) * np.radians(max_pitch_deg)
    return rows, torch.stack([pitch, gaze[rows, 1].float()], dim=1)


def training_set_recipe(sets: dict, name: str, *, targets_per_image: int, seed: int, gan_info: dict | None = None) -> dict:
    """The data recipe of one estimator's training set (``raw``, ``augmented`` or ``oracle``): the
    raw set of :func:`pitch_split_sets`, plus — for the others — the donors' targets of
    :func:`lower_pitch_targets` redirected by the GAN (cited by its provenance) or rendered for real."""
    if name not in ("raw", "augmented", "oracle"):
        raise ValueError(f"training set must be 'raw', 'augmented' or 'oracle', got {name!r}")
    recipe = data_recipe(sets["source"], split=sets["split"], training_set=name, raw="every person, pitch > 0")
    if name == "raw":
        return recipe
    if name == "augmented" and gan_info is None:
        raise ValueError("the augmented set's recipe needs the GAN's info (it cites the GAN that redirected the donors)")
    return {**recipe, "added": {"donors": "test persons, pitch > 0", "targets_per_image": int(targets_per_image),
                                "target_seed": int(seed), "target_pitch_deg": [-REDIRECTION_GAZE_RANGE_DEG[0], 0.0],
                                "images": identity(gan_info["provenance"]) if name == "augmented" else "rendered at the targets"}}


def training_sets(sets: dict, *, gan=None, targets_per_image: int = TARGETS_PER_IMAGE, seed: int = 0,
                  progress: bool = True) -> dict:
    """The estimators' training sets from :func:`pitch_split_sets`: ``raw``, ``oracle`` (raw + the
    donors rendered at :func:`lower_pitch_targets`) and, given the ``gan``, ``augmented`` (raw +
    the donors redirected there by it), each (uint8 images, gaze); plus what was drawn: ``rows``
    (donor of each target), ``target_gaze``, ``real_at_target`` and ``redirected``."""
    from .models.gaze_gan import redirect

    raw, donors = sets["raw"], sets["donors"]
    rows, target_gaze = lower_pitch_targets(donors["gaze"], per_image=targets_per_image, seed=seed)
    real_at_target = sets["source"].render(donors["index"][rows].tolist(), gaze=target_gaze)["image"]
    out = {"rows": rows, "target_gaze": target_gaze, "real_at_target": real_at_target,
           "raw": (raw["image"], raw["gaze"]),
           "oracle": (torch.cat([raw["image"], real_at_target]), torch.cat([raw["gaze"], target_gaze]))}
    if gan is not None:
        out["redirected"] = redirect(gan, donors["image"][rows], target_gaze, progress=progress)
        out["augmented"] = (torch.cat([raw["image"], out["redirected"]]), torch.cat([raw["gaze"], target_gaze]))
    return out


def split_description(profile: Profile, *, seed: int = 0) -> dict:
    """The ``source`` and ``split`` of :func:`pitch_split_sets` without rendering (for recipes)."""
    return {"source": rgb_source(profile, seed=seed), "split": person_split(profile, seed=seed)}


def score_estimator(model: GazeEstimator, data: dict) -> dict:
    """Mean angular error (°) and mean absolute pitch / yaw error (°) on a :func:`render_all` dict,
    plus the per-image angular errors (``per_image``) for plots."""
    pred = predict_gaze(model, to_signed(data["image"])).double()
    true = data["gaze"].double()
    err = torch.as_tensor(angular_error_deg(pred, true)).float()
    diff = torch.rad2deg(pred - true).abs()
    return {"error_deg": float(err.mean()), "pitch_error_deg": float(diff[:, 0].mean()),
            "yaw_error_deg": float(diff[:, 1].mean()), "per_image": err}
