"""BiFormer's Bi-Level Routing Attention for Ultralytics YOLO11 and YOLO26, as a plug-in.

Importing the package registers its blocks with Ultralytics' model parser (see :mod:`.integration`); once installed,
it also registers by itself in any process that imports ``ultralytics`` (see ``_ultralytics_biformer_autoload``).
"""

from .functional import bilevel_routing_attention, region_grid, route_regions
from .integration import config_dir, is_registered, register, unregister
from .modules import BRA, C2PSA_BRA, BiLevelRoutingAttention, C3k2_BRA

__version__ = "0.1.0"
__all__ = [
    "BRA",
    "C2PSA_BRA",
    "BiLevelRoutingAttention",
    "C3k2_BRA",
    "bilevel_routing_attention",
    "config_dir",
    "is_registered",
    "region_grid",
    "register",
    "route_regions",
    "unregister",
]

register()
