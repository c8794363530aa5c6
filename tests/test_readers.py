"""Dataset readers and exporters: round trips, the gaze convention, and the errors users will meet."""
import hashlib
import json
import math
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from eyegen_lib.science.data.columbia import ColumbiaPatches, columbia_gaze, export_columbia, he_label, parse_patch_name
from eyegen_lib.science.data.errors import DatasetError
from eyegen_lib.science.data.mpiigaze import MPIIGazeNormalized, write_normalized_day
from eyegen_lib.science.data.openeds import OpenEDS, export_openeds, mapping_path
from eyegen_lib.science.data.synthetic import SyntheticEyes, SyntheticEyeSpec
from eyegen_lib.suite.cli import main as cli_main

NIR_SIZE = (40, 64)


# -- fixtures ----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def nir_source():
    return SyntheticEyes(SyntheticEyeSpec("nir", NIR_SIZE, n_persons=3, images_per_person=4, seed=1))


@pytest.fixture(scope="module")
def openeds_root(nir_source, tmp_path_factory):
    root = tmp_path_factory.mktemp("openeds") / "OpenEDS"
    export_openeds(nir_source, root, seed=0, progress=False)
    return root


@pytest.fixture(scope="module")
def rgb_source():
    return SyntheticEyes(SyntheticEyeSpec("rgb", (64, 64), n_persons=2, images_per_person=2, seed=2,
                                          blink_probability=0.0))


@pytest.fixture(scope="module")
def columbia_png(rgb_source, tmp_path_factory):
    root = tmp_path_factory.mktemp("columbia") / "png"
    export_columbia(rgb_source, root, lossless=True, progress=False)
    return root


@pytest.fixture(scope="module")
def columbia_jpg(rgb_source, tmp_path_factory):
    root = tmp_path_factory.mktemp("columbia") / "jpg"
    export_columbia(rgb_source, root, lossless=False, progress=False)
    return root


def copy_of(root: Path, tmp_path: Path) -> Path:
    dst = tmp_path / root.name
    shutil.copytree(root, dst)
    return dst


def snapshot(root: Path) -> dict:
    """Every file's bytes hash: readers must never change, add or delete anything."""
    return {str(p.relative_to(root)): hashlib.sha1(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*")) if p.is_file()}


def all_openeds(root):
    return [OpenEDS(root, split, subset) for subset in ("semantic", "generative") for split in ("train", "validation", "test")]


# -- OpenEDS -----------------------------------------------------------------------------------------
def test_openeds_roundtrip_pixels_masks_landmarks_gaze_persons(nir_source, openeds_root):
    expected = nir_source.render(list(range(len(nir_source))))
    seen = []
    persons_by_split = {}
    for reader in all_openeds(openeds_root):
        persons_by_split.setdefault(reader.split, set()).update(reader.persons)
        for i in range(len(reader)):
            s = reader[i]
            k = int(Path(s["path"]).stem)  # the exporter names image k "{k:012d}"
            seen.append(k)
            assert s["image"].dtype == torch.uint8 and s["image"].shape == (1, *NIR_SIZE)
            assert torch.equal(s["image"], expected["image"][k])
            assert s["person"] == int(expected["person"][k]) == reader.person_of(i)
            assert s["side"] == expected["side"][k] == reader.side_of(i)
            assert torch.equal(s["landmarks"], expected["landmarks"][k])
            assert torch.equal(s["eyelid"], expected["eyelid"][k])
            assert torch.equal(s["gaze"], expected["gaze"][k])
            has_mask = reader.subset == "semantic" or reader.split == "test"
            assert reader.has_mask(i) == has_mask == ("mask" in s)
            if has_mask:
                assert s["mask"].dtype == torch.uint8 and torch.equal(s["mask"], expected["mask"][k])
    assert sorted(seen) == list(range(len(nir_source)))  # every image exported exactly once
    splits = list(persons_by_split.values())
    assert all(not (a & b) for n, a in enumerate(splits) for b in splits[n + 1:])  # split by person
    assert set().union(*splits) == {0, 1, 2}


def test_openeds_mapping_json_has_the_real_structure(openeds_root):
    data = json.loads(mapping_path(openeds_root, "train").read_text())
    assert isinstance(data, list) and data
    assert set(data[0]) == {"id", "semantic_segmenation_images", "generative_images", "sequence_images"}


def test_openeds_without_sidecar_loads_like_real_data(openeds_root, tmp_path):
    root = copy_of(openeds_root, tmp_path)
    (root / "eyegen_meta.json").unlink()
    reader = OpenEDS(root, "train", "semantic")
    s = reader[0]
    assert s["side"] == "?" and "gaze" not in s and "landmarks" not in s
    assert s["mask"].shape == NIR_SIZE and not reader.has_gaze(0)


def test_openeds_wrong_folder_errors(openeds_root, tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        OpenEDS(tmp_path / "nowhere")
    other = tmp_path / "other"
    (other / "pictures").mkdir(parents=True)
    with pytest.raises(DatasetError) as err:
        OpenEDS(other)
    msg = str(err.value)
    assert "Semantic_Segmentation_Dataset" in msg and "'pictures'" in msg  # expected and found
    with pytest.raises(DatasetError, match="pass its parent"):
        OpenEDS(openeds_root / "Semantic_Segmentation_Dataset")
    with pytest.raises(DatasetError, match="unknown OpenEDS split"):
        OpenEDS(openeds_root, "val")


def test_openeds_missing_label_is_named(openeds_root, tmp_path):
    root = copy_of(openeds_root, tmp_path)
    label = sorted((root / "Semantic_Segmentation_Dataset/train/labels").glob("*.npy"))[0]
    label.unlink()
    before = snapshot(root)
    with pytest.raises(DatasetError) as err:
        OpenEDS(root, "train", "semantic")
    assert "no label" in str(err.value) and label.stem in str(err.value)
    assert snapshot(root) == before


def test_openeds_missing_mapping_and_unlisted_image(openeds_root, tmp_path):
    root = copy_of(openeds_root, tmp_path)
    mapping_path(root, "validation").unlink()
    with pytest.raises(DatasetError, match="userID mapping for split 'validation' is missing"):
        OpenEDS(root, "validation")
    train = json.loads(mapping_path(root, "train").read_text())
    dropped = train[0]["semantic_segmenation_images"].pop()
    mapping_path(root, "train").write_text(json.dumps(train))
    with pytest.raises(DatasetError, match="not listed in the userID mapping") as err:
        OpenEDS(root, "train")
    assert Path(dropped).stem in str(err.value)


def _semantic_train(root):
    folder = root / "Semantic_Segmentation_Dataset/train"
    names = sorted(p.stem for p in (folder / "images").glob("*.png"))
    return folder, names


def test_openeds_corrupt_png_is_named_at_access_and_in_validate(openeds_root, tmp_path):
    root = copy_of(openeds_root, tmp_path)
    folder, names = _semantic_train(root)
    bad = folder / "images" / f"{names[0]}.png"
    bad.write_bytes(b"\x89PNG garbage, not an image")
    before = snapshot(root)
    reader = OpenEDS(root, "train", "semantic")  # building does not decode
    with pytest.raises(DatasetError, match="corrupt") as err:
        reader[names.index(names[0])]
    assert str(bad) in str(err.value)
    assert reader[1]["image"].shape == (1, *NIR_SIZE)  # the other files still read
    problems = reader.validate(raise_errors=False, progress=False)
    assert len(problems) == 1 and str(bad) in problems[0]
    with pytest.raises(DatasetError, match="1 of 2"):
        reader.validate(progress=False)
    assert snapshot(root) == before


@pytest.mark.parametrize("label, message", [
    (np.full(NIR_SIZE, 5, np.uint8), r"values \[5\] outside the classes 0..3"),
    (np.zeros((20, 32), np.uint8), "label is 20×32 but its image is 40×64"),
    (np.zeros(NIR_SIZE, np.float32), "dtype float32"),
    (np.zeros((2, *NIR_SIZE), np.uint8), "expected a 2-D"),
])
def test_openeds_bad_labels(openeds_root, tmp_path, label, message):
    root = copy_of(openeds_root, tmp_path)
    folder, names = _semantic_train(root)
    path = folder / "labels" / f"{names[1]}.npy"
    np.save(path, label)
    before = snapshot(root)
    reader = OpenEDS(root, "train", "semantic")
    with pytest.raises(DatasetError, match=message) as err:
        reader[1]
    assert str(path) in str(err.value)
    assert isinstance(err.value, ValueError)
    assert len(reader.validate(raise_errors=False, progress=False)) == 1
    assert snapshot(root) == before


def test_openeds_colour_png_is_rejected(openeds_root, tmp_path):
    from PIL import Image

    root = copy_of(openeds_root, tmp_path)
    folder, names = _semantic_train(root)
    path = folder / "images" / f"{names[0]}.png"
    Image.fromarray(np.zeros((*NIR_SIZE, 3), np.uint8)).save(path)
    with pytest.raises(DatasetError, match="PIL mode 'RGB', expected 'L'") as err:
        OpenEDS(root, "train")[0]
    assert str(path) in str(err.value) and "greyscale" in str(err.value)


def test_openeds_validate_reports_every_problem(openeds_root, tmp_path):
    root = copy_of(openeds_root, tmp_path)
    folder, names = _semantic_train(root)
    (folder / "images" / f"{names[0]}.png").write_bytes(b"junk")
    np.save(folder / "labels" / f"{names[1]}.npy", np.full(NIR_SIZE, 7, np.uint8))
    problems = OpenEDS(root, "train").validate(raise_errors=False, progress=False)
    assert len(problems) == 2 and names[0] in problems[0] and names[1] in problems[1]


# -- Columbia ----------------------------------------------------------------------------------------
def _expected_patch(source, subject, v, h, eye):
    """Render what the exporter should have written: the unflipped eye at yaw = radians(H), then
    right eyes mirrored."""
    index = (subject - 1) * source.spec.images_per_person + (0 if eye == "R" else 1)
    out = source.render([index], gaze=[[math.radians(v), math.radians(h)]])
    image, mask, gaze = out["image"][0], out["mask"][0], out["gaze"][0]
    if eye == "R":
        image, mask, gaze = image.flip(-1), mask.flip(-1), gaze * torch.tensor([1.0, -1.0])
    return image, mask, gaze


def test_columbia_roundtrip_png(rgb_source, columbia_png):
    reader = ColumbiaPatches(columbia_png)
    assert len(reader) == 2 * 2 * 21 and reader.persons == [1, 2]
    for i in range(0, len(reader), 5):
        s, rec = reader[i], reader.records[i]
        image, mask, gaze = _expected_patch(rgb_source, rec.subject, rec.v, rec.h, rec.eye)
        assert s["image"].dtype == torch.uint8 and s["image"].shape == (3, 64, 64)
        assert torch.equal(s["image"], image) and torch.equal(s["mask"], mask)
        assert torch.equal(s["gaze"], gaze)  # the reader's conversion gives back the rendered gaze exactly
        assert s["person"] == rec.subject and s["side"] == rec.eye and s["landmarks"].shape == (7, 2)
        assert reader.group_of(i) == (rec.subject, 0, rec.eye)


def test_columbia_jpeg_reads_back_close(columbia_png, columbia_jpg):
    png, jpg = ColumbiaPatches(columbia_png), ColumbiaPatches(columbia_jpg)
    assert [r.path.stem for r in png.records] == [r.path.stem for r in jpg.records]
    assert all(r.path.suffix == ".jpg" for r in jpg.records)
    for i in (0, 30, 70):
        diff = (png[i]["image"].float() - jpg[i]["image"].float()).abs().mean()
        assert 0 < diff < 4.0
        assert torch.equal(png[i]["gaze"], jpg[i]["gaze"])


def _pupil_centre(sample):
    ys, xs = (sample["mask"] == 3).nonzero(as_tuple=True)
    return float(ys.float().mean()), float(xs.float().mean())


@pytest.mark.parametrize("eye", ["L", "R"])
def test_columbia_pupil_moves_with_read_gaze(columbia_png, eye):
    """Pins the sign mapping on the stored pixels, flipped right eyes included: larger read yaw →
    pupil towards column 0; larger read pitch → pupil towards row 0."""
    reader = ColumbiaPatches(columbia_png, subjects=[1])
    group = {(r.v, r.h): i for i, r in enumerate(reader.records) if r.eye == eye}
    row = sorted((reader[group[(0, h)]] for h in (-15, -10, -5, 0, 5, 10, 15)), key=lambda s: float(s["gaze"][1]))
    cols = [_pupil_centre(s)[1] for s in row]
    assert all(a > b for a, b in zip(cols, cols[1:])), cols
    if eye == "R":  # flipped: +H moves the pupil towards the last column
        assert float(reader[group[(0, 15)]]["gaze"][1]) < 0
    up, down = reader[group[(10, 0)]], reader[group[(-10, 0)]]
    assert float(up["gaze"][0]) > 0 > float(down["gaze"][0])
    assert _pupil_centre(up)[0] < _pupil_centre(down)[0]
    # the pupil pixels are the dark ones: the image agrees with the mask
    img = up["image"].float().mean(0)
    assert img[up["mask"] == 3].mean() < img[up["mask"] == 1].mean()


def test_columbia_name_parsing_and_labels():
    rec = parse_patch_name(Path("0048_2m_-30P_0V_-10H_L.jpg"))
    assert (rec.subject, rec.distance, rec.pose, rec.v, rec.h, rec.eye) == (48, "2m", -30, 0, -10, "L")
    assert parse_patch_name(Path("0048_2m_-30P_0V_-10H.jpg")) is None  # a full-face name, no eye
    np.testing.assert_allclose(columbia_gaze(10, -10, "L"), [math.radians(10), -math.radians(10)], rtol=1e-6)
    np.testing.assert_allclose(columbia_gaze(10, -10, "R"), [math.radians(10), math.radians(10)], rtol=1e-6)
    np.testing.assert_allclose(columbia_gaze(0, 10, "L", h_sign=-1), [0, -math.radians(10)], rtol=1e-6)
    # He et al.'s [H/15, V/10] (H negated for right eyes) is our (yaw/15°, pitch/10°) for both eyes
    for eye in "LR":
        g = np.degrees(columbia_gaze(-10, 5, eye))
        np.testing.assert_allclose(he_label(-10, 5, eye), [g[1] / 15, g[0] / 10], rtol=1e-6)


def test_columbia_bad_inputs(columbia_png, tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        ColumbiaPatches(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="no Columbia patches"):
        ColumbiaPatches(tmp_path / "empty")
    root = copy_of(columbia_png, tmp_path)
    shutil.copy(next(root.glob("*.png")), root / "eye_0001_left.png")
    before = snapshot(root)
    with pytest.raises(DatasetError) as err:
        ColumbiaPatches(root)
    assert "eye_0001_left.png" in str(err.value) and "0048_2m_-30P_0V_-10H_L.jpg" in str(err.value)
    assert snapshot(root) == before
    (root / "eye_0001_left.png").unlink()
    bad = root / "0001_2m_0P_0V_0H_L.png"
    bad.write_bytes(b"not a png at all")
    reader = ColumbiaPatches(root)
    i = [r.path for r in reader.records].index(bad)
    with pytest.raises(DatasetError, match="corrupt") as err:
        reader[i]
    assert str(bad) in str(err.value)
    with pytest.raises(DatasetError, match="none of subjects"):
        ColumbiaPatches(root, subjects=[51])


# -- MPIIGaze ----------------------------------------------------------------------------------------
def _unit(v):
    v = np.asarray(v, np.float64)
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


@pytest.fixture(scope="module")
def mpii_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("mpiigaze") / "MPIIGaze"
    rng = np.random.default_rng(0)
    up = _unit([0.0, -math.sin(0.3), -math.cos(0.3)])     # eye→target pointing up (−y): pitch +0.3
    right = _unit([-math.sin(0.2), 0.0, -math.cos(0.2)])  # target at −x: yaw +0.2
    ahead = _unit([0.0, 0.0, -1.0])
    images = rng.integers(0, 256, (4, 36, 60), dtype=np.uint8)
    write_normalized_day(root / "Data/Normalized/p00/day01.mat",
                         left={"image": images[:3], "gaze": np.stack([up, right, ahead]), "pose": np.zeros((3, 3))},
                         right={"image": images[3:4], "gaze": up[None], "pose": np.ones((1, 3))})  # N = 1 squeezes
    write_normalized_day(root / "Data/Normalized/p01/day02.mat",
                         left={"image": images[:1], "gaze": ahead[None], "pose": np.zeros((1, 3))},
                         right={"image": images[1:3], "gaze": np.stack([right, up]), "pose": np.zeros((2, 3))})
    return root, images


def test_mpiigaze_labels_and_signs(mpii_root):
    root, images = mpii_root
    reader = MPIIGazeNormalized(root, persons=[0])
    assert len(reader) == 4 and reader.persons == [0]
    s = [reader[i] for i in range(4)]
    assert s[0]["image"].shape == (1, 36, 60) and s[0]["image"].dtype == torch.uint8
    assert torch.equal(s[0]["image"][0], torch.from_numpy(images[0]))
    np.testing.assert_allclose(s[0]["gaze"].numpy(), [0.3, 0.0], atol=1e-6)  # up → positive pitch
    np.testing.assert_allclose(s[1]["gaze"].numpy(), [0.0, 0.2], atol=1e-6)
    np.testing.assert_allclose(s[2]["gaze"].numpy(), [0.0, 0.0], atol=1e-6)
    assert s[0]["gaze"].dtype == torch.float32 and [x["side"] for x in s] == ["L", "L", "L", "R"]
    assert torch.equal(s[3]["image"][0], torch.from_numpy(images[3])) and s[3]["pose"].tolist() == [1, 1, 1]
    both = MPIIGazeNormalized(root)
    assert len(both) == 7 and both.persons == [0, 1]
    right_only = MPIIGazeNormalized(root, eyes=("right",))
    assert len(right_only) == 3 and all(right_only.side_of(i) == "R" for i in range(3))


def test_mpiigaze_errors(mpii_root, tmp_path):
    with pytest.raises(DatasetError, match="Data/Normalized"):
        MPIIGazeNormalized(tmp_path)
    bad = tmp_path / "Data/Normalized/p03/day01.mat"
    bad.parent.mkdir(parents=True)
    bad.write_bytes(b"garbage, not MATLAB")
    with pytest.raises(DatasetError, match="corrupt") as err:
        MPIIGazeNormalized(tmp_path)
    assert str(bad) in str(err.value)


# -- CLI ---------------------------------------------------------------------------------------------
def test_cli_exports_readable_folders(tmp_path, capsys):
    out = tmp_path / "openeds"
    assert cli_main(["synth", "export", "--format", "openeds", "--out", str(out), "--persons", "3",
                     "--images-per-person", "4", "--size", "40", "64", "--no-progress"]) == 0
    assert json.loads(capsys.readouterr().out)["images"] == 12
    reader = OpenEDS(out, "train", "semantic")
    assert reader[0]["image"].shape == (1, 40, 64) and "mask" in reader[0]
    out = tmp_path / "columbia"
    assert cli_main(["synth", "export", "--format", "columbia", "--out", str(out), "--persons", "1",
                     "--no-progress"]) == 0
    patches = ColumbiaPatches(out)
    assert len(patches) == 42 and patches.records[0].path.suffix == ".jpg" and patches[0]["image"].shape == (3, 64, 64)
    capsys.readouterr()
    before = sorted(p.name for p in out.iterdir())
    # never writes into an existing dataset; a bad size is refused: one line each, nothing written
    assert cli_main(["synth", "export", "--format", "columbia", "--out", str(out), "--persons", "1", "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert "not empty" in err and len(err.splitlines()) == 1 and sorted(p.name for p in out.iterdir()) == before
    assert cli_main(["synth", "export", "--format", "columbia", "--out", str(tmp_path / "c2"), "--persons", "1",
                     "--images-per-person", "40", "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert re.search("multiple of|must be 42", err) and len(err.splitlines()) == 1 and not (tmp_path / "c2").exists()


def test_eyegen_env_opens_each_dataset_folder_and_reports_an_unusable_one_with_its_cause(
        openeds_root, columbia_jpg, mpii_root, tmp_path, monkeypatch):
    from eyegen_lib.runs.environment import environment_report, format_environment

    monkeypatch.setenv("EYEGEN_OPENEDS_DIR", str(openeds_root))
    monkeypatch.setenv("EYEGEN_COLUMBIA_DIR", str(columbia_jpg))
    monkeypatch.setenv("EYEGEN_MPIIGAZE_DIR", str(mpii_root[0]))
    report = environment_report()
    assert all(d["usable"] for d in report["datasets"].values()), report["datasets"]
    text = format_environment(report)
    openeds = next(line for line in text.splitlines() if "OpenEDS:" in line)
    assert f"found at {openeds_root}" in openeds and "semantic/train" in openeds and "labelled" in openeds
    assert "patches of 2 subjects" in text and "2 day files of 2 persons; p00: 4 eye images" in text

    empty = tmp_path / "empty"
    empty.mkdir()
    (tmp_path / "notes.txt").write_text("x")
    for var in ("EYEGEN_OPENEDS_DIR", "EYEGEN_COLUMBIA_DIR", "EYEGEN_MPIIGAZE_DIR"):
        monkeypatch.setenv(var, str(empty))
    report = environment_report()
    assert not any(d["usable"] for d in report["datasets"].values()) and all(d["found"] for d in report["datasets"].values())
    lines = format_environment(report).splitlines()
    assert any("EYEGEN_OPENEDS_DIR=" in ln and "is not usable: not an OpenEDS folder" in ln and "found: []" in ln for ln in lines)
    assert any("EYEGEN_COLUMBIA_DIR=" in ln and "no Columbia patches" in ln for ln in lines)
    assert any("EYEGEN_MPIIGAZE_DIR=" in ln and "Data/Normalized/ is missing" in ln for ln in lines)


def test_the_template_eye_sits_where_he_et_al_s_crop_puts_the_renderer_s_eyes():
    """DeepWarp's anchors on photographs (:func:`patch_landmarks`) against the renderer's landmarks of
    eyes looking ahead, cut by the same crop geometry, at both of DeepWarp's sizes."""
    from eyegen_lib.science.data.columbia import patch_landmarks
    from eyegen_lib.science.data.synthetic import SyntheticEyes, SyntheticEyeSpec

    for size in ((41, 51), (64, 64)):
        eyes = SyntheticEyes(SyntheticEyeSpec("rgb", size=size, n_persons=12, images_per_person=2, seed=3))
        landmarks = eyes.render(list(range(24)), gaze=torch.zeros(24, 2))["landmarks"]
        offset = (landmarks.mean(0) - patch_landmarks(size)).norm(dim=-1)
        assert float(offset.max()) < 0.06 * size[1] / 3.4, (size, offset)  # within 6 % of the eye's radius
        corners = patch_landmarks(size)[[0, 3]]  # on the circle the crop is 3.4 radii wide around, level
        assert torch.allclose(corners[:, 0], torch.tensor([(size[1] - 1) / 2 - size[1] / 3.4, (size[1] - 1) / 2 + size[1] / 3.4]))
        assert torch.allclose(corners[:, 1], torch.full((2,), (size[0] - 1) / 2))
