"""Seeds, devices, numeric precision and progress bars: the few things every notebook does first."""
from __future__ import annotations

import contextlib
import functools
import os
import random

import numpy as np
import torch
from tqdm.auto import tqdm  # re-exported: notebooks get widget bars, scripts get text bars

__all__ = ["seed_everything", "choose_device", "tqdm", "PRECISIONS", "resolve_precision", "autocast", "cpu_has_amx_bf16"]

PRECISIONS = ("auto", "fp32", "bf16")


def seed_everything(seed: int = 0, *, deterministic: bool = False) -> int:
    """Seed ``random``, numpy and torch (all devices). Same seed, same numbers on the same machine.

    ``deterministic=True`` also asks torch for deterministic kernels (slower on GPU; warns, rather
    than fails, where an op has no deterministic implementation).
    """
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic:
        # cuBLAS needs this set before its first use to be reproducible.
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True
    return seed


def choose_device(preferred: str | None = None, *, local_rank: int = 0) -> torch.device:
    """cuda → mps → cpu, unless ``preferred`` or ``$EYEGEN_DEVICE`` names one."""
    name = preferred or os.environ.get("EYEGEN_DEVICE")
    if name:
        device = torch.device(name)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError(f"device {name!r} was asked for but CUDA is not available; unset EYEGEN_DEVICE or use 'cpu'")
        return device
    if torch.cuda.is_available():
        return torch.device("cuda", local_rank % torch.cuda.device_count())
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


@functools.lru_cache(maxsize=1)
def cpu_has_amx_bf16() -> bool:
    """Whether this CPU has AMX-BF16 tiles (Sapphire Rapids and later), where bf16 matmuls are fast."""
    try:
        with open("/proc/cpuinfo") as f:
            return any(line.startswith("flags") and " amx_bf16" in line for line in f)
    except OSError:
        return False


def resolve_precision(setting: str | None = None, device: torch.device | str | None = None) -> str:
    """``fp32`` or ``bf16``: ``setting`` (else ``$EYEGEN_PRECISION``, else ``auto``); ``auto`` is bf16
    on CUDA and on CPUs with AMX-BF16, fp32 elsewhere (where bf16 is emulated and slower)."""
    setting = setting or os.environ.get("EYEGEN_PRECISION", "").strip() or "auto"
    if setting not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {setting!r}"
                         + (" (from $EYEGEN_PRECISION)" if os.environ.get("EYEGEN_PRECISION") else ""))
    if setting != "auto":
        return setting
    device = torch.device(device) if device is not None else choose_device()
    return "bf16" if device.type == "cuda" or (device.type == "cpu" and cpu_has_amx_bf16()) else "fp32"


def autocast(device: torch.device | str, precision: str):
    """``torch.autocast`` to bfloat16 for ``precision == "bf16"`` (no gradient scaling needed: bf16
    keeps fp32's range); a no-op for fp32."""
    device = torch.device(device)
    if precision != "bf16":
        return contextlib.nullcontext()
    if device.type not in ("cuda", "cpu"):
        raise ValueError(f"bf16 autocast runs on CUDA or CPU, not {device.type}: use precision 'fp32'")
    return torch.autocast(device.type, dtype=torch.bfloat16)
