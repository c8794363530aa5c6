"""eyegen_lib: the shared library behind the eyegen notebooks.

Notebooks start with::

    import eyegen_lib as eg
    profile = eg.resolve_profile(PROFILE)
    eg.seed_everything(SEED)
    rec = eg.Recorder("01_dataset", profile, seed=SEED)

and ask :mod:`eyegen_lib.runs.registry` for every model or prediction file they share.
"""
from .core.checkpoint import ArtifactMismatch, CheckpointError, load_checkpoint, save_checkpoint
from .core.paths import output_dir
from .core.profiles import PROFILES, Profile, get_profile, resolve_profile
from .core.runtime import choose_device, seed_everything, tqdm
from .core.version import __version__
from .runs.record import Recorder, read_metrics, rising_margin

__all__ = [
    "ArtifactMismatch", "CheckpointError", "load_checkpoint", "save_checkpoint",
    "output_dir",
    "PROFILES", "Profile", "get_profile", "resolve_profile",
    "Recorder", "read_metrics", "rising_margin",
    "choose_device", "seed_everything", "tqdm",
]
