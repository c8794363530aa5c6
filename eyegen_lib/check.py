"""``eyegen check PROFILE``: a dry run of every notebook's models at a profile's shapes, on any machine.

For each model family it builds the model, optimizers and batch source exactly as training does
(the profile's config: widths, image sizes, batch sizes; batches from the real renderer and the real
batch sources), runs two training iterations and one evaluation batch, and reports: parameters,
seconds per iteration here (the second; the first warms up), peak memory of that process, FLOPs
per iteration (``torch.utils.flop_counter``, backward included) and the GPU-hours its full schedule
would take on one H100-class GPU at :data:`UTILISATION` of its dense bf16 peak.

Each family runs in its own process, so its peak RSS is its own. A batch too big for this machine
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
from dataclasses import replace

import torch

__all__ = ["FAMILIES", "GPU_PEAK_FLOPS", "UTILISATION", "check_family", "run_check", "format_table"]

FAMILIES = ("segmenter", "refiner", "seg2eye", "deepwarp", "gaze_gan", "gaze_estimator")
NOTEBOOK = {"segmenter": "02", "refiner": "03", "seg2eye": "04", "deepwarp": "05", "gaze_gan": "06",
            "gaze_estimator": "07, 08"}
GPU_PEAK_FLOPS = 989e12  # H100 SXM, dense bf16 tensor cores
UTILISATION = 0.35  # a typical share of peak for convolutional training


def _rows(n: int, indices: list[int]) -> list[int]:
    return [indices[i % len(indices)] for i in range(n)]


def _build(family: str, profile, batch: int | None):
    """(run, config, evaluate-one-batch callable, measured batch, the profile's batch) for ``family``."""
    from . import registry
    from .data.datasets import indices_of_persons
    from .protocols import gaze_estimator_source, nir_source, person_split, person_side_groups, rgb_source

    split = person_split(profile)
    if family in ("segmenter", "refiner"):
        from .models.deeplab import SegmenterConfig, segment, segmenter_run
        from .models.refiner import RefinerConfig, refine, refiner_run

        config = (SegmenterConfig if family == "segmenter" else RefinerConfig).for_profile(profile)
        full, b = config.batch_size, min(config.batch_size, batch or config.batch_size)
        config = replace(config, batch_size=b)
        source = nir_source(profile)
        data = source.render(_rows(2 * b, indices_of_persons(source, split["train"])))
        if family == "segmenter":
            run = segmenter_run(data["image"], data["mask"], config)
            return run, config, lambda m: segment(m, data["image"][:b]), b, full
        ranked = torch.stack([torch.randperm(2 * b)[: config.top_n] if 2 * b >= config.top_n
                              else torch.randint(2 * b, (config.top_n,)) for _ in range(2 * b)])
        run = refiner_run(data["mask"], data["image"], ranked, data["image"], data["mask"], config)
        return run, config, lambda m: refine(m, data["mask"][:b], data["image"][:b], data["mask"][:b]), b, full
    if family == "seg2eye":
        from .models.seg2eye import generate, seg2eye_run

        config = registry.seg2eye_config(profile)
        full, b = config.batch_size, min(config.batch_size, batch or config.batch_size)
        config = replace(config, batch_size=b)
        source = nir_source(profile)
        person_rows = indices_of_persons(source, split["train"][:1])
        data = source.render(person_rows[: max(2 * (config.k_style + 1), 2 * b)])
        groups = person_side_groups(data)
        keep = torch.bincount(groups)[groups] > config.k_style  # eyes with K others of their person and side
        data = {k: (v[keep] if torch.is_tensor(v) else v) for k, v in data.items()}
        run = seg2eye_run(data["image"], data["mask"], person_side_groups(data), config)
        style = run.batches.batch(0)["style"]
        return run, config, lambda m: generate(m, data["mask"][: len(style)], style), b, full
    if family in ("deepwarp", "gaze_gan"):
        from .models.deepwarp import render_redirection_pairs

        config = registry.deepwarp_config(profile, "cfw_lcm") if family == "deepwarp" else registry.gaze_gan_config(profile)
        full, b = config.batch_size, min(config.batch_size, batch or config.batch_size)
        config = replace(config, batch_size=b)
        source = rgb_source(profile, size=config.image_size)
        pairs = render_redirection_pairs(source, _rows(b, indices_of_persons(source, split["train"])), progress=False)
        if family == "deepwarp":
            from .models.deepwarp import deepwarp_run
            from .models.deepwarp import redirect as warp_redirect

            angle = (pairs["target_gaze"] - pairs["source_gaze"]).float()
            return (deepwarp_run(pairs, config), config,
                    lambda m: warp_redirect(m, pairs["source"], pairs["landmarks"], angle), b, full)
        from .models.gaze_gan import gaze_gan_run, redirect

        return (gaze_gan_run(pairs, config), config,
                lambda m: redirect(m, pairs["source"], pairs["target_gaze"]), b, full)
    if family == "gaze_estimator":
        from .models.gaze_estimator import GazeEstimatorConfig, gaze_estimator_run, predict_gaze

        config = GazeEstimatorConfig.for_profile(profile)
        full, b = config.batch_size, min(config.batch_size, batch or config.batch_size)
        config = replace(config, batch_size=b)
        source = gaze_estimator_source(profile)
        data = source.render(_rows(b, indices_of_persons(source, split["train"])))
        run = gaze_estimator_run(data["image"], data["gaze"], config)
        return run, config, lambda m: predict_gaze(m, data["image"].float() / 127.5 - 1), b, full
    raise ValueError(f"unknown model family {family!r}: choose one of {', '.join(FAMILIES)}")


def check_family(family: str, profile, *, max_batch: int | None = None) -> dict:
    """Measure one family in this process (see the module doc)."""
    from torch.utils.flop_counter import FlopCounterMode

    from .runtime import autocast, seed_everything

    seed_everything(0)
    started = time.perf_counter()
    run, config, evaluate, b, wanted_batch = _build(family, profile, max_batch)
    built = time.perf_counter() - started
    trainer = run.trainer
    seconds = []
    for step in range(2):
        t0 = time.perf_counter()
        trainer.fit(run.batches, step + 1, progress=False)
        if trainer.device.type == "cuda":
            torch.cuda.synchronize()
        seconds.append(time.perf_counter() - t0)
    counter = FlopCounterMode(display=False)
    with counter, autocast(trainer.device, trainer.precision):
        trainer.train_step(run.batches.batch(2))
    flops = counter.get_total_flops()
    t0 = time.perf_counter()
    with torch.no_grad():
        out = evaluate(run.model.eval())
    eval_seconds = time.perf_counter() - t0
    scale = wanted_batch / b
    steps = int(config.steps)
    gpu_hours = flops * scale * steps / (GPU_PEAK_FLOPS * UTILISATION) / 3600
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # kB → GiB
    return {"model": family, "notebook": NOTEBOOK[family], "params_M": sum(p.numel() for p in run.model.parameters()) / 1e6,
            "batch": wanted_batch, "measured_batch": b,
            "image": "×".join(map(str, profile.patch_size if family == "gaze_estimator" else _image_size(config))),
            "s_per_iteration": seconds[1], "first_iteration_s": seconds[0], "build_s": built, "eval_batch_s": eval_seconds,
            "peak_rss_GiB": peak, "GFLOP_per_iteration": flops * scale / 1e9, "steps": steps,
            "gpu_hours_h100": gpu_hours, "precision": trainer.precision,
            "eval_output": list(out[0].shape) if isinstance(out, tuple) else list(out.shape)}


def _image_size(config) -> tuple:
    size = getattr(config, "image_size", None) or getattr(getattr(config, "net", None), "input_size", None)
    return tuple(size) if size else ("?",)


def run_check(profile_name: str, *, families=FAMILIES, max_batch: int | None = None, timeout: int = 3600,
              echo=print) -> list[dict]:
    """Every family in its own process (``python -m eyegen_lib.check``); returns their rows."""
    rows = []
    for family in families:
        cmd = [sys.executable, "-m", "eyegen_lib.check", profile_name, family] + ([str(max_batch)] if max_batch else [])
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        if proc.returncode != 0:
            lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
            rows.append({"model": family, "notebook": NOTEBOOK[family], "error": lines[-1] if lines else f"exit {proc.returncode}"})
        else:
            rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
        echo(format_table([rows[-1]], header=len(rows) == 1))
    return rows


def format_table(rows: list[dict], *, header: bool = True) -> str:
    """A markdown table of check rows."""
    cols = [("model", "model", "{}"), ("notebook", "nb", "{}"), ("params_M", "params (M)", "{:.2f}"),
            ("image", "image", "{}"), ("batch", "batch", "{}"), ("measured_batch", "measured at", "{}"),
            ("s_per_iteration", "s/iteration (this CPU)", "{:.2f}"), ("peak_rss_GiB", "peak RSS (GiB)", "{:.2f}"),
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
    from .profiles import get_profile

    profile, family = get_profile(argv[0]), argv[1]
    max_batch = int(argv[2]) if len(argv) > 2 else None
    torch.set_num_threads(torch.get_num_threads())
    print(json.dumps(check_family(family, profile, max_batch=max_batch)))
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
