"""Layer 3, the machinery of runs and their artifacts: the model families (``family``, ``families``),
how an artifact is named, trained or loaded (``jobs``, ``engine``) and what made it (``provenance``),
the registry notebooks request artifacts from, the model zoo (``zoo``, ``zoo_verify``), and the
record a run keeps (``record``: metrics, claims and their margins, spreads and context, the machine).

Imports only from ``core``, ``science`` and itself (tests/test_import_graph.py)."""
