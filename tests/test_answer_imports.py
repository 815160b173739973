"""``rag.answer`` imports backends only when they are chosen, as its docstring says."""

from __future__ import annotations

import subprocess
import sys


def test_importing_the_answer_package_imports_no_backend() -> None:
    code = (
        "import sys, rag.answer; "
        "print(sorted(m for m in sys.modules if m.startswith('rag.answer.') or m == 'jieba'))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "['rag.answer.base']"
