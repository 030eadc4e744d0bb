"""Logging: a rotating file in the platform log folder, every known secret redacted before it is written."""

from __future__ import annotations

import logging
import logging.handlers
from pathlib import Path

from wizard.core.redact import REDACTOR

LOG_NAME = "wizard.log"
_FORMAT = "%(asctime)s %(levelname)-7s %(name)s [%(threadName)s] %(message)s"


class RedactingFilter(logging.Filter):
    """Formats the record, masks secrets, and freezes the result so no handler sees the raw values."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            message = str(record.msg)
        record.msg = REDACTOR.redact(message)
        record.args = None
        if record.exc_info and record.exc_info[1] is not None:
            # Render the traceback now, redacted, instead of letting the formatter print raw values later.
            record.exc_text = REDACTOR.redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True


def setup_logging(log_dir: Path, *, level: int = logging.DEBUG, console: bool = False) -> Path:
    """Send the ``wizard`` loggers (and the peer libraries') to ``log_dir/wizard.log``; returns its path."""
    log_dir.mkdir(parents=True, exist_ok=True)
    path = log_dir / LOG_NAME
    root = logging.getLogger()
    for h in list(root.handlers):
        if getattr(h, "_wizard", False):
            root.removeHandler(h)
            h.close()
    handler = logging.handlers.RotatingFileHandler(path, maxBytes=5 * 1024 * 1024, backupCount=5, encoding="utf-8")
    handler.setFormatter(logging.Formatter(_FORMAT))
    handler.addFilter(RedactingFilter())
    handler._wizard = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    if console:
        stream = logging.StreamHandler()
        stream.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        stream.addFilter(RedactingFilter())
        stream.setLevel(logging.WARNING)
        stream._wizard = True  # type: ignore[attr-defined]
        root.addHandler(stream)
    root.setLevel(level)
    # paramiko logs every packet at DEBUG; keep its noise at INFO.
    logging.getLogger("paramiko").setLevel(logging.INFO)
    logging.getLogger("httpcore").setLevel(logging.INFO)
    return path
