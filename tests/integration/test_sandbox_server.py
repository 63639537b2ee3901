"""The socket `BackgroundServer` serves on (tests, benches) answers without Nagle's delay."""

from __future__ import annotations

import asyncio
import socket

from sandboxes.server import bind_socket


async def test_connections_accepted_on_the_bound_socket_have_nagle_off() -> None:
    """uvicorn serves a bound socket with `loop.create_server(sock=...)`; asyncio sets
    `TCP_NODELAY` on what it accepts only when the socket was made as `IPPROTO_TCP`.
    Without it an answer written in two parts waited 40 ms for the client's delayed ACK."""
    loop = asyncio.get_running_loop()
    nodelay: asyncio.Future[int] = loop.create_future()

    class Probe(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            accepted = transport.get_extra_info("socket")
            nodelay.set_result(accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            transport.close()

    sock = bind_socket()
    server = await loop.create_server(Probe, sock=sock)
    try:
        host, port = sock.getsockname()[:2]
        _, writer = await asyncio.open_connection(host, port)
        assert await asyncio.wait_for(nodelay, 10) != 0
        writer.close()
    finally:
        server.close()
        await server.wait_closed()
