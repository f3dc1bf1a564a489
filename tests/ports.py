"""Ports for the servers the tests start (Ray nodes, MLflow servers, torch.distributed rendezvous).

A port the kernel picks for a bound-then-closed socket lies in its ephemeral range, the range it also draws
from for every outgoing connection. A server started a few seconds later on that port can then find it taken
by a client socket of another process (Ray's own components among them), or by a second port the kernel
handed out in the meantime. So the ports handed out here lie between Ray's worker ports (10002-19999 by
default) and the ephemeral range, each is checked free by binding it, and none is handed out twice in one
test process.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

_LOWEST = 20000
_HANDED_OUT: set[int] = set()


def _ephemeral_start() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768  # Linux's default


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on now, outside the ephemeral range, new to this process."""
    highest = _ephemeral_start()
    span = highest - _LOWEST
    first = (os.getpid() * 7919) % span  # test processes running side by side start at different ports
    for offset in range(span):
        port = _LOWEST + (first + offset) % span
        if port in _HANDED_OUT:
            continue
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
        _HANDED_OUT.add(port)
        return port
    raise RuntimeError(f"no free port on 127.0.0.1 between {_LOWEST} and {highest}")
