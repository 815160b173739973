"""How ingest and the index on disk scale with the corpus (test embedder, no model time).

    RAG_EMBED_MODEL=hash python benchmarks/bench_scale.py [--sizes 100 300 1000]

Synthetic speeches are built from the paragraphs of the distractor corpus
(../shared/corpus-extra/xi_2020_speeches.csv): each speech is a title line and about
``--chars`` characters of paragraphs drawn at random, every paragraph tagged with its
speech and position so that no line repeats across speeches (a repeated line would be
removed as site boilerplate). Default settings (sentence vectors on), ``hash`` embedder.

For each size, in a fresh child process (so peak RSS is that run's):
  * full ingest of the N speeches: seconds, chunks, peak RSS, bytes on disk per chunk
    (every file of the index directory);
  * one more speech added to that index (``rag ingest <file>``), and the same speech
    into an empty index: seconds and their ratio;
  * the index directory before and after that one-speech update, and their ratio.
Then the linearity ratio of full ingest time against chunk count between sizes.

The script only uses ``Pipeline`` and the size of ``<home>/index``, so it runs on older
code too (``PYTHONPATH=<other checkout> python benchmarks/bench_scale.py``).
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rag.pipeline import Pipeline
from rag.settings import Settings

CSV = Path(__file__).resolve().parents[2] / "shared" / "corpus-extra" / "xi_2020_speeches.csv"
_PARA = re.compile(r"[\u3000]{2,}|\r?\n")


def paragraphs(csv_path: Path) -> list[str]:
    csv.field_size_limit(1 << 30)
    out: list[str] = []
    with csv_path.open(encoding="utf-8-sig", newline="") as fh:
        for row in csv.DictReader(fh):
            out += [p.strip() for p in _PARA.split(row.get("Text") or "") if len(p.strip()) > 20]
    return out


def write_speeches(folder: Path, first: int, n: int, paras: list[str], chars: int) -> list[Path]:
    """Speeches ``first`` .. ``first + n - 1`` as ``speech_<i>.txt`` (deterministic)."""
    folder.mkdir(parents=True, exist_ok=True)
    files = []
    for i in range(first, first + n):
        rng = random.Random(i)
        lines = [f"在第{i}次工作会议上的讲话", f"（2020年{i % 12 + 1}月{i % 28 + 1}日）"]
        size = 0
        while size < chars:
            p = f"{rng.choice(paras)}（第{i}篇第{len(lines)}段）"
            lines.append(p)
            size += len(p)
        path = folder / f"speech_{i:05d}.txt"
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        files.append(path)
    return files


def du(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def pipeline(home: Path) -> Pipeline:
    return Pipeline(Settings(home=home, embed_model="hash"))


def run_size(n: int, chars: int, work: Path) -> dict[str, float]:
    """Everything measured for one corpus size (run in a child process)."""
    paras = paragraphs(CSV)
    files = write_speeches(work / "corpus", 0, n, paras, chars)
    (extra,) = write_speeches(work / "one", n, 1, paras, chars)
    home, empty = work / "home", work / "empty"
    t0, c0 = time.perf_counter(), time.process_time()
    report = pipeline(home).ingest(files)
    full_s, full_cpu = time.perf_counter() - t0, time.process_time() - c0
    rss_full = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    size_before = du(home / "index")
    t0, c0 = time.perf_counter(), time.process_time()
    one = pipeline(home).ingest([extra])  # a fresh process would start like this
    add_s, add_cpu = time.perf_counter() - t0, time.process_time() - c0
    size_after = du(home / "index")
    t0 = time.perf_counter()
    state = pipeline(home).state()
    load_s = time.perf_counter() - t0
    t0, c0 = time.perf_counter(), time.process_time()
    pipeline(empty).ingest([extra])
    alone_s, alone_cpu = time.perf_counter() - t0, time.process_time() - c0
    return {
        "speeches": n,
        "chunks": report.total_chunks,
        "full_s": full_s,
        "full_cpu_s": full_cpu,
        "rss_full_mb": rss_full,
        "add_one_s": add_s,
        "one_into_empty_s": alone_s,
        "add_ratio": add_s / alone_s,
        "add_cpu_s": add_cpu,
        "one_into_empty_cpu_s": alone_cpu,
        "add_cpu_ratio": add_cpu / alone_cpu,
        "one_speech_chunks": one.chunks_embedded,
        "index_mb": size_before / 1e6,
        "bytes_per_chunk": size_before / report.total_chunks,
        "growth": size_after / size_before,
        "load_s": load_s,
        "loaded_chunks": len(state.chunks),
        "rss_end_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[100, 300, 1000])
    ap.add_argument("--chars", type=int, default=6000, help="characters per speech")
    ap.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child is not None:
        with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
            print(json.dumps(run_size(args.child, args.chars, Path(tmp))))
        return
    rows = []
    for n in args.sizes:
        child = subprocess.run(
            [sys.executable, __file__, "--child", str(n), "--chars", str(args.chars)],
            check=True, capture_output=True, text=True,
        )  # fmt: skip
        row = json.loads(child.stdout.strip().splitlines()[-1])
        rows.append(row)
        print(
            f"{n:>5} speeches {row['chunks']:>7} chunks | full ingest {row['full_s']:7.1f} s "
            f"(CPU {row['full_cpu_s']:7.1f} s, peak RSS {row['rss_full_mb']:6.0f} MB) | index "
            f"{row['index_mb']:7.1f} MB, {row['bytes_per_chunk'] / 1024:5.2f} KB/chunk | add one "
            f"speech ({row['one_speech_chunks']} chunks) {row['add_one_s']:5.2f} s "
            f"(CPU {row['add_cpu_s']:5.2f} s) vs into empty {row['one_into_empty_s']:5.2f} s "
            f"(CPU {row['one_into_empty_cpu_s']:5.2f} s) = {row['add_ratio']:4.2f}x "
            f"(CPU {row['add_cpu_ratio']:4.2f}x) | dir growth {row['growth']:5.3f}x | "
            f"load {row['load_s']:5.1f} s",
            flush=True,
        )
    for a, b in zip(rows, rows[1:], strict=False):
        chunk_ratio = b["chunks"] / a["chunks"]
        time_ratio = b["full_s"] / a["full_s"]
        cpu_ratio = b["full_cpu_s"] / a["full_cpu_s"]
        print(
            f"{a['speeches']} -> {b['speeches']} speeches: {chunk_ratio:.2f}x chunks, "
            f"{time_ratio:.2f}x time (linearity {time_ratio / chunk_ratio:.2f}), "
            f"{cpu_ratio:.2f}x CPU time (linearity {cpu_ratio / chunk_ratio:.2f})"
        )


if __name__ == "__main__":
    main()
