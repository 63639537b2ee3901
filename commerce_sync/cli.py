"""The `commerce-sync` command."""

from __future__ import annotations

import asyncio
import logging
from typing import Annotated, NoReturn

import typer
from pydantic import ValidationError
from rich.console import Console

from commerce_sync.config.pairs import PairsConfigError, load_pairs
from commerce_sync.config.settings import Settings

app = typer.Typer(
    name="commerce-sync",
    help="Durable ERP <-> eCommerce integration on Temporal.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
err = Console(stderr=True)


def fail(message: str, code: int = 1) -> NoReturn:
    """One readable line on stderr and a non-zero exit."""
    err.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def load_settings() -> Settings:
    """Settings plus a validated pairs file, or one line saying what is wrong."""
    try:
        settings = Settings()
    except ValidationError as exc:
        first = exc.errors()[0]
        fail(f"settings: {'.'.join(str(p) for p in first['loc'])}: {first['msg']}")
    try:
        load_pairs(settings.pairs_file)
    except PairsConfigError as exc:
        fail(str(exc))
    return settings


def _logging() -> None:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )


@app.command()
def up() -> None:
    """Run the embedded default: Temporal dev server, sandboxes, API and a worker."""
    from commerce_sync.embedded import EmbeddedError, Supervisor

    settings = load_settings()
    try:
        code = Supervisor(settings, echo=lambda line: typer.echo(line)).run()
    except EmbeddedError as exc:
        fail(str(exc))
    raise typer.Exit(code)


@app.command()
def worker() -> None:
    """Run a Temporal worker (workflows and every system's activities)."""
    from commerce_sync.worker import serve

    settings = load_settings()
    _logging()
    asyncio.run(serve(settings))


@app.command()
def api(
    host: Annotated[str | None, typer.Option(help="Bind address (default from settings)")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default from settings)")] = None,
) -> None:
    """Serve the HTTP API (webhooks, status, approvals, dead letters)."""
    import uvicorn

    from commerce_sync.api.app import create_app
    from commerce_sync.embedded import port_in_use

    settings = load_settings()
    host, port = host or settings.api_host, port or settings.api_port
    if port_in_use(host, port):
        fail(f"port {port} (API) is already in use")
    uvicorn.run(create_app(settings), host=host, port=port, log_level="info")


@app.command()
def sandbox(
    host: Annotated[str, typer.Option(help="Bind address; loopback only by default")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port")] = 8100,
) -> None:
    """Serve the four sandbox systems under /kentico, /xcart, /brightpearl, /acumatica."""
    import uvicorn

    from commerce_sync.embedded import port_in_use
    from commerce_sync.systems.sandbox_server import create_sandbox_app

    settings = load_settings()
    if port_in_use(host, port):
        fail(f"port {port} (sandboxes) is already in use")
    uvicorn.run(create_sandbox_app(settings), host=host, port=port, log_level="warning")


if __name__ == "__main__":
    app()
