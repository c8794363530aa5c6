"""`eyegen` answers a bad argument with one line saying what is wrong and what is valid, before any
work starts and without creating anything."""
import os

import pytest

from eyegen_lib import __version__
from eyegen_lib.suite.cli import main
from eyegen_lib.suite.runner import list_notebooks


def _run(capsys, *argv):
    code = main(list(argv))
    err = capsys.readouterr().err.strip()
    return code, err


def test_only_matches_numbers_and_names_exactly():
    assert [p.stem for p in list_notebooks(["04"])] == ["04_seg2eye"]
    assert [p.stem for p in list_notebooks(["4"])] == ["04_seg2eye"], "a number without its leading zero"
    assert [p.stem for p in list_notebooks(["refiner", "01_dataset"])] == ["01_dataset", "03_refiner"]
    assert [p.stem for p in list_notebooks(["0"])] == ["00_setup"], "a number, not a substring of all nine"
    with pytest.raises(ValueError, match="unknown notebook '9'"):
        list_notebooks(["9"])


@pytest.mark.parametrize("only", ["zz", "9", "seg"])
def test_unknown_notebook_is_one_line_and_creates_nothing(tmp_path, capsys, only):
    out = tmp_path / "out"
    code, err = _run(capsys, "run", "--profile", "smoke", "--only", only, "--out", str(out))
    assert code == 2 and len(err.splitlines()) == 1
    assert f"unknown notebook {only!r}" in err and "01_dataset" in err and "08_augmentation" in err
    assert not out.exists()


def test_out_naming_a_file_is_refused(tmp_path, capsys):
    target = tmp_path / "a_file"
    target.write_text("keep me")
    code, err = _run(capsys, "run", "--profile", "smoke", "--only", "01", "--out", str(target / "sub"))
    assert code == 2 and "is a file" in err and len(err.splitlines()) == 1
    code, err = _run(capsys, "run", "--profile", "smoke", "--only", "01", "--out", str(target))
    assert code == 2 and "is a file, not a folder" in err
    assert target.read_text() == "keep me"


def test_unwritable_out_is_refused_before_running(tmp_path, capsys, monkeypatch):
    locked = tmp_path / "locked"
    locked.mkdir()
    real_access = os.access
    # root may write anywhere, so the permission is simulated: the check must ask os.access
    monkeypatch.setattr(os, "access", lambda p, mode: False if os.fspath(p) == os.fspath(locked) else real_access(p, mode))
    code, err = _run(capsys, "run", "--profile", "smoke", "--only", "01", "--out", str(locked / "run"))
    assert code == 2 and "not writable" in err
    assert not (locked / "run").exists()


def test_help_names_every_profile_and_prints_no_rest_markup(capsys):
    from eyegen_lib.core.profiles import PROFILES

    for argv in (["train", "--help"], ["synth", "export", "--help"]):
        with pytest.raises(SystemExit):
            main(argv)
        out = capsys.readouterr().out
        assert "``" not in out, argv
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    assert " | ".join(PROFILES) in capsys.readouterr().out


def test_a_fractional_timeout_is_a_timeout():
    from eyegen_lib.suite.cli import build_parser

    assert build_parser().parse_args(["run", "--timeout", "0.5"]).timeout == 0.5


@pytest.mark.parametrize("argv, message", [
    (["run", "--profile", "huge"], "invalid choice: 'huge'"),
    (["run", "--timeout", "0"], "positive number of seconds"),
    (["run", "--timeout", "soon"], "positive number of seconds, got 'soon'"),
    (["run", "--seed", "-1"], "non-negative integer"),
])
def test_bad_options_exit_2_with_the_valid_values(capsys, argv, message):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1, "one line, no usage block"


@pytest.mark.parametrize("argv, message", [
    (["train", "nosuch"], "unknown model 'nosuch': choose one of segmenter"),
    (["train", "segmenter", "--profile", "huge"], "unknown profile 'huge': choose one of smoke"),
    (["check", "smoke", "--only", "nosuch"], "unknown model 'nosuch': choose from segmenter"),
    (["check", "smoke", "--max-batch", "-1"], "takes a whole number ≥ 1, got -1"),
    (["synth", "export", "--format", "mat", "--out", "{tmp}/export"], "invalid choice: 'mat' (choose from 'openeds', 'columbia', 'mpiigaze')"),
    (["synth", "export", "--format", "openeds", "--out", "{tmp}/export", "--persons", "0"], "takes a whole number ≥ 1"),
    (["report", "--out", "{tmp}/export"], "holds no recorded run"),
    (["list", "--only", "zz"], "unknown notebook 'zz'"),
    (["notebooks", "refresh", "--only", "zz"], "unknown notebook 'zz'"),
    (["zoo", "add"], "the following arguments are required"),
    (["env", "--bogus"], "unrecognized arguments: --bogus"),
    (["zoo", "verify", "--profile", "x"], "eyegen zoo verify: error: unrecognized arguments: --profile x; see eyegen zoo verify --help"),
    (["run", "--only", "06", "--set", "ABLATIONS=[no_gaze]", "--out", "{tmp}/run"], "the value of ABLATIONS is not JSON"),
    (["run", "--only", "06", "--set", "ABLATIONS", "--out", "{tmp}/run"], "takes NAME=VALUE"),
    (["run", "--only", "05", "--set", "ABLATIONS=[]", "--out", "{tmp}/run"],
     "no notebook of this run has a parameter ABLATIONS; theirs: RETRAIN, VARIANTS"),
    (["run", "--only", "06", "--set", "PRETRAINED=false", "--out", "{tmp}/run"], "has its own option (--no-pretrained)"),
])
def test_every_subcommand_answers_a_bad_argument_with_one_line_and_creates_nothing(tmp_path, capsys, argv, message):
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code
    err = capsys.readouterr().err.strip()
    assert code == 2 and message in err and len(err.splitlines()) == 1, err
    assert list(tmp_path.iterdir()) == [], "nothing created"


def test_synth_export_onto_a_file_is_refused_and_the_file_kept(tmp_path, capsys):
    target = tmp_path / "a_file"
    target.write_text("keep me")
    code, err = _run(capsys, "synth", "export", "--format", "openeds", "--out", str(target), "--no-progress")
    assert code == 2 and "is a file" in err and len(err.splitlines()) == 1 and target.read_text() == "keep me"


@pytest.mark.parametrize("size", [("0", "0"), ("-3", "64")])
def test_synth_export_of_an_impossible_size_is_one_line_and_writes_nothing(tmp_path, capsys, size):
    out = tmp_path / "export"
    code, err = _run(capsys, "synth", "export", "--format", "openeds", "--out", str(out), "--size", *size, "--no-progress")
    assert code == 2 and "size must be (rows, cols)" in err and len(err.splitlines()) == 1, err
    assert not out.exists(), "nothing written, so a retry with a good size works"


def test_every_option_has_help_text():
    import argparse

    from eyegen_lib.suite.cli import build_parser

    def silent(parser, path):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    yield from silent(sub, f"{path} {name}")
            elif not isinstance(action, (argparse._HelpAction, argparse._VersionAction)) and not action.help:
                yield f"{path} {'/'.join(action.option_strings) or action.dest}"

    assert list(silent(build_parser(), "eyegen")) == []


def test_list_shows_every_notebooks_card_and_its_time_limit(capsys):
    from eyegen_lib.suite.cards import CARDS

    assert set(CARDS) == {p.stem for p in list_notebooks()}, "every notebook has a card"
    assert main(["list", "--profile", "cpu"]) == 0
    out = capsys.readouterr().out
    for name in CARDS:
        assert name in out and f"eyegen run --only {name[:2]}" in out
    assert out.count("Reproduces:") == len(CARDS) and "Time limit:" in out and "with the zoo" in out


def test_version(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0 and capsys.readouterr().out.strip() == f"eyegen {__version__}"


def test_env_is_readable_and_json_on_request(capsys, monkeypatch, tmp_path):
    import json

    monkeypatch.setenv("EYEGEN_MPIIGAZE_DIR", str(tmp_path / "missing"))
    monkeypatch.delenv("EYEGEN_OPENEDS_DIR", raising=False)
    assert main(["env"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("python ") and "device " in text
    assert "EYEGEN_MPIIGAZE_DIR=" in text and "is not a folder" in text
    assert "OpenEDS: not set" in text
    assert main(["env", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["datasets"]["MPIIGaze"]["found"] is False and "torch" in data["versions"]


def test_two_partial_runs_into_one_folder_report_both(tmp_path):
    import json

    from eyegen_lib.suite.runner import run_notebooks

    out = tmp_path / "out"
    first = run_notebooks("smoke", only=["00"], out=out)
    second = run_notebooks("smoke", only=["01"], out=out, seed=0)
    assert first["ran"] == ["00_setup"] and second["ran"] == ["01_dataset"]
    summary = json.loads((out / "run_summary.json").read_text())
    assert [n["notebook"] for n in summary["notebooks"]] == ["00_setup", "01_dataset"]
    assert all(n["status"] == "ok" and n["profile"] == "smoke" and n["finished"] for n in summary["notebooks"])
    report = (out / "report.html").read_text()
    assert "00_setup" in report and "01_dataset" in report
    assert report.count("not run") == len(list_notebooks()) - 2  # 02–08, each with the command that runs it
    assert "eyegen run --only 08" in report


def test_the_claim_spread_seed_queue_refuses_a_bad_call_before_training(tmp_path):
    """benchmarks/claim_spread_seeds.sh (issue 31's seed queue): usage and an unknown group stop it at once."""
    import subprocess
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "benchmarks" / "claim_spread_seeds.sh"
    bare = subprocess.run(["bash", str(script)], capture_output=True, text=True)
    assert bare.returncode == 2 and "usage:" in bare.stderr
    odd = subprocess.run(["bash", str(script), str(tmp_path / "spread"), "resnet", "1"], capture_output=True, text=True,
                         env={**os.environ, "EG": "/nonexistent/eyegen"})
    assert odd.returncode == 2 and "unknown GROUP resnet" in odd.stderr
    assert not (tmp_path / "spread").exists(), "nothing created"


def test_each_notebook_kernel_has_sockets_of_its_own_outside_the_checkout():
    """Two `eyegen run`s from one checkout took each other's kernel-ipc-N sockets in the working folder."""
    from eyegen_lib.suite.runner import _ipc_kernel_manager

    made = _ipc_kernel_manager()
    first, second = made(), made()
    assert first.transport == second.transport == "ipc"
    assert os.path.dirname(first.ip) != os.path.dirname(second.ip) and os.path.isdir(os.path.dirname(first.ip))
    assert not first.ip.startswith(os.getcwd())
