"""Does the gaze GAN keep the person? Isolation runs of issue 27, one change to the recipe at a time.

    python benchmarks/gaze_gan_identity.py [--variants official identity no_perceptual lr_2e-4] \
        [--seeds 0 1 2] [--steps 120] [--every 40] [--threads 1] [--profile cpu]
    python benchmarks/gaze_gan_identity.py --checkpoints outputs/gan8000/checkpoints/cpu/seed0/gaze_gan_full.step*.pt

``--checkpoints`` scores saved models instead (e.g. the length snapshots of ``eyegen train gaze_gan
--keep-at …``) on the whole protocol, beside the unchanged input: the figures 06's claims rest on.

Each run trains the ``profile``'s GAN (its widths, batch and pairs) at a constant learning rate for
``--steps`` iterations under one change, and scores it every ``--every`` iterations on a tenth of
the redirection protocol (every 10th pair): the source/output skin-tone r and iris-colour r
(:mod:`eyegen_lib.science.metrics.identity`), LPIPS to the target, and the independent estimator's gaze
error (the zoo's, or trained here when the zoo does not serve), and the repaint floor: LPIPS of each
source redirected to the gaze it already has, to itself. Prints one row per (variant, seed)
and a summary per variant; ``--jsonl FILE`` also writes every scoring.

Variants (``VARIANTS``): ``official`` — the authors' recipe (their generator, λ_identity = 0);
``identity`` — their generator with our identity term, ``identity_100`` at four times its weight;
``no_perceptual``, ``imagenet_vgg`` (VGG fed normalised images, λ_perceptual 1), ``lr_2e-4`` (the
paper's learning rate) and ``batch_32`` (the paper's batch) — each of those on the authors' recipe, to
see whether it alone changes the outcome; ``blend`` — today's default (the keep mask and the identity
term), ``blend_official`` (the mask without the term) and ``blend_imagenet_vgg`` (with VGG fed
normalised images). Seed 0, 600 iterations, when the mask was chosen (LPIPS / repaint floor / gaze
error °): identity 0.199 / 0.192 / 4.6; blend 0.059 / 0.001 / 12.4; blend_imagenet_vgg 0.061 /
0.001 / 13.0; blend_official 0.115 / 0.070 / 14.9 at 100 iterations (stopped there). At ``cpu`` one run of 120
iterations takes about 4 minutes on one thread. The sign of the skin-tone r is set within the first
hundred iterations (the zoo's official model: −0.94 after 1,000 iterations, −0.96 after 10,000).
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
from dataclasses import asdict
from pathlib import Path

import torch

import eyegen_lib as eg
from eyegen_lib.core.images import to_signed
from eyegen_lib.runs import registry
from eyegen_lib.science import protocols
from eyegen_lib.science.evaluation import evaluate_redirection
from eyegen_lib.science.metrics import identity_scores, lpips_distance
from eyegen_lib.science.models.gaze_gan import ABLATIONS, GazeGANConfig, gaze_gan_run, redirect, redirect_set

OFFICIAL = ABLATIONS["authors"]  # the authors' recipe: their generator and objective
REPAINT = {**OFFICIAL, "lambda_identity": 25.0}  # their generator (repaints every pixel) + our identity term
# the keep mask and the identity term without the target's L1, deconvs (the default of stops 36–40)
BLEND = {"lambda_target": 0.0, "generator_upsampling": "deconv"}
# Each variant is a whole recipe, so its meaning does not move with the defaults; "fixed" is today's.
VARIANTS = {
    "official": OFFICIAL,
    "identity": REPAINT,
    "identity_100": {**REPAINT, "lambda_identity": 100.0},
    "no_perceptual": {**OFFICIAL, "lambda_perceptual": 0.0},
    "imagenet_vgg": {**OFFICIAL, "vgg_input": "imagenet", "lambda_perceptual": 1.0},
    "lr_2e-4": {**OFFICIAL, "lr": 2e-4},
    "batch_32": {**OFFICIAL, "batch_size": 32},
    "blend": BLEND,
    "blend_official": {**BLEND, "lambda_identity": 0.0},
    "blend_imagenet_vgg": {**BLEND, "vgg_input": "imagenet", "lambda_perceptual": 1.0},
    "blend_target_10": {**BLEND, "lambda_target": 10.0},  # + L1 to the paired target (pix2pix's term)
    "blend_target_50": {**BLEND, "lambda_target": 50.0},
    "blend_resize": {**BLEND, "generator_upsampling": "resize"},  # nearest ×2 + conv3×3 instead of the deconvs
    "identity_target_50": {**REPAINT, "lambda_target": 50.0},  # the authors' generator + the target's L1
    "fixed": {},  # today's default: blend + the target's L1 (50) + resize upsampling
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--variants", nargs="+", default=["official", "blend"], choices=sorted(VARIANTS))
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--steps", type=int, default=120)
    ap.add_argument("--every", type=int, default=40)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--profile", default="cpu")
    ap.add_argument("--jsonl", default=None, help="also write every scoring here, one JSON object a line")
    ap.add_argument("--checkpoints", nargs="+", default=None, metavar="PATH",
                    help="score these saved gaze_gan models on the whole protocol instead of training")
    ap.add_argument("--save-dir", default=None, help="also save each run's final weights and config here "
                    "(VARIANT_sSEED.pt, a plain state dict: look at its outputs, not a zoo artifact)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    profile = eg.get_profile(args.profile)
    if args.checkpoints:
        score_checkpoints(profile, args.checkpoints)
        return
    pairs = protocols.redirection_training_pairs(profile, seed=0, progress=False)
    _, rset, _ = protocols.redirection_protocol(profile, seed=0)
    rset = rset.subset(torch.arange(len(rset)) % 10 == 0)
    estimator, _ = registry.gaze_estimator(profile, seed=0, pretrained=True, progress=False)
    out = open(args.jsonl, "w") if args.jsonl else None
    final = {}
    print(f"{'variant':14s} {'seed':>4s} {'step':>5s} {'skin r':>7s} {'iris r':>7s} {'LPIPS':>6s} {'floor':>6s} {'gaze °':>7s} {'s':>6s}")
    for variant in args.variants:
        for seed in args.seeds:
            config = GazeGANConfig.for_profile(profile, decay_start=1.0, ablation_steps=None, steps=args.steps,
                                               **VARIANTS[variant])
            torch.manual_seed(seed)
            run = gaze_gan_run(pairs, config, seed=seed)
            start = time.perf_counter()

            def score(step: int) -> None:
                if step % args.every and step != args.steps:
                    return
                pred = redirect_set(run.model, rset)
                frame = evaluate_redirection(pred, rset, estimator)
                # the repaint floor: each source redirected to the gaze it already has, LPIPS to itself
                same = redirect(run.model, rset.source, rset.source_gaze)
                floor = float(lpips_distance(to_signed(same), to_signed(rset.source)).mean())
                row = {"variant": variant, "seed": seed, "step": step, **identity_scores(pred, rset),
                       "lpips": float(frame.lpips.mean()), "repaint_floor_lpips": floor, "gaze_error_deg": float(frame.gaze_error_deg.mean()),
                       "seconds": time.perf_counter() - start}
                print(f"{variant:14s} {seed:4d} {step:5d} {row['skin_tone_r']:7.3f} {row['iris_colour_r']:7.3f} "
                      f"{row['lpips']:6.3f} {floor:6.3f} {row['gaze_error_deg']:7.2f} {row['seconds']:6.0f}", flush=True)
                if out:
                    out.write(json.dumps(row) + "\n")
                    out.flush()
                final[variant, seed] = row
                run.model.train()

            run.trainer.fit(run.batches, args.steps, progress=False, on_step=score)
            if args.save_dir:
                Path(args.save_dir).mkdir(parents=True, exist_ok=True)
                torch.save({"config": asdict(config), "state": run.model.state_dict()},
                           Path(args.save_dir) / f"{variant}_s{seed}.pt")
    print(f"\nafter {args.steps} iterations ({args.profile}):")
    for variant in args.variants:
        rows = [final[variant, s] for s in args.seeds]
        r = [row["skin_tone_r"] for row in rows]
        print(f"{variant:14s} skin r {' '.join(f'{v:+.2f}' for v in r)}  (swapped in {sum(v < 0 for v in r)} of {len(r)}),"
              f" LPIPS {statistics.mean(row['lpips'] for row in rows):.3f},"
              f" repaint floor {statistics.mean(row['repaint_floor_lpips'] for row in rows):.3f},"
              f" gaze error {statistics.mean(row['gaze_error_deg'] for row in rows):.2f}°")


def score_checkpoints(profile, paths) -> None:
    """Each saved model on the whole protocol: LPIPS and gaze error (the claims' figures), the repaint
    floor and the identity correlations, after the unchanged input's row."""
    from eyegen_lib.core.checkpoint import config_from_saved, load_checkpoint
    from eyegen_lib.science.models.gaze_gan import GazeGAN

    _, rset, _ = protocols.redirection_protocol(profile, seed=0)
    estimator, _ = registry.gaze_estimator(profile, seed=0, pretrained=True, progress=False)
    still = evaluate_redirection(rset.source, rset, estimator)
    print(f"{len(rset)} protocol pairs; unchanged input: LPIPS {still.lpips.mean():.4f}, gaze error {still.gaze_error_deg.mean():.2f}°")
    print(f"{'checkpoint':48s} {'step':>6s} {'LPIPS':>7s} {'gaze °':>7s} {'floor':>7s} {'skin r':>7s} {'iris r':>7s}")
    for path in paths:
        saved = torch.load(path, map_location="cpu", weights_only=True)  # its config, to build the model it fits
        config = config_from_saved(GazeGANConfig, saved["config"])
        model = GazeGAN(config)
        ckpt = load_checkpoint(path, kind="gaze_gan", model=model, config=config)
        model.eval()
        pred = redirect_set(model, rset)
        frame = evaluate_redirection(pred, rset, estimator)
        same = redirect(model, rset.source, rset.source_gaze)
        floor = float(lpips_distance(to_signed(same), to_signed(rset.source)).mean())
        ident = identity_scores(pred, rset)
        print(f"{str(path)[-48:]:48s} {ckpt.get('step', 0):6d} {frame.lpips.mean():7.4f} {frame.gaze_error_deg.mean():7.2f} "
              f"{floor:7.4f} {ident['skin_tone_r']:7.3f} {ident['iris_colour_r']:7.3f}", flush=True)


if __name__ == "__main__":
    main()
