"""``eyegen check PROFILE``: a dry run of every notebook's models at a profile's shapes, on any machine.

For each model family it builds the model, optimizers and batch source exactly as training does
(the profile's config: widths, image sizes, batch sizes; batches from the real renderer and the real
batch sources), runs two training iterations and one evaluation batch, and reports: parameters,
seconds per iteration here (the second; the first warms up), peak memory of that process, FLOPs
per iteration (``torch.utils.flop_counter``, backward included) and the GPU-hours its full schedule
would take on one H100-class GPU at :data:`UTILISATION` of its dense bf16 peak.

Each family runs in its own process, so its peak RSS is its own; at a profile that streams its data
the batches come from ``num_workers`` DataLoader workers, and the peak memory of the whole process
tree (PSS, :mod:`eyegen_lib.memory`) is reported beside it. A batch too big for this machine
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


def _build(family: str, profile, batch: int | None):
    """(run, config, evaluate-one-batch callable, measured batch, the profile's batch) for ``family``.

    The data is the training data the registry uses at this profile, through the same pipeline: row
    stores over the training persons (rendered when a batch asks, by DataLoader workers, at a profile
    that streams its data), redirection pairs (:class:`~eyegen_lib.data.pairs.PairRows`), the
    model's batch source. Only the refiner's ranking is replaced: its references are random pool
    images with their true masks as pseudo-labels (the ranking pass needs the trained segmenter)."""
    from . import registry
    from .data.rows import RenderedRows, rows_of
    from .images import to_signed
    from .protocols import (deepwarp_training_pairs, gaze_estimator_source, nir_source, person_side_groups,
                            person_split, redirection_training_pairs, split_indices)

    split = person_split(profile)
    in_memory = not profile.stream_data

    def sized(config):
        full = config.batch_size
        return replace(config, batch_size=min(full, batch or full)), full

    if family in ("segmenter", "refiner", "seg2eye"):
        source = nir_source(profile)
        idx = split_indices(source, split, labelled=True)
        train = rows_of(source, idx["train"], ("image", "mask"), in_memory=in_memory, progress=False)
        test = rows_of(source, idx["test"][:8], ("image", "mask"), in_memory=in_memory, progress=False)
    if family == "segmenter":
        from .models.deeplab import SegmenterConfig, segment, segmenter_run

        config, full = sized(SegmenterConfig.for_profile(profile))
        b = config.batch_size
        return segmenter_run(train, config), config, lambda m: segment(m, test.fetch(range(min(b, len(test))))["image"]), b, full
    if family == "refiner":
        from .models.refiner import RefinerConfig, refine, refiner_run

        config, full = sized(RefinerConfig.for_profile(profile))
        b = config.batch_size
        pool = RenderedRows(source, range(len(source)), {"image": "image", "pseudo": "mask"})
        ranked = torch.randint(len(pool), (len(train), config.top_n), generator=torch.Generator().manual_seed(0))
        run = refiner_run(train, ranked, pool, config)

        def evaluate(m):
            t, r = test.fetch(range(min(b, len(test)))), pool.fetch(ranked[: min(b, len(test)), 0])
            return refine(m, t["mask"], r["image"], r["pseudo"])

        return run, config, evaluate, b, full
    if family == "seg2eye":
        from .models.seg2eye import generate, seg2eye_run

        config, full = sized(registry.seg2eye_config(profile))
        run = seg2eye_run(train, person_side_groups(source, idx["train"]), config)
        first = run.batches.batch(0)
        return run, config, lambda m: generate(m, first["mask"], first["style"]), config.batch_size, full
    if family in ("deepwarp", "gaze_gan"):
        if family == "deepwarp":
            from .models.deepwarp import deepwarp_run as make_run
            from .models.deepwarp import redirect as warp_redirect

            config, full = sized(registry.deepwarp_config(profile, "cfw_lcm"))
            pairs = deepwarp_training_pairs(profile, "cfw_lcm")
        else:
            from .models.gaze_gan import gaze_gan_run as make_run
            from .models.gaze_gan import redirect

            config, full = sized(registry.gaze_gan_config(profile))
            pairs = redirection_training_pairs(profile, progress=False)
        run = make_run(pairs, config)
        first = run.batches.batch(0)
        if family == "deepwarp":
            evaluate = lambda m: warp_redirect(m, first["source"], first["landmarks"], first["angle"])  # noqa: E731
        else:
            evaluate = lambda m: redirect(m, first["source"][0], first["target_gaze"][0])  # noqa: E731
        return run, config, evaluate, config.batch_size, full
    if family == "gaze_estimator":
        from .models.gaze_estimator import GazeEstimatorConfig, gaze_estimator_run, predict_gaze

        config, full = sized(GazeEstimatorConfig.for_profile(profile))
        source = gaze_estimator_source(profile)
        idx = split_indices(source, split)
        train = rows_of(source, idx["train"], ("image", "gaze"), in_memory=in_memory, progress=False)
        test = rows_of(source, idx["test"][: config.batch_size], ("image", "gaze"), in_memory=in_memory, progress=False)
        return (gaze_estimator_run(train, config), config,
                lambda m: predict_gaze(m, to_signed(test.fetch(range(len(test)))["image"])), config.batch_size, full)
    raise ValueError(f"unknown model family {family!r}: choose one of {', '.join(FAMILIES)}")


def check_family(family: str, profile, *, max_batch: int | None = None) -> dict:
    """Measure one family in this process (see the module doc)."""
    from torch.utils.flop_counter import FlopCounterMode

    from .memory import PeakMemory
    from .runtime import autocast, seed_everything
    from .training import move_to

    seed_everything(0)
    with PeakMemory() as tree:
        started = time.perf_counter()
        run, config, evaluate, b, wanted_batch = _build(family, profile, max_batch)
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
    return {"model": family, "notebook": NOTEBOOK[family], "params_M": sum(p.numel() for p in run.model.parameters()) / 1e6,
            "batch": wanted_batch, "measured_batch": b,
            "image": "×".join(map(str, profile.patch_size if family == "gaze_estimator" else _image_size(config))),
            "s_per_iteration": seconds[1], "first_iteration_s": seconds[0], "build_s": built, "eval_batch_s": eval_seconds,
            "peak_rss_GiB": peak, "peak_pss_tree_GiB": tree.gib, "data_workers": run.batches.workers,
            "GFLOP_per_iteration": flops * scale / 1e9, "steps": steps,
            "gpu_hours_h100": gpu_hours, "precision": trainer.precision,
            "eval_output": list(out[0].shape) if isinstance(out, tuple) else list(out.shape)}


def _mark(ends: list, trainer) -> None:
    if trainer.device.type == "cuda":
        torch.cuda.synchronize()
    ends.append(time.perf_counter())


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
    from .profiles import get_profile

    profile, family = get_profile(argv[0]), argv[1]
    max_batch = int(argv[2]) if len(argv) > 2 else None
    torch.set_num_threads(torch.get_num_threads())
    print(json.dumps(check_family(family, profile, max_batch=max_batch)))
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
