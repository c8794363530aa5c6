"""He et al.'s gaze GAN speed per profile: training iterations per second and redirected patches per second.

    python benchmarks/bench_gaze_gan.py --threads 1 [--profiles smoke cpu paper] [--repeats 3] [--no-perceptual]

One training iteration is what ``GazeGANTrainer.train_step`` does: ``n_critic`` = 5 critic updates
(each with a generator forward pass and the gradient penalty's double backward) and one generator
update (two generator passes for the cycle loss, the critic, and the VGG-16 perceptual loss). It is
timed at the profile's widths and batch, with the critic and generator steps also timed alone on
one mini-batch. Redirection is timed in eval mode under ``torch.no_grad`` at batch 1 (latency) and
64 (throughput). Random patches and gazes, untrained weights (speed does not depend on them).
Reports the best of ``--repeats`` (and the median), warm-up excluded; on a GPU, it synchronises.
The perceptual loss needs the offline VGG-16 weights (``$EYEGEN_WEIGHTS_DIR``, see
``eyegen_lib.science.backbones``); ``--no-perceptual`` times the ablation without it.
"""
from __future__ import annotations

import argparse
import statistics

import torch
from timing import add_device_arguments, device_from, row, timed

from eyegen_lib.core.profiles import get_profile
from eyegen_lib.science.models.gaze_gan import GazeGAN, GazeGANConfig, GazeGANTrainer, VGG16Perceptual


def random_iteration(config: GazeGANConfig, device: torch.device) -> dict:
    """n_critic + 1 stacked mini-batches of random patches in [−1, 1] and gazes within ±15°."""
    n, b, (h, w) = config.n_critic + 1, config.batch_size, config.image_size
    return {"source": torch.rand(n, b, 3, h, w, device=device) * 2 - 1,
            "target": torch.rand(n, b, 3, h, w, device=device) * 2 - 1,
            "source_gaze": (torch.rand(n, b, 2, device=device) - 0.5) * 0.5,
            "target_gaze": (torch.rand(n, b, 2, device=device) - 0.5) * 0.5}


def bench_training(config: GazeGANConfig, repeats: int, device: torch.device, perceptual) -> dict:
    torch.manual_seed(0)
    trainer = GazeGANTrainer(GazeGAN(config), config, perceptual=perceptual, device=device)
    batch = random_iteration(config, device)
    minibatch = {k: v[0] for k, v in batch.items()}
    iteration = timed(lambda: trainer.train_step(batch), repeats, device)
    critic = timed(lambda: trainer.discriminator_step(minibatch), repeats, device)
    generator = timed(lambda: trainer.generator_step(minibatch), repeats, device)
    return {"batch": config.batch_size, "iterations/s (best)": 1 / min(iteration),
            "iterations/s (median)": 1 / statistics.median(iteration), "s/iteration (best)": min(iteration),
            "critic steps/s": 1 / min(critic), "generator steps/s": 1 / min(generator)}


def bench_redirect(config: GazeGANConfig, batch: int, repeats: int, device: torch.device, images_per_call: int) -> dict:
    torch.manual_seed(0)
    model = GazeGAN(config).to(device).eval()
    h, w = config.image_size
    image = torch.rand(batch, 3, h, w, device=device) * 2 - 1
    gaze = (torch.rand(batch, 2, device=device) - 0.5) * 0.5
    calls = max(1, images_per_call // batch)  # enough images per repeat that batch 1 is not noise

    @torch.no_grad()
    def run():
        for _ in range(calls):
            model(image, gaze)

    t = timed(run, repeats, device)
    return {"batch": batch, "images/s (best)": calls * batch / min(t),
            "images/s (median)": calls * batch / statistics.median(t)}


def show(prefix: str, result: dict) -> None:
    print(prefix + "  " + row(result), flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profiles", nargs="+", default=["smoke", "cpu"], choices=["smoke", "cpu", "paper"])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--redirect-batch", type=int, nargs="+", default=[1, 64])
    ap.add_argument("--images", type=int, default=64, help="patches redirected per timed repeat")
    ap.add_argument("--no-perceptual", action="store_true", help="time training without the VGG-16 losses")
    add_device_arguments(ap)
    args = ap.parse_args()
    device = device_from(args)
    print(f"device {device}  threads {torch.get_num_threads()}  perceptual {not args.no_perceptual}", flush=True)
    perceptual = None if args.no_perceptual else VGG16Perceptual()
    for name in args.profiles:
        overrides = {"lambda_perceptual": 0.0} if args.no_perceptual else {}
        config = GazeGANConfig.for_profile(get_profile(name), **overrides)
        params = sum(p.numel() for p in GazeGAN(config).parameters())
        print(f"{name}: generator {config.generator_widths}  critic {config.discriminator_widths}  "
              f"params {params / 1e6:.2f} M  n_critic {config.n_critic}", flush=True)
        show("  train", bench_training(config, args.repeats, device, perceptual))
        for batch in args.redirect_batch:
            show("  redirect", bench_redirect(config, batch, args.repeats, device, args.images))


if __name__ == "__main__":
    main()
