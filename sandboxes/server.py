"""All four sandboxes behind one server, each under its own prefix (docs/project-contracts.md §2.5).

`create_sandbox_app` mounts `/kentico`, `/xcart`, `/brightpearl` and `/acumatica`;
`BackgroundServer` runs any ASGI app on a real socket in a thread, for tests, benches
and the embedded default.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import socket
import threading
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import uvicorn
from fastapi import FastAPI

from commerce_sync.config.settings import Settings

if TYPE_CHECKING:
    from sandboxes.kit import Sandbox

SANDBOX_SYSTEMS = ("kentico", "xcart", "brightpearl", "acumatica")


def create_sandboxes(settings: Settings) -> dict[str, Sandbox]:
    """One sandbox per system, accepting the credentials `settings` gives the connectors."""
    sandboxes: dict[str, Sandbox] = {}
    for system in SANDBOX_SYSTEMS:
        module = importlib.import_module(f"sandboxes.{system}.sandbox")
        sandboxes[system] = module.create_sandbox(settings)
    return sandboxes


def create_sandbox_app(settings: Settings, sandboxes: dict[str, Sandbox] | None = None) -> FastAPI:
    sandboxes = sandboxes if sandboxes is not None else create_sandboxes(settings)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        for sandbox in sandboxes.values():
            await sandbox.close()

    app = FastAPI(title="commerce-sync sandboxes", lifespan=lifespan)
    for system, sandbox in sandboxes.items():
        app.mount(f"/{system}", sandbox.app())

    @app.get("/")
    async def index() -> dict[str, Any]:
        return {"systems": {system: f"/{system}" for system in sandboxes}}

    app.state.sandboxes = sandboxes
    return app


def bind_socket(host: str = "127.0.0.1", port: int = 0) -> socket.socket:
    """A listening socket; port 0 picks a free one. Raises OSError when the port is busy.

    Created as TCP by name (`IPPROTO_TCP`, as uvicorn's own `Config.bind_socket` does):
    asyncio turns Nagle's algorithm off (`TCP_NODELAY`) only on connections whose socket
    says so (`asyncio.base_events._set_nodelay`), and a connection accepted here inherits
    this socket's protocol number. With the default 0 every answer uvicorn wrote in two
    parts (headers, then body) waited for the client's delayed ACK: 40 ms each, so a
    Kentico order read of four calls took 176 ms against the sandboxes instead of 8 ms.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


class BackgroundServer:
    """Serves an ASGI app on a real socket from a daemon thread."""

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0) -> None:
        self._socket = bind_socket(host, port)
        self.host, self.port = self._socket.getsockname()[:2]
        # Keep idle connections open longer than httpx's pool does (5 s): then the client
        # always drops an idle connection first. With uvicorn's default (also 5 s) a busy
        # process could send a request on a connection the server was just closing, and
        # that request died with a ReadError.
        config = uvicorn.Config(app, log_level="warning", lifespan="on", timeout_keep_alive=75)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=lambda: asyncio.run(self._server.serve(sockets=[self._socket])),
            name=f"server-{self.port}",
            daemon=True,
        )

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> BackgroundServer:
        self._thread.start()
        while not self._server.started:
            if not self._thread.is_alive():
                raise RuntimeError(f"server on port {self.port} failed to start")
            threading.Event().wait(0.01)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._socket.close()

    def __enter__(self) -> BackgroundServer:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()
