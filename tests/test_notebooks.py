"""Every notebook in notebooks/ runs headless under the smoke profile (papermill) and its recorded
metrics are read back and checked. A notebook added later is picked up by itself.

The runs write into the session's ``$EYEGEN_OUTPUT_DIR`` (see conftest.py): nbval, which executes
the notebooks again afterwards, then finds their checkpoints and exercises the "load the
checkpoint if present" path instead of training twice."""
import os
from pathlib import Path

import pytest

from eyegen_lib.record import read_metrics
from eyegen_lib.runner import list_notebooks, run_notebook

from .notebook_expectations import EXPECTATIONS

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
        assert isinstance(c["holds"], bool) and c["measured"], f"claim {c['name']!r} lacks its measurements"
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


def test_every_notebook_has_expectations():
    missing = [p.stem for p in NOTEBOOKS if p.stem not in EXPECTATIONS]
    assert not missing, f"add checks for {missing} to tests/notebook_expectations.py"
