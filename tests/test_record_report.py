import json
import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from eyegen_lib import Recorder, get_profile, read_metrics  # noqa: E402
from eyegen_lib.runs.record import margin_text, spread_legend  # noqa: E402
from eyegen_lib.suite.report import build_report  # noqa: E402


def test_metrics_claims_figures_land_in_json_and_report(tmp_path):
    rec = Recorder("99_demo", "smoke", out=tmp_path)
    rec.metric("score", np.float32(0.125), unit="L2", lower_is_better=True)
    rec.metric("per_class_iou", {"pupil": torch.tensor(0.9), "iris": 0.8})
    rec.claim("a beats b", paper="X et al. §5", statement="a < b", measured={"a": 1.0, "b": 2.0}, holds=True)
    rec.claim("c beats d", paper="X et al. §6", statement="c < d", measured={"c": 3.0, "d": 2.0}, holds=False,
              note="small data", margin=-1.0, spread=0.2, spread_note="3 seeds")
    rec.claim("e beats f", paper="X et al. §7", statement="e < f", measured={"e": 1.9, "f": 2.0}, holds=True,
              margin=0.1, spread=0.2, by_length={1000: {"holds": False, "margin": -0.5}, 5000: {"holds": True, "margin": 0.3}})
    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    rec.figure(fig, "curve", "a line")
    data = read_metrics("99_demo", out=tmp_path)
    assert data["metrics"]["score"]["value"] == pytest.approx(0.125)
    assert data["metrics"]["per_class_iou"]["value"]["pupil"] == pytest.approx(0.9)
    assert [c["holds"] for c in data["claims"]] == [True, False, True]
    assert [c["state"] for c in data["claims"]] == ["holds", "fails", "inconclusive"], "a margin within the spread"
    assert data["claims"][2]["by_length"] == {"1000": {"holds": False, "margin": -0.5, "state": "fails", "measured": {}},
                                              "5000": {"holds": True, "margin": 0.3, "state": "holds", "measured": {}}}
    assert (tmp_path / data["figures"][0]["path"]).is_file()
    html = build_report(tmp_path).read_text()
    assert "99_demo" in html and "a beats b" in html
    assert "Of 3 claims, 1 hold here, 1 do not, and 1 are inconclusive" in html and "1000: ✗ · 5000: ✓" in html
    assert "+0.1 ± 0.2" in html and "3 seeds" in html
    assert "data:image/png;base64," in html


def test_rerecording_replaces_and_bad_values_are_refused(tmp_path):
    rec = Recorder("98_demo", "smoke", out=tmp_path)
    rec.claim("x", paper="p", statement="s", measured={"v": 1}, holds=False)
    rec.claim("x", paper="p", statement="s", measured={"v": 2}, holds=True)
    assert len(read_metrics("98_demo", out=tmp_path)["claims"]) == 1
    with pytest.raises(ValueError, match="spread must be"):
        rec.claim("y", paper="p", statement="s", measured={"v": 1}, holds=True, margin=0.1, spread=float("nan"))
    with pytest.raises(TypeError, match="by_length"):
        rec.claim("y", paper="p", statement="s", measured={"v": 1}, holds=True, by_length={10: {"holds": "yes"}})
    with pytest.raises(ValueError, match="non-finite"):
        rec.metric("bad", math.nan)
    with pytest.raises(TypeError, match="True or False"):
        rec.claim("y", paper="p", statement="s", measured={}, holds="yes")
    with pytest.raises(TypeError, match="cannot record"):
        rec.metric("obj", object())
    json.loads((tmp_path / "metrics" / "98_demo.json").read_text())  # still valid JSON


def test_missing_metrics_say_how_to_get_them(tmp_path):
    with pytest.raises(FileNotFoundError, match="eyegen run --only 42"):
        read_metrics("42_nothing", out=tmp_path)


def test_the_record_and_report_list_the_artifacts_a_notebook_used(tmp_path):
    rec = Recorder("97_demo", "smoke", out=tmp_path, seed=1)
    assert Recorder.current() is rec
    common = dict(seed=1, profile="smoke", fingerprint="ab12cd34ef56ab78")
    rec.artifact("segmenter", file=str(tmp_path / "segmenter.pt"), sha256="1" * 64, trained_now=True,
                 train_seconds=12.5, step=30, **common)
    rec.artifact("segmenter", file=str(tmp_path / "segmenter.pt"), sha256="1" * 64, trained_now=False, **common)
    rec.artifact("gaze_gan/full", file=str(tmp_path / "gaze_gan_full.pt"), sha256="2" * 64, trained_now=False, **common)
    rec.artifact("gaze_gan/no_cycle", file=str(tmp_path / "zoo" / "gaze_gan_no_cycle.pt"), sha256="3" * 64,
                 trained_now=False, source="zoo", step=2000, **common)
    data = read_metrics("97_demo", out=tmp_path)
    assert data["seed"] == 1
    used = {a["name"]: a for a in data["artifacts"]}
    assert set(used) == {"segmenter", "gaze_gan/full", "gaze_gan/no_cycle"}
    assert used["gaze_gan/no_cycle"]["source"] == "zoo" and used["gaze_gan/full"]["source"] == "loaded"
    assert used["segmenter"]["trained_now"] and used["segmenter"]["train_seconds"] == 12.5  # first use stands
    assert not used["gaze_gan/full"]["trained_now"] and used["gaze_gan/full"]["sha256"] == "2" * 64
    html = build_report(tmp_path).read_text()
    assert "zoo, 2000 steps" in html and "trained here (12 s), 30 steps" in html and "gaze_gan_full.pt" in html and "ab12cd34ef56ab78" in html


def test_a_claim_takes_its_measured_seed_spread_and_is_inconclusive_within_it(tmp_path, monkeypatch):
    from eyegen_lib.runs.claim_spread import PROFILE_LENGTHS, SPREAD_SDS, margins_of, write_spread

    monkeypatch.setenv("EYEGEN_ZOO_DIR", str(tmp_path / "zoo"))
    measured = margins_of({0: [("97_demo", {"name": "a", "margin": 0.10}), ("97_demo", {"name": "b", "margin": None})],
                           1: [("97_demo", {"name": "a", "margin": 0.30})],
                           2: [("97_demo", {"name": "a", "margin": 0.20})]})
    assert set(measured) == {"a"} and set(measured["a"]) == {PROFILE_LENGTHS}     # the records stated no length
    assert measured["a"][PROFILE_LENGTHS]["sd"] == pytest.approx(0.1) and measured["a"][PROFILE_LENGTHS]["mean"] == pytest.approx(0.2)
    write_spread("smoke", measured)
    rec = Recorder("95_demo", "smoke", out=tmp_path)
    rec.claim("a", paper="p", statement="s", measured={"v": 1}, holds=True, margin=0.15)  # within 2 sd = 0.2
    rec.claim("a2", paper="p", statement="s", measured={"v": 1}, holds=True, margin=0.15)  # no spread on file
    claims = {c["name"]: c for c in read_metrics("95_demo", out=tmp_path)["claims"]}
    assert claims["a"]["state"] == "inconclusive" and claims["a"]["spread"] == pytest.approx(SPREAD_SDS * 0.1)
    assert "seeds 0, 1, 2" in claims["a"]["spread_note"] and claims["a2"]["state"] == "holds"
    rec.claim("a", paper="p", statement="s", measured={"v": 1}, holds=False, margin=-0.5)  # beyond it: fails
    assert read_metrics("95_demo", out=tmp_path)["claims"][-1]["state"] == "fails"


def test_a_claims_spread_is_the_one_measured_at_its_length_and_says_so_when_none_was(tmp_path, monkeypatch):
    """Issue 31: a margin at the zoo's 4000 steps takes the spread of seeds trained 4000 steps, not the
    400-step spread; where its length was never measured it takes the nearest, and the record says so."""
    from eyegen_lib.runs.claim_spread import margins_of, read_spread, write_spread

    monkeypatch.setenv("EYEGEN_ZOO_DIR", str(tmp_path / "zoo"))
    short = {s: [("05_deepwarp", {"name": "beats_input", "margin": m, "length": "400"})] for s, m in enumerate((30, -20, 55))}
    long = {s: [("05_deepwarp", {"name": "beats_input", "margin": m, "length": "4000"})] for s, m in enumerate((27, 31, 29))}
    write_spread("cpu", margins_of(short))
    write_spread("cpu", margins_of(long))          # merged beside the 400-step spread, not over it
    assert set(read_spread("cpu")["claims"]["beats_input"]) == {"400", "4000"}
    rec = Recorder("05_deepwarp", "cpu", out=tmp_path)
    rec.claim("beats_input", paper="p", statement="s", measured={"v": 1}, holds=True, margin=27.0, length=4000)
    at_4000 = read_metrics("05_deepwarp", out=tmp_path)["claims"][-1]
    assert at_4000["state"] == "holds" and at_4000["spread"] == pytest.approx(2 * 2.0) and at_4000["length"] == "4000"
    assert at_4000["spread_length"] == "4000" and "at 4000 steps" in at_4000["spread_note"] and "not at" not in at_4000["spread_note"]
    rec.claim("beats_input", paper="p", statement="s", measured={"v": 1}, holds=True, margin=27.0, length=400)
    assert read_metrics("05_deepwarp", out=tmp_path)["claims"][-1]["state"] == "inconclusive"   # 2 sd = 75 at 400
    rec.claim("beats_input", paper="p", statement="s", measured={"v": 1}, holds=True, margin=27.0, length=1000)
    nearest = read_metrics("05_deepwarp", out=tmp_path)["claims"][-1]
    assert nearest["spread_length"] == "400" and "not at the 1000 steps its margin is at" in nearest["spread_note"]
    assert margin_text(nearest).endswith("at 1000 steps !")
    assert any("another training length" in line for line in spread_legend([nearest])[1])
    # lengths of several models, and a claim on no trained model
    rec.claim("mixed", paper="p", statement="s", measured={"v": 1}, holds=True, margin=1.0, length={"GAN": 1000, "DeepWarp": 4000})
    rec.claim("renderer", paper="p", statement="s", measured={"v": 1}, holds=True, margin=1.0, length=0)
    claims = {c["name"]: c for c in read_metrics("05_deepwarp", out=tmp_path)["claims"]}
    assert claims["mixed"]["length"] == "DeepWarp 4000 · GAN 1000" and claims["renderer"]["length"] == "untrained"
    assert margin_text(claims["renderer"]) == "+1 untrained"


def test_a_spread_grows_seed_by_seed_and_a_seed_measured_again_replaces_its_margin(tmp_path, monkeypatch):
    """Seeds trained in a later session join the spread on file instead of replacing it."""
    from eyegen_lib.runs.claim_spread import margins_of, read_spread, write_spread

    monkeypatch.setenv("EYEGEN_ZOO_DIR", str(tmp_path / "zoo"))
    claim = lambda m: [("05_deepwarp", {"name": "beats_input", "margin": m, "length": "4000"})]  # noqa: E731
    write_spread("cpu", margins_of({0: claim(27.0), 1: claim(31.0)}))
    write_spread("cpu", margins_of({1: claim(29.0), 2: claim(35.0)}))
    entry = read_spread("cpu")["claims"]["beats_input"]["4000"]
    assert entry["margins"] == {"0": 27.0, "1": 29.0, "2": 35.0}
    assert entry["sd"] == pytest.approx(4.163, abs=1e-3) and entry["mean"] == pytest.approx(91 / 3)


def test_the_seed_models_a_spread_rests_on_are_recorded_by_seed_and_name(tmp_path):
    """Issue 31: the extra seeds' models need not ship, but their MANIFEST records do; a folder holding
    another seed's model is refused rather than filed under the wrong seed."""
    from eyegen_lib.runs.claim_spread import record_seed_models, seed_models_path
    from eyegen_lib.runs.zoo import ZooError

    def zoo(name, entries):
        folder = tmp_path / name
        folder.mkdir()
        (folder / "MANIFEST.json").write_text(json.dumps({"format": "eyegen-zoo/1", "entries": entries}))
        return folder

    entry = {"name": "deepwarp/cfw_lcm", "profile": "cpu", "seed": 1, "steps": 4000, "sha256": "a" * 64,
             "command": "eyegen train deepwarp --variant cfw_lcm --steps 4000 --seed 1"}
    shipped = tmp_path / "shipped"
    assert record_seed_models("cpu", {}, folder=shipped) is None
    path = record_seed_models("cpu", {1: zoo("zoo1", [entry]),
                                      2: zoo("zoo2", [{**entry, "seed": 2, "sha256": "b" * 64}])}, folder=shipped)
    assert path == seed_models_path("cpu", shipped)
    record_seed_models("cpu", {2: zoo("zoo2b", [{**entry, "name": "deepwarp/cfw", "seed": 2}])}, folder=shipped)
    seeds = json.loads(path.read_text())["seeds"]
    assert seeds["1"]["deepwarp/cfw_lcm"]["sha256"] == "a" * 64 and seeds["1"]["deepwarp/cfw_lcm"]["steps"] == 4000
    assert set(seeds["2"]) == {"deepwarp/cfw_lcm", "deepwarp/cfw"}       # merged, not replaced
    with pytest.raises(ZooError, match="another seed"):
        record_seed_models("cpu", {3: zoo("zoo3", [entry])}, folder=shipped)


def test_a_format_1_spread_file_reads_as_the_profiles_own_lengths(tmp_path, monkeypatch):
    import json

    from eyegen_lib.runs.claim_spread import PROFILE_LENGTHS, claim_spread

    monkeypatch.setenv("EYEGEN_ZOO_DIR", str(tmp_path))
    (tmp_path / "cpu").mkdir()
    (tmp_path / "cpu" / "claim_spread.json").write_text(json.dumps({"format": "eyegen-claim-spread/1", "profile": "cpu", "claims": {
        "a": {"margins": {"0": 1.0, "1": 2.0}, "sd": 0.7, "mean": 1.5, "notebook": "02_ranking", "length": "the profile's own"}}}))
    found = claim_spread("cpu", "a", 3000)
    assert found["length"] == PROFILE_LENGTHS and found["spread"] == pytest.approx(1.4) and "not at the 3000 steps" in found["note"]


def test_rising_margin_is_the_smallest_step_and_positive_only_for_a_rising_order():
    from eyegen_lib import rising_margin

    assert rising_margin(1.0, 3.0, 3.5) == pytest.approx(0.5)
    assert rising_margin(2.0, 1.0) == pytest.approx(-1.0)
    assert rising_margin(1.0, 4.0, 2.0) == pytest.approx(-2.0)  # one falling step fails the order
    with pytest.raises(ValueError, match="two values"):
        rising_margin(1.0)


def test_the_claims_table_shows_full_statements_measured_values_and_states(tmp_path):
    rec = Recorder("94_demo", "smoke", out=tmp_path)
    long = "challenge score: the refiner beats copying the top-1 reference, which beats the mean image of its mode"
    assert len(long) > 50
    rec.claim("refiner_beats_copy", paper="Seg2Eye §5.1", statement=long,
              measured={"refiner": 0.036312345, "copy": 0.0405, "mean image": 0.05123}, holds=True, margin=0.0042,
              note="margin: the smaller gap")
    rec.claim("sharper_than_refiner", paper="Seg2Eye §5.2", statement="Seg2Eye " + "is sharper than the refiner " * 3,
              measured={"seg2eye": {"lpips": 0.21234, "blurriness": 0.0013}, "refiner": {"lpips": 0.3}},
              holds=False, margin=-0.01, spread=0.05, spread_note="3 seeds", by_length={1000: {"holds": True, "margin": 0.2}})
    table = rec.claims_table()
    assert len(table) == 2
    rows = table.frame.to_dict("records")
    assert [r["claim"] for r in rows] == ["refiner_beats_copy", "sharper_than_refiner"]
    assert rows[0]["statement"] == long and rows[1]["statement"] == "Seg2Eye " + "is sharper than the refiner " * 3
    assert rows[0]["measured"] == "refiner=0.03631, copy=0.0405, mean image=0.05123"
    assert rows[1]["measured"] == "seg2eye: lpips=0.2123, blurriness=0.0013; refiner: lpips=0.3"
    assert [r["state"] for r in rows] == ["holds", "inconclusive"]
    assert rows[0]["margin"] == "+0.0042" and rows[1]["margin"] == "-0.01 ± 0.05"
    assert rows[0]["paper"] == "Seg2Eye §5.1" and rows[1]["at other lengths"] == "1000: ✓"
    # as Jupyter and nbconvert show it: the whole statement (escaped), the values, the state; nothing cut
    html = table._repr_html_()
    assert long.replace("<", "&lt;") in html and "refiner=0.03631, copy=0.0405" in html and "lpips=0.2123" in html
    assert ">inconclusive<" in html and ">holds<" in html and "white-space:normal" in html and "..." not in html
    text = repr(table)
    assert long in text and "refiner=0.03631" in text and "inconclusive, margin -0.01 ± 0.05" in text
    assert repr(Recorder("93_demo", "smoke", out=tmp_path).claims_table()) == "No claims recorded."


def test_claims_say_does_not_hold_and_explain_the_spread_and_lengths_once_in_a_legend(tmp_path):
    from eyegen_lib.suite.report import build_report

    rec = Recorder("93_demo", "smoke", out=tmp_path)
    note = "2 sd of its margin over seeds 0, 1, 2 (the profile length)"
    for name, holds in (("x", True), ("y", False), ("z", False)):
        rec.claim(name, paper="p", statement=f"{name} holds", measured={"m": {"lpips": 0.1, "gaze": 3.0}},
                  holds=holds, margin=0.5 if holds else -0.5, spread=0.1, spread_note=note,
                  by_length={600: {"holds": holds, "margin": 0.1}})
    html = rec.claims_table()._repr_html_()
    assert ">does not hold<" in html and ">fails<" not in html
    assert html.count(note) == 1 and html.count("<sup>(a)</sup>") == 3 and "✓ holds, ✗ does not hold" in html
    assert [r["state"] for r in rec.claims_table().rows()] == ["holds", "does not hold", "does not hold"]
    claims = build_report(tmp_path).read_text().split("<h2>Paper claims")[1].split("<h2>Metrics")[0]
    assert claims.count(note) == 1 and claims.count("<sup>(a)</sup>") == 3 and "✓ holds, ✗ does not hold" in claims
    # nested measured values as a small table (method × metric), not flattened into text
    assert "<table class='mini'><tr><th></th><th>lpips</th><th>gaze</th></tr><tr><th>m</th><td>0.1</td><td>3</td>" in claims


def test_a_notebook_s_claims_table_shows_the_paper_s_value_beside_ours_and_the_data_it_was_measured_on(tmp_path):
    from eyegen_lib.runs.claim_context import PAPER_VALUES

    rec = Recorder("94_demo", get_profile("smoke").with_data("columbia"), out=tmp_path)
    rec.claim("gan_beats_deepwarp_lpips", paper="He et al. §5.3", statement="the GAN below DeepWarp",
              measured={"GAN": 0.05, "DeepWarp": 0.04}, holds=False, margin=-0.01)
    rec.claim("ours_only", paper="ours", statement="no paper value", measured={"x": 1.0}, holds=True, margin=1.0)
    rows = rec.claims_table().rows()
    assert rows[0]["paper's value"] == PAPER_VALUES["gan_beats_deepwarp_lpips"] and rows[1]["paper's value"] == ""
    assert [r["measured on"] for r in rows] == ["columbia", "columbia"]
    html, text = rec.claims_table()._repr_html_(), repr(rec.claims_table())
    assert "Columbia Gaze, Fig. 5a" in html and "on columbia" in html
    assert "the paper: " + PAPER_VALUES["gan_beats_deepwarp_lpips"] in text and "measured on columbia: GAN=0.05" in text


def test_eyegen_claims_lists_every_claim_with_its_spread_seeds_and_length_and_what_changed(tmp_path, monkeypatch, capsys):
    """Issue 31: one table of all claims — state, margin, spread, the seeds and length the spread was
    measured at — and, against an earlier run, each claim's state there."""
    from eyegen_lib.runs.claim_spread import margins_of, write_spread
    from eyegen_lib.suite.cli import main

    monkeypatch.setenv("EYEGEN_ZOO_DIR", str(tmp_path / "zoo"))
    write_spread("cpu", margins_of({s: [("05_deepwarp", {"name": "beats_input", "margin": m, "length": "400"})]
                                    for s, m in enumerate((30, -20, 55))}))
    write_spread("cpu", margins_of({s: [("05_deepwarp", {"name": "beats_input", "margin": m, "length": "4000"})]
                                    for s, m in enumerate((27, 31, 29, 30, 28))}))
    old, new = tmp_path / "old", tmp_path / "new"
    before = Recorder("05_deepwarp", "cpu", out=old)
    before.claim("beats_input", paper="p", statement="s", measured={"v": 1}, holds=True, margin=27.0, length=400)
    after = Recorder("05_deepwarp", "cpu", out=new)
    after.claim("beats_input", paper="p", statement="s", measured={"v": 1}, holds=True, margin=27.0, length=4000)
    after.claim("order", paper="p", statement="s", measured={"v": 1}, holds=False, margin=-3.0, length=1000)
    assert main(["claims", "--out", str(new), "--against", str(old), "--markdown"]) == 0
    text = capsys.readouterr().out
    rows = {line.split(" | ")[1]: [cell.strip() for cell in line.strip("| ").split(" | ")]
            for line in text.splitlines() if line.startswith("| 05_deepwarp")}
    # notebook, claim, state, before, margin, spread, length, spread measured at, seeds
    assert rows["beats_input"][2:] == ["holds", "inconclusive +27", "+27", "3.2", "4000", "4000", "0–4"]
    assert rows["order"][2:] == ["does not hold", "new", "-3", "—", "1000", "—", "—"]
    assert "2 claims: 1 hold, 1 do not hold, 0 inconclusive; 2 changed state" in text
    assert main(["claims", "--out", str(tmp_path / "nowhere")]) == 2
    assert "no metrics/ folder" in capsys.readouterr().err


def test_eyegen_zoo_spread_prints_each_claims_spread_over_the_seeds_on_file_and_this_run(tmp_path, monkeypatch, capsys):
    """A run of seed 3 alone joins seeds 0–2 on file; what it prints is the spread over all four."""
    from eyegen_lib.runs.claim_spread import margins_of, write_spread
    from eyegen_lib.suite import zoo_cli
    from eyegen_lib.suite.cli import main

    monkeypatch.setenv("EYEGEN_ZOO_DIR", str(tmp_path / "zoo"))
    claim = lambda m: [("05_deepwarp", {"name": "beats_input", "margin": m, "length": "4000"})]  # noqa: E731
    write_spread("cpu", margins_of({0: claim(27.0), 1: claim(31.0), 2: claim(29.0)}))

    def fake_measure(profile, seeds, **kw):     # the notebooks' run of seed 3, without running them
        measured = margins_of({s: claim(33.0) for s in seeds})
        return write_spread(profile, measured), measured

    monkeypatch.setattr(zoo_cli, "measure_spread", fake_measure)
    assert main(["zoo", "spread", "--seeds", "3", "--only", "05", "--out", str(tmp_path / "runs")]) == 0
    out = capsys.readouterr().out
    assert "seed 0 +27, seed 1 +31, seed 2 +29, seed 3 +33" in out and "sd 2.58" in out
