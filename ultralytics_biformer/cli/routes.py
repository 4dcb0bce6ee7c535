"""``ultralytics-biformer routes``: show where each bi-level routing attention (BRA) layer of a model looks.

For each query point, every BRA layer routes the point's region to its ``topk`` key regions; only their tokens are
attended to. This command runs the model once on an image, captures each layer's queries and keys with a forward
hook on its ``qkv`` projection, recomputes the routing with :func:`~ultralytics_biformer.route_regions` (the very
function the layer uses) and draws, one panel per layer, the routed key regions of every query point over the
letterboxed input image the model saw. Trained (.pt) and untrained (YAML) models both work.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .args import ArgumentError, Option, parse_options, positive_int, text

if TYPE_CHECKING:
    from ..functional import RegionGrid

__all__ = ["OPTIONS", "LayerRoutes", "capture_routes", "run", "usage"]

DEFAULT_POINTS = "0.5,0.5;0.2,0.25;0.8,0.75"


def _points(raw: str) -> list[tuple[float, float]]:
    """``x,y;x,y;...`` with x and y fractions of the image width and height."""
    points = []
    for item in raw.split(";"):
        try:
            x, y = (float(v) for v in item.split(","))
        except ValueError:
            raise ValueError(f"expected 'x,y;x,y;...' with x, y in [0, 1], got '{item}'") from None
        if not (0 <= x <= 1 and 0 <= y <= 1):
            raise ValueError(f"point '{item}' is outside [0, 1] x [0, 1] (fractions of the image width and height)")
        points.append((x, y))
    return points


OPTIONS = [
    Option("model", text, None, "model with BRA layers: a biformer YAML (untrained) or a trained .pt (required)"),
    Option("source", text, None, "image file (required)"),
    Option(
        "points",
        _points,
        _points(DEFAULT_POINTS),
        f"query points 'x,y;x,y' as image fractions (default {DEFAULT_POINTS})",
    ),
    Option("imgsz", positive_int, 640, "inference size, rounded up to a multiple of 32"),
    Option("out", text, None, "output PNG (default runs/routes/<source>-<model>.png)"),
]


def usage() -> str:
    """The help text of ``routes``."""
    keys = "\n".join(f"  {o.key:<6}  {o.help}" for o in OPTIONS)
    return (
        "usage: ultralytics-biformer routes model=... source=... [key=value ...]\n\n"
        "Draw, for each query point, the key regions every bi-level routing attention layer routes it to.\n\n"
        f"keys:\n{keys}\n\nexample: ultralytics-biformer routes model=yolo11n-biformer.yaml source=image.jpg "
        "points=0.5,0.5;0.1,0.9\n"
    )


@dataclass
class LayerRoutes:
    """One BRA layer's routing for one image.

    Attributes:
        name (str): The layer's module path in the model, e.g. ``model.10.m.0.attn``.
        height (int): Feature map height.
        width (int): Feature map width.
        stride (float): Input pixels per feature cell.
        grid (RegionGrid): The region tiling of the feature map.
        routes (np.ndarray): ``(regions, k)`` routed key-region indices of every query region.
    """

    name: str
    height: int
    width: int
    stride: float
    grid: RegionGrid
    routes: np.ndarray

    def region_of(self, x: float, y: float) -> int:
        """The region holding input pixel ``(x, y)``."""
        col = min(int(x / self.stride), self.width - 1) // self.grid.region_w
        row = min(int(y / self.stride), self.height - 1) // self.grid.region_h
        return row * self.grid.cols + col

    def box_of(self, region: int) -> tuple[float, float, float, float]:
        """Input-pixel ``(x0, y0, x1, y1)`` of a region's real (unpadded) tokens."""
        row, col = divmod(int(region), self.grid.cols)
        g = self.grid
        y0, y1 = row * g.region_h, min((row + 1) * g.region_h, self.height)
        x0, x1 = col * g.region_w, min((col + 1) * g.region_w, self.width)
        return x0 * self.stride, y0 * self.stride, x1 * self.stride, y1 * self.stride


def letterbox(image: np.ndarray, size: int) -> np.ndarray:
    """Resize ``image`` to fit ``size x size`` keeping its aspect ratio, centred on Ultralytics' grey (114) padding."""
    import cv2

    h, w = image.shape[:2]
    r = min(size / h, size / w)
    nh, nw = round(h * r), round(w * r)
    canvas = np.full((size, size, 3), 114, dtype=np.uint8)
    top, left = (size - nh) // 2, (size - nw) // 2
    canvas[top : top + nh, left : left + nw] = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_LINEAR)
    return canvas


def capture_routes(model, image_rgb: np.ndarray) -> list[LayerRoutes]:
    """Run ``model`` on a square RGB uint8 image and return the routing of each of its BRA layers, in call order."""
    import torch

    from ..functional import region_grid, route_regions
    from ..modules import BiLevelRoutingAttention

    layers = [(n, m) for n, m in model.named_modules() if isinstance(m, BiLevelRoutingAttention)]
    captured, hooks = [], []
    for name, attn in layers:
        hook = lambda module, args, out, name=name, attn=attn: captured.append((name, attn, out.detach()))
        hooks.append(attn.qkv.register_forward_hook(hook))
    x = torch.from_numpy(np.ascontiguousarray(image_rgb.transpose(2, 0, 1))).float().div(255).unsqueeze(0)
    p = next(model.parameters())
    try:
        with torch.inference_mode():
            model(x.to(p.device, p.dtype))
    finally:
        for hook in hooks:
            hook.remove()
    result = []
    for name, attn, qkv in captured:
        b, _, h, w = qkv.shape
        q, k, _ = qkv.float().view(b, attn.num_heads, -1, h, w).split([attn.key_dim, attn.key_dim, attn.head_dim], 2)
        routes = route_regions(q.reshape(b, -1, h, w), k.reshape(b, -1, h, w), attn.n_win, attn.topk)
        stride = image_rgb.shape[0] / h
        result.append(LayerRoutes(name, h, w, stride, region_grid(h, w, attn.n_win), routes[0].cpu().numpy()))
    return result


def _layer_title(model, name: str) -> str:
    parts = name.split(".")
    if len(parts) > 1 and parts[0] == "model" and parts[1].isdigit():
        top = model.model[int(parts[1])]
        name = f"layer {parts[1]} {type(top).__name__}: {'.'.join(parts[2:])}"
    return name


def draw(
    image_rgb: np.ndarray,
    layers: list[LayerRoutes],
    points: list[tuple[float, float]],
    titles: list[str],
    suptitle: str,
    out: Path,
) -> Path:
    """One panel per layer: the image, each point's query region (dashed) and routed key regions (filled)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

    cols = min(4, len(layers))
    rows = math.ceil(len(layers) / cols)
    fig = Figure(figsize=(4.2 * cols, 4.4 * rows + 0.6), layout="constrained")
    FigureCanvasAgg(fig)
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel()
    size = image_rgb.shape[0]
    for ax, layer, title in zip(axes, layers, titles):
        ax.imshow(image_rgb)
        for i, (px, py) in enumerate(points):
            colour = f"C{i % 10}"
            region = layer.region_of(px, py)
            for key_region in layer.routes[region]:
                x0, y0, x1, y1 = layer.box_of(key_region)
                ax.add_patch(
                    Rectangle((x0, y0), x1 - x0, y1 - y0, facecolor=colour, alpha=0.25, edgecolor=colour, lw=1.5)
                )
            x0, y0, x1, y1 = layer.box_of(region)
            ax.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, edgecolor=colour, lw=2, ls="--"))
            ax.plot(px, py, marker="*", ms=14, color=colour, mec="black", label=f"query {i + 1}")
        g = layer.grid
        ax.set_title(
            f"{title}\n{layer.height}x{layer.width} map, {g.rows}x{g.cols} regions, top-{layer.routes.shape[1]}",
            fontsize=8,
        )
        ax.set(xlim=(0, size), ylim=(size, 0), xticks=[], yticks=[])
    for ax in axes[len(layers) :]:
        ax.axis("off")
    axes[0].legend(fontsize=7, loc="lower left")
    fig.suptitle(suptitle, fontsize=10)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    return out


def _load_model(spec: str):
    from ultralytics import YOLO

    from ..modules import BiLevelRoutingAttention

    if Path(spec).suffix.lower() in {".pt", ".pth"} and not Path(spec).is_file():
        raise ArgumentError(f"model={spec}: no such file (routes never downloads weights)")
    try:
        net = YOLO(spec).model
    except FileNotFoundError as e:
        raise ArgumentError(
            f"model={spec}: {e}; give a biformer model YAML (e.g. yolo11n-biformer.yaml) or a local .pt checkpoint"
        ) from None
    if not any(isinstance(m, BiLevelRoutingAttention) for m in net.modules()):
        raise ArgumentError(
            f"model={spec} has no bi-level routing attention layers; give a biformer model, e.g. "
            "yolo11n-biformer.yaml, cfg/yolo11-biformer-neck.yaml or a checkpoint trained from one"
        )
    return net.float().eval()


def run(tokens: list[str]) -> int:
    """Run ``routes`` with its ``key=value`` arguments; return the exit code."""
    import cv2

    values = parse_options(tokens, OPTIONS, "routes")
    for key in ("model", "source"):
        if values[key] is None:
            raise ArgumentError(f"routes needs {key}=...")
    image = cv2.imread(values["source"]) if Path(values["source"]).is_file() else None
    if image is None:
        raise ArgumentError(f"source={values['source']}: not a readable image file")
    from .offline import offline_ultralytics

    offline_ultralytics()
    model = _load_model(values["model"])
    size = math.ceil(values["imgsz"] / 32) * 32
    h, w = image.shape[:2]
    r = min(size / h, size / w)
    left, top = (size - round(w * r)) // 2, (size - round(h * r)) // 2
    rgb = letterbox(image, size)[..., ::-1].copy()
    layers = capture_routes(model, rgb)
    points = [(left + x * w * r, top + y * h * r) for x, y in values["points"]]
    out = Path(values["out"] or Path("runs/routes") / f"{Path(values['source']).stem}-{Path(values['model']).stem}.png")
    titles = [_layer_title(model, layer.name) for layer in layers]
    suptitle = f"{values['model']}: key regions routed to each query region (dashed), imgsz {size}"
    print(draw(rgb, layers, points, titles, suptitle, out))
    return 0
