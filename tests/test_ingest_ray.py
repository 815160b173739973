"""`rag ingest --engine ray` on a real two-node Ray cluster on loopback.

The test starts a head node and a second node as two `ray start --block` processes
(one CPU each) and stops them by their pids; the driver joins with an address, and
two embedding actors (one CPU each) can only be placed one per node. Both nodes use
127.0.0.2: Ray swaps 127.0.0.1 for the machine's outward address, and tests stay on
loopback. With the hash
embedder the whole test costs about a minute on two cores, most of it Ray starting.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest

from eval.metrics import load_gold
from rag.ingest_ray import PrecomputedEmbedder, RayIngestStats, ray_available
from rag.pipeline import Pipeline
from rag.settings import Settings

REPO = Path(__file__).resolve().parent.parent
RAY = Path(sys.executable).with_name("ray")
NODE_IP = "127.0.0.2"

needs_ray = pytest.mark.skipif(not ray_available(), reason="Ray not installed (extra `ray`)")
# Ray Data touches its own deprecated DataContext settings (use_polars, push-based shuffle…)
ray_internal_deprecation = pytest.mark.filterwarnings("ignore:.*deprecated.*:DeprecationWarning")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((NODE_IP, 0))
        return int(s.getsockname()[1])


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)  # `ray start --block` stops its node's processes
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = _free_port()
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
        "RAY_USAGE_STATS_ENABLED": "0",
        "RAY_ENABLE_UV_RUN_RUNTIME_ENV": "0",
        "RAY_AUTH_MODE": "disabled",  # a throw-away cluster on loopback
    }
    common = ["--num-cpus", "1", "--node-ip-address", NODE_IP, "--block", "--disable-usage-stats"]
    logs = tmp_path_factory.mktemp("ray-logs")
    procs: list[subprocess.Popen[bytes]] = []

    def start(name: str, *args: str) -> subprocess.Popen[bytes]:
        with (logs / f"{name}.log").open("wb") as log:
            proc = subprocess.Popen(
                [str(RAY), "start", *args, *common], env=env, stdout=log, stderr=subprocess.STDOUT
            )
        procs.append(proc)
        return proc

    address = f"{NODE_IP}:{port}"
    try:
        head = start("head", "--head", "--port", str(port), "--include-dashboard=false")
        _wait_for_nodes(address, 1, head)
        worker = start("worker", "--address", address)
        _wait_for_nodes(address, 2, worker)
        yield address
    finally:
        for proc in reversed(procs):
            _stop(proc)


def _wait_for_nodes(address: str, n: int, proc: subprocess.Popen[bytes]) -> None:
    """Poll `ray status` until ``n`` nodes are up (or ``proc`` died)."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"`ray start` exited with {proc.returncode}")
        status = subprocess.run(
            [str(RAY), "status", "--address", address],
            capture_output=True,
            text=True,
            env={**os.environ, "RAY_AUTH_MODE": "disabled"},
        )
        if status.returncode == 0 and status.stdout.count("node_") >= n:
            return
        time.sleep(2)
    pytest.fail(f"the Ray cluster did not reach {n} nodes in 120 s")


def _settings(home: Path) -> Settings:
    return Settings(home=home, embed_model="hash")


@needs_ray
@ray_internal_deprecation
def test_ray_ingest_on_two_nodes_equals_the_local_engine(
    cluster: str, corpus_dir: Path, tmp_path: Path
) -> None:
    from rag.ingest_ray import ingest_on_ray

    local = Pipeline(_settings(tmp_path / "local"))
    want = local.ingest([corpus_dir])
    stats = RayIngestStats()
    got = ingest_on_ray(
        _settings(tmp_path / "ray"), [corpus_dir], address=cluster, workers=2, stats=stats
    )
    assert stats.workers == 2 and stats.texts_embedded > 0
    assert stats.driver_misses == 0  # every vector came from the cluster
    assert (got.added, got.total_chunks) == (want.added, want.total_chunks)

    a, b = local.state(), Pipeline(_settings(tmp_path / "ray")).state()
    assert a.documents.keys() == b.documents.keys()
    assert all(a.documents[k].text == b.documents[k].text for k in a.documents)
    assert [(c.chunk_id, c.start, c.end, c.text) for c in a.chunks] == [
        (c.chunk_id, c.start, c.end, c.text) for c in b.chunks
    ]
    np.testing.assert_allclose(a.vectors, b.vectors, atol=1e-6)
    np.testing.assert_allclose(a.sentence_vectors, b.sentence_vectors, atol=1e-6)
    ray_pipeline = Pipeline(_settings(tmp_path / "ray"))
    for item in load_gold(REPO / "eval" / "gold" / "dev.jsonl"):
        mine = [p.chunk.chunk_id for p in ray_pipeline.search(item.question, 5)]
        assert mine == [p.chunk.chunk_id for p in local.search(item.question, 5)]

    # a second run finds nothing changed and embeds nothing
    again = ingest_on_ray(
        _settings(tmp_path / "ray"), [corpus_dir], address=cluster, workers=2, stats=stats
    )
    assert again.unchanged and not again.added and stats.texts_embedded == 0


SLOGAN = "某某市妇女联合会主办单位门户网站"  # a heading alone, furniture once shared


def _speech_with_slogan(src: Path, dest: Path) -> Path:
    dest.write_text(f"{SLOGAN}\n{src.read_text(encoding='utf-8')}", encoding="utf-8")
    return dest


@needs_ray
@ray_internal_deprecation
def test_lines_shared_with_indexed_documents_clean_on_the_cluster_as_locally(
    cluster: str, corpus_dir: Path, tmp_path: Path
) -> None:
    """The second file alone keeps the slogan as a heading; with the first one indexed
    the local engine counts the slogan as shared and drops it. The cluster must clean
    it the same, or its chunks (and vectors) miss the commit's."""
    from rag.ingest_ray import ingest_on_ray

    first, second = sorted(corpus_dir.glob("*.txt"))[:2]
    a = _speech_with_slogan(first, tmp_path / "a.txt")
    b = _speech_with_slogan(second, tmp_path / "b.txt")
    for name in ("local", "ray"):
        Pipeline(_settings(tmp_path / name)).ingest([a])
    Pipeline(_settings(tmp_path / "local")).ingest([b])
    stats = RayIngestStats()
    ingest_on_ray(_settings(tmp_path / "ray"), [b], address=cluster, workers=1, stats=stats)
    assert stats.texts_embedded > 0 and stats.driver_misses == 0
    want, got = (Pipeline(_settings(tmp_path / n)).state() for n in ("local", "ray"))
    assert SLOGAN not in want.documents["b"].text
    assert [c.text for c in got.chunks] == [c.text for c in want.chunks]


def test_precomputed_embedder_serves_known_texts_and_embeds_the_rest() -> None:
    from rag.embed import HashEmbedder

    real = HashEmbedder()
    known = real.embed_passages(["工会经费"])[0]
    calls: list[int] = []

    def fallback() -> HashEmbedder:
        calls.append(1)
        return real

    pre = PrecomputedEmbedder(
        {"工会经费": known}, model_id=real.model_id, dim=real.dim, fallback=fallback
    )
    np.testing.assert_array_equal(pre.embed_passages(["工会经费"]), [known])
    assert not calls and pre.misses == 0  # the real model is not even built
    out = pre.embed_passages(["共青团", "工会经费"])
    np.testing.assert_allclose(out, real.embed_passages(["共青团", "工会经费"]))
    assert pre.misses == 1 and len(calls) == 1
    np.testing.assert_allclose(pre.embed_queries(["共青团"]), real.embed_queries(["共青团"]))


@needs_ray
@ray_internal_deprecation
def test_without_an_address_a_local_runtime_starts_even_beside_a_running_cluster(
    cluster: str, corpus_dir: Path, tmp_path: Path
) -> None:
    """`ray start` records its cluster for the machine; a bare ray.init() would join it
    (and refuse num_cpus). Without --ray-address the command gets its own runtime."""
    from rag.ingest_ray import ingest_on_ray

    stats = RayIngestStats()
    report = ingest_on_ray(
        _settings(tmp_path / "own"), [corpus_dir / "000_f129062a640caa7f.txt"], workers=1,
        stats=stats,
    )  # fmt: skip
    assert report.total_documents == 1 and stats.workers == 1 and stats.driver_misses == 0


def test_the_cluster_embeds_in_the_local_engines_groups(corpus_dir: Path, tmp_path: Path) -> None:
    """Same texts, same length order, same groups per embedder call as a local ingest,
    so a batch-dependent embedder (dynamic int8) gives the same vectors on Ray."""
    from rag.embed import HashEmbedder
    from rag.ingest import embedding_groups
    from rag.ingest_ray import _shared_lines, _texts

    class Recording(HashEmbedder):
        calls: list[list[str]] = []

        def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
            self.calls.append(list(texts))
            return super().embed_passages(texts)

    settings = _settings(tmp_path / "local")
    files = sorted(corpus_dir.glob("*.txt"))
    recording = Recording()
    Pipeline(settings, embedder=recording).ingest(files)

    shared = _shared_lines(files, settings, lambda _own: {})
    out = _texts({"path": np.array([str(f) for f in files], dtype=object)}, settings, shared, set())
    texts = [str(t) for t, s in zip(out["text"], out["sentence"], strict=True) if not s] + [
        str(t) for t, s in zip(out["text"], out["sentence"], strict=True) if s
    ]
    assert embedding_groups(texts, settings.embed_batch_size * 4) == recording.calls


@needs_ray
@ray_internal_deprecation
def test_a_local_runtimes_workers_run_at_the_commands_priority() -> None:
    """Ray starts workers 15 steps nicer than itself; on a shared machine the embedding
    actors then got only what other work left over, while the local engine does not."""
    from rag.ingest_ray import _ray_runtime

    with _ray_runtime(None, 1) as ray:

        @ray.remote(num_cpus=1)
        def niceness() -> int:
            return os.nice(0)

        assert ray.get(niceness.remote()) == os.nice(0)
