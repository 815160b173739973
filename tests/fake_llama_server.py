"""``python -m fake_llama_server --port P [llama.cpp server options]``: the FakeLLM
upstream (tests/fake_llm.py) as a process on a given port, standing in for
``llama_cpp.server`` in the local-server manager's tests. Other options are ignored.
It records the last chat request's JSON body in ``$FAKE_LLAMA_LAST`` when that is set."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import fake_llm  # noqa: E402


class _Handler(fake_llm._Handler):
    def do_GET(self) -> None:
        if self.path.rstrip("/") == "/v1/models":
            self._json(200, {"object": "list", "data": [{"id": "local", "object": "model"}]})
        else:
            self._json(404, {"error": {"message": "not found"}})

    def _answer(self, request: dict[str, Any], *, cut: bool) -> None:
        last = os.environ.get("FAKE_LLAMA_LAST")
        if last:
            Path(last).write_text(json.dumps(request, ensure_ascii=False), encoding="utf-8")
        super()._answer(request, cut=cut)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args, _ = parser.parse_known_args()
    server = fake_llm._Server(("127.0.0.1", args.port), _Handler)
    server.serve_forever()


if __name__ == "__main__":
    main()
