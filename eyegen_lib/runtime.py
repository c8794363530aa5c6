"""Seeds, devices and progress bars: the few things every notebook does first."""
from __future__ import annotations

import os
import random

import numpy as np
import torch
from tqdm.auto import tqdm  # re-exported: notebooks get widget bars, scripts get text bars

__all__ = ["seed_everything", "choose_device", "tqdm"]


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
