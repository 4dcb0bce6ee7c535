"""PyTorch modules: the routing attention and the YOLO blocks built on it."""

from .attention import BiLevelRoutingAttention
from .blocks import BRA, C2PSA_BRA, C3k2_BRA

__all__ = ["BRA", "C2PSA_BRA", "BiLevelRoutingAttention", "C3k2_BRA"]
