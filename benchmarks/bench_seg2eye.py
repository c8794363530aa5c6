"""Seg2Eye speed per profile: G+D training steps per second and generated images per second.

    python benchmarks/bench_seg2eye.py --profiles smoke cpu --threads 2 [--repeats 5]

Random masks/images at the profile's working size and batch, the profile's Seg2EyeConfig (K style
images per target). One training step = a discriminator step and a generator step (all losses).
Reports the best of ``--repeats`` (and the median), warm-up excluded; on a GPU, it synchronises.
The ``paper`` profile (400×640, ngf 64) needs a GPU in practice.
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

from eyegen_lib.models.seg2eye import MultiScaleDiscriminator, Seg2Eye, Seg2EyeConfig, Seg2EyeTrainer
from eyegen_lib.profiles import get_profile


def _timed(fn, repeats: int, device) -> list[float]:
    fn()  # warm-up
    out = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        out.append(time.perf_counter() - t0)
    return out


def bench(profile_name: str, repeats: int, device: torch.device) -> dict:
    c = Seg2EyeConfig.for_profile(get_profile(profile_name))
    b, (h, w) = c.batch_size, c.image_size
    torch.manual_seed(0)
    trainer = Seg2EyeTrainer(Seg2Eye(c), MultiScaleDiscriminator(c.n_classes + 1, c.ndf, c.d_layers, c.n_scales), c,
                             device=device)
    batch = {"mask": torch.randint(0, c.n_classes, (b, h, w), device=device),
             "image": torch.rand(b, 1, h, w, device=device) * 2 - 1,
             "style": torch.rand(b, c.k_style, 1, h, w, device=device) * 2 - 1}
    train = _timed(lambda: trainer.train_step(batch), repeats, device)
    model = trainer.module("seg2eye").eval()
    gen_batch = 16

    @torch.no_grad()
    def gen():
        model(batch["mask"][:1].expand(gen_batch, -1, -1), batch["style"][:1].expand(gen_batch, -1, -1, -1, -1))
    g = _timed(gen, repeats, device)
    return {"profile": profile_name, "size": f"{h}x{w}", "batch": b, "K": c.k_style,
            "train_steps/s (best)": 1 / min(train), "train_steps/s (median)": 1 / statistics.median(train),
            "images/s (best)": gen_batch / min(g), "images/s (median)": gen_batch / statistics.median(g)}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profiles", nargs="+", default=["smoke", "cpu"])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: leave the default)")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    for name in args.profiles:
        r = bench(name, args.repeats, device)
        print("  ".join(f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}" for k, v in r.items()), flush=True)


if __name__ == "__main__":
    main()
