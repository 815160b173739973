"""``python -m cli …`` runs the ``rag`` command."""

from cli.app import app

app()
