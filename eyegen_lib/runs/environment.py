"""What the setup notebook and ``eyegen env`` report: versions, device, weights, datasets."""
from __future__ import annotations

import importlib.metadata as md
import os
import platform
from pathlib import Path

import torch

from ..core.runtime import choose_device
from ..science.backbones import weights_status
from ..science.data.validate import check_dataset

__all__ = ["environment_report", "format_environment", "machine_description", "DATASET_ENV_VARS"]

# Where a user's licensed copies are looked for; each notebook's "real data" section reads these.
DATASET_ENV_VARS = {
    "OpenEDS": ("EYEGEN_OPENEDS_DIR", "the folder holding Semantic_Segmentation_Dataset/, Generative_Dataset/ and the userID mapping JSONs"),
    "Columbia Gaze patches": ("EYEGEN_COLUMBIA_DIR", "a folder of He et al.'s 64×64 patches named like 0048_2m_-30P_0V_-10H_L.jpg"),
    "MPIIGaze": ("EYEGEN_MPIIGAZE_DIR", "the MPIIGaze folder holding Data/Normalized/pXX/dayYY.mat"),
}

_PACKAGES = ["torch", "torchvision", "numpy", "scipy", "pillow", "matplotlib", "seaborn", "ipywidgets",
             "papermill", "nbval", "lpips", "tqdm"]


def machine_description() -> str:
    """The machine, in one line, as the zoo's MANIFEST and the report say it: CPU model, cores, GPU, torch."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpu = f", {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else ""
    return f"{cpu}, {os.cpu_count()} cores{gpu}, torch {torch.__version__}"


def environment_report() -> dict:
    versions = {}
    for name in _PACKAGES:
        try:
            versions[name] = md.version(name)
        except md.PackageNotFoundError:
            versions[name] = "missing"
    datasets = {}
    for name, (var, what) in DATASET_ENV_VARS.items():
        value = os.environ.get(var)
        found = bool(value) and Path(value).expanduser().is_dir()
        datasets[name] = {"variable": var, "expects": what, "found": found, "usable": False, "summary": "",
                          "path": value or ""}
        if found:  # a folder is not yet a dataset: open it with the reader, count, decode one sample

            checked = check_dataset(name, value)
            datasets[name].update(usable=checked["ok"], summary=checked["summary"])
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "versions": versions,
        "device": str(choose_device()),
        "cuda": torch.cuda.is_available(),
        "cuda_device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "",
        "cpu_threads": torch.get_num_threads(),
        "weights": weights_status(),
        "datasets": datasets,
    }


def format_environment(report: dict) -> str:
    """``environment_report()`` for a person: a few aligned lines, what is missing said plainly."""
    device = "CUDA: " + report["cuda_device"] if report["cuda"] else f"CPU ({report['cpu_threads']} threads); no CUDA"
    lines = [f"python     {report['python']} on {report['platform']}",
             f"device     {device}",
             "packages   " + ", ".join(f"{k} {v}" for k, v in report["versions"].items())]
    for name, where in report["weights"].items():
        lines.append(f"weights    {name:<8} {where}")
    for name, d in report["datasets"].items():
        if d["usable"]:
            found = f"found at {d['path']}: {d['summary']}"
        elif d["found"]:
            found = f"{d['variable']}={d['path']} is not usable: {d['summary']}"
        elif d["path"]:
            found = f"{d['variable']}={d['path']} is not a folder: point it at {d['expects']}"
        else:
            found = f"not set: the renderer's eyes stand in (set {d['variable']} to {d['expects']})"
        lines.append(f"dataset    {name}: {found}")
    return "\n".join(lines)
