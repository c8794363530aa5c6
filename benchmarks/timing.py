"""The timing helper the benchmark scripts share (run them from the repository root:
``python benchmarks/<script>.py``, which puts this folder on the import path)."""
from __future__ import annotations

import time

import torch


def timed(fn, repeats: int, device: torch.device) -> list[float]:
    """Seconds per call of ``fn`` over ``repeats`` calls after one warm-up; synchronises on a GPU."""
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


def add_device_arguments(parser) -> None:
    """The ``--threads`` and ``--device`` options every benchmark takes."""
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: leave the default)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")


def device_from(args) -> torch.device:
    """Apply ``--threads`` and return the ``--device``."""
    if args.threads:
        torch.set_num_threads(args.threads)
    return torch.device(args.device)


def row(figures: dict, digits: int = 4) -> str:
    """One printed line of named figures."""
    return "  ".join(f"{k} {v:.{digits}g}" if isinstance(v, float) else f"{k} {v}" for k, v in figures.items())
