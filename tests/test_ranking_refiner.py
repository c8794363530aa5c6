"""Seg2Eye §4.1–4.2: mode split, similarity ranking, the refiner and its loss."""
import pytest
import torch

from eyegen_lib import CheckpointError, load_checkpoint, save_checkpoint
from eyegen_lib.science.losses import challenge_loss
from eyegen_lib.science.metrics import challenge_score
from eyegen_lib.science.models.deeplab import DeepLabConfig
from eyegen_lib.science.models.refiner import Refiner, RefinerConfig, refine, train_refiner
from eyegen_lib.science.ranking import (
    candidates_ok,
    kmeans,
    mode_accuracy,
    random_references,
    rank_pool,
    ranking_quality,
    split_modes,
)


def net(**kw):
    return DeepLabConfig(in_channels=3, out_channels=1, block="basic", layers=(1, 1, 1, 1), widths=(8, 8, 16, 16),
                         stem=8, atrous_rates=(1, 2, 3), aspp_channels=16, low_level_channels=8, decoder_channels=16,
                         input_size=(24, 40), **kw)


def disc_masks(n, seed=0, size=(24, 40)):
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.arange(size[0]), torch.arange(size[1]), indexing="ij")
    masks = torch.zeros(n, *size, dtype=torch.long)
    grid = [(cy, cx) for cy in (7, 12, 17) for cx in (9, 15, 21, 27, 31)]  # distinct eyes, 5+ px apart
    order = torch.randperm(len(grid), generator=g).tolist()
    for i in range(n):
        cy, cx = grid[order[i % len(grid)]]
        r = ((yy - cy) ** 2 + (xx - cx) ** 2).float().sqrt()
        masks[i][r < 9] = 1
        masks[i][r < 5] = 2
        masks[i][r < 2] = 3
    return masks


def test_challenge_loss_equals_the_score_at_openeds_size():
    g = torch.Generator().manual_seed(0)
    p, t = torch.rand(2, 1, 400, 640, generator=g) * 2 - 1, torch.rand(2, 1, 400, 640, generator=g) * 2 - 1
    torch.testing.assert_close(challenge_loss(p, t).double(), challenge_score(p, t, value_range=(-1, 1)).mean(),
                               rtol=1e-4, atol=1e-7)
    with pytest.raises(ValueError, match="one shape"):
        challenge_loss(p, t[:, :, :10])


def test_kmeans_finds_mirrored_modes():
    g = torch.Generator().manual_seed(0)
    base = torch.rand(20, 1, 20, 32, generator=g) * 40
    ramp = torch.linspace(0, 120, 32).expand(20, 1, 20, 32)
    right = base + ramp
    left = (base + ramp).flip(-1)  # the other eye: mirrored shading
    modes = split_modes(torch.cat([right, left]))
    sides = ["R"] * 20 + ["L"] * 20
    assert mode_accuracy(modes, sides)["accuracy"] == 1.0
    labels, centroids = kmeans(torch.randn(30, 3, generator=g), 3)
    assert labels.shape == (30,) and centroids.shape == (3, 3)


def test_ranking_with_true_masks_puts_near_duplicates_first():
    masks = disc_masks(12)
    pool = torch.cat([masks, masks.roll(1, dims=-1)])  # each target has itself and a 1-px-shifted duplicate
    index = torch.arange(24)
    ok = candidates_ok(None, None, target_index=torch.arange(12), pool_index=index)
    idx, dist = rank_pool(masks, pool, 3, ok=ok)
    assert idx[:, 0].tolist() == list(range(12, 24)), "the near-duplicate comes first once the target itself is excluded"
    assert torch.all(dist[:, 0] <= dist[:, 1])
    modes = torch.tensor([0, 1] * 12)
    ok = candidates_ok(torch.tensor([0, 1] * 6), modes, target_index=torch.arange(12), pool_index=index)
    idx, _ = rank_pool(masks, pool, 4, ok=ok)
    assert all(modes[idx[i]].eq(i % 2).all() for i in range(12)), "references come from the target's mode"
    ranked_quality = ranking_quality(masks, pool, idx[:, :1]).mean()
    random_quality = ranking_quality(masks, pool, random_references(ok, 4)).mean()
    assert ranked_quality < random_quality


@pytest.mark.numerics
def test_refiner_starts_as_copy_and_learns(numerics_seed, margin):
    torch.manual_seed(numerics_seed)
    masks = disc_masks(16)
    images = (torch.tensor([200.0, 150.0, 90.0, 20.0])[masks][:, None]).round().byte()
    pool_images = (images.float() * 0.7 + 20).round().byte()  # the "unlabelled" images: another exposure
    ranked = torch.stack([torch.tensor([i, (i + 1) % 16]) for i in range(16)])
    config = RefinerConfig(net=net(), top_n=2, steps=40, batch_size=8, lr=3e-3)
    fresh = Refiner(config).eval()
    out, res = refine(fresh, masks, pool_images, masks)
    assert torch.equal(out, pool_images) and res.abs().max() == 0, "a fresh refiner copies its reference"
    model, history = train_refiner(masks, images, ranked, pool_images, masks, config, seed=numerics_seed, progress=False)
    margin.below("challenge loss last / first", history[-1]["challenge_loss"] / history[0]["challenge_loss"], 0.7)
    out, _ = refine(model, masks, pool_images, masks)
    assert out.shape == images.shape and out.dtype == torch.uint8
    margin.below("score / score of the copied reference", challenge_score(out.float(), images.float()).mean()
                 / challenge_score(pool_images.float(), images.float()).mean(), 1.0)
    with pytest.raises(ValueError, match="one size"):
        model(masks[:1, :10], images[:1].float(), masks[:1])
    with pytest.raises(ValueError, match="0..3"):
        model(masks[:1] + 4, images[:1].float(), masks[:1])


def test_refiner_checkpoint_refuses_a_segmenter(tmp_path):
    config = RefinerConfig(net=net(), top_n=2, steps=1)
    path = save_checkpoint(tmp_path / "r.pt", kind="refiner", model=Refiner(config), config=config)
    load_checkpoint(path, kind="refiner", model=Refiner(config), config=config)
    with pytest.raises(CheckpointError, match="not a 'deeplab_segmenter'"):
        load_checkpoint(path, kind="deeplab_segmenter")
    with pytest.raises(ValueError, match="3 input channels"):
        Refiner(RefinerConfig(net=DeepLabConfig(in_channels=1, out_channels=1)))
