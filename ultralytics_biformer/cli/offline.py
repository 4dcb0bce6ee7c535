"""Keep Ultralytics from reaching the network while our commands run.

Two things in Ultralytics reach out during training on a local dataset:

- import-time connectivity and pip-update checks, which ``YOLO_OFFLINE=true`` turns off. It must be in the environment
  before ``ultralytics`` is first imported, so ``main`` sets it before importing a command (the package imports no
  Ultralytics before that), and the commands pass it on to every worker process;
- ``check_font("Arial.ttf")``, run by every ``check_det_dataset`` call and by label plotting, which asks the network
  for Arial whenever it is not on disk, ``YOLO_OFFLINE`` or not; the integration's ``use_local_fonts`` makes it local.
"""

from __future__ import annotations

import os

__all__ = ["OFFLINE_ENV", "offline_environment", "offline_ultralytics"]

OFFLINE_ENV = {"YOLO_OFFLINE": "true"}  # "1" is ignored by ultralytics before 8.4.93; "true" works in all


def offline_environment() -> None:
    """Set ``YOLO_OFFLINE=true`` unless set; idempotent. ``main`` calls it before importing any command module."""
    for key, value in OFFLINE_ENV.items():
        os.environ.setdefault(key, value)


def offline_ultralytics() -> None:
    """Set ``YOLO_OFFLINE=true`` (unless set) and make Ultralytics' font lookups local; idempotent.

    Call it before the first ``import ultralytics`` where possible: the connectivity check runs at import.
    """
    offline_environment()
    from ..integration import use_local_fonts

    use_local_fonts()
