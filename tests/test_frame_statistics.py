"""Frame statistics (01's sim-to-real table): exact values on hand-drawn masks, NaN where a frame
lacks what a statistic needs, and per-image mIoU for finding the worst-segmented frames."""
import math

import pytest
import torch

from eyegen_lib.science.data.frame_statistics import OPENEDS_REFERENCE, frame_statistics, summarise
from eyegen_lib.science.metrics import per_image_miou


def _drawn_eye():
    """A 40 × 64 frame: the eye spans rows 20-29 and columns 16-47; iris columns 26-37 on every eye
    row, pupil columns 30-33 on rows 23-26."""
    mask = torch.zeros(1, 40, 64, dtype=torch.uint8)
    mask[0, 20:30, 16:48] = 1
    mask[0, 20:30, 26:38] = 2
    mask[0, 23:27, 30:34] = 3
    return mask


def test_statistics_of_a_drawn_eye_are_exact():
    mask = _drawn_eye()
    image = torch.tensor([120.0, 100.0, 70.0, 30.0])[mask.long()][:, None]
    s = {k: float(v[0]) for k, v in frame_statistics(mask, image).items()}
    assert s["share_pupil"] == pytest.approx(16 / 2560) and s["share_sclera"] == pytest.approx(200 / 2560)
    assert s["share_skin"] + s["share_sclera"] + s["share_iris"] + s["share_pupil"] == pytest.approx(1.0)
    assert s["eye_height"] == pytest.approx(10 / 40) and s["eye_width"] == pytest.approx(32 / 64)
    assert s["eye_centre_y"] == pytest.approx(25 / 40) and s["eye_centre_x"] == pytest.approx(32 / 64)
    assert s["pupil_to_iris"] == pytest.approx(4 / 12) and s["iris_to_eye"] == pytest.approx(12 / 32)
    assert (s["mean_skin"], s["mean_sclera"], s["mean_iris"], s["mean_pupil"]) == (120.0, 100.0, 70.0, 30.0)


def test_a_closed_eye_has_no_eye_statistics_and_summaries_skip_it():
    masks = torch.cat([_drawn_eye(), torch.zeros(1, 40, 64, dtype=torch.uint8)])
    s = frame_statistics(masks)
    assert math.isnan(float(s["eye_centre_y"][1])) and math.isnan(float(s["pupil_to_iris"][1]))
    assert float(s["share_skin"][1]) == 1.0
    assert summarise(s)["eye_height"]["mean"] == pytest.approx(0.25)
    with pytest.raises(ValueError, match="B, H, W"):
        frame_statistics(masks[0])


def test_every_reference_value_names_its_source():
    assert OPENEDS_REFERENCE and all(isinstance(v, float) and src for v, src in OPENEDS_REFERENCE.values())


def test_per_image_miou_ranks_the_worse_prediction_lower():
    target = torch.cat([_drawn_eye(), _drawn_eye()]).long()
    pred = target.clone()
    pred[1][pred[1] == 3] = 2          # the second frame loses its pupil
    scores = per_image_miou(pred, target)
    assert scores[0] == 1.0 and scores[1] < 0.8
    with pytest.raises(ValueError):
        per_image_miou(pred[0], target[0])
