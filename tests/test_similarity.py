import pytest
import torch

from eyegen_lib.science.similarity import OPENEDS_CLASS_MEANS, colour_mask, mask_distances, rank_by_mask


def test_colour_mask_uses_class_means():
    m = torch.tensor([[0, 1], [2, 3]])
    torch.testing.assert_close(colour_mask(m), torch.tensor(OPENEDS_CLASS_MEANS, dtype=torch.float32).reshape(2, 2))
    with pytest.raises(ValueError, match="0..3"):
        colour_mask(torch.tensor([[4]]))
    with pytest.raises(TypeError, match="integers"):
        colour_mask(torch.zeros(2, 2))


def test_distances_match_direct_computation_and_rank_self_first():
    g = torch.Generator().manual_seed(0)
    masks = torch.randint(0, 4, (10, 8, 12), generator=g)
    d = mask_distances(masks[:3], masks)
    direct = (colour_mask(masks[:3])[:, None] - colour_mask(masks)[None]).pow(2).mean(dim=(2, 3))
    torch.testing.assert_close(d, direct, rtol=1e-4, atol=1e-2)
    idx, dist = rank_by_mask(masks[:3], masks, top_n=2)
    assert idx[:, 0].tolist() == [0, 1, 2] and torch.all(dist[:, 0] < 1e-2)
    ok = torch.ones(3, 10, dtype=torch.bool)
    ok[torch.arange(3), torch.arange(3)] = False  # exclude each target itself
    idx, _ = rank_by_mask(masks[:3], masks, top_n=1, candidate_ok=ok)
    assert all(i != j for i, j in zip(idx[:, 0].tolist(), range(3)))


def test_colouring_prefers_near_classes():
    # target pupil region: a candidate labelling it iris is closer than one labelling it skin
    target = torch.full((1, 4, 4), 3)
    as_iris, as_skin = torch.full((1, 4, 4), 2), torch.full((1, 4, 4), 0)
    d = mask_distances(target, torch.cat([as_iris, as_skin]))
    assert d[0, 0] < d[0, 1]
