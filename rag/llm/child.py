"""Run llama.cpp's server so that it never outlives the process that started it.

``python -m rag.llm.child [--module M] --parent PID -- <server arguments>`` watches its
parent from a daemon thread and exits as soon as the parent is gone (however it died:
Ctrl-C, SIGTERM, SIGKILL), then runs ``llama_cpp.server`` (or module ``M``: the tests' fake) in this process.
Without ``--parent`` it is just ``python -m llama_cpp.server``.
"""

from __future__ import annotations

import os
import runpy
import sys
import threading
import time
from collections.abc import Sequence

POLL_S = 1.0


def _watch(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(POLL_S)
    os._exit(0)  # the parent is gone: nobody will ask us anything any more


def main(argv: Sequence[str]) -> None:
    args = list(argv)
    module = "llama_cpp.server"
    if args[:1] == ["--module"]:
        module, args = args[1], args[2:]
    if args[:1] == ["--parent"]:
        parent = int(args[1])
        args = args[2:]
        if os.getppid() != parent:
            sys.exit("rag.llm.child: the parent process is already gone")
        threading.Thread(target=_watch, args=(parent,), daemon=True).start()
    if args[:1] == ["--"]:
        args = args[1:]
    sys.argv = [module, *args]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":  # pragma: no cover
    main(sys.argv[1:])
