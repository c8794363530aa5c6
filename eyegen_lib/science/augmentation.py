"""He et al. §5.6: redirected eyes as extra training data for a gaze estimator.

The paper's controlled experiment: a *raw* training set that holds only one sign of pitch (all
persons' images looking up), and an *augmented* set that adds the GAN's held-out persons' raw images
redirected to the missing pitches (looking down). Two estimators of the same architecture and
training budget, one per set, are tested on the pitches nobody trained on (the GAN's training persons
looking down: unseen by both estimators) and on another dataset.

On the renderer the redirection targets are pitches drawn in [−15°, 0], the oracle renders each donor
there, and the other dataset is another synthetic population. On Columbia Gaze (``DATA="columbia"``)
it is the paper's setting: raw = every +10° photo of subjects 1–56, donors = subjects 51–56's, the
targets the grid's 0° and −10° at the donor's yaw, the oracle the donor's own photos there, and the
cross-dataset test MPIIGaze when ``$EYEGEN_MPIIGAZE_DIR`` is set.
"""
from __future__ import annotations

import numpy as np
import torch

from ..core.gaze import angular_error_deg
from ..core.images import to_signed
from ..core.profiles import Profile
from .data.datasets import render_all
from .data.recipes import data_recipe, identity
from .models.gaze_estimator import GazeEstimator, predict_gaze
from .models.gaze_gan import redirect
from .protocols import (
    REDIRECTION_GAZE_RANGE_DEG,
    cross_dataset_gaze_source,
    draws_any_gaze,
    person_split,
    real_eyes_at,
    rgb_source,
    split_indices,
)

__all__ = ["subset", "pitch_split_sets", "lower_pitch_targets", "training_set_recipe", "training_sets",
           "split_description", "score_estimator", "OTHER_POPULATION_SEED_OFFSET", "TARGETS_PER_IMAGE",
           "COLUMBIA_TARGET_PITCHES_DEG", "CROSS_DATASET_EYES_PER_PERSON"]

OTHER_POPULATION_SEED_OFFSET = 1000  # another seed: other identities, skin, light — another "dataset"
TARGETS_PER_IMAGE = 2  # redirected copies of each donor image
COLUMBIA_TARGET_PITCHES_DEG = (0.0, -10.0)  # the grid's pitches that Columbia's raw set (+10°) lacks
# MPIIGaze's evaluation subset holds 1,500 eyes a side per person; as many, evenly over each person's days
CROSS_DATASET_EYES_PER_PERSON = 3000


def _evenly_per_person(source, per_person: int) -> list[int]:
    by_person: dict[int, list[int]] = {}
    for i in range(len(source)):
        by_person.setdefault(source.person_of(i), []).append(i)
    return sorted(i for ids in by_person.values()
                  for i in (ids if len(ids) <= per_person else np.array(ids)[np.linspace(0, len(ids) - 1, per_person).round().astype(int)]))


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
    * on the renderer ``other_persons`` — the test persons of another synthetic population, at every
      pitch; on Columbia ``mpiigaze`` — MPIIGaze's eyes (:data:`CROSS_DATASET_EYES_PER_PERSON` a
      person) when ``$EYEGEN_MPIIGAZE_DIR`` is set.

    Each is a :func:`render_all` dict (``image`` uint8, ``gaze`` (pitch, yaw) radians, ``person``,
    ``index``, …); ``source`` is the RGB source the indices refer to; ``test_sets`` names the test
    sets present, in order."""
    described = split_description(profile, seed=seed)
    source, split = described["source"], described["split"]
    idx = split_indices(source, split)
    data = render_all(source, sorted(i for ids in idx.values() for i in ids), progress=progress)
    up = data["gaze"][:, 0] > 0

    def of(persons):
        return torch.isin(data["person"], torch.as_tensor(persons))

    sets = {"source": source, "split": split,
            "raw": subset(data, up), "donors": subset(data, up & of(split["test"])),
            "held_out_pitch": subset(data, ~up & of(split["train"])), "test_sets": ("held_out_pitch",)}
    if profile.data == "renderer":
        other_seed = seed + OTHER_POPULATION_SEED_OFFSET
        other_source = rgb_source(profile, seed=other_seed)
        other_test = split_indices(other_source, person_split(profile, seed=other_seed))["test"]
        sets["other_persons"] = render_all(other_source, other_test, progress=progress)
        sets["test_sets"] += ("other_persons",)
    elif (cross := cross_dataset_gaze_source(profile)) is not None:
        sets["mpiigaze"] = render_all(cross, _evenly_per_person(cross, CROSS_DATASET_EYES_PER_PERSON), progress=progress)
        sets["test_sets"] += ("mpiigaze",)
    return sets


def lower_pitch_targets(gaze: torch.Tensor, *, per_image: int, seed: int = 0,
                        max_pitch_deg: float = REDIRECTION_GAZE_RANGE_DEG[0],
                        grid_pitches_deg: tuple[float, ...] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """For each (pitch, yaw) of ``gaze`` (N, 2) radians, ``per_image`` targets with the same yaw and a
    pitch drawn uniformly in [−``max_pitch_deg``, 0] — the range the raw set lacks — or, on a dataset's
    grid (``grid_pitches_deg``), its pitches in turn (copy k of an image at pitch k mod their number).
    Returns (row of the source image (N·per_image,), target gaze (N·per_image, 2))."""
    if per_image < 1:
        raise ValueError(f"per_image must be ≥ 1, got {per_image}")
    rows = torch.arange(len(gaze)).repeat_interleave(per_image)
    if grid_pitches_deg is not None:
        grid = torch.deg2rad(torch.tensor(grid_pitches_deg, dtype=torch.float32))
        pitch = grid[torch.arange(len(rows)) % per_image % len(grid)]
    else:
        g = torch.Generator().manual_seed(seed)
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
    grid = not draws_any_gaze(sets["source"])
    return {**recipe, "added": {"donors": "test persons, pitch > 0", "targets_per_image": int(targets_per_image),
                                "target_seed": int(seed),
                                **({"target_pitches_deg": list(COLUMBIA_TARGET_PITCHES_DEG)} if grid else
                                   {"target_pitch_deg": [-REDIRECTION_GAZE_RANGE_DEG[0], 0.0]}),
                                "images": identity(gan_info["provenance"]) if name == "augmented" else
                                "the photos at the targets" if grid else "rendered at the targets"}}


def training_sets(sets: dict, *, gan=None, targets_per_image: int = TARGETS_PER_IMAGE, seed: int = 0,
                  progress: bool = True) -> dict:
    """The estimators' training sets from :func:`pitch_split_sets`: ``raw``, ``oracle`` (raw + the
    donors' real eyes at :func:`lower_pitch_targets` — rendered there, or on Columbia their photos
    there) and, given the ``gan``, ``augmented`` (raw + the donors redirected there by it), each
    (uint8 images, gaze); plus what was drawn: ``rows`` (donor of each target), ``target_gaze``,
    ``real_at_target`` and ``redirected``."""
    raw, donors, source = sets["raw"], sets["donors"], sets["source"]
    grid = None if draws_any_gaze(source) else COLUMBIA_TARGET_PITCHES_DEG
    rows, target_gaze = lower_pitch_targets(donors["gaze"], per_image=targets_per_image, seed=seed, grid_pitches_deg=grid)
    real_at_target = real_eyes_at(source, donors["index"][rows].tolist(), target_gaze)["image"]
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
