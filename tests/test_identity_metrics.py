"""The identity measures (metrics/identity.py): skin-tone r, iris-colour r, LPIPS to the input."""
import math

import pytest
import torch

from eyegen_lib.science.data.synthetic import SyntheticEyes, SyntheticEyeSpec
from eyegen_lib.science.evaluation import build_redirection_set, gaze_grid
from eyegen_lib.science.metrics.identity import (
    IRIS,
    SKIN,
    border_mean,
    identity_scores,
    iris_colour_r,
    pearson_r,
    region_mean,
    skin_tone_r,
)


def painted_eyes(skin: torch.Tensor, iris: torch.Tensor, size: int = 16):
    """Flat patches: skin of grey level ``skin[i]`` with an iris square of colour ``iris[i]`` (RGB) in the middle."""
    n = len(skin)
    images = skin[:, None, None, None].expand(n, 3, size, size).clone()
    masks = torch.full((n, size, size), SKIN, dtype=torch.uint8)
    c = slice(size // 2 - 3, size // 2 + 3)
    masks[:, c, c] = IRIS
    images[:, :, c, c] = iris[:, :, None, None]
    return images.round().to(torch.uint8), masks


@pytest.fixture
def people():
    g = torch.Generator().manual_seed(0)
    skin = torch.rand(24, generator=g) * 180 + 40
    iris = torch.rand(24, 3, generator=g) * 150 + 20
    return painted_eyes(skin, iris)


def test_skin_tone_r_is_one_for_kept_skin_and_minus_one_for_swapped_skin(people):
    images, masks = people
    assert skin_tone_r(images, images, output_mask=masks, source_mask=masks) == pytest.approx(1.0)
    swapped = 255 - images  # dark skin light and light skin dark, as the authors' objective did here
    assert skin_tone_r(swapped, images, output_mask=masks, source_mask=masks) == pytest.approx(-1.0)
    # one tone for everyone: no correlation can be computed
    flat = torch.full_like(images, 128)
    assert math.isnan(skin_tone_r(flat, images, output_mask=masks, source_mask=masks))


def test_skin_is_read_on_the_pixels_both_frames_call_skin(people):
    images, masks = people
    # the output's iris moved over the source's skin: those pixels are left out, so a kept skin still scores 1
    moved = masks.roll(4, dims=-1)
    output = images.clone()
    output = torch.where((moved == IRIS)[:, None], torch.tensor(10, dtype=torch.uint8), output)
    assert skin_tone_r(output, images, output_mask=moved, source_mask=masks) == pytest.approx(1.0)
    # without masks the border ring is skin
    assert skin_tone_r(output, images, border_px=2) == pytest.approx(1.0)
    torch.testing.assert_close(border_mean(images, 2)[:, 0], images[:, 0, 0, 0].float())


def test_iris_colour_r_follows_the_iris_and_not_the_skin(people):
    images, masks = people
    assert iris_colour_r(images, images, output_mask=masks, source_mask=masks) == pytest.approx(1.0)
    g = torch.Generator().manual_seed(1)
    other_iris = painted_eyes(images[:, 0, 0, 0].float(), torch.rand(24, 3, generator=g) * 150 + 20)[0]
    assert abs(iris_colour_r(other_iris, images, output_mask=masks, source_mask=masks)) < 0.6
    torch.testing.assert_close(region_mean(images, masks, SKIN)[:, 0], images[:, 0, 0, 0].float())
    empty = torch.full_like(masks, SKIN)
    assert region_mean(images, empty, IRIS).isnan().all(), "an image without the class has no mean"


def test_bad_inputs_say_what_is_wrong(people):
    images, masks = people
    with pytest.raises(ValueError, match="both output and source"):
        skin_tone_r(images, images, output_mask=masks)
    with pytest.raises(ValueError, match=r"\(N, H, W\)"):
        region_mean(images, masks[:, :8], SKIN)
    with pytest.raises(ValueError, match="border_px"):
        border_mean(images, 8)
    assert math.isnan(pearson_r(torch.tensor([1.0, 2.0]), torch.tensor([2.0, 1.0]))), "fewer than 3 pairs: no r"


def test_identity_scores_on_the_rendered_protocol():
    eyes = SyntheticEyes(SyntheticEyeSpec("rgb", size=(64, 64), n_persons=6, images_per_person=1, noise=False,
                                          blink_probability=0.0))
    grid = gaze_grid()[[3, 10, 17]]  # three directions: 6 eyes × 3 × 2 = 36 pairs
    rset = build_redirection_set(eyes, range(6), grid)
    assert rset.source_mask.shape == rset.target_mask.shape == (36, 64, 64)
    unchanged = identity_scores(rset.source, rset)
    assert unchanged["skin_tone_r"] == pytest.approx(1.0) and unchanged["lpips_to_input"] == pytest.approx(0.0)
    real = identity_scores(rset.target, rset)
    assert real["skin_tone_r"] > 0.95 and real["iris_colour_r"] > 0.8, real
    assert 0 < real["lpips_to_input"] < 0.3, "moving the gaze changes a little of the picture"
    swapped = identity_scores(255 - rset.target, rset)
    assert swapped["skin_tone_r"] < -0.9 and swapped["iris_colour_r"] < -0.5, swapped
    with pytest.raises(ValueError, match="protocol's images"):
        identity_scores(rset.source[:3], rset)
