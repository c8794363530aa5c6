"""Protocols of eyegen_lib.science.evaluation: He et al.'s redirection grid, Table 1 corruptions, tables."""
import numpy as np
import pandas as pd
import pytest
import torch

from eyegen_lib.science import evaluation as ev
from eyegen_lib.science.data import SyntheticEyes, SyntheticEyeSpec


def test_gaze_grid_is_columbia():
    grid = torch.rad2deg(ev.gaze_grid())
    assert grid.shape == (21, 2)
    assert sorted(set(grid[:, 0].round().int().tolist())) == [-10, 0, 10]
    assert sorted(set(grid[:, 1].round().int().tolist())) == [-15, -10, -5, 0, 5, 10, 15]


@pytest.fixture(scope="module")
def rset():
    source = SyntheticEyes(SyntheticEyeSpec("rgb", size=(64, 64), n_persons=2, images_per_person=4, seed=3))
    return ev.build_redirection_set(source, [0, 4])


def test_redirection_set_pairs_every_direction_with_every_other(rset):
    assert len(rset) == 2 * 21 * 20
    assert torch.all(rset.angle_deg > 4.9) and torch.all(rset.angle_deg < 36)  # He et al.: 4.9°–35.9°
    assert (rset.source_gaze != rset.target_gaze).any(dim=1).all()
    # the target of (i → j) is the source of (j → k): same pixels, only gaze differs between directions
    first = rset.group == 0
    src, tgt = rset.source[first], rset.target[first]
    sg, tg = rset.source_gaze[first], rset.target_gaze[first]
    j = 0
    match = [k for k in range(len(sg)) if torch.equal(sg[k], tg[j])][0]
    assert torch.equal(src[match], tgt[j])
    assert set(rset.person.tolist()) == {0, 1}


def test_same_yaw_keeps_only_vertical_redirections(rset):
    vertical = rset.same_yaw()
    assert 0 < len(vertical) < len(rset)
    assert torch.equal(vertical.source_gaze[:, 1], vertical.target_gaze[:, 1])
    assert (vertical.source_gaze[:, 0] != vertical.target_gaze[:, 0]).all()
    # every field is cut alike: each kept pair is a pair of the full set
    i = 5
    full = [k for k in range(len(rset)) if torch.equal(rset.source_gaze[k], vertical.source_gaze[i])
            and torch.equal(rset.target_gaze[k], vertical.target_gaze[i]) and rset.group[k] == vertical.group[i]]
    assert len(full) == 1 and torch.equal(rset.target[full[0]], vertical.target[i])
    assert torch.equal(rset.landmarks[full[0]], vertical.landmarks[i])
    with pytest.raises(ValueError, match="boolean mask"):
        rset.subset(torch.ones(3, dtype=torch.bool))


def test_evaluate_redirection_and_binning(rset):
    df = ev.evaluate_redirection(rset.target, rset, method="oracle")
    assert np.allclose(df["lpips"], 0, atol=1e-6)
    copy = ev.evaluate_redirection(rset.source, rset, method="copy")
    binned = ev.by_correction_angle(pd.concat([df, copy]))
    copy_bins = binned[binned.method == "copy"]["lpips"].to_numpy()
    assert copy_bins[-1] > copy_bins[0] > 0  # copying gets worse as the correction angle grows
    with pytest.raises(ValueError, match="shape"):
        ev.evaluate_redirection(rset.source[:3], rset)


def test_table1_corruptions_by_construction():
    g = torch.Generator().manual_seed(0)
    img = torch.nn.functional.interpolate(torch.rand(4, 3, 16, 16, generator=g) * 200 + 20, size=64, mode="bilinear")
    img = img.round().byte()
    c = ev.table1_corruptions(img, noise_sigma=10.0, shift_px=2)
    noise_mse = (c["noisy"] - img.float()).pow(2).mean().item()
    assert noise_mse == pytest.approx(100.0, rel=0.05)  # σ² with almost no clamping
    assert torch.equal(c["shifted"][..., 2:, 2:], img.float()[..., :-2, :-2])
    assert c["blurred"].shape == img.shape and not torch.equal(c["blurred"], img.float())
