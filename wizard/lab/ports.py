"""Free ports for the lab's servers and the test peers, never the same one twice in one process.

A free port is found by binding port 0 and closing the socket; the server binds it a little later. In between, the
kernel may hand the very same port to the next caller, and two lab servers then get one port (seen: two nodes' SSH
servers of one rehearsal given the same port, so its project named one address twice). Every port handed out is
remembered, so a process never hands out a port again while it may still be about to be bound.
"""

from __future__ import annotations

import socket
import threading
from collections import OrderedDict

#: How many ports are remembered: far more than a process binds at once, far fewer than the ephemeral range.
REMEMBERED = 8192

_lock = threading.Lock()
_given: OrderedDict[int, None] = OrderedDict()


def free_port(host: str = "127.0.0.1", kind: int = socket.SOCK_STREAM) -> int:
    """A port nothing listens on at ``host`` now, and one this process has not handed out before."""
    with _lock:
        for _ in range(256):
            with socket.socket(socket.AF_INET, kind) as s:
                s.bind((host, 0))
                port = int(s.getsockname()[1])
            if port not in _given:
                _given[port] = None
                while len(_given) > REMEMBERED:
                    _given.popitem(last=False)
                return port
    raise OSError(f"no free port on {host} that was not handed out already")
