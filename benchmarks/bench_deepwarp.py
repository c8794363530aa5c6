"""DeepWarp speed per variant at 41×51: redirected frames per second, one at a time and in batches.

    python benchmarks/bench_deepwarp.py --threads 1 [--variants ss cfw_lcm] [--repeats 5] [--batch 64]

Batch 1 is the latency a video call sees (the paper: up to 20 fps on a GeForce 750M); batch 64
the throughput of evaluating a test set. Random crops, landmarks and angles; the models are
untrained (speed does not depend on the weights), in eval mode, under ``torch.no_grad``.
Reports the best of ``--repeats`` (and the median), warm-up excluded; on a GPU, it synchronises.
Target: ≥ 100 fps for CFW + LCM on one CPU core.
"""
from __future__ import annotations

import argparse
import statistics

import torch
from timing import add_device_arguments, device_from, row, timed

from eyegen_lib.science.models.deepwarp import VARIANTS, DeepWarp, DeepWarpConfig


def bench(variant: str, batch: int, repeats: int, device: torch.device, frames_per_call: int) -> dict:
    config = DeepWarpConfig(variant=variant)
    h, w = config.image_size
    torch.manual_seed(0)
    model = DeepWarp(config).to(device).eval()
    image = torch.rand(batch, 3, h, w, device=device) * 2 - 1
    landmarks = torch.rand(batch, 7, 2, device=device) * torch.tensor([w - 1.0, h - 1.0], device=device)
    angle = (torch.rand(batch, 2, device=device) - 0.5) * 0.6
    calls = max(1, frames_per_call // batch)  # time enough frames per repeat that batch 1 is not noise

    @torch.no_grad()
    def run():
        for _ in range(calls):
            model(image, landmarks, angle)

    t = timed(run, repeats, device)
    frames = calls * batch
    return {"variant": variant, "batch": batch, "params": sum(p.numel() for p in model.parameters()),
            "fps (best)": frames / min(t), "fps (median)": frames / statistics.median(t)}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    ap.add_argument("--batch", type=int, nargs="+", default=[1, 64], help="batch sizes (default: 1 and 64)")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--frames", type=int, default=64, help="frames timed per repeat (batch 1: this many calls)")
    add_device_arguments(ap)
    args = ap.parse_args()
    device = device_from(args)
    print(f"device {device}  threads {torch.get_num_threads()}  size 41x51", flush=True)
    for variant in args.variants:
        for batch in args.batch:
            r = bench(variant, batch, args.repeats, device, args.frames)
            print(row(r), flush=True)


if __name__ == "__main__":
    main()
