"""Throughput of the procedural eye renderer (images per second, warm-up excluded).

    PYTHONPATH=. python benchmarks/bench_renderer.py --batch 32 --threads 2

Renders NIR frames at 400×640 and 80×128 and RGB patches at 64×64 and 41×51 through
``SyntheticEyes.render`` (the full path: parameter draws, textures from the per-person cache,
shading, uint8 output). Reports the best of ``--repeats`` timed batches (the median too), so
that a noisy shared machine does not hide the renderer's own speed.
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

from eyegen_lib.data import SyntheticEyes, SyntheticEyeSpec

CASES = [("nir", (400, 640)), ("nir", (80, 128)), ("rgb", (64, 64)), ("rgb", (41, 51))]


def bench(modality: str, size: tuple[int, int], batch: int, repeats: int, n_persons: int) -> tuple[float, float]:
    ds = SyntheticEyes(SyntheticEyeSpec(modality, size=size, n_persons=n_persons, images_per_person=256, seed=0))
    n = len(ds)
    batches = [[(k * batch + i) * 7919 % n for i in range(batch)] for k in range(repeats + 1)]
    for p in range(n_persons):       # warm-up: build every person's textures once
        ds.render([p * 256, p * 256 + 1])
    ds.render(batches[0])
    times = []
    for idx in batches[1:]:
        t0 = time.perf_counter()
        ds.render(idx)
        times.append(time.perf_counter() - t0)
    return batch / min(times), batch / statistics.median(times)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--persons", type=int, default=8)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} threads, batch {args.batch}")
    for modality, size in CASES:
        b = args.batch if modality == "nir" else max(args.batch, 256)
        best, median = bench(modality, size, b, args.repeats, args.persons)
        print(f"{modality} {size[0]}x{size[1]} (batch {b}): best {best:8.0f} img/s, median {median:8.0f} img/s")


if __name__ == "__main__":
    main()
