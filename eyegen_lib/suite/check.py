"""``eyegen check PROFILE``: a dry run of every notebook's models at a profile's shapes, on any machine.

For each model family (:mod:`eyegen_lib.runs.family`) it builds the model, optimizers and batch source exactly as training does
(the profile's config: widths, image sizes, batch sizes; batches from the real renderer and the real
batch sources), runs two training iterations and one evaluation batch, and reports: parameters,
seconds per iteration here (the second; the first warms up), peak memory of that process, FLOPs
per iteration (``torch.utils.flop_counter``, backward included) and the GPU-hours its full schedule
would take on one H100-class GPU at :data:`UTILISATION` of its dense bf16 peak.

Each family runs in its own process, so its peak RSS is its own; at a profile that streams its data
the batches come from ``num_workers`` DataLoader workers, and the peak memory of the whole process
tree (PSS, :mod:`eyegen_lib.core.memory`) is reported beside it. A batch too big for this machine
can be measured smaller (``max_batch``): FLOPs and the GPU estimate are then scaled to the full
batch (they are linear in it); seconds and memory are stated at the measured batch.
"""
from __future__ import annotations

import json
import math
import resource
import subprocess
import sys
import time

import torch

from ..core.memory import PeakMemory
from ..core.profiles import get_profile
from ..core.runtime import autocast, seed_everything
from ..core.training import move_to
from ..runs.family import families, family

__all__ = ["checked_families", "GPU_PEAK_FLOPS", "UTILISATION", "check_family", "run_check", "format_table"]

GPU_PEAK_FLOPS = 989e12  # H100 SXM, dense bf16 tensor cores
UTILISATION = 0.35  # a typical share of peak for convolutional training


def checked_families() -> list[str]:
    """The registered families ``eyegen check`` measures, in registration order."""
    return [name for name, fam in families().items() if fam.checked]


def _notebooks(name: str) -> str:
    fam = family(name)
    return fam.check_notebooks or fam.notebook[:2]


def check_family(name: str, profile, *, max_batch: int | None = None) -> dict:
    """Measure one family in this process (see the module doc): its
    :meth:`~eyegen_lib.runs.family.ModelFamily.check_setup` — the model, optimizers and batch source built as
    training builds them, on the training data the registry uses at this profile."""
    from torch.utils.flop_counter import FlopCounterMode

    seed_everything(0)
    with PeakMemory() as tree:
        started = time.perf_counter()
        setup = family(name).check_setup(profile, max_batch)
        run, config, evaluate, b, wanted_batch = setup.run, setup.config, setup.evaluate, setup.batch, setup.profile_batch
        built = time.perf_counter() - started
        trainer = run.trainer
        run.batches.workers = profile.num_workers if profile.stream_data else 0  # as the registry's jobs
        ends = [time.perf_counter()]
        trainer.fit(run.batches, 2, progress=False, on_step=lambda step: _mark(ends, trainer))
        seconds = [ends[1] - ends[0], ends[2] - ends[1]]
        counter = FlopCounterMode(display=False)
        with counter, autocast(trainer.device, trainer.precision):
            trainer.train_step(move_to(run.batches.batch(2), trainer.device))
        flops = counter.get_total_flops()
        t0 = time.perf_counter()
        with torch.no_grad():
            out = evaluate(run.model.eval())
        eval_seconds = time.perf_counter() - t0
    scale = wanted_batch / b
    steps = int(config.steps)
    gpu_hours = flops * scale * steps / (GPU_PEAK_FLOPS * UTILISATION) / 3600
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # kB → GiB
    return {"model": name, "notebook": _notebooks(name), "params_M": sum(p.numel() for p in run.model.parameters()) / 1e6,
            "batch": wanted_batch, "measured_batch": b,
            "image": "×".join(map(str, setup.image)),
            "s_per_iteration": seconds[1], "first_iteration_s": seconds[0], "build_s": built, "eval_batch_s": eval_seconds,
            "peak_rss_GiB": peak, "peak_pss_tree_GiB": tree.gib, "data_workers": run.batches.workers,
            "GFLOP_per_iteration": flops * scale / 1e9, "steps": steps,
            "gpu_hours_h100": gpu_hours, "precision": trainer.precision,
            "eval_output": list(out[0].shape) if isinstance(out, tuple) else list(out.shape)}


def _mark(ends: list, trainer) -> None:
    if trainer.device.type == "cuda":
        torch.cuda.synchronize()
    ends.append(time.perf_counter())


def run_check(profile_name: str, *, only=None, max_batch: int | None = None, timeout: int = 3600,
              echo=print) -> list[dict]:
    """Every checked family (or those ``only`` names) in its own process (``python -m eyegen_lib.suite.check``;
    it inherits ``$EYEGEN_FAMILIES``, so a plugin's families are known there too); returns their rows."""
    rows = []
    for name in only or checked_families():
        cmd = [sys.executable, "-m", "eyegen_lib.suite.check", profile_name, name] + ([str(max_batch)] if max_batch else [])
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        if proc.returncode != 0:
            lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
            rows.append({"model": name, "notebook": _notebooks(name), "error": lines[-1] if lines else f"exit {proc.returncode}"})
        else:
            rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
        echo(format_table([rows[-1]], header=len(rows) == 1))
    return rows


def format_table(rows: list[dict], *, header: bool = True) -> str:
    """A markdown table of check rows."""
    cols = [("model", "model", "{}"), ("notebook", "nb", "{}"), ("params_M", "params (M)", "{:.2f}"),
            ("image", "image", "{}"), ("batch", "batch", "{}"), ("measured_batch", "measured at", "{}"),
            ("s_per_iteration", "s/iteration (this CPU)", "{:.2f}"), ("peak_rss_GiB", "peak RSS, main process (GiB)", "{:.2f}"),
            ("peak_pss_tree_GiB", "peak PSS with data workers (GiB)", "{:.2f}"),
            ("GFLOP_per_iteration", "GFLOP/iteration", "{:,.0f}"), ("steps", "paper steps", "{:,}"),
            ("gpu_hours_h100", "H100-hours", "{:.2g}")]
    lines = []
    if header:
        lines += ["| " + " | ".join(c[1] for c in cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['model']} | {r['notebook']} | failed: {r['error']} |")
            continue
        lines.append("| " + " | ".join(fmt.format(r[key]) if not (isinstance(r[key], float) and math.isnan(r[key]))
                                      else "–" for key, _, fmt in cols) + " |")
    return "\n".join(lines)


def _main(argv: list[str]) -> int:
    profile, name = get_profile(argv[0]), argv[1]
    max_batch = int(argv[2]) if len(argv) > 2 else None
    torch.set_num_threads(torch.get_num_threads())
    print(json.dumps(check_family(name, profile, max_batch=max_batch)))
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
