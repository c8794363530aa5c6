"""The zoo's building blocks: export for inference (fp16, model only), the MANIFEST, matching a run
in everything but length, and verifying the files (a byte altered is found)."""
from dataclasses import replace

import pytest
import torch

from eyegen_lib import get_profile
from eyegen_lib.core.checkpoint import save_checkpoint
from eyegen_lib.runs.provenance import make_provenance
from eyegen_lib.runs.zoo import (
    ZooError,
    export_entry,
    find_entry,
    length_free,
    matches,
    read_manifest,
    verify_files,
    write_manifest,
)
from eyegen_lib.science.models.gaze_estimator import GazeEstimator, GazeEstimatorConfig


@pytest.fixture
def trained(tmp_path):
    profile = get_profile("smoke")
    config = GazeEstimatorConfig.for_profile(profile)
    long = replace(config, steps=config.steps * 10)
    model = GazeEstimator(long)
    prov = make_provenance(profile=profile, seed=0, config=long, data={"source": "synthetic", "n": 3})
    path = save_checkpoint(tmp_path / "build" / "gaze_estimator_64x64.pt", kind="gaze_estimator", model=model,
                           config=long, optimizer=torch.optim.Adam(model.parameters()), step=long.steps,
                           metrics={"test_error_deg": 4.2}, provenance=prov)
    run = make_provenance(profile=profile, seed=0, config=config, data={"source": "synthetic", "n": 3})
    return path, model, prov, run, profile


def test_an_export_keeps_the_model_in_half_precision_and_matches_the_run_but_for_its_length(trained, tmp_path):
    path, model, prov, run, profile = trained
    folder = tmp_path / "zoo" / "smoke"
    entry = export_entry(path, folder, name="gaze_estimator/64x64", command="eyegen train gaze_estimator --steps 1200",
                         machine="test", wall_seconds=1.0)
    saved = torch.load(folder / path.name, weights_only=True)
    assert saved["optimizers"] == {} and set(saved["models"]) == {"model"}
    state = model.state_dict()
    for k, v in saved["models"]["model"].items():
        assert v.dtype == (torch.float16 if state[k].is_floating_point() else state[k].dtype)
        assert torch.allclose(v.float(), state[k].float(), atol=1e-3, rtol=1e-3)
    assert entry["steps"] == prov["config"]["steps"] and entry["metrics"] == {"test_error_deg": 4.2}
    assert matches(entry, run), "the zoo model is the run's model trained longer"
    assert not matches(entry, {**run, "seed": 1})
    assert not matches(entry, {**run, "config": {**run["config"], "lr": 1.0}})
    assert not matches(entry, {**run, "data": {"fingerprint": "other"}})
    assert "steps" not in length_free(run["config"])
    manifest = {"entries": [entry]}
    write_manifest(manifest, tmp_path / "zoo")
    assert read_manifest(tmp_path / "zoo")["entries"] == [entry]
    assert find_entry("gaze_estimator", "gaze_estimator/64x64", run, read_manifest(tmp_path / "zoo")) == entry
    assert find_entry("gaze_estimator", "gaze_estimator/41x51", run, manifest) is None


def test_verify_finds_a_missing_or_altered_file(trained, tmp_path):
    path, *_ = trained
    folder = tmp_path / "zoo"
    entry = export_entry(path, folder / "smoke", name="gaze_estimator/64x64", command="eyegen train gaze_estimator",
                         machine="test", wall_seconds=1.0)
    write_manifest({"entries": [entry]}, folder)
    assert verify_files(folder=folder) == []
    data = bytearray((folder / entry["file"]).read_bytes())
    data[len(data) // 2] ^= 1
    (folder / entry["file"]).write_bytes(bytes(data))
    problems = verify_files(folder=folder)
    assert len(problems) == 1 and "altered" in problems[0] and "eyegen train gaze_estimator" in problems[0]
    (folder / entry["file"]).unlink()
    assert verify_files(folder=folder) == [f"{entry['file']}: missing"]
    with pytest.raises(ZooError, match="holds models"):
        export_entry(path, folder / "smoke", name="x", models=("generator",), command="", machine="", wall_seconds=0)
    (folder / "MANIFEST.json").write_text('{"format": "other"}')
    with pytest.raises(ZooError, match="not a zoo manifest"):
        read_manifest(folder)
