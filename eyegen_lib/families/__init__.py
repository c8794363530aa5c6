"""The suite's model families, one module each (see :mod:`eyegen_lib.family`): importing this package
registers them, in the order the notebooks use them. A new family: its module, and one line here."""
from . import segmenter, refiner, seg2eye, deepwarp, gaze_gan, gaze_estimator  # noqa: F401  (each registers itself)
