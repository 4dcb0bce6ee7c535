"""BiFormer's Bi-Level Routing Attention for Ultralytics YOLO11 and YOLO26, as a plug-in.

Importing the package registers its blocks with Ultralytics' model parser (see :mod:`.integration`) as soon as
Ultralytics' parser module ``ultralytics.nn.tasks`` is imported, or at once if it already is; once installed, the
package also registers by itself in any process that imports ``ultralytics`` (see ``_ultralytics_biformer_autoload``).

The package itself imports neither torch nor Ultralytics: its public names are loaded on first use. Importing
Ultralytics runs a network connectivity check unless ``YOLO_OFFLINE`` is set, and our commands (``cli``, a
subpackage, so this file runs first) must get to set it before anything imports Ultralytics.
"""

from __future__ import annotations

import importlib
import sys
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .functional import bilevel_routing_attention, region_grid, route_regions
    from .integration import config_dir, is_registered, register, unregister
    from .modules import BRA, C2PSA_BRA, BiLevelRoutingAttention, C3k2_BRA

__version__ = "0.1.0"

# Public name -> the submodule defining it, imported on first access.
_EXPORTS = {
    "BRA": "modules",
    "C2PSA_BRA": "modules",
    "BiLevelRoutingAttention": "modules",
    "C3k2_BRA": "modules",
    "bilevel_routing_attention": "functional",
    "config_dir": "integration",
    "is_registered": "integration",
    "region_grid": "functional",
    "register": "integration",
    "route_regions": "functional",
    "unregister": "integration",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    home = _EXPORTS.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{home}", __name__), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))


_TASKS = "ultralytics.nn.tasks"
_state = threading.local()  # .depth: how many of our modules this thread is executing; .finding: inside find_spec


def _register() -> None:
    sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, _RegisterWhenUltralyticsLoads)]
    from .integration import register

    register()


def _register_if_ready() -> None:
    # register() imports .integration, which imports .modules: run it while one of our modules is half-executed (say
    # .modules.attention, whose `import ultralytics...` is what loaded the parser) and those imports fail. So wait
    # until the outermost of our modules has finished.
    if _TASKS in sys.modules and not getattr(_state, "depth", 0):
        _register()


def _wrap(exec_module, *, ours: bool):
    def run(module):
        _state.depth = getattr(_state, "depth", 0) + ours
        try:
            exec_module(module)
        finally:
            _state.depth -= ours
        _register_if_ready()

    return run


class _RegisterWhenUltralyticsLoads:
    """Meta-path finder: registers once ``ultralytics.nn.tasks`` has executed and none of our modules is executing.

    The autoload does this for processes that never import us; it cannot for a process that imported this package
    before Ultralytics with the autoload off (``ULTRALYTICS_BIFORMER_AUTOLOAD=0``), or with the autoload's hook already
    spent, and that is what this finder is for. It leaves ``sys.meta_path`` once it has registered.
    """

    def find_spec(self, name, path=None, target=None):
        ours = name.startswith(f"{__name__}.")
        if (name != _TASKS and not ours) or getattr(_state, "finding", False):
            return None
        _state.finding = True  # the other finders below may search sys.meta_path again (the autoload's does)
        try:
            spec = next(
                (s for f in list(sys.meta_path) if f is not self for s in [_find(f, name, path, target)] if s), None
            )
        finally:
            _state.finding = False
        if spec is not None and spec.loader is not None and hasattr(spec.loader, "exec_module"):
            spec.loader.exec_module = _wrap(spec.loader.exec_module, ours=ours)
        return spec


def _find(finder, name, path, target):
    find_spec = getattr(finder, "find_spec", None)
    return find_spec(name, path, target) if find_spec is not None else None


if _TASKS in sys.modules:
    _register()
else:
    sys.meta_path.insert(0, _RegisterWhenUltralyticsLoads())
