"""Keep Ultralytics from reaching the network while our commands run.

Two things in Ultralytics reach out during training on a local dataset:

- import-time connectivity and pip-update checks, which ``YOLO_OFFLINE=1`` turns off. It must be in the environment
  before ``ultralytics`` is first imported, so the commands put it in the environment of every worker process;
- ``check_font("Arial.ttf")``, run by every ``check_det_dataset`` call and by label plotting, which asks the network
  for Arial whenever it is not on disk, ``YOLO_OFFLINE`` or not. :func:`offline_ultralytics` replaces it with a
  local-only lookup that falls back to the DejaVu Sans font bundled with matplotlib.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["OFFLINE_ENV", "local_font", "offline_ultralytics"]

OFFLINE_ENV = {"YOLO_OFFLINE": "1"}


def local_font(font: str = "Arial.ttf") -> Path:
    """``check_font`` without downloads: ``font`` if it is on disk, else matplotlib's bundled DejaVu Sans."""
    from matplotlib import font_manager
    from ultralytics.utils import USER_CONFIG_DIR

    name = Path(font).name
    if (USER_CONFIG_DIR / name).exists():
        return USER_CONFIG_DIR / name
    matches = [f.fname for f in font_manager.fontManager.ttflist if name in f.fname and os.path.exists(f.fname)]
    return Path(matches[0] if matches else font_manager.findfont("DejaVu Sans", fallback_to_default=True))


def offline_ultralytics() -> None:
    """Set ``YOLO_OFFLINE=1`` (unless set) and make Ultralytics' font lookups local; idempotent.

    Call it before the first ``import ultralytics`` where possible: the connectivity check runs at import.
    """
    for key, value in OFFLINE_ENV.items():
        os.environ.setdefault(key, value)
    import ultralytics.data.utils as data_utils
    from ultralytics.utils import checks, plotting

    for module in (checks, data_utils, plotting):
        module.check_font = local_font
