"""``ultralytics-biformer routes``: show where each bi-level routing attention (BRA) layer of a model looks.

For each query point, every BRA layer routes the point's region to its ``topk`` key regions; only their tokens are
attended to. This command runs the model once on an image, captures each layer's queries and keys with a forward
hook on its ``qkv`` projection, recomputes the routing with :func:`~ultralytics_biformer.route_regions` (the very
function the layer uses) and draws, one panel per layer, the routed key regions of every query point over the
letterboxed input image the model saw, with the letterbox padding hatched, so that routes to regions holding nothing
but padding are not mistaken for routes into the image. Trained (.pt) and untrained (YAML) models both work.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .args import ArgumentError, ExitCode, Option, parse_options, positive_int, text, usage_text
from .models import DEFAULT_IMGSZ, describe_weights, inference_size, load_model

if TYPE_CHECKING:
    from ..functional import RegionGrid

__all__ = [
    "OPTIONS",
    "LayerRoutes",
    "capture_routes",
    "draw",
    "figure",
    "letterbox",
    "letterbox_box",
    "marked_regions",
    "query_outline",
    "run",
    "to_input_pixels",
    "usage",
]

# '/' between points, not ';': a shell ends the command at an unquoted ';', so a pasted example drew one point.
POINT_SEPARATOR = "/"
DEFAULT_POINTS = "0.5,0.5/0.2,0.25/0.8,0.75"


def _points(raw: str) -> list[tuple[float, float]]:
    """``x,y/x,y/...`` with x and y fractions of the image width and height."""
    if ";" in raw:
        raise ValueError(
            f"separate points with '{POINT_SEPARATOR}' (e.g. points=0.5,0.5/0.1,0.9), not ';': "
            "an unquoted ';' ends a shell command"
        )
    points = []
    for item in raw.split(POINT_SEPARATOR):
        try:
            x, y = (float(v) for v in item.split(","))
        except ValueError:
            raise ValueError(f"expected 'x,y/x,y/...' with x, y in [0, 1], got '{item}'") from None
        if not (0 <= x <= 1 and 0 <= y <= 1):
            raise ValueError(f"point '{item}' is outside [0, 1] x [0, 1] (fractions of the image width and height)")
        points.append((x, y))
    return points


def _image_file(raw: str) -> str:
    """An output file name whose extension names an image format matplotlib saves, e.g. ``routes.png``."""
    from matplotlib.backend_bases import FigureCanvasBase

    # pgf is left out: matplotlib writes it only through a LaTeX install, which most machines lack.
    formats = sorted(set(FigureCanvasBase.get_supported_filetypes()) - {"pgf"})
    if Path(raw).suffix.lower().lstrip(".") not in formats:
        raise ValueError(f"expected an image file name ending in one of {', '.join('.' + f for f in formats)}")
    return raw


OPTIONS = [
    Option("model", text, None, "model with BRA layers: a biformer YAML (untrained) or a trained .pt (required)"),
    Option("source", text, None, "image file (required)"),
    Option(
        "points",
        _points,
        _points(DEFAULT_POINTS),
        f"query points 'x,y/x,y/...' as fractions of the image width and height (default {DEFAULT_POINTS})",
    ),
    Option(
        "imgsz",
        positive_int,
        None,
        f"inference size, rounded up to a multiple of 32 (default: a checkpoint's training imgsz, else {DEFAULT_IMGSZ})",
    ),
    Option("out", _image_file, None, "output image, .png, .pdf, .svg, ... (default runs/routes/<source>-<model>.png)"),
]


def usage() -> str:
    """The help text of ``routes``."""
    return usage_text(
        "routes",
        "model=... source=... [key=value ...]",
        "Draw, for each query point, the key regions every bi-level routing attention layer routes it to.\n\n"
        "Routed regions that lie on the letterbox padding (the grey border added to make the image square) are\n"
        "hatched, not filled.",
        OPTIONS,
        ["ultralytics-biformer routes model=yolo11n-biformer.yaml source=image.jpg 'points=0.5,0.5/0.1,0.9'"],
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


def letterbox_box(height: int, width: int, size: int) -> tuple[int, int, int, int]:
    """Where :func:`letterbox` puts a ``height x width`` image in its ``size x size`` canvas: ``(x0, y0, x1, y1)``."""
    r = min(size / height, size / width)
    nh, nw = round(height * r), round(width * r)
    top, left = (size - nh) // 2, (size - nw) // 2
    return left, top, left + nw, top + nh


def to_input_pixels(points: list[tuple[float, float]], content: Box) -> list[tuple[float, float]]:
    """Image-fraction points ``(x, y)`` as pixels of the letterboxed input whose image lies in ``content``.

    The image's far edge (a fraction of 1) is where the padding begins, so it is kept on the last pixel of the image:
    the point's region must be one of the image's.
    """
    x0, y0, x1, y1 = content
    return [(min(x0 + x * (x1 - x0), x1 - 1), min(y0 + y * (y1 - y0), y1 - 1)) for x, y in points]


def letterbox(image: np.ndarray, size: int) -> np.ndarray:
    """Resize ``image`` to fit ``size x size`` keeping its aspect ratio, centred on Ultralytics' grey (114) padding."""
    import cv2

    x0, y0, x1, y1 = letterbox_box(*image.shape[:2], size)
    canvas = np.full((size, size, 3), 114, dtype=np.uint8)
    canvas[y0:y1, x0:x1] = cv2.resize(image, (x1 - x0, y1 - y0), interpolation=cv2.INTER_LINEAR)
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


Box = tuple[float, float, float, float]


def _overlaps(a: Box, b: Box) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def marked_regions(layer: LayerRoutes, points: list[tuple[float, float]], content: Box) -> list[tuple[int, str, Box]]:
    """What one panel draws: ``(point index, kind, input-pixel box)`` for each point's query region and routed regions.

    ``kind`` is ``"query"``, ``"routed"`` or ``"padding"``: a routed region with no pixel inside ``content`` (the
    image's box in the letterboxed input) holds only letterbox padding, and must not look like a region of the image.
    """
    marked = []
    for i, (px, py) in enumerate(points):
        region = layer.region_of(px, py)
        for key_region in layer.routes[region]:
            box = layer.box_of(key_region)
            marked.append((i, "routed" if _overlaps(box, content) else "padding", box))
        marked.append((i, "query", layer.box_of(region)))
    return marked


def query_outline(box: Box, query: int, size: int) -> Box:
    """Where query ``query``'s outline of a region is drawn: inset by a step per query, so that where several
    queries route to one region each keeps its own visible outline, nested, in its own colour."""
    step = max(1.0, size / 160) * query
    x0, y0, x1, y1 = box
    step = min(step, (x1 - x0) / 2 - 0.5, (y1 - y0) / 2 - 0.5)  # a tiny region keeps a sliver for each
    return x0 + step, y0 + step, x1 - step, y1 - step


def _padding_bands(size: int, content: Box) -> list[Box]:
    x0, y0, x1, y1 = content
    bands = [(0, 0, size, y0), (0, y1, size, size), (0, y0, x0, y1), (x1, y0, size, y1)]
    return [b for b in bands if b[2] > b[0] and b[3] > b[1]]


def figure(
    image_rgb: np.ndarray,
    layers: list[LayerRoutes],
    points: list[tuple[float, float]],
    titles: list[str],
    suptitle: str,
    content: Box | None = None,
):
    """One panel per layer: the image, each point's query region (dashed) and routed key regions (filled; hatched
    where they lie on letterbox padding, which is hatched grey). ``content`` is the image's box in the letterboxed
    input (default: all of it). Returns the matplotlib Figure."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.colors import to_rgba
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch, Rectangle

    size = image_rgb.shape[0]
    content = content or (0, 0, size, size)
    cols = min(4, len(layers))
    rows = math.ceil(len(layers) / cols)
    fig = Figure(figsize=(4.2 * cols, 4.4 * rows + 0.9), layout="constrained")
    FigureCanvasAgg(fig)
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel()
    # A face is needed: matplotlib draws no hatch on a patch with neither face nor edge.
    padding_style = {"facecolor": (1, 1, 1, 0.3), "edgecolor": "0.3", "hatch": "xx", "lw": 0}
    for ax, layer, title in zip(axes, layers, titles):
        ax.imshow(image_rgb)
        for x0, y0, x1, y1 in _padding_bands(size, content):
            ax.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, **padding_style))
        for i, kind, box in marked_regions(layer, points, content):
            colour = f"C{i % 10}"
            x0, y0, x1, y1 = query_outline(box, i, size)
            style = {
                "routed": {"facecolor": (*to_rgba(colour)[:3], 0.12), "edgecolor": colour, "lw": 1.5},
                "padding": {"fill": False, "hatch": "//", "edgecolor": colour, "lw": 1.5, "ls": ":"},
                "query": {"fill": False, "edgecolor": colour, "lw": 2, "ls": "--"},
            }[kind]
            ax.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, **style))
        for i, (px, py) in enumerate(points):
            ax.plot(px, py, marker="*", ms=14, color=f"C{i % 10}", mec="black")
        g = layer.grid
        ax.set_title(
            f"{title}\n{layer.height}x{layer.width} map, {g.rows}x{g.cols} regions, top-{layer.routes.shape[1]}",
            fontsize=8,
        )
        ax.set(xlim=(0, size), ylim=(size, 0), xticks=[], yticks=[])
    for ax in axes[len(layers) :]:
        ax.axis("off")
    handles = [
        Line2D([], [], ls="", marker="*", ms=10, color=f"C{i % 10}", mec="black", label=f"query {i + 1}")
        for i in range(len(points))
    ]
    handles += [
        Patch(fill=False, edgecolor="0.2", lw=2, ls="--", label="query region"),
        Patch(facecolor="0.2", alpha=0.25, edgecolor="0.2", label="routed key region (one nested outline per query)"),
        Patch(fill=False, hatch="//", edgecolor="0.2", ls=":", label="routed key region on letterbox padding"),
        Patch(**padding_style, label="letterbox padding (not part of the image)"),
    ]
    try:
        fig.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), 4), fontsize=7)
    except (ValueError, TypeError):  # matplotlib < 3.7 has no legend outside the axes
        axes[0].legend(handles=handles, loc="lower left", fontsize=7)
    fig.suptitle(suptitle, fontsize=10)
    return fig


def draw(
    image_rgb: np.ndarray,
    layers: list[LayerRoutes],
    points: list[tuple[float, float]],
    titles: list[str],
    suptitle: str,
    out: Path,
    content: Box | None = None,
) -> Path:
    """Save :func:`figure` at ``out``, in the image format its extension names; return ``out``."""
    fig = figure(image_rgb, layers, points, titles, suptitle, content)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    return out


def _load_model(spec: str):
    """The model ``model=`` names, which must hold BRA layers, in float32 eval mode. Raises ArgumentError."""
    from ..modules import BiLevelRoutingAttention

    net = load_model(spec, "routes")
    if not any(isinstance(m, BiLevelRoutingAttention) for m in net.modules()):
        raise ArgumentError(
            f"model={spec} has no bi-level routing attention layers; give a biformer model, e.g. "
            "yolo11n-biformer.yaml, ultralytics_biformer/cfg/yolo11-biformer-neck.yaml or a checkpoint trained from one"
        )
    return net


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
    size, origin = inference_size(model, values["model"], values["imgsz"])
    weights = describe_weights(values["model"])
    content = letterbox_box(*image.shape[:2], size)
    rgb = letterbox(image, size)[..., ::-1].copy()
    layers = capture_routes(model, rgb)
    points = to_input_pixels(values["points"], content)
    out = Path(values["out"] or Path("runs/routes") / f"{Path(values['source']).stem}-{Path(values['model']).stem}.png")
    titles = [_layer_title(model, layer.name) for layer in layers]
    suptitle = (
        f"{values['model']} ({weights}): key regions routed to each query region (dashed), imgsz {size} ({origin})"
    )
    print(f"{values['model']}: {weights}; imgsz {size} ({origin})")
    print(draw(rgb, layers, points, titles, suptitle, out, content))
    return ExitCode.OK
