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

import torch
from timing import add_device_arguments, device_from, row, timed

from eyegen_lib.models.seg2eye import MultiScaleDiscriminator, Seg2Eye, Seg2EyeConfig, Seg2EyeTrainer
from eyegen_lib.profiles import get_profile


def bench(profile_name: str, repeats: int, device: torch.device) -> dict:
    c = Seg2EyeConfig.for_profile(get_profile(profile_name))
    b, (h, w) = c.batch_size, c.image_size
    torch.manual_seed(0)
    trainer = Seg2EyeTrainer(Seg2Eye(c), MultiScaleDiscriminator(c.n_classes + 1, c.ndf, c.d_layers, c.n_scales), c,
                             device=device)
    batch = {"mask": torch.randint(0, c.n_classes, (b, h, w), device=device),
             "image": torch.rand(b, 1, h, w, device=device) * 2 - 1,
             "style": torch.rand(b, c.k_style, 1, h, w, device=device) * 2 - 1}
    train = timed(lambda: trainer.train_step(batch), repeats, device)
    model = trainer.module("seg2eye").eval()
    gen_batch = 16

    @torch.no_grad()
    def gen():
        model(batch["mask"][:1].expand(gen_batch, -1, -1), batch["style"][:1].expand(gen_batch, -1, -1, -1, -1))
    g = timed(gen, repeats, device)
    return {"profile": profile_name, "size": f"{h}x{w}", "batch": b, "K": c.k_style,
            "train_steps/s (best)": 1 / min(train), "train_steps/s (median)": 1 / statistics.median(train),
            "images/s (best)": gen_batch / min(g), "images/s (median)": gen_batch / statistics.median(g)}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profiles", nargs="+", default=["smoke", "cpu"])
    ap.add_argument("--repeats", type=int, default=5)
    add_device_arguments(ap)
    args = ap.parse_args()
    device = device_from(args)
    for name in args.profiles:
        r = bench(name, args.repeats, device)
        print(row(r, 3), flush=True)


if __name__ == "__main__":
    main()
