"""How much margin each numerics-sensitive test has, across seeds and CPU kernel choices.

Runs ``pytest -m numerics`` once per (seed, kernel setting) with ``$EYEGEN_TEST_SEED`` and the
oneDNN / ATen ISA variables set, collects what each ``margin`` check measured, and prints per
check the worst and best ratio (measured / threshold: a check passes below 1). A threshold whose
worst ratio is near 1 is machine-tuned: widen, lengthen or re-design that check.

    .venv/bin/python benchmarks/numerics_spread.py --seeds 0 1 2 --isa default AVX2 SSE41
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
KERNELS = {  # name → environment: oneDNN's ISA cap, and torch's own kernels where the name says so
    "default": {},
    "AVX2": {"ONEDNN_MAX_CPU_ISA": "AVX2", "ATEN_CPU_CAPABILITY": "avx2"},
    "SSE41": {"ONEDNN_MAX_CPU_ISA": "SSE41", "ATEN_CPU_CAPABILITY": "default"},
}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--isa", nargs="+", default=list(KERNELS), choices=list(KERNELS))
    ap.add_argument("-k", default=None, help="pytest -k expression to run a part of the subset")
    ap.add_argument("--log", type=Path, default=None, help="keep the raw JSON lines here")
    args = ap.parse_args(argv)
    log = args.log or Path(tempfile.mkdtemp(prefix="eyegen-numerics-")) / "margins.jsonl"
    failed = []
    for isa in args.isa:
        for seed in args.seeds:
            env = {**os.environ, **KERNELS[isa], "EYEGEN_TEST_SEED": str(seed), "EYEGEN_NUMERICS_LOG": str(log)}
            cmd = [sys.executable, "-m", "pytest", "-q", "-m", "numerics", "-p", "no:cacheprovider", "tests"]
            if args.k:
                cmd += ["-k", args.k]
            rc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
            lines = [ln for ln in rc.stdout.splitlines() if ln.strip()]
            status = lines[-1].strip("= ") if lines else f"no output (rc {rc.returncode})"
            print(f"kernels {isa:8s} seed {seed}: {status}", flush=True)
            if rc.returncode:
                failed.append((isa, seed))
                print("\n".join(rc.stdout.splitlines()[-15:]))
    rows = defaultdict(list)
    for line in log.read_text().splitlines():
        r = json.loads(line)
        rows[(r["test"].split("::")[-1], r["check"])].append(r)
    print(f"\n{'test / check':92s} {'n':>3s} {'worst':>7s} {'best':>7s}   (measured / threshold; passes below 1)")
    for (test, check), rs in sorted(rows.items()):
        ratios = [r["ratio"] for r in rs]
        worst = max(rs, key=lambda r: r["ratio"])
        print(f"{(test + ' / ' + check)[:92]:92s} {len(rs):3d} {max(ratios):7.3f} {min(ratios):7.3f}"
              f"   worst at seed {worst['seed']}, {worst['isa']}/{worst['aten']}")
    print(f"\nraw log: {log}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
