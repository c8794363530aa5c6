"""Provenance on every artifact, and the registry that names, checks and records them."""
import shutil
from dataclasses import dataclass

import pytest
import torch
from torch import nn

from eyegen_lib import CheckpointError, Recorder, get_profile
from eyegen_lib.runs import registry
from eyegen_lib.runs.provenance import make_provenance, provenance_differences
from eyegen_lib.science.data.recipes import data_recipe, fingerprint, identity, source_recipe
from eyegen_lib.science.protocols import nir_source, person_split, protocol_fingerprint, protocol_recipe

smoke = get_profile("smoke")


@dataclass(frozen=True)
class TinyConfig:
    width: int = 4


def tiny(width=4):
    return nn.Linear(3, width)


def prov(seed=0, width=4, data_seed=0, profile="smoke"):
    source = nir_source(get_profile(profile), seed=data_seed)
    return make_provenance(profile=profile, seed=seed, config=TinyConfig(width),
                           data=data_recipe(source, split=person_split(get_profile(profile), seed=data_seed)))


def test_fingerprints_describe_the_data_not_the_order_of_keys():
    assert fingerprint({"a": 1, "b": (2, 3)}) == fingerprint({"b": [2, 3], "a": 1})
    assert fingerprint({"a": 1}) != fingerprint({"a": 2})
    s0, s1 = nir_source(smoke, seed=0), nir_source(smoke, seed=1)
    assert source_recipe(s0)["renderer_version"] and source_recipe(s0)["spec"]["seed"] == 0
    assert fingerprint(source_recipe(s0)) != fingerprint(source_recipe(s1))
    assert prov()["data"]["fingerprint"] == prov()["data"]["fingerprint"]  # deterministic
    assert prov()["data"]["fingerprint"] != prov(data_seed=1)["data"]["fingerprint"]
    p = prov()
    assert {"profile", "seed", "config", "data", "library_version", "code_version"} <= set(p)
    assert identity(p) == identity(prov()) != identity(prov(seed=1))


def test_protocol_recipes_differ_by_seed_profile_and_task():
    fps = {protocol_fingerprint(get_profile(p), t, seed=s) for p in ("smoke", "cpu") for t in ("openeds", "redirection")
           for s in (0, 1)}
    assert len(fps) == 8
    with pytest.raises(ValueError, match="unknown protocol"):
        protocol_recipe(smoke, "columbia")


def test_differences_name_each_field():
    assert provenance_differences(prov(), prov()) == []
    diffs = provenance_differences(prov(seed=0, width=4), prov(seed=1, width=8))
    assert any(d.startswith("seed: artifact has 0, this run 1") for d in diffs)
    assert any(d.startswith("config.width") for d in diffs)
    diffs = provenance_differences(prov(), prov(data_seed=1))
    assert len(diffs) == 1 and diffs[0].startswith("data fingerprint") and "source" in diffs[0]
    assert "no provenance" in provenance_differences({}, prov())[0]


# -- the registry ----------------------------------------------------------------------------------------
def test_the_registry_declares_every_family_with_its_notebook_kind_and_request():
    from eyegen_lib.runs.family import ModelFamily, families

    assert list(families()) == ["segmenter", "refiner", "seg2eye", "deepwarp", "gaze_gan", "gaze_estimator",
                                "augmentation_estimator"]
    for name, fam in families().items():
        assert fam.name == name and fam.notebook[:2].isdigit() and fam.kind and fam.description
        assert type(fam).obtain is not ModelFamily.obtain     # each family obtains its own artifact
        assert not fam.default_variant or fam.default_variant in fam.variants
    assert registry.artifact_path("gaze_gan", smoke, seed=0, variant="no_cycle") != \
        registry.artifact_path("gaze_gan", smoke, seed=1, variant="no_cycle")
    assert registry.artifact_path("segmenter", smoke).parent.name == "seed0"
    with pytest.raises(ValueError, match="unknown artifact"):
        registry.artifact_path("segmentor", smoke)
    with pytest.raises(ValueError, match="no variant 'cfw_lcm_64x64'"):
        registry.deepwarp(smoke, "cfw_lcm_64x64")
    with pytest.raises(ValueError, match="no method 'gan'"):
        registry.prediction_path("redirection", "gan", smoke)


def test_a_missing_prerequisite_says_which_notebook_makes_it(tmp_path, monkeypatch):
    monkeypatch.setenv("EYEGEN_OUTPUT_DIR", str(tmp_path))
    with pytest.raises(CheckpointError, match="02_ranking.*SEED=3"):
        registry.segmenter(smoke, seed=3, train=False)
    with pytest.raises(CheckpointError, match="06_gaze_gan"):
        registry.gaze_gan(smoke, "no_cycle", seed=3, train=False)
    # every request refuses rather than trains (seg2eye's own training split once shadowed its train flag)
    with pytest.raises(CheckpointError, match="04_seg2eye"):
        registry.seg2eye(smoke, "full", seed=3, train=False, progress=False)
    with pytest.raises(CheckpointError, match="05_deepwarp"):
        registry.deepwarp(smoke, "cfw_lcm", seed=3, train=False, progress=False)
    with pytest.raises(CheckpointError, match="07_evaluation"):
        registry.gaze_estimator(smoke, seed=3, train=False, progress=False)
    assert not any(tmp_path.rglob("*.pt")), "a refused request trained and saved something"


def test_predictions_from_another_seed_profile_or_protocol_are_skipped_with_a_note(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("EYEGEN_OUTPUT_DIR", str(tmp_path))
    images = torch.zeros(2, 1, 4, 4, dtype=torch.uint8)
    made_by = [{"path": str(tmp_path / "m.pt"), "sha256": "0" * 64, "provenance": prov()}]
    path = registry.save_predictions("openeds", "refiner", images, smoke, seed=0, made_by=made_by)
    rec = Recorder("99_test", smoke, out=tmp_path, seed=0)
    loaded = registry.load_predictions("openeds", smoke, seed=0)
    assert list(loaded) == ["refiner"] and torch.equal(loaded["refiner"]["images"], images)
    assert loaded["refiner"]["provenance"]["made_by"][0]["identity"] == identity(prov())
    assert [a["name"] for a in rec.data["artifacts"]] == ["predictions/openeds/refiner"]

    # a file copied into another seed's (or profile's) folder is not that run's
    for seed, profile in ((1, smoke), (0, get_profile("cpu"))):
        target = registry.prediction_path("openeds", "refiner", profile, seed=seed)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, target)
        assert registry.load_predictions("openeds", profile, seed=seed) == {}
        assert "skipping refiner predictions" in capsys.readouterr().out
    # a file made on another protocol (here: the other task's data)
    data = torch.load(path, weights_only=True)
    data["provenance"]["data"]["fingerprint"] = protocol_fingerprint(smoke, "redirection")
    torch.save(data, path)
    assert registry.load_predictions("openeds", smoke, seed=0) == {}
    assert "data fingerprint" in capsys.readouterr().out
    # an old file without provenance, and a corrupt one
    torch.save({"images": images}, path)
    path.with_name("seg2eye.pt").write_bytes(b"not a torch file")
    assert registry.load_predictions("openeds", smoke, seed=0) == {}
    out = capsys.readouterr().out
    assert "no provenance" in out and "not a readable prediction file" in out


@pytest.mark.slow
def test_the_registry_trains_per_seed_and_records_what_it_used(tmp_path, monkeypatch):
    """Seed 1 in the output folder of a seed-0 run trains its own model; the record says so."""
    monkeypatch.setenv("EYEGEN_OUTPUT_DIR", str(tmp_path))
    rec = Recorder("99_test", smoke, out=tmp_path, seed=1)
    _, first = registry.segmenter(smoke, seed=0, progress=False)
    _, again = registry.segmenter(smoke, seed=0, progress=False)
    _, other = registry.segmenter(smoke, seed=1, progress=False)
    assert first["trained_now"] and not again["trained_now"] and other["trained_now"]
    assert first["path"] != other["path"] and other["provenance"]["seed"] == 1
    assert first["provenance"]["data"]["fingerprint"] != other["provenance"]["data"]["fingerprint"]
    used = {a["file"]: a for a in rec.data["artifacts"]}
    assert used[first["path"]]["trained_now"] and used[first["path"]]["seed"] == 0  # its first use: trained here
    assert used[other["path"]]["seed"] == 1 and used[other["path"]]["train_seconds"] > 0
    assert used[other["path"]]["sha256"] == other["sha256"]


def test_eyegen_run_takes_a_seed_and_refuses_a_bad_one(capsys):
    from eyegen_lib.suite.cli import build_parser

    parser = build_parser()
    assert parser.parse_args(["run", "--seed", "3", "--profile", "smoke"]).seed == 3
    assert parser.parse_args(["run"]).seed is None
    for bad in ("-1", "one"):
        with pytest.raises(SystemExit):
            parser.parse_args(["run", "--seed", bad])
        assert "--seed takes a non-negative integer" in capsys.readouterr().err
