"""``eyegen train``: every model family survives a SIGKILL (resuming bit-identical) and trains
data-parallel under torchrun (disjoint shards, identical replicas, one writer)."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

EYEGEN = str(Path(sys.executable).with_name("eyegen"))

# family → (extra arguments, the artifact's file name): a few smoke steps each
FAMILIES = {
    "segmenter": ([], "segmenter.pt"),
    "refiner": ([], "refiner.pt"),
    "seg2eye": (["--ablation", "full"], "seg2eye_full.pt"),
    "deepwarp": (["--variant", "cfw_lcm"], "deepwarp_cfw_lcm.pt"),
    "gaze_gan": (["--ablation", "full"], "gaze_gan_full.pt"),
    "gaze_estimator": (["--variant", "64x64"], "gaze_estimator_64x64.pt"),
    "augmentation_estimator": (["--variant", "oracle"], "augmentation_estimator_oracle.pt"),
}
STEPS, SAVE_EVERY, KILL_AT = 8, 3, 5  # saved at 3, killed after 5: the resume redoes steps 4 and 5


def _env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "EYEGEN_PROFILE")}
    env.update(OMP_NUM_THREADS="1", **extra)
    return env


def _train(out: Path, model: str, *args: str, env: dict | None = None, launcher: list[str] | None = None):
    cmd = (launcher or [EYEGEN]) + ["train", model, "--profile", "smoke", "--steps", str(STEPS), "--save-every",
                                    str(SAVE_EVERY), "--out", str(out), "--quiet", *args]
    return subprocess.run(cmd, env=env or _env(), capture_output=True, text=True, timeout=600)


def _folder(out: Path) -> Path:
    return out / "checkpoints" / "smoke" / "seed0"


@pytest.fixture(scope="module")
def segmenter_outputs(tmp_path_factory) -> Path:
    """An output folder holding the smoke segmenter (the refiner's prerequisite), trained once."""
    out = tmp_path_factory.mktemp("with-segmenter")
    proc = subprocess.run([EYEGEN, "train", "segmenter", "--profile", "smoke", "--out", str(out), "--quiet"],
                          env=_env(), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return out


def _fresh(tmp_path: Path, name: str, family: str, segmenter_outputs: Path) -> Path:
    out = tmp_path / name
    if family == "refiner":
        shutil.copytree(segmenter_outputs, out)
    return out


def _weights(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)["models"]["model"]


@pytest.mark.slow
@pytest.mark.parametrize("family", list(FAMILIES))
def test_a_killed_training_resumes_bit_identical(family, tmp_path, segmenter_outputs):
    args, artifact = FAMILIES[family]
    straight = _fresh(tmp_path, "straight", family, segmenter_outputs)
    proc = _train(straight, family, *args)
    assert proc.returncode == 0, proc.stderr[-3000:]

    killed = _fresh(tmp_path, "killed", family, segmenter_outputs)
    proc = _train(killed, family, *args, env=_env(EYEGEN_KILL_AT_STEP=str(KILL_AT)))
    assert proc.returncode == -9, f"expected a SIGKILL, got {proc.returncode}: {proc.stderr[-2000:]}"
    assert not (_folder(killed) / artifact).exists()
    assert (_folder(killed) / artifact.replace(".pt", ".train-state.pt")).exists()
    proc = _train(killed, family, *args)  # the same command again
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"resumed at step {SAVE_EVERY}" in proc.stdout

    a, b = _weights(_folder(straight) / artifact), _weights(_folder(killed) / artifact)
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), f"{family}: {k} differs after resuming"
    history = [torch.load(_folder(o) / artifact, weights_only=True)["extra"]["history"] for o in (straight, killed)]
    assert history[0] == history[1] and history[0]["step"][-1] == STEPS


@pytest.mark.slow
@pytest.mark.parametrize("family", list(FAMILIES))
def test_two_processes_train_disjoint_shards_into_one_checkpoint(family, tmp_path, segmenter_outputs):
    args, artifact = FAMILIES[family]
    out = _fresh(tmp_path, "ddp", family, segmenter_outputs)
    before = set(p.name for p in _folder(out).glob("*.pt")) if _folder(out).exists() else set()
    trace = tmp_path / "trace"
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "--no-python",
                EYEGEN]
    proc = _train(out, family, *args, env=_env(EYEGEN_TRACE_DIR=str(trace)), launcher=launcher)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    r0, r1 = (torch.load(trace / f"trace-rank{r}.pt", weights_only=True) for r in (0, 1))
    s0, s1 = set(r0["samples"].tolist()), set(r1["samples"].tolist())
    assert s0 and s1 and not s0 & s1, f"{family}: the ranks drew {len(s0 & s1)} samples in common"
    for k in r0["weights"]:
        assert torch.equal(r0["weights"][k], r1["weights"][k]), f"{family}: replicas differ at {k}"
    assert r1["wrote"] == [], "only rank 0 writes"
    assert str(_folder(out) / artifact) in r0["wrote"]
    new = set(p.name for p in _folder(out).glob("*.pt")) - before
    written = {artifact, artifact.replace(".pt", ".train-state.pt")}
    if family == "gaze_gan":
        written.add("gaze_gan_reference.pt")  # the ablations' reference, snapshot on the way
    assert new == written, f"{family}: wrote {sorted(new)}"
    assert torch.equal(_weights(_folder(out) / artifact)[next(iter(r0["weights"]))], next(iter(r0["weights"].values())))


def test_help_lists_the_models():
    proc = subprocess.run([EYEGEN, "train", "--help"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0
    for family in FAMILIES:
        assert family in proc.stdout
    assert "no_cycle" in proc.stdout and "cfw_lcm_palette" in proc.stdout


@pytest.mark.parametrize("args, message", [
    (["segmentr"], "unknown model 'segmentr': choose one of segmenter, refiner, seg2eye"),
    (["segmenter", "--profile", "huge"], "unknown profile 'huge': choose one of smoke, cpu, gpu, paper"),
    (["gaze_gan", "--ablation", "no_gan"], "gaze_gan has no ablation 'no_gan': choose one of full, no_perceptual"),
    (["deepwarp", "--variant", "xyz"], "deepwarp has no variant 'xyz': choose one of ss, ms, cfw"),
    (["segmenter", "--variant", "big"], "segmenter has no variants"),
    (["refiner", "--ablation", "full"], "--ablation is for seg2eye and gaze_gan"),
    (["segmenter", "--steps", "0"], "--steps takes an integer ≥ 1, got 0"),
    (["segmenter", "--seed", "x"], "--seed takes an integer ≥ 0, got 'x'"),
])
def test_bad_arguments_get_one_line_that_lists_the_valid_ones(args, message, tmp_path, capsys):
    from eyegen_lib.suite.cli import main

    assert main(["train", *args, "--out", str(tmp_path / "o")]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], lines


def test_a_resume_with_another_config_refuses_and_says_what_differs(tmp_path):
    out = tmp_path / "o"
    proc = _train(out, "deepwarp", "--variant", "ss", env=_env(EYEGEN_KILL_AT_STEP="4"))
    assert proc.returncode == -9
    proc = _train(out, "deepwarp", "--variant", "ss", "--steps", "2")  # fewer than the 3 already trained
    assert proc.returncode == 2 and "already trained 3 steps, more than the 2 asked for" in proc.stderr
    state = _folder(out) / "deepwarp_ss.train-state.pt"
    assert state.exists(), "a refusal moves nothing"
    proc = _train(out, "deepwarp", "--variant", "ss", "--profile", "smoke", env=_env(EYEGEN_OUTPUT_DIR=str(out)))
    assert proc.returncode == 0 and "resumed at step 3" in proc.stdout


def test_keep_at_keeps_the_model_at_those_lengths_across_a_resume(tmp_path, segmenter_outputs):
    args, artifact = FAMILIES["deepwarp"]
    keep = ["--keep-at", "2", "7"]
    straight = _fresh(tmp_path, "straight", "deepwarp", segmenter_outputs)
    assert _train(straight, "deepwarp", *args, *keep).returncode == 0
    killed = _fresh(tmp_path, "killed", "deepwarp", segmenter_outputs)
    assert _train(killed, "deepwarp", *args, *keep, env=_env(EYEGEN_KILL_AT_STEP=str(KILL_AT))).returncode == -9
    assert _train(killed, "deepwarp", *args, *keep).returncode == 0
    for step in (2, 7):
        name = artifact.replace(".pt", f".step{step}.pt")
        a, b = (torch.load(_folder(o) / name, map_location="cpu", weights_only=True) for o in (straight, killed))
        assert a["step"] == b["step"] == step and a["extra"]["snapshot_of"] == artifact
        assert all(torch.equal(a["models"]["model"][k], b["models"]["model"][k]) for k in a["models"]["model"])
    proc = _train(tmp_path / "bad", "deepwarp", *args, "--keep-at", "99")
    assert proc.returncode == 2 and "--keep-at 99 lies beyond --steps 8" in proc.stderr
