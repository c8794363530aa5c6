"""Seg2Eye speed and memory: one G+D training iteration, per config, normalisation and precision.

    python benchmarks/bench_seg2eye.py                         # the two reference configs below, both
                                                               # normalisations, fp32 and bf16
    python benchmarks/bench_seg2eye.py --profiles smoke cpu    # the profiles' own configs instead

Reference configs (W × H as the official code states them):

* ``final`` — the official final run: 320×256, ngf = ndf = 64, batch 1, K = 4;
* ``small`` — 160×128, ngf = ndf = 16, batch 4, K = 4.

Normalisations: ``official`` (BatchNorm SPADE, style on the raw x; the default) and ``paper``
(instance norm, AdaIN). Precisions: ``fp32`` and ``bf16`` (autocast). Each row runs in its own
process, so its peak RSS is its own. Random masks/images; one iteration = a discriminator step and
a generator step (all losses); the best and median of ``--repeats`` after a warm-up.
"""
from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
from pathlib import Path

import torch
from timing import add_device_arguments, device_from, row, timed

from eyegen_lib.core.profiles import get_profile
from eyegen_lib.core.runtime import autocast
from eyegen_lib.science.models.seg2eye import MultiScaleDiscriminator, Seg2Eye, Seg2EyeConfig, Seg2EyeTrainer

REFERENCE = {"final": dict(image_size=(256, 320), ngf=64, ndf=64, batch_size=1, k_style=4),
             "small": dict(image_size=(128, 160), ngf=16, ndf=16, batch_size=4, k_style=4)}


def config_for(name: str, normalisation: str) -> Seg2EyeConfig:
    if name in REFERENCE:
        return Seg2EyeConfig(normalisation=normalisation, **REFERENCE[name])
    return Seg2EyeConfig.for_profile(get_profile(name), normalisation=normalisation)


def bench(name: str, normalisation: str, precision: str, repeats: int, device: torch.device) -> dict:
    c = config_for(name, normalisation)
    b, (h, w) = c.batch_size, c.image_size
    torch.manual_seed(0)
    trainer = Seg2EyeTrainer(Seg2Eye(c), MultiScaleDiscriminator(c.n_classes + 1, c.ndf, c.d_layers, c.n_scales), c,
                             device=device, precision=precision)
    batch = {"mask": torch.randint(0, c.n_classes, (b, h, w), device=device),
             "image": torch.rand(b, 1, h, w, device=device) * 2 - 1,
             "style": torch.rand(b, c.k_style, 1, h, w, device=device) * 2 - 1}

    def step():
        with autocast(device, precision):  # as Trainer.fit runs it
            return trainer.train_step(batch)

    times = timed(step, repeats, device)
    losses = step()
    peak = (torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda"
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20)
    return {"config": name, "size (W×H)": f"{w}x{h}", "ngf": c.ngf, "batch": b, "K": c.k_style,
            "normalisation": normalisation, "precision": precision, "s/iteration (best)": min(times),
            "s/iteration (median)": statistics.median(times),
            ("peak GPU GiB" if device.type == "cuda" else "peak RSS GiB"): peak,
            "g_l2": float(losses["g_l2"])}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profiles", nargs="+", default=None, help="profile configs instead of the reference ones")
    ap.add_argument("--normalisations", nargs="+", default=["official", "paper"])
    ap.add_argument("--precisions", nargs="+", default=["fp32", "bf16"])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--one", help=argparse.SUPPRESS)  # internal: one row, printed as JSON
    add_device_arguments(ap)
    args = ap.parse_args()
    device = device_from(args)
    if args.one:
        name, normalisation, precision = args.one.split(",")
        print(json.dumps(bench(name, normalisation, precision, args.repeats, device)), flush=True)
        return
    rows = []
    for name in args.profiles or list(REFERENCE):
        for normalisation in args.normalisations:
            for precision in args.precisions:
                cmd = [sys.executable, str(Path(__file__)), "--one", f"{name},{normalisation},{precision}",
                       "--repeats", str(args.repeats), "--device", str(device), "--threads", str(args.threads)]
                out = subprocess.run(cmd, capture_output=True, text=True)
                if out.returncode != 0:
                    print(f"{name} {normalisation} {precision}: failed\n{out.stderr[-2000:]}", flush=True)
                    continue
                rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
                print(row(rows[-1], 3), flush=True)
    for name in {r["config"] for r in rows}:
        for normalisation in args.normalisations:
            pair = {r["precision"]: r for r in rows if r["config"] == name and r["normalisation"] == normalisation}
            if {"fp32", "bf16"} <= set(pair):
                speedup = pair["fp32"]["s/iteration (best)"] / pair["bf16"]["s/iteration (best)"]
                print(f"{name} {normalisation}: bf16 is {speedup:.2f}× the speed of fp32", flush=True)


if __name__ == "__main__":
    main()
