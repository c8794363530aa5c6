"""Layer 2, the science a notebook reads: the renderer and the datasets' readers (``data``), the
papers' models (``models``), the metrics (``metrics``), similarity ranking (``similarity``,
``ranking``), the shared test protocols (``protocols``), evaluation, augmentation (He et al. §5.6),
baselines, losses, batch sources, plots and widget panels.

Imports only from ``core`` and itself (tests/test_import_graph.py)."""
