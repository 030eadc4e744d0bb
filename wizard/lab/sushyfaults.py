"""Runs sushy-tools' Redfish emulator with the lab's ``http-5xx`` knob in front of its WSGI app.

``python -m wizard.lab.sushyfaults RATE SEED -- <sushy-emulator arguments>``: the emulator's Flask app is wrapped so
that RATE of the requests are answered 500/502/503 before the emulator sees them, then the emulator's own ``main``
runs as ``sushy-emulator`` would. Needs sushy-tools importable by this Python (the ``rehearsal`` extra).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable
from typing import Any

from wizard.lab.httpfaults import HttpFaults

StartResponse = Callable[..., Any]
#: Sent by the lab's control-plane watcher (wizard.lab.controlplane): its reads are never given a fault.
OBSERVER_HEADER = "X-Lab-Observer"


class FaultMiddleware:
    """A WSGI middleware answering a share of requests with a 5xx Redfish error, untouched by the app behind."""

    def __init__(self, app: Callable[[dict[str, Any], StartResponse], Iterable[bytes]], faults: HttpFaults) -> None:
        self.app = app
        self.faults = faults

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("HTTP_" + OBSERVER_HEADER.upper().replace("-", "_")):
            # The lab's own watcher stands for the machine's hardware, which never misses its BMC's power-on.
            return self.app(environ, start_response)
        status = self.faults.take()
        if status is None:
            return self.app(environ, start_response)
        message = self.faults.message(status)
        body = json.dumps(
            {"error": {"code": "Base.1.8.GeneralError", "message": message, "@Message.ExtendedInfo": []}}
        ).encode()
        start_response(
            f"{status} {message.split(' (')[0]}",
            [("Content-Type", "application/json"), ("Content-Length", str(len(body))), ("Connection", "close")],
        )
        return [body]


def main(argv: list[str]) -> int:
    rate, seed, rest = float(argv[0]), argv[1], argv[argv.index("--") + 1 :]
    from sushy_tools.emulator import main as emulator

    faults = HttpFaults(rate, seed=seed, label="redfish")
    app = emulator.app
    original_run = app.run

    def run(*args: Any, **kwargs: Any) -> Any:
        # Wrapped last, outside the emulator's own auth middleware: a fault comes before anything else.
        app.wsgi_app = FaultMiddleware(app.wsgi_app, faults)
        return original_run(*args, **kwargs)

    app.run = run
    sys.argv = ["sushy-emulator", *rest]
    return int(emulator.main() or 0)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
