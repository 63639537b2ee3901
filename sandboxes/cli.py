"""The sandboxes' commands, added to `commerce-sync` when this distribution is installed
(entry point group `commerce_sync.cli`): `up`, the embedded default, and `sandbox`.

`commerce_sync.cli` is imported inside the commands: it loads this module while it is
itself being imported (also as `python -m commerce_sync.cli`)."""

from __future__ import annotations

import os
from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    """Add `up` and `sandbox` to the `commerce-sync` command."""
    app.command()(up)
    app.command()(sandbox)


def up() -> None:
    """Run the embedded default: Temporal dev server, sandboxes, API and a worker."""
    from commerce_sync.cli import fail, load_settings

    # The sandboxes are the point here: their URL and credentials are the connectors'
    # defaults, and every child inherits this (outside `up` they are refused).
    os.environ.setdefault("COMMERCE_SYNC_USE_SANDBOXES", "true")
    from sandboxes.embedded import EmbeddedError, Supervisor

    settings = load_settings()
    try:
        code = Supervisor(settings, echo=lambda line: typer.echo(line)).run()
    except EmbeddedError as exc:
        fail(str(exc))
    raise typer.Exit(code)


def sandbox(
    host: Annotated[str, typer.Option(help="Bind address; loopback only by default")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port")] = 8100,
) -> None:
    """Serve the four sandbox systems under /kentico, /xcart, /brightpearl, /acumatica."""
    import uvicorn

    from commerce_sync.cli import fail, load_settings
    from commerce_sync.ops.sockets import port_in_use

    os.environ.setdefault("COMMERCE_SYNC_USE_SANDBOXES", "true")
    from sandboxes.server import create_sandbox_app

    settings = load_settings()
    if port_in_use(host, port):
        fail(f"port {port} (sandboxes) is already in use")
    uvicorn.run(create_sandbox_app(settings), host=host, port=port, log_level="warning")
