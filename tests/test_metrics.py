"""Each metric against values computed by hand."""
import math

import numpy as np
import pytest
import torch

from eyegen_lib.science.metrics import (
    blurriness,
    challenge_score,
    iou_per_class,
    leaderboard_score,
    mean_iou,
    mse,
    psnr,
    ssim,
)


def test_challenge_score_constant_difference_at_native_size():
    # sqrt(400·640·10²) / (400·640) = 10 / sqrt(256000)
    pred = torch.zeros(2, 1, 400, 640)
    target = torch.full((2, 1, 400, 640), 10.0)
    expected = 10 / math.sqrt(400 * 640)
    torch.testing.assert_close(challenge_score(pred, target), torch.full((2,), expected, dtype=torch.float64))


def test_challenge_score_at_other_sizes_is_upsampled_first():
    # a constant difference survives bilinear upsampling: same score from 40×64 as from 400×640
    small = challenge_score(torch.zeros(1, 40, 64), torch.full((1, 40, 64), 10.0))
    assert small.item() == pytest.approx(10 / math.sqrt(400 * 640))
    # a single differing pixel at 40×64 spreads over ~10×10 native pixels by bilinear upsampling:
    # compute by hand with numpy's separable linear interpolation weights
    p = torch.zeros(1, 1, 40, 64)
    p[0, 0, 20, 32] = 100.0
    got = challenge_score(p, torch.zeros_like(p)).item()

    def weights(n_in, n_out, i):  # align_corners=False bilinear weight of input pixel i at each output pixel
        src = (np.arange(n_out) + 0.5) * n_in / n_out - 0.5
        src = np.clip(src, 0, n_in - 1)
        return np.clip(1 - np.abs(src - i), 0, None)

    up = 100.0 * np.outer(weights(40, 400, 20), weights(64, 640, 32))
    assert got == pytest.approx(math.sqrt((up ** 2).sum()) / (400 * 640), rel=1e-6)


def test_challenge_score_value_ranges_and_leaderboard():
    a, b = torch.zeros(3, 1, 40, 64), torch.ones(3, 1, 40, 64)
    from_unit = challenge_score(a, b, value_range=(0, 1))
    from_signed = challenge_score(a * 2 - 1, b * 2 - 1, value_range=(-1, 1))
    torch.testing.assert_close(from_unit, from_signed)
    assert from_unit[0].item() == pytest.approx(255 / math.sqrt(400 * 640))
    assert leaderboard_score(from_unit) == pytest.approx(1471 * 255 / math.sqrt(400 * 640))
    with pytest.raises(ValueError, match="grey"):
        challenge_score(torch.zeros(1, 3, 8, 8), torch.zeros(1, 3, 8, 8))


def test_mse_psnr_ssim_by_hand():
    a = torch.zeros(1, 1, 4, 4)
    b = a.clone()
    b[0, 0, 0, 0] = 16.0  # MSE = 256 / 16 = 16 on 0..255
    assert mse(a, b).item() == pytest.approx(16.0)
    assert mse(a, b, scale="1").item() == pytest.approx(16.0 / 255 ** 2)
    assert psnr(a, b).item() == pytest.approx(10 * math.log10(255 ** 2 / 16))
    x = torch.rand(2, 3, 32, 32) * 255
    assert torch.allclose(ssim(x, x), torch.ones(2, dtype=torch.float64))
    # flat images: variances and covariance vanish, SSIM = (2ab + C1) / (a² + b² + C1)
    c1 = (0.01 * 255) ** 2
    flat = ssim(torch.full((1, 1, 16, 16), 100.0), torch.full((1, 1, 16, 16), 50.0)).item()
    assert flat == pytest.approx((2 * 100 * 50 + c1) / (100 ** 2 + 50 ** 2 + c1))
    smooth = torch.nn.functional.interpolate(torch.rand(2, 1, 8, 8) * 255, size=32, mode="bilinear")
    noisy = [ssim(smooth, smooth + torch.randn_like(smooth) * s).mean().item() for s in (5, 20, 60)]
    assert noisy[0] > noisy[1] > noisy[2]


def test_blurriness_by_hand_and_ordering():
    # a vertical step edge: the valid Laplacian of a 0/255 step is ±255 on the two columns beside it
    img = torch.zeros(1, 1, 5, 6)
    img[..., 3:] = 255.0
    lap = np.zeros((3, 4))
    lap[:, 1], lap[:, 2] = 255.0, -255.0  # columns 2 and 3 of the 6 minus the 1-px valid border
    assert blurriness(img).item() == pytest.approx(1 / lap.var())
    sharp = torch.rand(4, 3, 32, 32)
    blurred = torch.nn.functional.avg_pool2d(sharp, 3, stride=1, padding=1)
    assert torch.all(blurriness(blurred, value_range=(0, 1)) > blurriness(sharp, value_range=(0, 1)))
    assert torch.isinf(blurriness(torch.ones(1, 1, 8, 8)))[0]


def test_iou_by_hand():
    target = torch.tensor([[0, 0, 1, 1], [2, 2, 3, 3]])
    pred = torch.tensor([[0, 1, 1, 1], [2, 2, 3, 0]])
    iou = iou_per_class(pred, target)
    # class 0: inter 1, union 3; class 1: inter 2, union 3; class 2: 2/2; class 3: 1/2
    torch.testing.assert_close(iou, torch.tensor([1 / 3, 2 / 3, 1.0, 0.5], dtype=torch.float64))
    assert mean_iou(pred, target) == pytest.approx((1 / 3 + 2 / 3 + 1 + 0.5) / 4)
    with pytest.raises(ValueError, match="outside 0..3"):
        mean_iou(pred + 1, target)
