"""``eyegen train MODEL``: train one registry artifact outside the notebooks, resumably.

    eyegen train gaze_gan --profile cpu --ablation no_cycle
    eyegen train deepwarp --profile cpu --variant cfw_lcm --steps 4000 --out /data/eyegen
    torchrun --nproc_per_node 2 --no-python eyegen train seg2eye --profile cpu     # data-parallel

It writes the very file the notebooks load (``<out>/checkpoints/<profile>/seed<S>/…``), through the
registry, so a notebook run afterwards finds and loads it. The training state is saved every
``--save-every`` steps and ``--save-minutes`` minutes and on Ctrl-C; the same command after a kill
resumes where the last save left off and ends bit-identical to an uninterrupted run.
"""
from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path

from ..core.checkpoint import CheckpointError
from ..core.distributed import init_distributed, shutdown_distributed
from ..core.profiles import PROFILES, get_profile
from ..core.runtime import PRECISIONS
from ..core.training import TrainingStopped
from ..runs.engine import Checkpointing, ResumeRefused
from ..runs.family import families
from ..runs.jobs import UPSTREAM
from ..science.data.errors import DatasetError
from ..science.data.sources import check_data_source

__all__ = ["add_train_parser", "run_train"]



def _models() -> dict:
    """The registered model families by name (:mod:`eyegen_lib.runs.family`)."""
    return families()


def _epilog() -> str:
    lines = ["models (variants; the default first or marked):"]
    for name, fam in _models().items():
        shown = ", ".join(f"{v}*" if v == fam.default_variant else v for v in fam.variants) or "no variants"
        lines.append(f"  {name:<24}{fam.description}\n  {'':<24}[{shown}]")
    return "\n".join(lines)


def add_train_parser(sub) -> None:
    train = sub.add_parser("train", help="train one model (any notebook's), resumable and data-parallel",
                           description="Train one model into the registry artifact the notebooks load. Run the same "
                                       "command again after a kill or Ctrl-C to resume.",
                           epilog=_epilog(), formatter_class=argparse.RawDescriptionHelpFormatter)
    train.add_argument("model", metavar="MODEL", help="one of: " + ", ".join(_models()))
    train.add_argument("--profile", default="cpu", help=f"{' | '.join(PROFILES)} (default: cpu)")
    train.add_argument("--data", default="renderer", help="the data source: renderer (default), openeds (your copy in "
                       "$EYEGEN_OPENEDS_DIR: segmenter, refiner, seg2eye), columbia ($EYEGEN_COLUMBIA_DIR: deepwarp, "
                       "gaze_gan, gaze_estimator) or mpiigaze ($EYEGEN_MPIIGAZE_DIR: gaze_estimator); a model trained on a "
                       "dataset is filed apart")
    train.add_argument("--seed", default="0", help="the run's seed (default 0): a notebook with SEED=S loads it")
    train.add_argument("--steps", default=None, help="train this many steps instead of the profile's (the artifact "
                                                     "then records that config)")
    train.add_argument("--variant", default=None, help="the model's variant (see below)")
    train.add_argument("--ablation", default=None, help="seg2eye / gaze_gan: the ablation (same as --variant)")
    train.add_argument("--out", type=Path, default=None, help="output folder (default: outputs/ in the checkout)")
    train.add_argument("--save-every", default="1000", help="save the training state every N steps (default 1000)")
    train.add_argument("--save-minutes", default="5", help="… and every M minutes (default 5)")
    train.add_argument("--keep-at", nargs="+", default=(), metavar="STEP",
                       help="also keep the model after these steps, beside the artifact as <name>.step<STEP>.pt "
                            "(claims against training length)")
    train.add_argument("--precision", default=None, help="auto | fp32 | bf16 (autocast; auto = bf16 on CUDA and on "
                                                         "CPUs with AMX-BF16; default: $EYEGEN_PRECISION or auto)")
    train.add_argument("--restart", action="store_true",
                       help="train from step 0: an existing artifact and training state are kept aside, renamed")
    train.add_argument("--pretrained", action="store_true",
                       help="take the models this one is trained on (the refiner's segmenter, the augmented "
                            "estimator's GAN) from the model zoo where it serves the run; the model itself is "
                            "trained here (how the zoo's own entries are made)")
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    train.set_defaults(func=None)


class UsageError(ValueError):
    """A bad argument: one line saying what is wrong and what is valid."""


def _int(text: str, what: str, minimum: int) -> int:
    try:
        value = int(text)
    except (TypeError, ValueError):
        raise UsageError(f"{what} takes an integer ≥ {minimum}, got {text!r}") from None
    if value < minimum:
        raise UsageError(f"{what} takes an integer ≥ {minimum}, got {value}")
    return value


def _float(text: str, what: str) -> float:
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise UsageError(f"{what} takes a number of minutes ≥ 0, got {text!r}") from None
    if value < 0:
        raise UsageError(f"{what} takes a number of minutes ≥ 0, got {value:g}")
    return value


def _variant(model: str, args) -> str:
    fam = _models()[model]
    variants, default = fam.variants, fam.default_variant
    if args.ablation is not None and fam.variant_word != "ablation":
        takers = [n for n, f in _models().items() if f.variant_word == "ablation"]
        raise UsageError(f"--ablation is for {' and '.join(takers)}; {model} takes --variant"
                         + (f" (one of {', '.join(variants)})" if variants else " (it has no variants)"))
    if args.ablation is not None and args.variant is not None and args.ablation != args.variant:
        raise UsageError(f"--ablation {args.ablation} and --variant {args.variant} disagree: give one")
    chosen = args.ablation if args.ablation is not None else args.variant
    if chosen is None:
        return default
    if not variants:
        raise UsageError(f"{model} has no variants (got {chosen!r})")
    if fam.variant_pattern and re.fullmatch(fam.variant_pattern, chosen):
        return chosen
    if chosen not in variants:
        kind = "ablation" if args.ablation is not None else "variant"
        raise UsageError(f"{model} has no {kind} {chosen!r}: choose one of {', '.join(variants)}")
    return chosen


def _parse(args):
    if args.model not in _models():
        raise UsageError(f"unknown model {args.model!r}: choose one of {', '.join(_models())}")
    if args.profile not in PROFILES:
        raise UsageError(f"unknown profile {args.profile!r}: choose one of {', '.join(PROFILES)}")
    if args.data != "renderer":
        if args.data not in _models()[args.model].datasets:
            takers = [n for n, f in _models().items() if args.data in f.datasets]
            raise UsageError(f"{args.model} does not train on --data {args.data}: "
                             + (f"only {', '.join(takers)} do" if takers else "no model does yet"))
        try:
            check_data_source(PROFILES[args.profile].with_data(args.data))
        except (DatasetError, ValueError) as exc:
            raise UsageError("; ".join(line.strip() for line in str(exc).splitlines() if line.strip())) from None
    seed = _int(args.seed, "--seed", 0)
    steps = None if args.steps is None else _int(args.steps, "--steps", 1)
    every = _int(args.save_every, "--save-every", 0)
    minutes = _float(args.save_minutes, "--save-minutes")
    variant = _variant(args.model, args)
    keep_at = tuple(sorted({_int(k, "--keep-at", 1) for k in args.keep_at}))
    if steps is not None and keep_at and keep_at[-1] > steps:
        raise UsageError(f"--keep-at {keep_at[-1]} lies beyond --steps {steps}: keep steps up to the run's length")
    if args.precision is not None:
        if args.precision not in PRECISIONS:
            raise UsageError(f"unknown precision {args.precision!r}: choose one of {', '.join(PRECISIONS)}")
        os.environ["EYEGEN_PRECISION"] = args.precision
    if args.out is not None:
        out = args.out.expanduser()
        if out.exists() and not out.is_dir():
            raise UsageError(f"--out {out} is a file, not a folder: name a folder (it is created if absent)")
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UsageError(f"--out {out} cannot be created ({exc.strerror}): choose a writable folder") from None
        if not os.access(out, os.W_OK):
            raise UsageError(f"--out {out} is not writable: choose a writable folder")
        os.environ["EYEGEN_OUTPUT_DIR"] = str(out.resolve())
    return seed, steps, every, minutes, variant, keep_at


def run_train(args) -> int:
    try:
        seed, steps, every, minutes, variant, keep_at = _parse(args)
    except UsageError as exc:
        print(f"eyegen train: error: {exc}", file=sys.stderr)
        return 2
    profile = get_profile(args.profile).with_data(args.data)
    dist = init_distributed()
    # --pretrained: the models it needs come from the zoo; the model itself always trains here
    common = {"pretrained": UPSTREAM if args.pretrained else False, "retrain": args.restart, "progress": not args.quiet,
              "checkpointing": Checkpointing(every_steps=every, every_minutes=minutes, on_other_state="refuse",
                                            keep_at=keep_at)}
    try:
        _, info = _models()[args.model].obtain(profile, variant, seed=seed, steps=steps, **common)
    except TrainingStopped:
        return 130
    except ResumeRefused as exc:
        if dist.is_main:
            print(f"eyegen train: refused: {exc}", file=sys.stderr)
        return 2
    except (CheckpointError, ValueError) as exc:
        if dist.is_main:
            print(f"eyegen train: error: {exc}", file=sys.stderr)
        return 1
    finally:
        if dist.enabled:
            shutdown_distributed()
    if dist.is_main:
        name = args.model + (f"/{variant}" if variant else "")
        how = (f"trained in {info['train_seconds']:.1f} s" + (f" (resumed at step {info['resumed_from']})"
                                                              if info.get("resumed_from") is not None else "")
               if info["trained_now"] else "already trained; loaded")
        print(f"{name}: {info['step']} steps ({info['precision']}), {how}\n  {info['path']}\n  sha256 {info['sha256']}")
        figures = {k: v for k, v in info["metrics"].items() if isinstance(v, (int, float))}
        if figures:
            print("  " + ", ".join(f"{k} {v:.4g}" for k, v in figures.items()))
    return 0
