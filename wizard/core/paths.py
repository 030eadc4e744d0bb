"""Where the wizard keeps logs, session state and settings (per platform, via platformdirs).

``PALETTE_WIZARD_HOME`` puts everything under one folder instead: for portable use from a USB stick on an
air-gapped jump host, and for tests.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import platformdirs

from wizard import APP_NAME


@dataclass(frozen=True)
class AppPaths:
    state: Path  # session journals
    logs: Path
    config: Path  # settings, pinned trust
    cache: Path

    def ensure(self) -> AppPaths:
        for p in (self.state, self.logs, self.config, self.cache):
            p.mkdir(parents=True, exist_ok=True)
        return self


def app_paths() -> AppPaths:
    home = os.environ.get("PALETTE_WIZARD_HOME")
    if home:
        base = Path(home).expanduser()
        return AppPaths(base / "state", base / "logs", base / "config", base / "cache")
    return AppPaths(
        state=Path(platformdirs.user_state_dir(APP_NAME, appauthor=False)),
        logs=Path(platformdirs.user_log_dir(APP_NAME, appauthor=False)),
        config=Path(platformdirs.user_config_dir(APP_NAME, appauthor=False)),
        cache=Path(platformdirs.user_cache_dir(APP_NAME, appauthor=False)),
    )
