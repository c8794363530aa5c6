"""A model family is one object (issue 32): a toy family registered from one file plus one line trains,
is checked and is exported to the zoo and served from it through the very commands the suite's families use."""
import os
import sys
from pathlib import Path

import pytest

from eyegen_lib import get_profile
from eyegen_lib.runs.family import FAMILIES, ModelFamily, families, family
from eyegen_lib.runs.zoo import read_manifest
from eyegen_lib.suite.cli import main

PLUGINS = Path(__file__).parent / "plugins"


@pytest.fixture
def toy(monkeypatch, tmp_path):
    """The toy family registered through $EYEGEN_FAMILIES (so processes the commands start know it too)."""
    monkeypatch.syspath_prepend(str(PLUGINS))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(PLUGINS), os.environ.get("PYTHONPATH")])))
    monkeypatch.setenv("EYEGEN_FAMILIES", "toy_family")
    monkeypatch.setenv("EYEGEN_OUTPUT_DIR", str(tmp_path / "out"))
    sys.modules.pop("toy_family", None)
    yield family("toy_pupil")
    FAMILIES.pop("toy_pupil", None)
    sys.modules.pop("toy_family", None)


def test_a_toy_family_trains_checks_and_goes_through_the_zoo_by_the_suites_commands(toy, tmp_path, capsys, monkeypatch):
    assert isinstance(toy, ModelFamily) and list(families())[-1] == "toy_pupil"
    # eyegen train: the registry's artifact, with its provenance and the run's own evaluation
    assert main(["train", "toy_pupil", "--profile", "smoke", "--steps", "200", "--quiet"]) == 0
    artifact = tmp_path / "out" / "checkpoints" / "smoke" / "seed0" / "toy_pupil.pt"
    assert artifact.exists()
    model, info = toy.obtain(get_profile("smoke"), steps=200, train=False, progress=False)   # loaded, not retrained
    assert not info["trained_now"] and info["step"] == 200 and info["metrics"]["test_mse"] >= 0
    # it learned something: better than predicting every frame's pupil share as 0 %
    from toy_family import _batch, _mse  # noqa: E402  (the plugin's own helpers)

    from eyegen_lib.runs.families.common import nir_held_out

    images, masks = nir_held_out(get_profile("smoke"), 0)
    share = _batch({"image": images, "mask": masks})[1]
    assert _mse(model, images, masks) < float((share ** 2).mean())
    # eyegen train refuses a variant the family does not have, naming the family
    assert main(["train", "toy_pupil", "--profile", "smoke", "--variant", "big"]) == 2
    assert "toy_pupil has no variants" in capsys.readouterr().err

    # eyegen check: measured in its own process, which finds the family through $EYEGEN_FAMILIES
    assert main(["check", "smoke", "--only", "toy_pupil"]) == 0
    row = capsys.readouterr().out
    assert "| toy_pupil | 02 |" in row and "failed" not in row

    # eyegen zoo add, verify, and a PRETRAINED request of the profile's length served the longer-trained entry
    folder = tmp_path / "zoo"
    monkeypatch.setenv("EYEGEN_ZOO_DIR", str(folder))     # restored after the test (zoo add sets it too)
    assert main(["zoo", "add", str(artifact), "--name", "toy_pupil", "--command",
                 "eyegen train toy_pupil --profile smoke --steps 200", "--folder", str(folder)]) == 0
    entry = {e["name"]: e for e in read_manifest(folder)["entries"]}["toy_pupil"]
    assert entry["steps"] == 200 and set(entry["check"]) == {"check_mse"}
    assert main(["zoo", "verify", "--folder", str(folder)]) == 0
    monkeypatch.setenv("EYEGEN_OUTPUT_DIR", str(tmp_path / "empty"))
    _, served = toy.obtain(get_profile("smoke"), pretrained=True, train=False, progress=False)
    assert served["source"] == "zoo" and served["step"] == 200


def test_an_unknown_family_or_plugin_is_one_clear_error(monkeypatch):
    with pytest.raises(ValueError, match="unknown model 'segmentor': choose one of segmenter, refiner"):
        family("segmentor")
    monkeypatch.setenv("EYEGEN_FAMILIES", "no_such_module_here")
    with pytest.raises(ImportError, match=r"\$EYEGEN_FAMILIES names 'no_such_module_here'.*fix or unset it"):
        families()
