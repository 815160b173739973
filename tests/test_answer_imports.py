"""``rag.answer`` imports backends only when they are built, as its docstring says."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest


def _loaded_after(module: str) -> list[str]:
    code = (
        f"import json, sys, {module}; "
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('rag.') or m == 'jieba')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return list(json.loads(out.stdout))


@pytest.mark.parametrize("module", ["rag.answer", "rag.pipeline"])
def test_importing_imports_no_backend(module: str) -> None:
    backends = {"rag.answer.extractive", "rag.answer.openai", "rag.answer.local", "jieba"}
    assert not backends & set(_loaded_after(module))
