"""Where fillpath keeps what it downloads or builds: outside the checkout, shared by every
clone, kept between runs ($XDG_CACHE_HOME/fillpath, by default ~/.cache/fillpath)."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return root / "fillpath"
