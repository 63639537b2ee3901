"""Ports for servers that child processes bind some seconds after the test picks them.

A port the kernel handed out for `bind(("", 0))` comes from the ephemeral range, where
every process that binds port 0 or opens an outgoing connection draws too: the Temporal
dev server alone binds several such ports while it starts, and one of them was seen to
take the port the test had just picked for the API. Ports below that range are given
out only to whoever names them, so a free one stays free until the child binds it.
"""

from __future__ import annotations

import random
import socket
from pathlib import Path

RANGE_FILE = Path("/proc/sys/net/ipv4/ip_local_port_range")
LOWEST = 20_000


def _ephemeral_low() -> int:
    try:
        return int(RANGE_FILE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32_768


def free_ports(count: int) -> list[int]:
    """`count` different ports below the ephemeral range that nothing listens on now."""
    high = _ephemeral_low()
    found: list[int] = []
    held: list[socket.socket] = []
    try:
        while len(found) < count:
            port = random.randrange(LOWEST, high)
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                sock.close()
                continue
            held.append(sock)
            found.append(port)
    finally:
        for sock in held:
            sock.close()
    return found
