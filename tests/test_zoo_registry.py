"""The zoo end to end at a smoke-sized scale: `eyegen train` a model longer than its profile, `eyegen zoo
add` it (fp16, a held-out check figure), the registry serves it to a PRETRAINED run in place of training
(recorded as "zoo, N steps"), length snapshots and a constant-learning-rate snapshot filed as the
ablations' reference load, `eyegen zoo verify` passes — and fails on one altered byte, or once the run's
data changed (naming the command that rebuilds the entry)."""
import json
import os

import pytest
import torch

from eyegen_lib import get_profile
from eyegen_lib.runs import registry
from eyegen_lib.runs.record import Recorder, read_metrics
from eyegen_lib.runs.zoo import read_manifest, write_manifest
from eyegen_lib.runs.zoo_verify import verify_zoo
from eyegen_lib.suite.cli import main

GAN_CMD = "eyegen train gaze_gan --profile smoke --steps 12 --keep-at 3 6"
DW_CMD = "eyegen train deepwarp --profile smoke --variant cfw_lcm --steps 60"


@pytest.fixture(scope="module")
def zoo(tmp_path_factory):
    root = tmp_path_factory.mktemp("zoo_e2e")
    build, folder = root / "build", root / "zoo"
    old = {k: os.environ.get(k) for k in ("EYEGEN_OUTPUT_DIR", "EYEGEN_ZOO_DIR")}
    try:
        assert main(["train", "gaze_gan", "--profile", "smoke", "--steps", "12", "--keep-at", "3", "6", "--out",
                     str(build), "--quiet"]) == 0
        assert main(["train", "deepwarp", "--profile", "smoke", "--variant", "cfw_lcm", "--steps", "60", "--out",
                     str(build), "--quiet"]) == 0
        ckpts = build / "checkpoints" / "smoke" / "seed0"
        adds = [[str(ckpts / "gaze_gan_full.pt"), "--name", "gaze_gan/full", "--command", GAN_CMD],
                [str(ckpts / "gaze_gan_full.step3.pt"), "--name", "gaze_gan/full@3", "--command", GAN_CMD],
                [str(ckpts / "gaze_gan_full.step6.pt"), "--name", "gaze_gan/reference", "--as-variant", "reference",
                 "--command", GAN_CMD],
                [str(ckpts / "deepwarp_cfw_lcm.pt"), "--name", "deepwarp/cfw_lcm", "--command", DW_CMD]]
        for add in adds:
            assert main(["zoo", "add", *add, "--folder", str(folder)]) == 0
        yield folder, build
    finally:
        for k, v in old.items():
            os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)


@pytest.fixture
def serving(zoo, tmp_path, monkeypatch):
    folder, _ = zoo
    monkeypatch.setenv("EYEGEN_ZOO_DIR", str(folder))
    monkeypatch.setenv("EYEGEN_OUTPUT_DIR", str(tmp_path / "run"))
    yield folder


def test_a_pretrained_run_takes_the_zoo_entry_and_records_it(serving, tmp_path):
    profile = get_profile("smoke")
    entries = {e["name"]: e for e in read_manifest(serving)["entries"]}
    assert entries["gaze_gan/full"]["steps"] == 12 and entries["gaze_gan/full"]["half"]
    assert entries["gaze_gan/full"]["command"] == GAN_CMD and entries["gaze_gan/full"]["data_fingerprint"]
    assert {"check_mse"} == set(entries["gaze_gan/full"]["check"]) and entries["gaze_gan/full"]["wall_seconds"] > 0
    rec = Recorder("96_zoo", "smoke", out=tmp_path / "run", seed=0)
    model, info = registry.gaze_gan(profile, "full", seed=0, pretrained=True, train=False)  # train=False: it must not train
    assert info["source"] == "zoo" and info["step"] == 12 and not info["trained_now"]
    assert next(model.parameters()).dtype == torch.float32, "fp16 weights load into the fp32 model"
    _, dw = registry.deepwarp(profile, "cfw_lcm", seed=0, pretrained=True, train=False)
    assert dw["source"] == "zoo" and dw["step"] == 60
    ref_model, ref = registry.gaze_gan(profile, "reference", seed=0, pretrained=True, train=False)
    assert ref["source"] == "zoo" and ref["step"] == 6
    snaps = registry.length_snapshots("gaze_gan", profile, "full", seed=0)
    assert [s for s, _, _ in snaps] == [3]
    used = {a["name"]: a for a in read_metrics("96_zoo", out=tmp_path / "run")["artifacts"]}
    assert used["gaze_gan/full"]["source"] == "zoo" and used["gaze_gan/full"]["step"] == 12
    # another seed has no entry: it trains here, as without the zoo
    _, other = registry.deepwarp(profile, "cfw_lcm", seed=1, pretrained=True)
    assert other["source"] == "trained here"
    # RETRAIN trains here even where the zoo serves the run
    _, again = registry.deepwarp(profile, "cfw_lcm", seed=0, pretrained=True, retrain=True)
    assert again["source"] == "trained here" and again["step"] == profile.schedule("deepwarp")["steps"]


def test_verify_passes_and_fails_on_an_altered_byte_or_a_stale_entry(zoo, tmp_path, capsys):
    folder, _ = zoo
    assert verify_zoo(folder) == []
    assert main(["zoo", "verify", "--folder", str(folder)]) == 0
    assert "every zoo entry holds" in capsys.readouterr().out
    copy = tmp_path / "zoo"
    copy.mkdir()
    (copy / "smoke").mkdir()
    for e in read_manifest(folder)["entries"]:
        (copy / e["file"]).write_bytes((folder / e["file"]).read_bytes())
    (copy / "MANIFEST.json").write_text((folder / "MANIFEST.json").read_text())
    entry = next(e for e in read_manifest(copy)["entries"] if e["name"] == "deepwarp/cfw_lcm")
    data = bytearray((copy / entry["file"]).read_bytes())
    data[len(data) // 3] ^= 0x10
    (copy / entry["file"]).write_bytes(bytes(data))
    problems = verify_zoo(copy, evaluate=False)
    assert len(problems) == 1 and "altered" in problems[0] and DW_CMD in problems[0]
    assert main(["zoo", "verify", "--folder", str(copy), "--no-eval"]) == 1
    (copy / entry["file"]).write_bytes((folder / entry["file"]).read_bytes())
    # the run's data changed (as a renderer change would): no entry serves it; verify names the rebuild
    manifest = read_manifest(copy)
    for e in manifest["entries"]:
        if e["name"] == "gaze_gan/full":
            e["data_fingerprint"] = "0" * 16
    write_manifest(manifest, copy)
    problems = verify_zoo(copy, evaluate=False)
    assert len(problems) == 1 and "no longer serves its run" in problems[0] and GAN_CMD in problems[0]
    # a figure that moved (the weights are not what was measured)
    manifest = json.loads((folder / "MANIFEST.json").read_text())
    for e in manifest["entries"]:
        if e["name"] == "deepwarp/cfw_lcm":
            e["check"] = {k: 1.5 * v + 1.0 for k, v in e["check"].items()}
    (copy / "MANIFEST.json").write_text(json.dumps(manifest))
    problems = verify_zoo(copy)
    assert len(problems) == 1 and "re-evaluated" in problems[0] and DW_CMD in problems[0]


def test_the_shipped_zoo_verifies():
    """Every entry of zoo/MANIFEST.json: its sha256, loaded through the registry for its run, and its
    held-out check figure within tolerance. A renderer or config change that makes an entry stale fails
    here, naming the eyegen train command that rebuilds it."""
    from eyegen_lib.runs.zoo import zoo_dir

    entries = read_manifest(zoo_dir())["entries"]
    if not entries:
        pytest.skip("the zoo ships no entries yet")
    problems = verify_zoo(zoo_dir())
    assert problems == [], "\n".join(problems)


def test_train_pretrained_trains_its_model_on_the_zoos_upstream_model(zoo, tmp_path, monkeypatch):
    """`eyegen train --pretrained` (how the zoo's own entries are made): the augmented estimator is
    trained here on the zoo's GAN (12 steps, not the profile's 6, which is never trained), and a
    PRETRAINED run then loads that estimator, since it asks for the same GAN."""
    folder, _ = zoo
    monkeypatch.setenv("EYEGEN_ZOO_DIR", str(folder))
    out = tmp_path / "build"
    monkeypatch.setenv("EYEGEN_OUTPUT_DIR", str(out))  # eyegen train sets it; restored after the test
    assert main(["train", "augmentation_estimator", "--variant", "augmented_full", "--profile", "smoke",
                 "--pretrained", "--out", str(out), "--quiet"]) == 0
    ckpts = out / "checkpoints" / "smoke" / "seed0"
    assert (ckpts / "augmentation_estimator_augmented_full.pt").exists()
    assert not (ckpts / "gaze_gan_full.pt").exists(), "the GAN came from the zoo, not trained here"
    _, info = registry.augmentation_estimator(get_profile("smoke"), "augmented_full", seed=0, pretrained=True, train=False)
    assert info["source"] == "loaded" and info["path"].startswith(str(out))
    # without the zoo the run asks for the profile's own GAN: not this estimator
    with pytest.raises(Exception, match="gaze_gan|another run|no gaze_gan"):
        registry.augmentation_estimator(get_profile("smoke"), "augmented_full", seed=0, train=False)
    # "upstream" takes the zoo's GAN but never the zoo's entry of the model itself; a wrong value is named
    _, again = registry.augmentation_estimator(get_profile("smoke"), "augmented_full", seed=0, pretrained="upstream",
                                               train=False)
    assert again["source"] == "loaded" and again["sha256"] == info["sha256"]
    with pytest.raises(ValueError, match="pretrained='yes'.*True.*False.*'upstream'"):
        registry.gaze_gan(get_profile("smoke"), "full", seed=0, pretrained="yes", train=False)


def test_a_snapshot_filed_as_a_variant_under_another_name_is_refused(zoo, capsys):
    """`--as-variant reference` with `--name gaze_gan/full` would have replaced the full entry with the snapshot."""
    folder, build = zoo
    before = (folder / "MANIFEST.json").read_bytes()
    snapshot = build / "checkpoints" / "smoke" / "seed0" / "gaze_gan_full.step6.pt"
    code = main(["zoo", "add", str(snapshot), "--name", "gaze_gan/full", "--as-variant", "reference",
                 "--command", GAN_CMD, "--folder", str(folder)])
    err = capsys.readouterr().err
    assert code != 0 and "--name gaze_gan/reference" in err
    assert (folder / "MANIFEST.json").read_bytes() == before
