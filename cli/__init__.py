"""The ``rag`` command: the top floor, above the pipeline (``rag``), the API (``api``)
and the evaluation (``eval``), which it drives and nothing imports."""
