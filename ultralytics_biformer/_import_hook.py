"""The import hook that registers our blocks with Ultralytics as soon as its model parser has loaded.

:func:`install` is called from two places: ``import ultralytics_biformer``, and, at interpreter start-up,
``_ultralytics_biformer_autoload`` (imported by ``ultralytics_biformer.pth``, unless ``ULTRALYTICS_BIFORMER_AUTOLOAD``
says no). The start-up call is what lets the stock ``yolo`` command, ``from ultralytics import YOLO``, a saved
checkpoint loaded in a fresh process and Ultralytics' DDP workers see our blocks without importing us.

Why it is written the way it is:

- It imports neither torch, Ultralytics nor this package at module level, and uses absolute imports only: the
  start-up shim loads this one file without running the package's ``__init__``, so that a Python process that never
  imports Ultralytics pays for this file alone.
- It waits for ``ultralytics.nn.tasks``, the parser module every Ultralytics entry point imports, and wraps that
  module's loader, because registering patches names in it: it must have executed, and nothing may have copied its
  names yet. One finder on ``sys.meta_path`` watches it, and leaves once it has registered.
- It also watches our own submodules and holds registration back while any of them is executing in this thread.
  Registering imports ``.integration``, which imports ``.modules``; when ``ultralytics.nn.tasks`` is loaded by one of
  our half-executed modules (``.modules.attention`` imports ``ultralytics.nn.modules``, which imports the parser),
  those imports would fail. So it registers once the outermost of our modules has finished.
- To find a module's spec it asks the other finders on ``sys.meta_path``. One of them may search ``sys.meta_path``
  again (``importlib.util.find_spec``) and so wrap a loader twice; that is harmless, as only the first wrapper to
  finish registers.
- Who pays for a failure to register (an unsupported Ultralytics, a broken install): a program that imported this
  package asked for our blocks, so it gets the exception. A program that only imports Ultralytics never asked, so
  Ultralytics' import must survive us; it gets a warning on stderr instead, or the failure would go unseen.
"""

import os
import sys
import threading
from types import ModuleType

PACKAGE = "ultralytics_biformer"
TARGET = "ultralytics.nn.tasks"
AUTOLOAD_ENV = "ULTRALYTICS_BIFORMER_AUTOLOAD"


def autoload_enabled() -> bool:
    """Whether the start-up shim may install the hook: unless ``ULTRALYTICS_BIFORMER_AUTOLOAD`` is 0/false/no/off."""
    return os.environ.get(AUTOLOAD_ENV, "1").strip().lower() not in {"0", "false", "no", "off"}


def install() -> None:
    """Register our blocks with Ultralytics now if its parser module is loaded, else as soon as it is. Idempotent."""
    if TARGET in sys.modules:
        _register()
    elif not any(isinstance(f, _RegisterWhenUltralyticsLoads) for f in sys.meta_path):
        sys.meta_path.insert(0, _RegisterWhenUltralyticsLoads())


def _register() -> None:
    sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, _RegisterWhenUltralyticsLoads)]
    asked = isinstance(sys.modules.get(PACKAGE), ModuleType)  # imported by the program, before we import it below
    try:
        from ultralytics_biformer.integration import register

        register()
    except Exception as e:
        if asked:
            raise
        print(
            f"WARNING ultralytics-biformer could not register with Ultralytics, so its model YAMLs and checkpoints "
            f"will not load: {type(e).__name__}: {e}",
            file=sys.stderr,
        )


class _RegisterWhenUltralyticsLoads:
    """Meta-path finder that wraps the loaders of ``TARGET`` and of our submodules; see the module docstring."""

    def __init__(self):
        self._thread = threading.local()  # .depth: how many of our modules this thread is executing

    def find_spec(self, name, path=None, target=None):
        ours = name.startswith(f"{PACKAGE}.")
        if name != TARGET and not ours:
            return None
        others = [f for f in sys.meta_path if f is not self]
        spec = next((s for f in others for s in [_find(f, name, path, target)] if s is not None), None)
        if spec is not None and spec.loader is not None and hasattr(spec.loader, "exec_module"):
            spec.loader.exec_module = self._wrap(spec.loader.exec_module, ours=ours)
        return spec

    def _wrap(self, exec_module, *, ours: bool):
        thread = self._thread

        def run(module):
            thread.depth = getattr(thread, "depth", 0) + ours
            try:
                exec_module(module)
            finally:
                thread.depth -= ours
            if TARGET in sys.modules and not thread.depth and any(f is self for f in sys.meta_path):
                _register()

        return run


def _find(finder, name, path, target):
    find_spec = getattr(finder, "find_spec", None)
    return find_spec(name, path, target) if find_spec is not None else None
