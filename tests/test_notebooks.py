"""Every notebook in notebooks/ runs headless under the smoke profile (papermill) and its recorded
metrics are read back and checked. A notebook added later is picked up by itself.

The runs write into the session's ``$EYEGEN_OUTPUT_DIR`` (see conftest.py): nbval, which executes
the notebooks again afterwards, then finds their checkpoints and exercises the "load the
checkpoint if present" path instead of training twice."""
import json
import os
from pathlib import Path

import pytest

from eyegen_lib.runs.record import read_metrics
from eyegen_lib.suite.runner import list_notebooks, run_notebook

from .notebook_expectations import EXPECTATIONS, check_claim

NOTEBOOKS = list_notebooks(folder=Path(__file__).resolve().parents[1] / "notebooks")


@pytest.mark.slow
@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_in_smoke_and_records_metrics(notebook):
    out = Path(os.environ["EYEGEN_OUTPUT_DIR"])
    run_notebook(notebook, "smoke", out)
    data = read_metrics(notebook.stem, out=out)
    assert data["profile"] == "smoke"
    assert data["metrics"], f"{notebook.name} recorded no metric"
    for c in data["claims"]:
        # every claim says by how much it holds or fails, so its seed spread can make it inconclusive
        assert c["margin"] is not None, f"claim {c['name']!r} records no margin"
        check_claim(c)
    check = EXPECTATIONS.get(notebook.stem)
    if check is not None:
        check(data)


def test_every_notebook_has_a_tagged_parameters_cell():
    import nbformat

    for nb_path in NOTEBOOKS:
        nb = nbformat.read(nb_path, as_version=4)
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert code and "parameters" in code[0].metadata.get("tags", []), f"{nb_path.name}: first code cell must be tagged 'parameters'"
        assert "PROFILE" in code[0].source, f"{nb_path.name}: the parameters cell must define PROFILE"
        assert not any("sys.path" in c.source for c in code), f"{nb_path.name}: import the installed eyegen_lib, no sys.path edits"
        # nbformat 4.5 wants a unique id on every cell (papermill warns on each run otherwise)
        ids = [c.get("id") for c in json.loads(nb_path.read_text())["cells"]]
        assert all(ids) and len(set(ids)) == len(ids), f"{nb_path.name}: every cell needs its own id (nbformat.validator.normalize)"


def test_notebooks_ask_the_registry_for_artifacts_and_never_build_their_file_names():
    import nbformat

    for nb_path in NOTEBOOKS:
        code = "\n".join(c.source for c in nbformat.read(nb_path, as_version=4).cells if c.cell_type == "code")
        for banned in (".pt\"", ".pt'", "checkpoint_dir", "torch.load", "torch.save", "load_or_train", "/ \"checkpoints"):
            assert banned not in code, f"{nb_path.name} uses {banned!r}: ask eyegen_lib.runs.registry for the artifact instead"
        assert "seed=SEED" in code.split("eg.Recorder(", 1)[-1].split(")", 1)[0] + ")" or "Recorder" not in code, \
            f"{nb_path.name}: give the Recorder the run's seed (eg.Recorder(name, profile, seed=SEED))"


def test_every_model_request_in_a_notebook_passes_its_pretrained_parameter():
    """Taking the zoo is a request's own argument (no process-wide switch): a request that forgot it
    would train for an hour at cpu where the zoo serves the run, and no smoke run would notice."""
    import ast

    import nbformat

    from eyegen_lib.runs import registry

    builders = set(registry.families()) | {"protocol_deepwarp"}
    for nb_path in NOTEBOOKS:
        nb = nbformat.read(nb_path, as_version=4)
        code = [c.source for c in nb.cells if c.cell_type == "code"]
        calls = [node for src in code for node in ast.walk(ast.parse(src))
                 if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in builders
                 and isinstance(node.func.value, ast.Name) and node.func.value.id == "registry"]
        for call in calls:
            given = {k.arg: k.value for k in call.keywords}
            assert isinstance(given.get("pretrained"), ast.Name) and given["pretrained"].id == "PRETRAINED", \
                f"{nb_path.name}: registry.{call.func.attr}(…) must pass pretrained=PRETRAINED (line {call.lineno} of its cell)"
        if calls:
            assert "PRETRAINED" in code[0], f"{nb_path.name}: its parameters cell must define PRETRAINED"


def test_every_notebook_has_expectations():
    missing = [p.stem for p in NOTEBOOKS if p.stem not in EXPECTATIONS]
    assert not missing, f"add checks for {missing} to tests/notebook_expectations.py"


@pytest.mark.slow
def test_a_seed_1_run_in_the_folder_of_a_seed_0_run_trains_and_records_its_own_models():
    """Nothing made for seed 0 serves seed 1: 07 trains its own models, skips a seed-0 prediction
    file put where it looks, records seed 1 on every artifact, and leaves seed 0's files alone."""
    import shutil

    from eyegen_lib import get_profile
    from eyegen_lib.core.checkpoint import file_sha256
    from eyegen_lib.runs import registry

    out = Path(os.environ["EYEGEN_OUTPUT_DIR"])
    notebook = next(p for p in NOTEBOOKS if p.stem == "07_evaluation")
    if not (out / "metrics" / "07_evaluation.json").is_file() or read_metrics("07_evaluation", out=out).get("seed") != 0:
        run_notebook(notebook, "smoke", out)
    seed0 = read_metrics("07_evaluation", out=out)
    assert seed0["artifacts"] and all(a["seed"] == 0 for a in seed0["artifacts"])
    before = {a["file"]: file_sha256(a["file"]) for a in seed0["artifacts"]}

    smoke = get_profile("smoke")
    planted = registry.prediction_path("redirection", "deepwarp", smoke, seed=1)
    planted.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(registry.prediction_path("redirection", "deepwarp", smoke, seed=0), planted)

    executed = run_notebook(notebook, "smoke", out, parameters={"SEED": 1})
    data = read_metrics("07_evaluation", out=out)
    assert data["seed"] == 1 and data["artifacts"]
    for a in data["artifacts"]:
        assert a["seed"] == 1 and "seed1" in Path(a["file"]).parts, a
        assert a["trained_now"] and a["train_seconds"] > 0, f"{a['name']} must be trained for seed 1, not loaded"
    assert not any(a["name"].startswith("predictions/") for a in data["artifacts"])
    assert "skipping deepwarp predictions" in executed.read_text()
    assert {f: file_sha256(f) for f in before} == before, "seed 0's artifacts must be left as they were"
