"""The report explains itself: a run goes stale when a file it read changes or one it looked for
appears; it says where the data came from, on which machine, what was trained and what loaded; claims
carry the paper's value, an account when they do not hold, and a note when two are at odds."""
import json

import torch

from eyegen_lib import Recorder
from eyegen_lib.core.profiles import get_profile
from eyegen_lib.runs import registry
from eyegen_lib.runs.claim_context import PAPER_VALUES, WHY_IT_MAY_NOT_HOLD
from eyegen_lib.runs.record import RENDERER_SOURCE
from eyegen_lib.runs.staleness import stale_reasons
from eyegen_lib.suite.report import build_report


def _summary(out, *names):
    entries = [{"notebook": n, "status": "ok", "seconds": 60.0, "profile": "smoke", "seed": 0,
                "output": f"notebooks/{n}.ipynb", "finished": "2026-12-02T07:00:00+00:00"} for n in names]
    (out / "run_summary.json").write_text(json.dumps({"profile": "smoke", "seed": 0, "notebooks": entries}))


def _row(html, notebook):
    runs = html.split("<h2>Notebook runs")[1].split("</table>")[0]
    return next(r for r in runs.split("<tr") if f"<td>{notebook}</td>" in r)


def test_a_run_is_stale_once_a_file_it_read_changes_or_one_it_looked_for_appears(tmp_path):
    model, later = tmp_path / "model.pt", tmp_path / "later.pt"
    model.write_bytes(b"weights v1")
    import hashlib

    rec = Recorder("97_reader", "smoke", out=tmp_path)
    rec.artifact("model", file=str(model), sha256=hashlib.sha256(b"weights v1").hexdigest(), seed=0, profile="smoke",
                 fingerprint="f" * 16, trained_now=False)
    rec.absent("predictions/openeds/seg2eye", file=later)
    rec.produced("predictions/openeds/refiner", file=tmp_path / "own.pt", sha256="0" * 64)
    rec.absent("own", file=tmp_path / "own.pt")
    (tmp_path / "own.pt").write_bytes(b"written by the notebook itself")
    _summary(tmp_path, "97_reader")
    result = json.loads(rec.path.read_text())
    assert stale_reasons(result) == [], "nothing changed; its own output does not make it stale"
    assert "stale" not in _row(build_report(tmp_path).read_text(), "97_reader")

    model.write_bytes(b"weights v2, retrained by a later run")
    later.write_bytes(b"saved by a notebook run afterwards")
    reasons = stale_reasons(result)
    assert len(reasons) == 2
    assert "model (model.pt) was rewritten" in reasons[0]
    assert "predictions/openeds/seg2eye exists now" in reasons[1] and "leave it out" in reasons[1]
    html = build_report(tmp_path).read_text()
    row = _row(html, "97_reader")
    assert "stale" in row and "model.pt" in row and "eyegen run --only 97" in row
    assert "1 stale" in html.split("<h2>")[0]
    model.unlink()
    assert any("is gone" in r for r in stale_reasons(result))


def test_saved_predictions_note_what_was_absent_and_what_was_made(tmp_path, monkeypatch):
    monkeypatch.setenv("EYEGEN_OUTPUT_DIR", str(tmp_path))
    smoke = get_profile("smoke")
    rec = Recorder("96_evaluation", smoke, out=tmp_path)
    assert registry.load_predictions("openeds", smoke, seed=0) == {}
    absent = {a["name"] for a in json.loads(rec.path.read_text())["absent_inputs"]}
    assert absent == {"predictions/openeds/refiner", "predictions/openeds/seg2eye"}
    Recorder("95_refiner", smoke, out=tmp_path)
    path = registry.save_predictions("openeds", "refiner", torch.zeros(2, 1, 8, 8, dtype=torch.uint8), smoke, seed=0)
    made = json.loads((tmp_path / "metrics" / "95_refiner.json").read_text())["produced"]
    assert [p["file"] for p in made] == [str(path)] and len(made[0]["sha256"]) == 64
    reasons = stale_reasons(json.loads(rec.path.read_text()))
    assert len(reasons) == 1 and "predictions/openeds/refiner exists now" in reasons[0]


def test_the_report_says_data_machine_origins_and_time(tmp_path):
    rec = Recorder("97_demo", "smoke", out=tmp_path)
    rec.artifact("segmenter", file=str(tmp_path / "s.pt"), sha256="1" * 64, seed=0, profile="smoke",
                 fingerprint="a" * 16, trained_now=True, train_seconds=90.0, step=30)
    rec.artifact("gaze_gan/full", file=str(tmp_path / "g.pt"), sha256="2" * 64, seed=0, profile="cpu",
                 fingerprint="a" * 16, trained_now=False, source="zoo", step=10000)
    _summary(tmp_path, "97_demo")
    head = build_report(tmp_path).read_text().split("<h2>")[0]
    assert RENDERER_SOURCE.split(" (")[0].replace("'", "&#x27;") in head and "no licensed dataset" in head
    assert rec.data["machine"] in head and "cores" in head
    assert "1 from the model zoo, 1 trained here (1.5 min of training), 0 loaded" in head
    assert "1.0 min for the last run of each notebook" in head
    rec.data_read("OpenEDS", "/data/openeds", synthetic=False)
    assert "real data read: OpenEDS at /data/openeds" in build_report(tmp_path).read_text()


def test_claims_show_paper_values_accounts_and_tensions(tmp_path):
    rec = Recorder("03_refiner", "smoke", out=tmp_path)
    rec.claim("refiner_outputs_blurry", paper="Seg2Eye §5.1", statement="refiner outputs are blurrier than real images",
              measured={"refiner": 2.0e-3, "real": 1.0e-3, "copy top-1 reference": 1.1e-3}, holds=True, margin=1e-3)
    rec.claim("table1_shift_highest_mse_lowest_lpips", paper="He et al. Table 1", statement="shift: highest MSE",
              measured={"shifted": 550.3}, holds=True, margin=0.7)
    rec4 = Recorder("04_seg2eye", "smoke", out=tmp_path)
    rec4.claim("seg2eye_worse_score_but_sharper_than_refiner", paper="Seg2Eye §5.2", statement="Seg2Eye sharper",
               measured={"seg2eye": {"challenge_score": 0.03, "blurriness": 3.0e-3, "lpips": 0.1},
                         "refiner": {"challenge_score": 0.036, "blurriness": 2.0e-3, "lpips": 0.12},
                         "real images": {"blurriness": 1.0e-3}}, holds=False, margin=-1.0)
    html = build_report(tmp_path).read_text()
    claims = html.split("<h2>Paper claims")[1].split("<h2>Metrics")[0]
    assert PAPER_VALUES["table1_shift_highest_mse_lowest_lpips"].split(";")[0] in claims  # the paper's MSE beside ours
    assert "Likely why: " + WHY_IT_MAY_NOT_HOLD["seg2eye_worse_score_but_sharper_than_refiner"][:40] in claims
    assert claims.count("In tension with") == 2 and "not between the refiner and real images" in claims
    assert claims.count("Likely why") == 1, "a claim that holds gets no account"


def test_long_metric_dicts_fold_and_figures_enlarge(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rec = Recorder("97_demo", "smoke", out=tmp_path)
    rec.metric("per_bin", {f"bin{i}": float(i) for i in range(12)})
    rec.metric("short", {"a": 1.0})
    fig, ax = plt.subplots()
    rec.figure(fig, "f")
    html = build_report(tmp_path).read_text()
    assert html.count("<details>") == 1 and "(12 values)" in html
    assert "classList.toggle('big')" in html and "figure.big" in html


def test_executed_notebooks_become_html_pages_with_offline_math_and_the_report_links_them(tmp_path):
    import nbformat

    from eyegen_lib.suite.notebook_html import export_html

    folder = tmp_path / "notebooks"
    folder.mkdir()
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("Score: $s = \\sqrt{\\sum (p - t)^2} / (HW)$")])
    nbformat.write(nb, folder / "97_demo.ipynb")
    page = export_html(folder / "97_demo.ipynb").read_text()
    assert "mathjax/MathJax.js?config=" in page and "libs/mathjax" not in page and "\\sqrt" in page
    assert (folder / "mathjax" / "MathJax.js").is_file() and (folder / "mathjax" / "jax" / "output").is_dir()
    Recorder("97_demo", "smoke", out=tmp_path)
    _summary(tmp_path, "97_demo")
    row = _row(build_report(tmp_path).read_text(), "97_demo")
    assert "href='notebooks/97_demo.html'" in row and "href='notebooks/97_demo.ipynb'" in row


def test_every_paper_value_and_account_names_a_claim_a_notebook_records():
    """A renamed claim must not leave its paper value or account behind, silently unshown."""
    import ast
    import re
    from pathlib import Path

    import nbformat

    def pattern(first):  # a name, or an f-string whose {…} parts stand for any name part
        parts = first.values if isinstance(first, ast.JoinedStr) else [first]
        return "".join(re.escape(p.value) if isinstance(p, ast.Constant) else "[a-z_0-9]+" for p in parts)

    root = Path(__file__).parents[1]
    names = []
    for path in sorted(root.glob("notebooks/*.ipynb")):
        for cell in nbformat.read(path, as_version=4).cells:
            if cell.cell_type != "code":
                continue
            for node in ast.walk(ast.parse(cell.source)):
                if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "claim" and node.args:
                    names.append(pattern(node.args[0]))
    for path in sorted(root.glob("eyegen_lib/science/models/*/claims.py")):  # the claims a notebook records through them
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "dict":
                names += [pattern(k.value) for k in node.keywords if k.arg == "name"]
    patterns = [re.compile(f"^{n}$") for n in names]
    assert len(patterns) > 20
    for key in [*PAPER_VALUES, *WHY_IT_MAY_NOT_HOLD]:
        assert any(p.match(key) for p in patterns), f"{key!r} is no claim a notebook records"
