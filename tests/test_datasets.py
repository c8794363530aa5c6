"""Torch datasets and person splits over the renderer, the readers and render_all caches."""
import numpy as np
import pytest
import torch

from eyegen_lib.core.gaze import angular_error_deg
from eyegen_lib.science.data.columbia import ColumbiaPatches, export_columbia
from eyegen_lib.science.data.datasets import indices_of_persons, render_all, split_persons
from eyegen_lib.science.data.errors import DatasetError
from eyegen_lib.science.data.openeds import OpenEDS, export_openeds
from eyegen_lib.science.data.pairs import GroupPairRows, PairRows, render_redirection_pairs
from eyegen_lib.science.data.synthetic import SyntheticEyes, SyntheticEyeSpec

NIR_SIZE = (40, 64)


@pytest.fixture(scope="module")
def nir():
    # 6 images per person = 3 right + 3 left eyes
    return SyntheticEyes(SyntheticEyeSpec("nir", NIR_SIZE, n_persons=3, images_per_person=6, seed=3))


@pytest.fixture(scope="module")
def nir_cache(nir):
    return render_all(nir, batch_size=8, progress=False)


@pytest.fixture(scope="module")
def rgb():
    return SyntheticEyes(SyntheticEyeSpec("rgb", (64, 64), n_persons=2, images_per_person=2, seed=4, blink_probability=0.0))


@pytest.fixture(scope="module")
def columbia(rgb, tmp_path_factory):
    root = tmp_path_factory.mktemp("columbia") / "patches"
    export_columbia(rgb, root, lossless=True, progress=False)
    return ColumbiaPatches(root)


def in_unit_range(x):
    return x.dtype == torch.float32 and float(x.min()) >= -1.0 and float(x.max()) <= 1.0


# -- splits ------------------------------------------------------------------------------------------
def test_split_persons_disjoint_complete_deterministic():
    persons = [p for p in range(20) for _ in range(3)]  # per-sample lists work
    a = split_persons(persons, seed=0)
    assert list(a) == ["train", "validation", "test"]
    assert [len(a[k]) for k in a] == [14, 3, 3]
    assert sorted(sum(a.values(), [])) == list(range(20))
    assert a == split_persons(persons, seed=0) and a != split_persons(persons, seed=1)
    small = split_persons(range(3))
    assert all(len(v) == 1 for v in small.values())  # every split gets someone when possible
    two = split_persons(range(10), fractions=(0.8, 0.2))
    assert list(two) == ["train", "test"] and len(two["test"]) == 2


def test_indices_of_persons(nir):
    split = split_persons(range(3), seed=0)
    idx = {k: indices_of_persons(nir, v) for k, v in split.items()}
    assert sorted(sum(idx.values(), [])) == list(range(len(nir)))
    assert all(nir.person_of(i) in split["train"] for i in idx["train"])


# -- render_all --------------------------------------------------------------------------------------
def test_render_all_matches_direct_rendering(nir, nir_cache):
    assert nir_cache["image"].shape == (18, 1, *NIR_SIZE) and nir_cache["image"].dtype == torch.uint8
    assert nir_cache["mask"].shape == (18, *NIR_SIZE) and nir_cache["landmarks"].shape == (18, 7, 2)
    assert nir_cache["gaze"].shape == (18, 2) and nir_cache["person"].tolist() == [i // 6 for i in range(18)]
    assert nir_cache["side"][:2] == ["R", "L"] and nir_cache["index"].tolist() == list(range(18))
    s = nir[7]
    assert torch.equal(nir_cache["image"][7], s["image"]) and torch.equal(nir_cache["mask"][7], s["mask"])


# -- segmentation ------------------------------------------------------------------------------------
def test_mask_rows_from_renderer_cache_and_reader_and_a_clear_error_without_masks(nir, nir_cache, tmp_path):
    """The segmenter's training rows (what the old SegmentationPairs gave): the same pixels and labels
    from the renderer, its cache and a reader; a source without masks is refused by name."""
    from eyegen_lib.science.data.rows import RenderedRows, rows_of

    for source in (nir, nir_cache):
        for in_memory in (True, False):
            got = rows_of(source, [0, 5, 9], ("image", "mask"), in_memory=in_memory, progress=False).fetch([1])
            assert got["image"].shape == (1, 1, *NIR_SIZE) and got["image"].dtype == torch.uint8
            assert torch.equal(got["mask"][0].long(), nir[5]["mask"].long()) and int(got["mask"].max()) <= 3
            assert torch.equal(got["image"][0], nir[5]["image"])
    export_openeds(nir, tmp_path / "o", progress=False)
    got = rows_of(OpenEDS(tmp_path / "o", "train", "semantic"), None, ("image", "mask"), in_memory=False).fetch([0])
    assert got["image"].shape == (1, 1, *NIR_SIZE) and int(got["mask"].max()) <= 3
    with pytest.raises(DatasetError, match="have no mask"):
        RenderedRows(OpenEDS(tmp_path / "o", "train", "generative"), [0, 1], ("image", "mask"))


def test_rendered_redirection_pairs_change_only_the_gaze(rgb):
    # RGB: its renders are batch-invariant, so a target can be compared exactly with a re-render.
    data = render_redirection_pairs(rgb, [0, 3], pairs_per_image=2, seed=0, progress=False)
    assert len(data["source"]) == 4 and data["landmarks"].shape == (4, 7, 2)
    for k in range(4):
        a = int(data["index"][k])
        assert data["source"][k].shape == data["target"][k].shape == (3, 64, 64) and data["person"][k] == rgb.person_of(a)
        assert torch.equal(data["source_gaze"][k], rgb[a]["gaze"])
        # the target is the same eye re-rendered at the target gaze: only the gaze changed
        again = rgb.render([a], gaze=data["target_gaze"][k][None])["image"][0]
        assert torch.equal(data["target"][k], again) and not torch.equal(data["source"][k], data["target"][k])
    streamed = PairRows(rgb, [0, 3], pairs_per_image=2, seed=0)   # rendered when fetched: the same pairs
    assert torch.equal(streamed.fetch([3])["target"][0], data["target"][3])


def test_rendered_redirection_pairs_of_nir_frames(nir):
    data = render_redirection_pairs(nir, [7], seed=1, progress=False)
    assert data["source"].shape == data["target"].shape == (1, 1, *NIR_SIZE) and int(data["person"][0]) == 1


def test_redirection_pairs_from_columbia_groups(columbia):
    pairs = GroupPairRows(columbia, range(len(columbia)))
    assert len(pairs) == 4 * 21 * 21  # 2 subjects × 2 eyes, every ordered pair incl. self-pairs
    meta = pairs.meta()
    for k in (0, 100, 500, 1700):
        a, b = int(pairs.index[k]), int(pairs.target_index[k])
        assert columbia.group_of(a) == columbia.group_of(b) and int(meta["person"][k]) == columbia.person_of(a)
        assert torch.equal(meta["target_gaze"][k], columbia[b]["gaze"])
        assert torch.equal(pairs.fetch([k])["target"][0], render_all(columbia, [b], progress=False)["image"][0])
    angles = angular_error_deg(meta["source_gaze"].double(), meta["target_gaze"].double())
    assert float(angles.max()) == pytest.approx(np.degrees(np.arccos(np.cos(np.radians(20)) * np.cos(np.radians(30)))), abs=0.5)
    assert len(GroupPairRows(columbia, range(len(columbia)), include_self=False)) == 4 * 21 * 20
