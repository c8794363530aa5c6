"""How well a segmenter trained on rendered eyes keeps its masks under a real camera's variation.

Two uses:

    # choose the camera randomisation's strength: train one segmenter per strength on the training
    # persons, score each on the VALIDATION persons, clean and under each test-time perturbation
    python benchmarks/segmenter_robustness.py --profile cpu --strengths 0 0.5 1 1.5 --steps 1000

    # score the registry's segmenter (the zoo's at cpu) on the TEST persons
    python benchmarks/segmenter_robustness.py --profile cpu --registry

Prints a table: mIoU clean, under each perturbation of data/camera_randomisation.PERTURBATIONS,
the worst of them, and the per-class IoU (skin, sclera, iris, pupil) clean.
"""
from __future__ import annotations

import argparse
import dataclasses
import time

import torch

from eyegen_lib import get_profile
from eyegen_lib.runs import registry
from eyegen_lib.science.data.camera_randomisation import PERTURBATIONS
from eyegen_lib.science.data.datasets import render_all
from eyegen_lib.science.models.deeplab import SegmenterConfig, segmentation_scores, segmenter_run
from eyegen_lib.science.protocols import nir_source, person_split, split_indices

CLASSES = ("skin", "sclera", "iris", "pupil")


def robustness(model, data: dict) -> dict:
    """mIoU of ``model`` on ``data`` (rendered ``image`` uint8, ``mask``) clean and perturbed."""
    scores = segmentation_scores(model, data)
    return {"clean": scores["miou"], **{name: scores["miou_" + name.replace(" ", "_")] for name in PERTURBATIONS},
            "worst perturbed": scores["miou_worst_perturbed"], **{f"iou_{c}": scores[f"iou_{c}"] for c in CLASSES}}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="cpu")
    ap.add_argument("--strengths", type=float, nargs="*", default=[0.0, 0.5, 1.0, 1.5])
    ap.add_argument("--steps", type=int, default=None, help="training steps per strength (default: the profile's)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--registry", action="store_true", help="score the registry's segmenter on the test persons")
    args = ap.parse_args(argv)
    profile = get_profile(args.profile)
    source = nir_source(profile, seed=args.seed)
    idx = split_indices(source, person_split(profile, seed=args.seed))
    rows = []
    if args.registry:
        # the zoo's model where one serves the run (as the notebooks take it)
        model, info = registry.segmenter(profile, seed=args.seed, pretrained=True, progress=False)
        test = render_all(source, idx["test"], progress=False)
        rows.append((f"registry (camera_randomisation={info['provenance']['config'].get('camera_randomisation', 0.0)})",
                     robustness(model, test)))
    else:
        train = render_all(source, idx["train"], progress=False)
        val = render_all(source, idx["validation"], progress=False)
        base = SegmenterConfig.for_profile(profile)
        for strength in args.strengths:
            config = dataclasses.replace(base, camera_randomisation=strength, steps=args.steps or base.steps)
            torch.manual_seed(args.seed)
            t = time.perf_counter()
            run = segmenter_run({"image": train["image"], "mask": train["mask"]}, config, seed=args.seed)
            run.fit(config.steps, desc=f"strength {strength}", progress=False)
            model = run.model.eval()
            rows.append((f"strength {strength} ({config.steps} steps, {time.perf_counter() - t:.0f} s)",
                         robustness(model, val)))
            print(rows[-1], flush=True)
    split = "test persons" if args.registry else "validation persons"
    cols = ["clean", *PERTURBATIONS, "worst perturbed", *(f"iou_{c}" for c in CLASSES)]
    print(f"\nsegmenter mIoU on the {split}, profile {profile.name}, seed {args.seed}")
    print("| segmenter | " + " | ".join(cols) + " |")
    print("|---|" + "---|" * len(cols))
    for name, r in rows:
        print(f"| {name} | " + " | ".join(f"{r[c]:.3f}" for c in cols) + " |")


if __name__ == "__main__":
    main()
