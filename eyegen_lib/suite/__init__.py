"""Layer 4, the suite's tooling: the ``eyegen`` command (``cli``, ``train_cli``, ``zoo_cli``,
``check``), running the notebooks headless (``runner``), their cards, the report and the executed
notebooks' offline pages (``report``, ``notebook_html``).

The top layer: it may import from every layer below (tests/test_import_graph.py)."""
