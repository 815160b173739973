"""Does load + clean + chunk stay linear in the document's size?

    python benchmarks/bench_chunk_scaling.py [--sizes 0.3 1 3 10] [--shapes run-on speech]

For each shape and size a synthetic document is written to a .txt file and timed
through ``load_documents`` (read, decode, clean) and ``chunk_document``; the last
column is seconds per MB, which stays about flat when the work is linear.

Shapes:
  run-on      common Chinese characters in 15–40-character sentences ending in 。,
              ~1,000-character lines, no headings (one huge section)
  speech      the bundled speeches, repeated: ordinary punctuated text with sections
  unpunctuated  Han characters only, a line break every 20,000 characters

The size limits of the loader are lifted for the run (the 10 MB case is over the
default text limit on purpose: it measures the chunker, not the guard).
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path

from rag.chunk import chunk_document
from rag.decode import _COMMON_HAN
from rag.documents import load_documents
from rag.pipeline import BUNDLED_CORPUS


def run_on(n_bytes: int, rng: random.Random) -> str:
    lines, line, size = [], "", 0
    while size < n_bytes:
        sentence = "".join(rng.choices(_COMMON_HAN, k=rng.randint(15, 40))) + "。"
        line += sentence
        size += len(sentence.encode())
        if len(line) >= 1000:
            lines.append(line)
            line = ""
    return "\n".join([*lines, line])


def speech(n_bytes: int, rng: random.Random) -> str:
    texts = [p.read_text(encoding="utf-8") for p in sorted(BUNDLED_CORPUS.glob("*.txt"))]
    out, size = [], 0
    while size < n_bytes:
        text = rng.choice(texts)
        out.append(text)
        size += len(text.encode())
    return "\n".join(out)


def unpunctuated(n_bytes: int, rng: random.Random) -> str:
    chars = "".join(rng.choices(_COMMON_HAN, k=n_bytes // 3))
    return "\n".join(chars[i : i + 20000] for i in range(0, len(chars), 20000))


SHAPES = {"run-on": run_on, "speech": speech, "unpunctuated": unpunctuated}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=float, nargs="+", default=[0.3, 1, 3, 10])
    parser.add_argument("--shapes", nargs="+", choices=sorted(SHAPES), default=list(SHAPES))
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        warm = Path(tmp) / "warm.txt"
        warm.write_text(speech(1, random.Random(0)), encoding="utf-8")
        chunk_document(load_documents([warm])[0][0])  # tokenizer and converter loading

        print(
            f"{'shape':<13} {'MB':>6} {'load+clean s':>13} {'chunk s':>9} {'chunks':>7} {'s/MB':>7}"
        )
        for shape in args.shapes:
            for mb in args.sizes:
                path = Path(tmp) / f"{shape}-{mb}.txt"
                path.write_text(SHAPES[shape](int(mb * 1e6), random.Random(1)), encoding="utf-8")
                real_mb = path.stat().st_size / 1e6
                t0 = time.perf_counter()
                docs, skipped = load_documents([path], max_text_mb=1e6, max_file_mb=1e6)
                t1 = time.perf_counter()
                chunks = [c for d in docs for c in chunk_document(d)]
                t2 = time.perf_counter()
                assert docs and not skipped, skipped
                print(
                    f"{shape:<13} {real_mb:>6.2f} {t1 - t0:>13.2f} {t2 - t1:>9.2f} "
                    f"{len(chunks):>7} {(t2 - t0) / real_mb:>7.2f}",
                    flush=True,
                )
                path.unlink()


if __name__ == "__main__":
    main()
