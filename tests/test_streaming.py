"""Streamed data: row stores that render on demand give what rendering a split into memory gives,
DataLoader workers build the same batches as the training process, and the registry trains every
model from streamed data at a profile that streams (``paper``, ``gpu``: here a smoke-sized one)."""
import platform
from dataclasses import replace

import pytest
import torch

from eyegen_lib import get_profile
from eyegen_lib.runs import registry
from eyegen_lib.science.batches import EpochBatches
from eyegen_lib.science.data.datasets import render_all
from eyegen_lib.science.data.pairs import PairRows, render_redirection_pairs
from eyegen_lib.science.data.rows import MaskStore, RenderedRows, TensorRows, ZipRows, gaze_labels, rows_of
from eyegen_lib.science.data.synthetic import SyntheticEyes, SyntheticEyeSpec
from eyegen_lib.science.losses import challenge_loss
from eyegen_lib.science.models.deeplab import DeepLabV3Plus, SegmenterConfig
from eyegen_lib.science.models.deepwarp import DeepWarpConfig, PairBatches
from eyegen_lib.science.models.refiner import RefinerBatches, RefinerConfig
from eyegen_lib.science.models.seg2eye import StyleBatches
from eyegen_lib.science.protocols import person_side_groups, rank_targets, ranking_setup


def nir(n_persons=3, per_person=8, size=(40, 64)):
    return SyntheticEyes(SyntheticEyeSpec("nir", size=size, n_persons=n_persons, images_per_person=per_person))


def rgb(size=(41, 51)):
    return SyntheticEyes(SyntheticEyeSpec("rgb", size=size, n_persons=3, images_per_person=6))


def test_rendered_rows_give_what_a_rendered_split_holds():
    source, indices = nir(), [3, 17, 4, 20, 9]
    cache = render_all(source, indices, progress=False)
    rows = RenderedRows(source, indices, ("image", "mask", "gaze"), chunk=2)
    got = rows.fetch([4, 0, 2])
    for k in ("image", "mask", "gaze"):
        assert torch.equal(got[k], cache[k][[4, 0, 2]]), k
    assert torch.equal(gaze_labels(rows), cache["gaze"]), "gaze labels come from the renderer's state, no image drawn"
    assert torch.equal(rows_of(source, indices, ("image", "mask"), in_memory=True, progress=False).fetch([1])["mask"],
                       cache["mask"][[1]])
    renamed = RenderedRows(source, indices, {"image": "image", "pseudo": "mask"})
    assert set(renamed.fetch([0])) == {"image", "pseudo"}
    with pytest.raises(IndexError, match="out of range"):
        RenderedRows(source, [len(source)])


def test_mask_store_round_trips_compressed_and_zips_with_images():
    source = nir(size=(400, 640), n_persons=1, per_person=4)
    out = source.render([0, 1, 2, 3])
    store = MaskStore.of(out["mask"], "pseudo")
    assert torch.equal(store.fetch([2, 0])["pseudo"], out["mask"][[2, 0]])
    assert store.nbytes < out["mask"].numel() / 20, "a 400×640 four-class mask compresses > 20×"
    zipped = ZipRows(RenderedRows(source, range(4), ("image",)), store)
    got = zipped.fetch([3])
    # at 400×640 a batch of one renders a few pixels ±1 grey level off a batch of four (kernel choice)
    assert (got["image"].int() - out["image"][[3]].int()).abs().max() <= 1
    assert torch.equal(got["pseudo"], out["mask"][[3]])
    with pytest.raises(ValueError, match="one length"):
        ZipRows(store, TensorRows({"x": torch.zeros(3)}))
    with pytest.raises(ValueError, match="0..255"):
        store.extend(torch.full((1, 400, 640), 300))


@pytest.mark.parametrize("arguments", [{}, {"border": 3, "misalign_px": 2, "pairs_per_image": 2},
                                       {"vertical_only": True}])
def test_streamed_pairs_are_the_rendered_pairs(arguments):
    source, indices = rgb(), [0, 5, 7, 12]
    rendered = render_redirection_pairs(source, indices, seed=3, batch_size=3, progress=False, **arguments)
    rows = PairRows(source, indices, seed=3, chunk=2, **arguments)  # other batches than the rendered set's
    assert len(rows) == len(rendered["source"]) and rows.recipe == rendered["recipe"]
    got = rows.fetch(range(len(rows)))
    for k in ("source", "target", "landmarks", "source_gaze", "target_gaze", "shift"):
        assert torch.equal(got[k], rendered[k]), k
    last = [len(rows) - 1, 1]
    assert torch.equal(rows.fetch(last)["target"], rows.fetch(last)["target"]), "a batch renders alike every time"
    assert torch.allclose(rows.tilt_deg(), rendered["tilt_deg"]), "the landmark-only pass gives the rendered tilt"
    if arguments.get("vertical_only"):
        assert torch.equal(rows.target_gaze[:, 1], rows.source_gaze[:, 1])


def _same_batches(a, b):
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same_batches(a[k], b[k]) for k in a)
    if isinstance(a, (tuple, list)):
        return len(a) == len(b) and all(_same_batches(x, y) for x, y in zip(a, b))
    return torch.equal(a, b)


def test_dataloader_workers_build_the_batches_the_training_process_would():
    source = nir()
    rows = RenderedRows(source, range(len(source)), ("image", "mask"))
    pairs = PairRows(rgb(), range(12), pairs_per_image=2, seed=1)
    sources = [EpochBatches(rows, 4, seed=2),
               StyleBatches(rows, person_side_groups(source, range(len(source))), k_style=2, batch_size=2, seed=2),
               PairBatches(pairs, DeepWarpConfig(), batch_size=5, seed=2)]
    for batches in sources:
        here = list(batches.iterate(3, 7))
        batches.workers = 2
        there = list(batches.iterate(3, 7))
        assert len(there) == 4 and all(_same_batches(a, b) for a, b in zip(here, there)), type(batches).__name__


def test_streamed_ranking_ranks_like_the_in_memory_one():
    """At full ranking resolution, the streamed setup (one pass, compressed pseudo-labels,
    half-precision features) ranks as the in-memory one does."""
    smoke = get_profile("smoke")
    streamed = replace(smoke, stream_data=True, ranking_size=None)
    torch.manual_seed(0)
    seg = DeepLabV3Plus(SegmenterConfig.for_profile(smoke).net).eval()
    memory, stream = ranking_setup(smoke, seg, progress=False), ranking_setup(streamed, seg, progress=False)
    assert torch.equal(memory["pool"]["mode"], stream["pool"]["mode"])
    assert torch.equal(memory["test"]["mode_from_mask"], stream["test"]["mode_from_mask"])
    a, b = rank_targets(memory, memory["test"], 4), rank_targets(stream, stream["test"], 4)
    assert (a[:, 0] == b[:, 0]).float().mean() >= 0.95
    assert torch.equal(stream["pool"]["pseudo"].fetch([5])["pseudo"].long(), memory["pool"]["pseudo"][[5]])
    coarse = ranking_setup(replace(streamed, ranking_size=(10, 16)), seg, progress=False)
    assert coarse["pool"]["features"].shape[1] == 160
    assert (rank_targets(coarse, coarse["test"], 4)[:, 0] == a[:, 0]).float().mean() >= 0.5, "a low-pass ranking agrees often"
    with pytest.raises(ValueError, match="ranking size"):
        rank_targets(coarse, stream["test"], 4)


@pytest.fixture
def streaming_profile(tmp_path, monkeypatch):
    """A smoke-sized profile that streams its data with two DataLoader workers, as ``paper`` does."""
    monkeypatch.setenv("EYEGEN_OUTPUT_DIR", str(tmp_path))
    smoke = get_profile("smoke")
    return replace(smoke, name="smoke_streamed", stream_data=True, num_workers=2, ranking_size=(20, 32))


def _refiner_and_copy_losses(refiner, profile, seg):
    setup = ranking_setup(profile, seg, progress=False)
    ranked = rank_targets(setup, setup["test"], RefinerConfig.for_profile(profile).top_n)
    batches = RefinerBatches(setup["test"]["rows"], ranked, setup["pool"]["rows"], 16, seed=5)
    refined = copied = 0.0
    with torch.no_grad():
        for step in range(8):
            mask, target, reference, reference_mask = batches.assemble(batches.raw(step))
            refined += challenge_loss(refiner(mask, reference, reference_mask)[0], target).item()
            copied += challenge_loss(reference, target).item()
    return refined / 8, copied / 8


def test_the_registry_trains_every_family_from_streamed_data(streaming_profile):
    profile = streaming_profile
    seg, info = registry.segmenter(profile, progress=False)
    assert info["trained_now"] and 0 <= info["metrics"]["miou"] <= 1
    refiner, info = registry.refiner(profile, progress=False)
    assert len(info["history"]["challenge_loss"]) == RefinerConfig.for_profile(profile).steps
    # The refiner starts as "copy the reference"; per-step losses are too noisy to compare (each batch
    # has other targets and exposures), so score it and the copy on the same eight test batches.
    refined, copied = _refiner_and_copy_losses(refiner, profile, seg)
    assert refined < 0.98 * copied, (refined, copied)
    _, info = registry.gaze_estimator(profile, progress=False)
    assert info["metrics"]["test_error_deg"] < info["metrics"]["mean_predictor_error_deg"]
    _, info = registry.deepwarp(profile, "cfw_lcm", progress=False)
    assert len(info["history"]["loss"]) > 0
    _, info = registry.seg2eye(profile, "full", progress=False)
    assert info["trained_now"]
    _, info = registry.gaze_gan(profile, "full", progress=False)
    assert info["trained_now"]


def test_lash_textures_keep_only_the_levels_in_use_and_rebuild_the_others_exactly():
    from eyegen_lib.science.data import eye_model as em
    from eyegen_lib.science.data.texture_cache import ByteLRU, MipPyramid

    base = torch.rand(3, 64, 128, generator=torch.Generator().manual_seed(0))
    full = em.mip_levels(base, 5)
    pyramid = MipPyramid(em.mip_levels(base, 5), lambda: base.clone())
    assert len(pyramid) == len(full) and torch.equal(pyramid[2], full[2])
    assert pyramid.kept_levels == [2, 3, 4], "the first lookup drops the finer levels and keeps the coarser"
    assert torch.equal(pyramid[4], full[4]) and pyramid.kept_levels == [2, 3, 4], "a coarser level is no rebuild"
    assert torch.equal(pyramid[0], full[0]) and pyramid.kept_levels == [0, 1, 2, 3, 4], "a finer level is rebuilt alike"
    # through the renderer: a person's textures first sampled at one level, then at a finer one
    cache = ByteLRU(1 << 30)
    warm, cold = rgb(size=(64, 64)), rgb(size=(64, 64))
    warm._textures.cache = cache
    warm.render(list(range(12)))
    assert torch.equal(warm.render([7])["image"], cold.render([7])["image"])
    kept = {lv for tx in cache.values() for lv in tx["upper"].kept_levels}
    big = SyntheticEyes(SyntheticEyeSpec("rgb", size=(160, 160), n_persons=3, images_per_person=6))
    big._textures.cache = cache  # the same persons' cached textures, now sampled at a finer level
    fresh = SyntheticEyes(SyntheticEyeSpec("rgb", size=(160, 160), n_persons=3, images_per_person=6))
    fresh._textures.cache = ByteLRU(1 << 30)
    assert torch.equal(big.render([7, 2])["image"], fresh.render([7, 2])["image"])
    assert {lv for tx in cache.values() for lv in tx["upper"].kept_levels} > kept, "a finer level was rebuilt"


def test_the_render_cache_holds_its_byte_bound_and_an_evicted_person_renders_alike():
    from eyegen_lib.science.data.texture_cache import ByteLRU

    spec = SyntheticEyeSpec("nir", size=(80, 128), n_persons=6, images_per_person=4)
    roomy = SyntheticEyes(spec)
    roomy._textures.cache = ByteLRU(1 << 30)
    idx = list(range(24))
    want = roomy.render(idx)["image"]
    roomy.render([0])          # measures the entries again, now that their pyramids kept only what was sampled
    one_person = roomy._textures.cache.total_bytes // 6
    tight = SyntheticEyes(spec)
    tight._textures.cache = ByteLRU(2 * one_person)     # room for about two persons' textures and frames
    for _ in range(2):                                  # the second pass rebuilds what the first evicted
        assert torch.equal(torch.cat([tight.render([i])["image"] for i in idx]), want)
        assert tight._textures.cache.total_bytes <= 2 * one_person
    assert tight._textures.cache.misses >= 2 * roomy._textures.cache.misses - 6, "the tight cache evicted and rebuilt"
    with pytest.raises(ValueError, match="max_bytes"):
        ByteLRU(-1)


def test_a_bad_render_cache_size_is_one_clear_error(monkeypatch):
    from eyegen_lib.science.data import texture_cache

    monkeypatch.setattr(texture_cache, "_PROCESS_CACHE", None)
    monkeypatch.setenv("EYEGEN_RENDER_CACHE_MB", "lots")
    with pytest.raises(ValueError, match="EYEGEN_RENDER_CACHE_MB must be a number of megabytes"):
        texture_cache.process_cache()
    monkeypatch.setenv("EYEGEN_RENDER_CACHE_MB", "64")
    assert texture_cache.process_cache().max_bytes == 64 << 20


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA: compares the GPU renderer with the CPU's")
@pytest.mark.parametrize("modality, size", [("nir", (80, 128)), ("nir", (400, 640)), ("rgb", (64, 64))])
def test_the_renderer_draws_alike_on_the_gpu(modality, size):
    spec = SyntheticEyeSpec(modality, size=size, n_persons=4, images_per_person=8)
    idx = list(range(0, 32, 3))
    cpu = SyntheticEyes(spec).render(idx)
    gpu = SyntheticEyes(spec, device="cuda").render(idx)
    assert gpu["image"].device.type == "cuda" and gpu["mask"].device.type == "cuda"
    diff = (gpu["image"].cpu().float() - cpu["image"].float()).abs()
    # transcendentals and texture lookups round differently on a GPU: a grey level, on few pixels
    assert diff.max() <= 2 and (diff > 0).float().mean() < 0.02, (float(diff.max()), float((diff > 0).float().mean()))
    assert (gpu["mask"].cpu() != cpu["mask"]).float().mean() < 0.002
    assert torch.allclose(gpu["landmarks"].cpu(), cpu["landmarks"], atol=1e-3)
    assert torch.equal(gpu["gaze"].cpu(), cpu["gaze"])


@pytest.mark.parametrize("modality, size", [("nir", (80, 128)), ("rgb", (64, 64)), ("rgb", (41, 51)), ("nir", (400, 640))])
def test_an_image_renders_alike_in_any_batch(modality, size):
    """Mip levels, glint windows and lash texels are chosen per image, so a batch's other images
    never change one's pixels (what streamed batches and a resumed run rely on). At 400×640 a soft
    lid shading computed over the batch's lid box leaves ±1 grey level on a rare pixel."""
    source = SyntheticEyes(SyntheticEyeSpec(modality, size=size, n_persons=4, images_per_person=10))
    idx = [0, 13, 27, 31, 38, 4]
    batch = source.render(idx)
    single = {k: torch.cat([source.render([i])[k] for i in idx]) for k in ("image", "mask", "landmarks")}
    assert torch.equal(batch["mask"], single["mask"]) and torch.equal(batch["landmarks"], single["landmarks"])
    diff = (batch["image"].int() - single["image"].int()).abs()
    if size == (400, 640):
        assert diff.max() <= 1 and (diff > 0).float().mean() < 1e-4
    else:
        assert diff.max() == 0


def test_a_texture_shared_by_several_images_samples_as_each_image_alone():
    """Big textures shared by several images of a chunk are sampled expanded over their images (no
    per-image copies); each image's lookup is what sampling it alone gives, bit for bit."""
    from eyegen_lib.science.data import eye_model as em

    gen = torch.Generator().manual_seed(0)
    pyramids = [em.mip_levels(torch.rand(4, 512, 512, generator=gen), 3) for _ in range(2)]
    owners = [0, 1, 0, 0, 1, 1]                            # two persons, three images each
    assert pyramids[0][0].nbytes * len(owners) > em.STACKED_TEXTURE_BYTES   # the shared path, not copies
    grid = torch.rand(len(owners), 24, 32, 2, generator=gen) * 2.2 - 1.1
    tpp = torch.tensor([0.8, 1.5, 0.9, 2.5, 0.7, 1.2])      # two mip levels among the images
    for padding in ("zeros", "border"):
        together = em.sample_texture([pyramids[o] for o in owners], grid, tpp, padding_mode=padding)
        alone = torch.cat([em.sample_texture([pyramids[o]], grid[i:i + 1], tpp[i:i + 1], padding_mode=padding)
                           for i, o in enumerate(owners)])
        assert together.shape == (6, 4, 24, 32) and torch.equal(together, alone)
        one_person = em.sample_texture([pyramids[0]] * 3, grid[:3], tpp[:3].clone().fill_(0.8), padding_mode=padding)
        assert torch.equal(one_person, torch.cat([em.sample_texture([pyramids[0]], grid[i:i + 1], 0.8, padding_mode=padding)
                                                  for i in range(3)]))


@pytest.mark.parametrize("modality, size", [("nir", (80, 128)), ("rgb", (41, 51))])
def test_sensor_noise_as_per_image_crops_or_one_tensor_renders_alike(modality, size, monkeypatch):
    """The renderer stacks the noise crops one chunk at a time; a stacked (B, …) tensor gives the same images."""
    source = SyntheticEyes(SyntheticEyeSpec(modality, size=size, n_persons=3, images_per_person=8))
    assert source.spec.noise
    idx = [0, 5, 9, 17, 22]
    crops = source.render(idx)
    per_image = SyntheticEyes._noise
    monkeypatch.setattr(SyntheticEyes, "_noise", lambda self, *a: torch.stack(per_image(self, *a)))
    stacked = source.render(idx)
    assert torch.equal(crops["image"], stacked["image"]) and torch.equal(crops["mask"], stacked["mask"])
    assert crops["image"].float().std() > 0


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's allocator: what reuse_freed_memory tunes")
def test_a_render_reuses_the_memory_it_freed():
    """A render's megabyte-sized temporaries come from pages freed by the chunk before, not from
    fresh ones the kernel must fault in and zero (13,600 faults a 256-patch RGB batch before; a
    second render of a batch now faults a few hundred pages in, against 7,000–9,500 without)."""
    import resource

    source = SyntheticEyes(SyntheticEyeSpec("rgb", size=(64, 64), n_persons=4, images_per_person=64))
    idx = list(range(256))
    source.render(idx)                                    # textures built, the heap grown once
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    source.render(idx)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before < 3000
