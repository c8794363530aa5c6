"""A run's data source (issue 30): DATA / --data, an OpenEDS copy read by Seg2Eye's protocol, its
provenance and its artifacts kept apart from the renderer's, and one-line errors before any work.

The OpenEDS folders here are the renderer's exports in the real layout (``eyegen synth export``):
no licensed image is in the repository."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from eyegen_lib import get_profile
from eyegen_lib.core.profiles import resolve_profile
from eyegen_lib.runs import registry
from eyegen_lib.runs.provenance import make_provenance
from eyegen_lib.science.data.columbia import ColumbiaPatches, patch_landmarks
from eyegen_lib.science.data.errors import DatasetError
from eyegen_lib.science.data.openeds import SUBSETS, mapping_path
from eyegen_lib.science.data.sources import check_data_source, openeds_eyes
from eyegen_lib.science.protocols import nir_source, person_split, rgb_source
from eyegen_lib.suite.cards import notebooks_taking
from eyegen_lib.suite.runner import run_notebooks, select_notebooks

SMOKE = get_profile("smoke")


def _synth_export(layout, out, persons, per_person, *options):
    """``eyegen synth export``: the renderer's eyes in a real dataset's layout."""
    subprocess.run([sys.executable, "-m", "eyegen_lib.suite.cli", "synth", "export", "--format", layout, "--out", str(out),
                    "--persons", str(persons), "--images-per-person", str(per_person), *options, "--no-progress"],
                   check=True, capture_output=True)
    return out


def _export(root, persons=10, per_person=24, size=(80, 128)):
    """An OpenEDS-layout export at twice smoke's working size (the source resizes, as it does real frames)."""
    return _synth_export("openeds", root, persons, per_person, "--size", *map(str, size))


@pytest.fixture(scope="module")
def openeds_dir(tmp_path_factory):
    return _export(tmp_path_factory.mktemp("openeds") / "OpenEDS")


@pytest.fixture
def on_openeds(openeds_dir, monkeypatch, tmp_path):
    monkeypatch.setenv("EYEGEN_OPENEDS_DIR", str(openeds_dir))
    monkeypatch.setenv("EYEGEN_OUTPUT_DIR", str(tmp_path / "outputs"))
    return SMOKE.with_data("openeds")


def test_a_profile_carries_its_data_source_and_files_it_apart():
    assert SMOKE.data == "renderer" and SMOKE.run_name == "smoke"
    assert SMOKE.with_data("openeds").run_name == "smoke+openeds"
    assert resolve_profile("smoke", "openeds").data == "openeds"
    with pytest.raises(ValueError, match="unknown data source 'kitti'"):
        SMOKE.with_data("kitti")


def test_the_environment_variable_overrides_data(monkeypatch):
    monkeypatch.setenv("EYEGEN_DATA", "openeds")
    assert resolve_profile("smoke", "renderer").data == "openeds"
    monkeypatch.setenv("EYEGEN_DATA", "nope")
    with pytest.raises(ValueError, match=r"came from \$EYEGEN_DATA"):
        resolve_profile("smoke")


def test_openeds_is_read_by_seg2eyes_protocol_at_the_working_size(on_openeds, openeds_dir):
    source = nir_source(on_openeds)
    split = person_split(on_openeds)
    meta = json.loads((openeds_dir / "eyegen_meta.json").read_text())["images"]
    trained = {int(m["person"]) for n, m in meta.items() if (openeds_dir / SUBSETS["semantic"] / "train" / "images" / f"{n}.png").exists()}
    tested = {int(m["person"]) for n, m in meta.items() if (openeds_dir / SUBSETS["semantic"] / "validation" / "images" / f"{n}.png").exists()}
    persons = {source.person_of(i) for i in range(len(source))}
    # the export's persons are renumbered by the mapping's "U007" ids: compare the sets' sizes and disjointness
    assert len(split["train"]) == len(trained) and len(split["test"]) == len(tested) and not split["validation"]
    assert not set(split["train"]) & set(split["test"]) and persons == set(split["train"]) | set(split["test"])
    sample = source[0]
    assert sample["image"].shape == (1, *SMOKE.nir_size) and sample["image"].dtype == torch.uint8
    assert sample["mask"].shape == SMOKE.nir_size and int(sample["mask"].max()) <= 3
    full = Image.open(sample["path"])
    assert (full.height, full.width) == (80, 128), "the export is at twice the working size: the source resized it"
    recipe = source.recipe()
    assert recipe["dataset"] == "OpenEDS" and recipe["roles"] == {"train": "train", "test": "validation"}
    assert len(recipe["manifest"]) == 16 and "root" not in recipe, "the data's identity is its files, not where it lies"


def test_openeds_generative_frames_join_the_pool_by_userid_and_are_never_targets(on_openeds, openeds_dir):
    """Seg2Eye's pool: the generative set's frames of each protocol person (by the userID mapping),
    unlabelled; targets, training pairs and every measured ranking stay on the labelled frames."""
    from dataclasses import replace

    from eyegen_lib.science.protocols import openeds_protocol, rank_targets, ranking_setup, split_indices
    from eyegen_lib.science.ranking import candidates_ok

    source = nir_source(on_openeds)
    generative = list(range(source.n_semantic, len(source)))
    assert len(generative) == SMOKE.openeds_generative_per_person * len(source.persons)
    assert all(SUBSETS["generative"] in str(source.records[i].image_path) and not source.has_mask(i) for i in generative)
    assert {source.person_of(i) for i in generative} == set(source.persons), "each protocol person's own frames"
    assert source.recipe()["generative"] == {"per_person": SMOKE.openeds_generative_per_person, "frames": len(generative)}
    task = openeds_protocol(on_openeds)
    assert all(source.has_mask(i) for i in task["test_indices"] + task["train_indices"])
    assert not set(split_indices(source, person_split(on_openeds), labelled=True)["train"]) & set(generative)

    seg, _ = registry.segmenter(on_openeds, progress=False)
    for setup in (ranking_setup(on_openeds, seg, progress=False),
                  ranking_setup(replace(on_openeds, stream_data=True, ranking_size=(20, 32)), seg, progress=False)):
        pool, test = setup["pool"], setup["test"]
        labelled = pool["labelled"]
        assert int((~labelled).sum()) == len(generative) and set(pool["index"][~labelled].tolist()) == set(generative)
        some = pool["mask"].fetch(range(len(labelled)))["mask"] if hasattr(pool["mask"], "fetch") else pool["mask"]
        assert int(some[~labelled].sum()) == 0, "no mask exists for a generative frame"
        ok = candidates_ok(test["mode"], pool["mode"], target_index=test["index"], pool_index=pool["index"])
        assert bool(ok[:, ~labelled].any()), "the refiner's ranking may take generative frames"
        measured = candidates_ok(test["mode"], pool["mode"], target_index=test["index"], pool_index=pool["index"],
                                 usable=labelled)
        assert not bool(measured[:, ~labelled].any()), "a study measured with true masks ranks among labelled frames"
        assert rank_targets(setup, test, 3).shape == (len(test["index"]), 3)

    # Seg2Eye: targets are labelled frames; a style image may be a generative frame of the target's person
    _, info = registry.seg2eye(on_openeds, "full", steps=2, progress=False)
    from eyegen_lib.science.models.seg2eye import StyleBatches

    groups = torch.tensor([0] * 6 + [1] * 6)
    targets = torch.tensor([True, False] * 6)
    batches = StyleBatches({"image": torch.zeros(12, 1, 8, 8, dtype=torch.uint8), "mask": torch.zeros(12, 8, 8)},
                           groups, k_style=3, batch_size=4, targets=targets)
    drawn = torch.cat([batches.sample_ids(step) for step in range(20)])
    assert bool(targets[drawn].all()), "only labelled rows are targets"
    styles = batches.style_for(drawn.tolist())
    assert not bool(targets[styles].all()) and bool((groups[styles] == groups[drawn][:, None]).all())


def test_a_dataset_run_never_reads_the_other_modality(on_openeds):
    with pytest.raises(ValueError, match="needs RGB eye patches"):
        rgb_source(on_openeds)


def test_the_manifest_names_the_files_read_so_a_changed_copy_is_another_dataset(tmp_path, monkeypatch):
    a = _export(tmp_path / "a", persons=4, per_person=8, size=(40, 64))
    b = tmp_path / "b"
    shutil.copytree(a, b)
    assert openeds_eyes(a, SMOKE.nir_size).manifest == openeds_eyes(b, SMOKE.nir_size).manifest, "moved, same files"
    victim = sorted((b / SUBSETS["semantic"] / "train" / "images").glob("*.png"))[0]
    victim.write_bytes(victim.read_bytes() + b"\0")  # one byte more: another copy
    mapping = mapping_path(b, "train")
    mapping.write_text(mapping.read_text() + " ")  # the reader is re-opened when a mapping changes
    assert openeds_eyes(a, SMOKE.nir_size).manifest != openeds_eyes(b, SMOKE.nir_size).manifest


def test_a_real_data_artifact_never_serves_a_renderer_run_nor_the_reverse(on_openeds, monkeypatch):
    seg, info = registry.segmenter(on_openeds, progress=False)
    assert "smoke+openeds" in info["path"] and info["provenance"]["profile"] == "smoke+openeds"
    assert info["provenance"]["data"]["recipe"]["source"]["dataset"] == "OpenEDS"
    # the renderer run looks elsewhere and finds nothing to load
    with pytest.raises(Exception, match="segmenter"):
        registry.segmenter(SMOKE, progress=False, train=False)
    # and the zoo (renderer-trained) is never asked for a dataset run
    _, again = registry.segmenter(on_openeds, pretrained=True, progress=False)
    assert again["source"] != "zoo" and again["sha256"] == info["sha256"]
    renderer = make_provenance(profile=SMOKE, seed=0, config={}, data={})
    assert renderer["profile"] == "smoke"


def test_notebook_cards_say_which_data_each_takes():
    assert notebooks_taking("openeds") == ["02_ranking", "03_refiner", "04_seg2eye", "07_evaluation"]
    assert [p.stem for p in select_notebooks(None, "openeds")] == ["02_ranking", "03_refiner", "04_seg2eye", "07_evaluation"]
    assert notebooks_taking("columbia") == ["05_deepwarp", "06_gaze_gan", "07_evaluation", "08_augmentation"]
    with pytest.raises(ValueError, match="05_deepwarp cannot run on --data openeds"):
        select_notebooks(["05"], "openeds")
    with pytest.raises(ValueError, match="no notebook runs on --data mpiigaze"):
        select_notebooks(None, "mpiigaze")


# -- malformed folders: one line, naming the path and what is wrong, before any training ----------------
@pytest.fixture(scope="module")
def small_openeds(tmp_path_factory):
    return _export(tmp_path_factory.mktemp("small-openeds") / "OpenEDS", persons=4, per_person=8, size=(40, 64))


def _broken(tmp_path, how, export):
    root = tmp_path / "OpenEDS"
    shutil.copytree(export, root)  # each case breaks its own copy of one export
    images = root / SUBSETS["semantic"] / "validation" / "images"
    first = sorted(images.glob("*.png"))[-1]
    if how == "no mapping JSON":
        mapping_path(root, "train").unlink()
    elif how == "missing labels":
        train = root / SUBSETS["semantic"] / "train"
        (train / "labels" / (sorted((train / "images").glob("*.png"))[0].stem + ".npy")).unlink()
    elif how == "wrong image size":
        Image.fromarray(np.zeros((30, 64), np.uint8)).save(first)
    elif how == "unreadable file":
        first.write_bytes(b"not a png")
    elif how == "label of another size":
        np.save(root / SUBSETS["semantic"] / "validation" / "labels" / f"{first.stem}.npy", np.zeros((40, 60), np.uint8))
    elif how == "empty":
        shutil.rmtree(root)
        root.mkdir()
    return root, first


@pytest.mark.parametrize("how, says", [
    ("no mapping JSON", "userID mapping for split 'train' is missing"),
    ("missing labels", "have no label .npy beside them"),
    ("wrong image size", "image is 30×64 but the others are 40×64"),
    ("unreadable file", "image cannot be opened"),
    ("label of another size", "label is 40×60 but its image is 40×64"),
    ("empty", "not an OpenEDS folder"),
])
def test_a_malformed_openeds_folder_is_one_line_before_any_work(tmp_path, monkeypatch, small_openeds, how, says):
    root, first = _broken(tmp_path, how, small_openeds)
    monkeypatch.setenv("EYEGEN_OPENEDS_DIR", str(root))
    with pytest.raises(DatasetError, match=says) as err:
        check_data_source(SMOKE.with_data("openeds"))
    assert err.value.path and str(root) in err.value.path and err.value.fix
    out = tmp_path / "run"
    cli = subprocess.run([sys.executable, "-m", "eyegen_lib.suite.cli", "run", "--profile", "smoke", "--data", "openeds",
                          "--out", str(out)], capture_output=True, text=True,
                         env={**__import__("os").environ, "EYEGEN_OPENEDS_DIR": str(root)})
    assert cli.returncode == 2 and len(cli.stderr.strip().splitlines()) == 1, cli.stderr
    assert says.split(" ")[0] in cli.stderr and str(root) in cli.stderr
    assert not out.exists(), "nothing is made before the data is known to be usable"


@pytest.mark.parametrize("value, says", [(None, "which is not set"), ("/no/such/folder", "does not name a folder")])
def test_an_unset_or_wrong_variable_is_one_line(monkeypatch, value, says):
    if value is None:
        monkeypatch.delenv("EYEGEN_OPENEDS_DIR", raising=False)
    else:
        monkeypatch.setenv("EYEGEN_OPENEDS_DIR", value)
    with pytest.raises(DatasetError, match=says):
        check_data_source(SMOKE.with_data("openeds"))
    cli = subprocess.run([sys.executable, "-m", "eyegen_lib.suite.cli", "train", "segmenter", "--profile", "smoke",
                          "--data", "openeds"], capture_output=True, text=True)
    assert cli.returncode == 2 and len(cli.stderr.strip().splitlines()) == 1 and says in cli.stderr, cli.stderr


def test_eyegen_train_refuses_a_model_whose_protocol_does_not_read_the_dataset():
    cli = subprocess.run([sys.executable, "-m", "eyegen_lib.suite.cli", "train", "deepwarp", "--profile", "smoke",
                          "--data", "openeds"], capture_output=True, text=True)
    assert cli.returncode == 2 and "only segmenter, refiner, seg2eye do" in cli.stderr


# -- the notebooks, end to end ---------------------------------------------------------------------------
def test_02_to_04_and_07_run_on_an_openeds_copy_and_the_report_names_it(on_openeds, openeds_dir, tmp_path):
    from eyegen_lib.runs.record import RENDERER_SOURCE

    out = tmp_path / "run"
    summary = run_notebooks("smoke", data="openeds", out=out)
    assert summary["ran"] == ["02_ranking", "03_refiner", "04_seg2eye", "07_evaluation"] and summary["data"] == "openeds"
    assert all(n["status"] == "ok" for n in summary["notebooks"]), summary["notebooks"]
    openeds = f"OpenEDS at {openeds_dir} (the renderer's export in its layout)"
    for name in summary["ran"][:3]:
        record = json.loads((out / "metrics" / f"{name}.json").read_text())
        assert record["data"] == "openeds" and record["data_sources"] == [openeds], "no renderer eye in 02–04"
        assert record["claims"] and all(c["data"] == "openeds" and c["spread"] is None for c in record["claims"])
        assert all("/smoke+openeds/" in a["file"] for a in record["artifacts"]), "models and predictions filed apart"
    # 07: its OpenEDS part on the copy (03's and 04's saved outputs of it), its redirection part on the renderer
    record = json.loads((out / "metrics" / "07_evaluation.json").read_text())
    assert record["data"] == "openeds" and set(record["data_sources"]) == {openeds, RENDERER_SOURCE}
    assert {c["name"]: c["data"] for c in record["claims"]} == {"table1_shift_highest_mse_lowest_lpips": "renderer"}
    files = {a["name"]: a["file"] for a in record["artifacts"]}
    assert "/smoke+openeds/" in files["segmenter"] and "/smoke/" in files["gaze_estimator/64x64"]
    assert {"openeds_refiner", "openeds_seg2eye", "openeds_nearest_by_mask"} <= set(record["metrics"])
    ranking = json.loads((out / "metrics" / "02_ranking.json").read_text())["metrics"]
    assert 0 <= ranking["segmenter_miou"]["value"] <= 1
    report = (out / "report.html").read_text()
    assert "02_ranking, 03_refiner, 04_seg2eye, 07_evaluation on OpenEDS at" in report and "data openeds" in report


def test_the_streamed_pipeline_reads_openeds_in_dataloader_workers(on_openeds):
    """``paper`` streams its data through worker processes: the dataset source must travel to them."""
    from dataclasses import replace

    streamed = replace(on_openeds, stream_data=True, num_workers=2, ranking_size=(20, 32))
    _, info = registry.segmenter(streamed, progress=False)
    assert 0 <= info["metrics"]["miou"] <= 1
    _, info = registry.refiner(streamed, progress=False)
    assert "/smoke+openeds/" in info["path"] and len(info["history"]["challenge_loss"]) > 0


# -- Columbia Gaze: He et al.'s protocol on photographed gaze grids ------------------------------------------
def _columbia(root, subjects=(1, 2, 3, 51), per_person=42):
    """A Columbia export of len(subjects) renderer persons, renamed to these subject numbers (He et al.'s
    split needs subjects 51–56; exporting 56 persons would take minutes)."""
    tmp = _synth_export("columbia", root.parent / (root.name + "-export"), len(subjects), per_person, "--lossless")
    root.mkdir()
    for path in tmp.glob("*.png"):
        number = subjects[int(path.name[:4]) - 1]
        path.rename(root / f"{number:04d}{path.name[4:]}")
    return root


@pytest.fixture(scope="module")
def columbia_dir(tmp_path_factory):
    return _columbia(tmp_path_factory.mktemp("columbia") / "patches")


@pytest.fixture
def on_columbia(columbia_dir, monkeypatch, tmp_path):
    monkeypatch.setenv("EYEGEN_COLUMBIA_DIR", str(columbia_dir))
    monkeypatch.setenv("EYEGEN_OUTPUT_DIR", str(tmp_path / "outputs"))
    return SMOKE.with_data("columbia")


def test_he_et_al_s_protocol_runs_on_columbia_photographs(on_columbia):
    from eyegen_lib.science.data.pairs import GroupPairRows, pair_parts
    from eyegen_lib.science.protocols import redirection_protocol, redirection_training_pairs

    assert person_split(on_columbia) == {"train": [1, 2, 3], "validation": [], "test": [51]}
    source, rset, eyes = redirection_protocol(on_columbia)
    assert len(eyes) == min(2, SMOKE.redirection_eyes) and len(rset) == 21 * 20 * len(eyes)
    assert set(rset.person.tolist()) == {51} and rset.source_mask is None
    assert 4.5 < float(rset.angle_deg.min()) and float(rset.angle_deg.max()) < 36.5  # He et al.: 4.9°–35.9°
    # every target is the photo of that eye at the target gaze: the pair's gazes are the photos' own
    for k in (0, 77, len(rset) - 1):
        match = [i for i in range(len(source)) if torch.equal(source[i]["image"], rset.target[k])]
        assert match and torch.allclose(torch.as_tensor(source.gaze_of(match[0])), rset.target_gaze[k])
    pairs = redirection_training_pairs(on_columbia, progress=False)
    assert isinstance(pairs, GroupPairRows) and len(pairs) == 3 * 2 * 21 * 21, "every ordered pair of each training eye"
    assert set(pairs.person.tolist()) == {1, 2, 3}
    rows, _ = pair_parts(pairs, ("source", "target", "landmarks"))  # DeepWarp's anchors: the template eye
    assert torch.equal(rows.fetch([0, 5])["landmarks"], patch_landmarks((64, 64)).expand(2, 7, 2))
    assert torch.equal(rset.landmarks[0], patch_landmarks((64, 64)))


def test_deepwarp_s_pairs_on_columbia_photographs(on_columbia, columbia_dir):
    """05's pairs on photos: two photos of one eye and head pose at DeepWarp's 41 × 51 crop (cut, not
    stretched), vertical-only pairs keep the yaw, registration-aware targets are k px larger with real
    content, and the test set is one pair per test photo."""
    import torch.nn.functional as F

    from eyegen_lib.science.protocols import (
        deepwarp_test_pairs,
        deepwarp_training_pairs,
        deepwarp_training_pairs_recipe,
    )

    train = deepwarp_training_pairs(on_columbia, "cfw_lcm", progress=False)
    assert train.recipe == deepwarp_training_pairs_recipe(on_columbia, "cfw_lcm")
    assert len(train) == 3 * 2 * 21 * 21, "every ordered pair of each training eye (one head pose in this copy)"
    got = train.fetch(range(len(train)))
    assert got["source"].shape[1:] == (3, 41, 51) and torch.equal(got["landmarks"][0], patch_landmarks((41, 51)))
    same_group = train.index.tolist()[0]
    patch = ColumbiaPatches(columbia_dir)[same_group]["image"]
    expected = F.interpolate(patch[None].float(), size=(51, 51), mode="area")[0].round().byte()[:, 5:46]
    assert torch.equal(got["source"][0], expected), "the 41 × 51 crop is the patch at 51 × 51 without 5 rows each side"

    vertical = deepwarp_training_pairs(on_columbia, "cfw_lcm_vertical", progress=False)
    assert torch.equal(vertical.source_gaze[:, 1], vertical.target_gaze[:, 1]) and len(vertical) == 3 * 2 * 7 * 3 * 3

    shifted = deepwarp_training_pairs(on_columbia, "ss_shifted_k3", progress=False)
    pair = shifted.fetch([7])
    assert pair["source"].shape[-2:] == (41, 51) and pair["target"].shape[-2:] == (47, 57)
    wide = patch_landmarks((47, 57))
    assert torch.allclose(pair["landmarks"][0], wide - 3), "the source's anchors are the wide crop's, 3 px in"
    self_pairs = shifted.a == shifted.b  # a self-pair's target is its source with a real 3-px frame around it
    k = int(self_pairs.nonzero()[0])
    own = shifted.fetch([k])
    assert torch.equal(own["target"][0, :, 3:-3, 3:-3], own["source"][0]) and own["target"][0, :, :3].float().std() > 0

    test = deepwarp_test_pairs(on_columbia, "cfw_lcm", progress=False)
    assert len(test["source"]) == 2 * 21 and set(test["person"].tolist()) == {51}
    assert not bool((test["source_gaze"] == test["target_gaze"]).all(1).any()), "a test pair changes the gaze"
    assert deepwarp_test_pairs(on_columbia, "cfw_lcm", progress=False)["index"].tolist() == test["index"].tolist()


def test_a_malformed_columbia_folder_is_one_line(tmp_path, monkeypatch):
    root = _columbia(tmp_path / "patches", subjects=(1, 2))
    monkeypatch.setenv("EYEGEN_COLUMBIA_DIR", str(root))
    with pytest.raises(DatasetError, match="no test subject"):
        check_data_source(SMOKE.with_data("columbia"))
    odd = sorted(root.glob("*.png"))[0]
    Image.fromarray(np.zeros((60, 64, 3), np.uint8)).save(root / f"0051{odd.name[4:]}")
    with pytest.raises(DatasetError, match="patch is 60×64 but the others are 64×64"):
        check_data_source(SMOKE.with_data("columbia"))
    (root / "holiday.png").write_bytes(b"")
    with pytest.raises(DatasetError, match="do not follow the Columbia patch pattern"):
        check_data_source(SMOKE.with_data("columbia"))



# -- MPIIGaze: the estimator's data and He et al.'s cross-dataset test --------------------------------------
@pytest.fixture(scope="module")
def mpiigaze_dir(tmp_path_factory):
    return _synth_export("mpiigaze", tmp_path_factory.mktemp("mpiigaze") / "MPIIGaze", 5, 24)


def test_mpiigaze_eyes_are_framed_as_columbia_patches_with_right_eyes_mirrored(mpiigaze_dir):
    from eyegen_lib.science.data.mpiigaze import MPIIGazeNormalized
    from eyegen_lib.science.data.sources import MPIIGazeEyes

    raw, eyes = MPIIGazeNormalized(mpiigaze_dir), MPIIGazeEyes(mpiigaze_dir, (64, 64))
    assert len(eyes) == len(raw) == 120 and eyes.persons == [0, 1, 2, 3, 4]
    assert eyes.protocol_split() == {"train": [0, 1, 2, 3], "validation": [], "test": [4]}
    sides = {raw.side_of(i) for i in range(len(raw))}
    assert sides == {"L", "R"}
    for i in range(len(raw)):
        got, grey = eyes[i], raw[i]
        assert got["image"].shape == (3, 64, 64) and got["image"].dtype == torch.uint8
        assert torch.equal(got["image"][0], got["image"][2])  # grey, repeated to three channels
        flip = grey["side"] == "R"
        assert torch.allclose(got["gaze"], grey["gaze"] * torch.tensor([1.0, -1.0 if flip else 1.0]))
        assert np.allclose(eyes.gaze_of(i), got["gaze"].numpy())
    left = next(i for i in range(len(raw)) if raw.side_of(i) == "L")
    right = next(i for i in range(len(raw)) if raw.side_of(i) == "R")
    for i, mirrored in ((left, False), (right, True)):  # columns of the resized eye keep their order unless mirrored
        source_cols = raw[i]["image"][0].float().mean(0)
        cols = eyes[i]["image"][0].float().mean(0)
        resized = torch.nn.functional.interpolate(source_cols[None, None], size=64, mode="linear")[0, 0]
        r = {way: float(torch.corrcoef(torch.stack([c, resized]))[0, 1]) for way, c in (("as is", cols), ("flipped", cols.flip(0)))}
        assert r["flipped" if mirrored else "as is"] > 0.9 and r["flipped" if mirrored else "as is"] > r["as is" if mirrored else "flipped"], r


def test_a_gaze_estimator_trains_on_mpiigaze_and_is_filed_apart(mpiigaze_dir, monkeypatch, tmp_path):
    monkeypatch.setenv("EYEGEN_MPIIGAZE_DIR", str(mpiigaze_dir))
    monkeypatch.setenv("EYEGEN_OUTPUT_DIR", str(tmp_path / "outputs"))
    profile = SMOKE.with_data("mpiigaze")
    assert "MPIIGaze at" in check_data_source(profile)
    _, info = registry.gaze_estimator(profile, steps=20, progress=False)
    assert "/smoke+mpiigaze/" in info["path"] and info["metrics"]["test_images"] == 24
    assert info["provenance"]["data"]["recipe"]["source"]["dataset"] == "MPIIGaze (normalised)"
    monkeypatch.setenv("EYEGEN_MPIIGAZE_DIR", str(tmp_path / "nowhere"))
    with pytest.raises(DatasetError, match="EYEGEN_MPIIGAZE_DIR does not name a folder"):
        check_data_source(profile)


def test_a_columbia_run_checks_its_mpiigaze_folder_before_any_work(columbia_dir, mpiigaze_dir, monkeypatch, tmp_path):
    monkeypatch.setenv("EYEGEN_COLUMBIA_DIR", str(columbia_dir))
    monkeypatch.setenv("EYEGEN_MPIIGAZE_DIR", str(mpiigaze_dir))
    assert "MPIIGaze at" in check_data_source(SMOKE.with_data("columbia"))
    monkeypatch.setenv("EYEGEN_MPIIGAZE_DIR", str(tmp_path))  # a folder without Data/Normalized
    with pytest.raises(DatasetError, match="Data/Normalized/ is missing"):
        check_data_source(SMOKE.with_data("columbia"))


# -- 06, 07 and 08 on a Columbia copy, MPIIGaze beside it: one run, so its models train once ---------------
@pytest.fixture(scope="module")
def columbia_run(tmp_path_factory, mpiigaze_dir):
    """``eyegen run --data columbia`` (every notebook that takes Columbia) on an export renamed to subjects 1,
    2, 3 and 51 without its sidecar (so it reads as a real copy), two head poses (the nearest-capture
    baseline exists), with the MPIIGaze export as the cross-dataset test."""
    tmp = tmp_path_factory.mktemp("columbia-run")
    root = _columbia(tmp / "patches", per_person=84)
    with pytest.MonkeyPatch.context() as mp:  # the variables only while the notebooks run
        mp.setenv("EYEGEN_COLUMBIA_DIR", str(root))
        mp.setenv("EYEGEN_MPIIGAZE_DIR", str(mpiigaze_dir))
        mp.setenv("EYEGEN_OUTPUT_DIR", str(tmp / "outputs"))
        # one of 06's ablations (the renderer's smoke run trains all five): the run is about the data
        summary = run_notebooks("smoke", data="columbia", out=tmp / "run", timeout=1800,
                                parameters={"ABLATIONS": ["no_gaze"]})
    return {"root": root, "mpiigaze": mpiigaze_dir, "out": tmp / "run", "summary": summary}


def _columbia_record(columbia_run, notebook):
    summary = columbia_run["summary"]
    assert summary["ran"] == ["05_deepwarp", "06_gaze_gan", "07_evaluation", "08_augmentation"]
    status = {n["notebook"]: n for n in summary["notebooks"]}
    assert status[notebook]["status"] == "ok", status[notebook]
    return json.loads((columbia_run["out"] / "metrics" / f"{notebook}.json").read_text())


def test_05_runs_deepwarp_on_columbia_photographs(columbia_run):
    record = _columbia_record(columbia_run, "05_deepwarp")
    assert record["data"] == "columbia" and set(record["data_sources"]) == {f"Columbia Gaze patches at {columbia_run['root']}"}
    claims = {c["name"]: c["data"] for c in record["claims"]}
    assert set(claims) == {"variant_order_at_large_angles", "cfw_lcm_beats_input_at_every_angle",
                           "registration_aware_loss_sharpens"}  # the LCM's eye-white analysis needs masks
    assert set(claims.values()) == {"columbia"} and "lcm_gain_by_disocclusion" not in record["metrics"]
    mse = record["metrics"]["test_mse"]["value"]
    assert mse["cfw_lcm"] < mse["unchanged input"], "even at smoke the warp beats copying the input"
    files = {a["name"]: a["file"] for a in record["artifacts"]}
    assert all("/smoke+columbia/" in f for f in files.values()), files


def test_06_runs_he_et_al_s_gan_and_deepwarp_on_columbia_photographs(columbia_run):
    record = _columbia_record(columbia_run, "06_gaze_gan")
    assert record["data"] == "columbia" and set(record["data_sources"]) == {f"Columbia Gaze patches at {columbia_run['root']}"}
    claims = {c["name"]: c["data"] for c in record["claims"]}
    assert set(claims.values()) == {"columbia"} and "gan_lpips_below_unchanged_input" in claims
    assert {"gan_beats_deepwarp_lpips", "gan_beats_deepwarp_gaze_error_deg"} <= set(claims)  # the template anchors
    assert {"protocol_DeepWarp", "protocol_GAN"} <= set(record["metrics"])
    entry = next(n for n in columbia_run["summary"]["notebooks"] if n["notebook"] == "06_gaze_gan")
    assert entry["parameters"] == {"ABLATIONS": ["no_gaze"]} and "no_gaze_loss_gaze_does_not_move" in claims
    assert not any(name.startswith("no_cycle") for name in claims), "only the ablation asked for trained"
    files = {a["name"]: a["file"] for a in record["artifacts"]}
    assert all("/smoke+columbia/" in f for f in files.values()), files


def test_07_runs_its_redirection_part_on_a_columbia_copy(columbia_run):
    from eyegen_lib.runs.record import RENDERER_SOURCE

    record = _columbia_record(columbia_run, "07_evaluation")
    columbia = f"Columbia Gaze patches at {columbia_run['root']}"
    mpiigaze = f"MPIIGaze at {columbia_run['mpiigaze']}"  # the cross-dataset check of the estimator
    assert record["data"] == "columbia" and set(record["data_sources"]) == {columbia, mpiigaze, RENDERER_SOURCE}
    assert {c["name"]: c["data"] for c in record["claims"]} == {"table1_shift_highest_mse_lowest_lpips": "columbia"}
    files = {a["name"]: a["file"] for a in record["artifacts"]}
    assert "/smoke+columbia/" in files["gaze_estimator/64x64"] and "/smoke/" in files["segmenter"]
    metrics = record["metrics"]
    assert {"redirection_copy_input", "redirection_nearest_same_person", "redirection_real_target"} <= set(metrics)
    assert metrics["gaze_estimator_test_error_deg"]["value"] < metrics["gaze_mean_predictor_error_deg"]["value"]
    assert metrics["gaze_estimator_mpiigaze_error_deg"]["value"] > 0  # the cross-dataset check ran


def test_08_runs_he_et_al_s_augmentation_on_columbia_with_mpiigaze_as_the_cross_dataset_test(columbia_run):
    record = _columbia_record(columbia_run, "08_augmentation")
    assert record["data"] == "columbia" and set(record["data_sources"]) == {
        f"Columbia Gaze patches at {columbia_run['root']}", f"MPIIGaze at {columbia_run['mpiigaze']}"}
    assert {c["name"] for c in record["claims"]} == {"augmentation_lowers_error_held_out_pitch",
                                                      "augmentation_lowers_error_mpiigaze"}
    assert set(record["metrics"]["error_deg"]["value"]["raw"]) == {"held_out_pitch", "mpiigaze"}
    files = {a["name"]: a["file"] for a in record["artifacts"]}
    assert all("/smoke+columbia/" in f for f in files.values()), files


def test_he_et_al_s_augmentation_sets_on_columbia(columbia_dir, mpiigaze_dir, monkeypatch, tmp_path):
    from eyegen_lib.science.augmentation import pitch_split_sets, training_sets

    monkeypatch.setenv("EYEGEN_COLUMBIA_DIR", str(columbia_dir))
    monkeypatch.setenv("EYEGEN_MPIIGAZE_DIR", str(mpiigaze_dir))
    sets = pitch_split_sets(SMOKE.with_data("columbia"), progress=False)
    assert sets["test_sets"] == ("held_out_pitch", "mpiigaze") and len(sets["mpiigaze"]["image"]) == 120
    pitch = lambda name: sorted(set(np.round(np.degrees(sets[name]["gaze"][:, 0].numpy())).tolist()))  # noqa: E731
    assert pitch("raw") == [10.0] and pitch("held_out_pitch") == [-10.0, 0.0]
    assert set(sets["donors"]["person"].tolist()) == {51} and len(sets["raw"]["image"]) == 4 * 2 * 7
    made = training_sets(sets, seed=0, progress=False)
    assert sorted(set(np.round(np.degrees(made["target_gaze"][:, 0].numpy())).tolist())) == [-10.0, 0.0]
    # the oracle's image at each target is the donor's own photo there: same (subject, pose, eye), same yaw
    source, donors = sets["source"], sets["donors"]
    for k in range(len(made["rows"])):
        donor = int(donors["index"][made["rows"][k]])
        photo = next(i for i in range(len(source)) if source.group_of(i) == source.group_of(donor)
                     and np.allclose(source.gaze_of(i), made["target_gaze"][k].numpy(), atol=1e-4))
        assert torch.equal(made["real_at_target"][k], source[photo]["image"])


def test_the_gaze_gan_and_estimator_train_on_columbia_and_are_filed_apart(columbia_run, monkeypatch):
    monkeypatch.setenv("EYEGEN_COLUMBIA_DIR", str(columbia_run["root"]))
    monkeypatch.setenv("EYEGEN_OUTPUT_DIR", str(columbia_run["out"]))  # the run files its models there
    on_columbia = SMOKE.with_data("columbia")
    est, info = registry.gaze_estimator(on_columbia, train=False, progress=False)  # trained by the run
    assert "/smoke+columbia/" in info["path"]
    assert info["metrics"]["test_error_deg"] < info["metrics"]["mean_predictor_error_deg"]
    assert info["provenance"]["data"]["recipe"]["source"]["dataset"] == "Columbia Gaze patches"
    _, gan = registry.gaze_gan(on_columbia, "full", train=False, progress=False)
    assert "/smoke+columbia/" in gan["path"]
    assert gan["provenance"]["data"]["recipe"]["pairs"] == "every ordered pair within (subject, pose, eye)"
