"""He et al. §5.6's augmentation experiment: the sets, the redirection targets and the estimators."""
from pathlib import Path

import numpy as np
import pytest
import torch

from eyegen_lib.core.profiles import get_profile
from eyegen_lib.runs import registry
from eyegen_lib.science.augmentation import (
    lower_pitch_targets,
    pitch_split_sets,
    score_estimator,
    subset,
    training_set_recipe,
)
from eyegen_lib.science.models.gaze_gan import ABLATIONS, GazeGANConfig


@pytest.fixture(scope="module")
def sets():
    return pitch_split_sets(get_profile("smoke"), seed=0, progress=False)


def test_subset_keeps_rows_of_tensors_and_lists():
    data = {"image": torch.arange(5), "side": list("abcde"), "border": 3}
    out = subset(data, torch.tensor([True, False, True, False, False]))
    assert out["image"].tolist() == [0, 2] and out["side"] == ["a", "c"] and out["border"] == 3
    assert subset(data, torch.tensor([4, 1]))["side"] == ["e", "b"]


def test_sets_split_pitch_and_persons_as_the_paper(sets):
    split = sets["split"]
    assert (sets["raw"]["gaze"][:, 0] > 0).all(), "the raw set looks up only"
    assert (sets["held_out_pitch"]["gaze"][:, 0] <= 0).all(), "test 1 holds the pitches raw lacks"
    assert set(sets["held_out_pitch"]["person"].tolist()) <= set(split["train"])
    assert set(sets["donors"]["person"].tolist()) <= set(split["test"])
    assert (sets["donors"]["gaze"][:, 0] > 0).all()
    # the donors are raw images: the augmented set adds redirected copies, not new captures
    assert set(sets["donors"]["index"].tolist()) <= set(sets["raw"]["index"].tolist())
    other = sets["other_persons"]
    assert (other["gaze"][:, 0] > 0).any() and (other["gaze"][:, 0] <= 0).any(), "test 2 covers every pitch"
    # another population: the same index renders another eye
    same = sets["source"].render(other["index"][:4].tolist())["image"]
    assert (same.float() - other["image"][:4].float()).abs().mean() > 5


def test_lower_pitch_targets_keep_yaw_and_fill_the_missing_pitches():
    gaze = torch.tensor([[0.1, -0.2], [0.2, 0.3], [0.05, 0.0]])
    rows, target = lower_pitch_targets(gaze, per_image=4, seed=3, max_pitch_deg=15)
    assert rows.tolist() == [0] * 4 + [1] * 4 + [2] * 4
    assert torch.equal(target[:, 1], gaze[rows, 1])
    assert (target[:, 0] <= 0).all() and (target[:, 0] >= -np.radians(15)).all()
    assert target[:, 0].unique().numel() == 12, "each copy gets its own pitch"
    assert torch.equal(lower_pitch_targets(gaze, per_image=4, seed=3)[1], target), "seeded"
    with pytest.raises(ValueError, match="per_image"):
        lower_pitch_targets(gaze, per_image=0)


@pytest.mark.numerics
def test_an_estimator_trained_looking_up_fails_looking_down(sets, tmp_path, monkeypatch, numerics_seed, margin):
    """The experiment's premise: without the lower pitches, the estimator errs most there."""
    monkeypatch.setenv("EYEGEN_OUTPUT_DIR", str(tmp_path))
    smoke = get_profile("smoke")
    recipe = training_set_recipe(sets, "raw", targets_per_image=2, seed=numerics_seed)
    model, info = registry.augmentation_estimator(smoke, "raw", sets["raw"]["image"], sets["raw"]["gaze"], recipe=recipe,
                                                  seed=numerics_seed, progress=False)
    assert info["trained_now"] and Path(info["path"]).exists()
    other = sets["other_persons"]
    down, up = other["gaze"][:, 0] < -np.radians(5), other["gaze"][:, 0] > np.radians(5)
    err_down = score_estimator(model, subset(other, down))["pitch_error_deg"]
    err_up = score_estimator(model, subset(other, up))["pitch_error_deg"]
    margin.below("pitch error looking up / looking down", err_up / err_down, 1.0)
    again, info = registry.augmentation_estimator(smoke, "raw", sets["raw"]["image"][:2], sets["raw"]["gaze"][:2],
                                                  recipe=recipe, seed=numerics_seed)
    assert not info["trained_now"], "a present checkpoint is loaded, not retrained"


def test_gan_ablations_remove_one_loss_each():
    smoke = get_profile("smoke")
    full = GazeGANConfig.for_profile(smoke, **ABLATIONS["full"])
    for name, removed in (("no_perceptual", "lambda_perceptual"), ("no_cycle", "lambda_cycle"), ("no_gaze", "lambda_gaze")):
        cfg = GazeGANConfig.for_profile(smoke, **ABLATIONS[name])
        assert getattr(cfg, removed) == 0 and getattr(full, removed) > 0
        others = [k for k in ("lambda_perceptual", "lambda_cycle", "lambda_gaze") if k != removed]
        assert all(getattr(cfg, k) == getattr(full, k) for k in others)
    with pytest.raises(ValueError, match="no_gaze"):
        registry.gaze_gan(smoke, "no_gan")
