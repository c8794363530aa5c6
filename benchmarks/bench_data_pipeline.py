"""Peak memory and speed of each model's training-data pipeline at a profile (default ``paper``).

For every model family this builds the training data exactly as the registry does at the profile —
row stores over the training persons, rendered on demand (``stream_data``), redirection pairs as
``PairRows``, the model's batch source — and draws ``--batches`` batches through ``--workers``
DataLoader workers (default: the profile's ``num_workers``), without a model. It prints, per family:
the rows it draws from, the batch, seconds per batch after the first (on this machine's cores: the
workers share them), and the peak memory of the whole process tree (PSS: the main process and its
workers, shared pages counted once; :mod:`eyegen_lib.core.memory`). Each family runs in its own process.

The refiner's pipeline also holds the streamed ranking setup (pseudo-labels of the whole pool,
compressed, and the ranking features of pool and targets: :func:`eyegen_lib.science.protocols.streamed_ranking_setup`).
Building it needs the trained segmenter on every pool image, far too slow on a CPU at ``paper``
size, so the benchmark builds stores of the same size: the true masks of ``--mask-sample`` rendered
images (a stand-in for pseudo-labels: masks of the same eyes) cycled to the pool's length, each
copy its own bytes, and their ranking features likewise.

    python benchmarks/bench_data_pipeline.py                      # paper, all families
    python benchmarks/bench_data_pipeline.py --families seg2eye --batches 32
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

import torch

FAMILIES = ("segmenter", "refiner", "seg2eye", "deepwarp", "gaze_gan", "gaze_estimator")


def _stand_in_ranking_setup(profile, source, train, test, sample: int):
    """Pool and target stores the size of the streamed ranking setup's (see the module doc)."""
    from eyegen_lib.science.data.rows import MaskStore, RenderedRows, ZipRows
    from eyegen_lib.science.similarity import ranking_features

    picked = list(range(0, len(source), max(1, len(source) // sample)))[:sample]
    masks = torch.cat([source.render(picked[i:i + 16], stages=("eyeball", "iris", "lids"))["mask"]
                       for i in range(0, len(picked), 16)])
    blobs = MaskStore.of(masks).blobs
    feats = ranking_features(masks, size=profile.ranking_size).half()

    def store(n, key):
        s = MaskStore(source.spec.size, key)
        s.blobs = [bytes(bytearray(blobs[i % len(blobs)])) for i in range(n)]  # each row its own bytes
        return s

    def features(n):
        return feats[torch.arange(n) % len(feats)].clone()

    pool_pseudo = store(len(source), "pseudo")
    held = {"pool_mask": store(len(source), "mask"), "pool_features": features(len(source)),
            "train_masks": store(len(train), "mask"), "train_features": features(len(train)),
            "test_masks": store(len(test), "mask"), "test_features": features(len(test))}
    pool = ZipRows(RenderedRows(source, range(len(source)), ("image",)), pool_pseudo)
    stored = sum(s.nbytes for s in (pool_pseudo, held["pool_mask"], held["train_masks"], held["test_masks"]))
    stored += sum(held[k].numel() * 2 for k in ("pool_features", "train_features", "test_features"))
    return pool, held, stored


def build(family: str, profile, mask_sample: int):
    """(batch source, description, what it keeps besides) for ``family`` at ``profile``."""
    from eyegen_lib.runs import registry
    from eyegen_lib.science.batches import EpochBatches
    from eyegen_lib.science.data.rows import rows_of
    from eyegen_lib.science.models.deeplab import SegmenterConfig, segmentation_batches
    from eyegen_lib.science.models.deepwarp import PairBatches
    from eyegen_lib.science.models.gaze_estimator import GazeEstimatorConfig, _gaze_batch
    from eyegen_lib.science.models.gaze_gan import IterationBatches
    from eyegen_lib.science.models.refiner import RefinerBatches, RefinerConfig
    from eyegen_lib.science.models.seg2eye import StyleBatches
    from eyegen_lib.science.protocols import (
        deepwarp_training_pairs,
        gaze_estimator_source,
        nir_source,
        person_side_groups,
        person_split,
        redirection_training_pairs,
        split_indices,
    )

    in_memory = not profile.stream_data
    split = person_split(profile)
    if family in ("segmenter", "refiner", "seg2eye"):
        source = nir_source(profile)
        idx = split_indices(source, split)
        train = rows_of(source, idx["train"], ("image", "mask"), in_memory=in_memory)
    if family == "segmenter":
        return segmentation_batches(train, SegmenterConfig.for_profile(profile)), f"{len(train)} training images", None
    if family == "refiner":
        config = RefinerConfig.for_profile(profile)
        pool, held, stored = _stand_in_ranking_setup(profile, source, idx["train"], idx["test"][: profile.eval_images],
                                                     mask_sample)
        ranked = torch.randint(len(pool), (len(train), config.top_n), generator=torch.Generator().manual_seed(0))
        batches = RefinerBatches(train, ranked, pool, config.batch_size)
        return batches, (f"{len(train)} targets, pool of {len(pool)}; ranking setup stores "
                         f"{stored / 2**30:.2f} GiB"), (held, ranked)
    if family == "seg2eye":
        config = registry.seg2eye_config(profile)
        groups = person_side_groups(source, idx["train"])
        return (StyleBatches(train, groups, k_style=config.k_style, batch_size=config.batch_size),
                f"{len(train)} training images, K={config.k_style}", None)
    if family == "deepwarp":
        config = registry.deepwarp_config(profile, "cfw_lcm")
        pairs = deepwarp_training_pairs(profile, "cfw_lcm")
        return PairBatches(pairs, config, batch_size=config.batch_size), f"{len(pairs['source']) if isinstance(pairs, dict) else len(pairs)} pairs", None
    if family == "gaze_gan":
        config = registry.gaze_gan_config(profile)
        pairs = redirection_training_pairs(profile)
        n = len(pairs["source"]) if isinstance(pairs, dict) else len(pairs)
        return (IterationBatches(pairs, batch_size=config.batch_size, n_minibatches=config.n_critic + 1),
                f"{n} pairs, {config.n_critic + 1} mini-batches per iteration", None)
    if family == "gaze_estimator":
        config = GazeEstimatorConfig.for_profile(profile)
        source = gaze_estimator_source(profile)
        rows = rows_of(source, split_indices(source, split)["train"], ("image", "gaze"), in_memory=in_memory)
        return EpochBatches(rows, config.batch_size, prepare=_gaze_batch), f"{len(rows)} training images", None
    raise ValueError(f"unknown family {family!r}: choose from {', '.join(FAMILIES)}")


def _shape(batch):
    if isinstance(batch, dict):
        return {k: list(v.shape) for k, v in batch.items()}
    return [list(v.shape) for v in batch]


def measure(family: str, profile_name: str, batches: int, workers: int | None, mask_sample: int) -> dict:
    from eyegen_lib.core.memory import PeakMemory
    from eyegen_lib.core.profiles import get_profile

    profile = get_profile(profile_name)
    with PeakMemory() as peak:
        t0 = time.perf_counter()
        source, description, _kept = build(family, profile, mask_sample)
        built = time.perf_counter() - t0
        source.workers = profile.num_workers if workers is None else workers
        times, shape = [time.perf_counter()], None
        for batch in source.iterate(0, batches):
            shape = shape or _shape(batch)
            times.append(time.perf_counter())
    steady = (times[-1] - times[1]) / max(1, batches - 1)
    return {"family": family, "profile": profile_name, "data": description, "batch": shape, "workers": source.workers,
            "build_s": built, "first_batch_s": times[1] - times[0], "s_per_batch": steady, "peak_pss_GiB": peak.gib}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", default="paper")
    parser.add_argument("--families", nargs="+", default=list(FAMILIES), choices=FAMILIES)
    parser.add_argument("--batches", type=int, default=24, help="batches drawn per family (default 24)")
    parser.add_argument("--workers", type=int, default=None, help="DataLoader workers (default: the profile's)")
    parser.add_argument("--mask-sample", type=int, default=256, help="refiner: distinct masks in the stand-in stores")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        print(json.dumps(measure(args.one, args.profile, args.batches, args.workers, args.mask_sample)))
        return 0
    print(f"| family | data | workers | s/batch | first batch (s) | build (s) | peak PSS, all processes (GiB) |")
    print("|---|---|---|---|---|---|---|")
    worst = 0.0
    for family in args.families:
        cmd = [sys.executable, __file__, "--one", family, "--profile", args.profile, "--batches", str(args.batches),
               "--mask-sample", str(args.mask_sample)] + (["--workers", str(args.workers)] if args.workers is not None else [])
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode:
            print(f"| {family} | failed: {proc.stderr.strip().splitlines()[-1]} |")
            continue
        r = json.loads(proc.stdout.strip().splitlines()[-1])
        worst = max(worst, r["peak_pss_GiB"])
        print(f"| {family} | {r['data']} | {r['workers']} | {r['s_per_batch']:.2f} | {r['first_batch_s']:.1f} | "
              f"{r['build_s']:.1f} | {r['peak_pss_GiB']:.2f} |", flush=True)
    print(f"\nlargest peak: {worst:.2f} GiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
