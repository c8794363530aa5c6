"""Records survive a failed write, and a failed notebook says why.

A full disk or an unwritable folder must never leave a record empty or half-written: every record
goes through one atomic writer, and the CLI reports such a failure in one line. A notebook that
fails is summarised by the exception raised inside it, and the report marks its older claims as not
current."""
import errno
import json
import os
import subprocess
import sys
import textwrap

import pytest

from eyegen_lib import Recorder
from eyegen_lib.core.files import WriteError, atomic_write_json, atomic_write_text
from eyegen_lib.suite.report import build_report
from eyegen_lib.suite.runner import failure_cause


def _full_disk(monkeypatch):
    def fsync(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    monkeypatch.setattr(os, "fsync", fsync)


def test_a_full_disk_keeps_the_earlier_record_whole_and_says_so_in_one_line(tmp_path, monkeypatch):
    path = tmp_path / "run_summary.json"
    atomic_write_json(path, {"notebooks": ["01", "02"]})
    before = path.read_bytes()
    _full_disk(monkeypatch)
    with pytest.raises(WriteError) as err:
        atomic_write_json(path, {"notebooks": ["01", "02", "03"]})
    message = str(err.value)
    assert "\n" not in message and str(path) in message and "No space left" in message and "--out" in message
    assert path.read_bytes() == before, "the earlier record must be untouched"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run_summary.json"], "the temporary file is removed"


def test_a_real_write_refused_by_the_kernel_keeps_the_earlier_record(tmp_path):
    """Not a mocked fsync: the kernel itself refuses the bytes. A process whose file-size limit
    (``RLIMIT_FSIZE``) the record outgrows gets EFBIG from ``write`` — as a full disk gives ENOSPC —
    and the record written before it must survive whole, with one line saying what happened."""
    script = textwrap.dedent("""
        import resource, signal, sys
        from eyegen_lib.runs.record import Recorder
        rec = Recorder("97_demo", "smoke", out=sys.argv[1], seed=0)
        rec.metric("score", 1.5)
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # past the limit, write fails with EFBIG instead of killing
        resource.setrlimit(resource.RLIMIT_FSIZE, (16384, 16384))
        try:
            rec.metric("per_image", {str(i): float(i) for i in range(3000)})
        except OSError as exc:
            print(exc)
    """)
    out = tmp_path / "out"
    run = subprocess.run([sys.executable, "-c", script, str(out)], capture_output=True, text=True, timeout=120)
    lines = run.stdout.strip().splitlines()
    record = out / "metrics" / "97_demo.json"
    assert len(lines) == 1 and lines[0].startswith(f"could not write {record}: File too large"), run.stdout + run.stderr
    assert "the earlier file is kept" in lines[0] and "ulimit" in lines[0]
    kept = json.loads(record.read_text())
    assert "score" in kept["metrics"] and "per_image" not in kept["metrics"]
    assert [p.name for p in record.parent.iterdir()] == ["97_demo.json"], "the temporary file is removed"


def test_data_that_cannot_be_serialised_leaves_the_file_as_it_was(tmp_path):
    path = atomic_write_text(tmp_path / "r.json", "{}\n")
    with pytest.raises(TypeError):
        atomic_write_json(path, {"x": object()})
    assert path.read_text() == "{}\n" and len(list(tmp_path.iterdir())) == 1


def test_a_recorder_on_a_full_disk_keeps_its_earlier_claims(tmp_path, monkeypatch):
    rec = Recorder("97_demo", "smoke", out=tmp_path)
    rec.metric("score", 1.5)
    saved = rec.path.read_text()
    _full_disk(monkeypatch)
    with pytest.raises(WriteError):
        rec.metric("other", 2.0)
    assert json.loads(rec.path.read_text()) == json.loads(saved)


def test_the_cli_prints_one_line_when_a_record_cannot_be_written(tmp_path, monkeypatch, capsys):
    from eyegen_lib.suite import cli, runner

    def run_notebooks(*args, **kwargs):
        atomic_write_json(tmp_path / "out" / "run_summary.json", {})
    monkeypatch.setattr(runner, "run_notebooks", run_notebooks)
    _full_disk(monkeypatch)
    code = cli.main(["run", "--profile", "smoke", "--out", str(tmp_path / "out"), "--only", "00"])
    err = capsys.readouterr().err.strip()
    assert code == 1 and len(err.splitlines()) == 1 and err.startswith("eyegen run: error: could not write")


def test_a_failed_notebook_is_summarised_by_the_exception_raised_inside_it():
    from papermill.exceptions import PapermillExecutionError

    exc = PapermillExecutionError(3, 3, "load()", "DatasetError",
                                  "not an OpenEDS folder: /data/empty (found: [])\nfix: pass the folder that holds train/",
                                  ["Traceback …"])
    cause = failure_cause(exc)
    assert cause.startswith("DatasetError: not an OpenEDS folder: /data/empty (found: [])")
    assert "fix: pass the folder" in cause and "\n" not in cause
    assert failure_cause(RuntimeError("x" * 2000)).endswith("…") and len(failure_cause(RuntimeError("x" * 2000))) <= 600


def test_the_report_marks_claims_of_a_notebook_whose_latest_run_failed_as_not_current(tmp_path):
    rec = Recorder("97_demo", "smoke", out=tmp_path)
    rec.claim("demo_claim", paper="§1", statement="a holds", measured={"a": 1.0}, holds=True, margin=1.0)
    rec.data["updated"] = "2026-12-01T07:00:00+00:00"  # written by yesterday's run
    atomic_write_json(rec.path, rec.data)
    entry = {"notebook": "97_demo", "status": "failed", "seconds": 5.0, "profile": "smoke", "seed": 0,
             "output": "notebooks/97_demo.ipynb", "finished": "2026-12-02T07:00:00+00:00",
             "error": "DatasetError: not an OpenEDS folder"}
    atomic_write_json(tmp_path / "run_summary.json", {"profile": "smoke", "seed": 0, "notebooks": [entry]})
    claims = build_report(tmp_path).read_text().split("<h2>Paper claims")[1].split("<h2>Metrics")[0]
    assert "not current</span>: from an earlier run (2026-12-01T07:00:00+00:00); the latest run failed " \
           "(DatasetError: not an OpenEDS folder)" in claims
    entry["status"] = "ok"
    atomic_write_json(tmp_path / "run_summary.json", {"profile": "smoke", "seed": 0, "notebooks": [entry]})
    assert "not current" not in build_report(tmp_path).read_text()
