"""BiFormer's Bi-Level Routing Attention for Ultralytics YOLO11 and YOLO26, as a plug-in.

Importing the package registers its blocks with Ultralytics' model parser (see :mod:`.integration`) as soon as
Ultralytics' parser module ``ultralytics.nn.tasks`` is imported, or at once if it already is; once installed, the
package also registers by itself in any process that imports ``ultralytics``. Both go through :mod:`._import_hook`.

The package itself imports neither torch nor Ultralytics: its public names are loaded on first use. Importing
Ultralytics runs a network connectivity check unless ``YOLO_OFFLINE`` is set, and our commands (``cli``, a
subpackage, so this file runs first) must get to set it before anything imports Ultralytics.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from . import _import_hook

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


_import_hook.install()
