"""Throughput of the procedural eye renderer (images per second, warm-up excluded), optionally
side by side with an older commit's renderer in the same run.

    python benchmarks/bench_renderer.py --batch 32 --threads 2
    python benchmarks/bench_renderer.py --against 0459d9f --rounds 2     # old and new, alternating

Renders NIR frames at 400×640 and 80×128 and RGB patches at 64×64 and 41×51 through
``SyntheticEyes.render`` (the full path: parameter draws, textures from the cache, shading, uint8
output), batch ``--batch`` for NIR and at least 256 for RGB, over ``--persons`` persons in random
order. Each (version, case) runs in its own worker process, which warms up once (every person's
textures and frames built) and then renders one timed batch per request. With ``--against`` the two
versions take turns batch by batch (the first of each pair alternating), on the same threads: this
machine's speed drifts by tens of percent over tens of seconds, which a comparison of separate
stretches of time would read as a change of the code, while two batches timed back to back see the
same machine. Prints, per case, the median (and best) images per second of each version, their
ratio, the median of the per-pair speed-ups with its quartiles, and each worker's peak PSS (a data
worker's memory: the library and torch, plus the textures and frames cached for the case's persons;
sampled after each timed batch). The older version is ``git archive``d into a temporary folder and
imported from there.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from io import BytesIO
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CASES = [("nir", (400, 640)), ("nir", (80, 128)), ("rgb", (64, 64)), ("rgb", (41, 51))]


def _worker(threads: int) -> None:
    """Serve timing requests, one JSON line each, from stdin: the renderer imported is the one on PYTHONPATH."""
    import psutil
    import torch

    torch.set_num_threads(threads)
    me, peak_pss = psutil.Process(), 0
    from eyegen_lib.science.data import SyntheticEyes, SyntheticEyeSpec

    sources = {}
    for line in sys.stdin:
        req = json.loads(line)
        key = (req["modality"], tuple(req["size"]))
        per_person = 256
        n, batch = req["persons"] * per_person, req["batch"]
        indices = lambda k: [(k * batch + i) * 7919 % n for i in range(batch)]
        if key not in sources:
            ds = SyntheticEyes(SyntheticEyeSpec(req["modality"], size=tuple(req["size"]), n_persons=req["persons"],
                                                images_per_person=per_person, seed=0))
            for p in range(req["persons"]):    # warm-up: both eyes of every person, then one whole batch
                ds.render([p * per_person, p * per_person + 1])
            ds.render(indices(0))
            sources[key] = ds
        t0 = time.perf_counter()
        sources[key].render(indices(1 + req["batch_index"]))
        elapsed = time.perf_counter() - t0
        peak_pss = max(peak_pss, me.memory_full_info().pss)   # outside the timed span
        print(json.dumps({"time": elapsed, "peak_pss_mb": peak_pss / 2 ** 20}), flush=True)


def _tree_of(commit: str, into: Path) -> Path:
    """The library as it was at ``commit``, extracted under ``into``."""
    blob = subprocess.run(["git", "-C", str(ROOT), "archive", "--format=tar", commit, "eyegen_lib"],
                          capture_output=True, check=False)
    if blob.returncode:
        raise SystemExit(f"--against {commit}: git archive failed: {blob.stderr.decode().strip()}")
    with tarfile.open(fileobj=BytesIO(blob.stdout)) as tar:
        tar.extractall(into, filter="data")
    return into


class Worker:
    def __init__(self, tree: Path, threads: int):
        env = dict(os.environ, PYTHONPATH=str(tree), OMP_NUM_THREADS=str(threads))
        self.proc = subprocess.Popen([sys.executable, __file__, "--worker", "--threads", str(threads)], env=env,
                                     cwd=str(tree), stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def ask(self, **req) -> dict:
        self.proc.stdin.write(json.dumps(req) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise SystemExit(f"a renderer worker ({self.proc.args}) died; run it alone to see its error")
        return json.loads(line)

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=5, help="timed batches per case and round (per version)")
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--persons", type=int, default=8)
    ap.add_argument("--against", metavar="COMMIT", help="also time this commit's renderer, alternating with today's")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        _worker(args.threads)
        return
    for name in ("batch", "threads", "repeats", "rounds", "persons"):
        if getattr(args, name) < 1:
            raise SystemExit(f"--{name} must be ≥ 1, got {getattr(args, name)}")
    with tempfile.TemporaryDirectory() as tmp:
        versions = {"today": ROOT}
        if args.against:
            versions = {args.against: _tree_of(args.against, Path(tmp)), **versions}
        times = {(v, c): [] for v in versions for c in range(len(CASES))}
        peak = {}
        workers = {(v, c): Worker(tree, args.threads) for v, tree in versions.items() for c in range(len(CASES))}
        try:
            for c, (modality, size) in enumerate(CASES):
                batch = args.batch if modality == "nir" else max(args.batch, 256)
                for k in range(args.rounds * args.repeats):
                    order = list(versions) if k % 2 == 0 else list(versions)[::-1]
                    for v in order:
                        res = workers[v, c].ask(modality=modality, size=size, batch=batch, persons=args.persons,
                                                batch_index=k)
                        times[v, c].append(res["time"])
                        peak[v, c] = res["peak_pss_mb"]
        finally:
            for w in workers.values():
                w.close()
    import torch
    print(f"torch {torch.__version__}, {args.threads} threads, NIR batch {args.batch}, RGB batch "
          f"{max(args.batch, 256)}, {args.persons} persons, {args.rounds} round(s) × {args.repeats} batches")
    names = list(versions)
    pair = len(names) == 2
    head = " | ".join(f"{v} img/s median (best) | {v} peak PSS MB" for v in names)
    print(f"| case | {head} |" + (f" {names[1]} / {names[0]} | per-pair speed-up, median [quartiles] |" if pair else ""))
    print("|---" * (1 + 2 * len(names) + 2 * pair) + "|")
    for c, (modality, size) in enumerate(CASES):
        batch = args.batch if modality == "nir" else max(args.batch, 256)
        cells, medians = [], []
        for v in names:
            med, best = batch / statistics.median(times[v, c]), batch / min(times[v, c])
            medians.append(med)
            cells.append(f"{med:,.0f} ({best:,.0f}) | {peak[v, c]:,.0f}")
        extra = ""
        if pair:
            speedups = [a / b for a, b in zip(times[names[0], c], times[names[1], c])]
            q = statistics.quantiles(speedups, n=4) if len(speedups) > 1 else [speedups[0]] * 3
            extra = f" {medians[1] / medians[0]:.2f} | {statistics.median(speedups):.2f} [{q[0]:.2f}, {q[2]:.2f}] |"
        print(f"| {modality.upper()} {size[0]}×{size[1]}, batch {batch} | " + " | ".join(cells) + " |" + extra)

if __name__ == "__main__":
    main()
