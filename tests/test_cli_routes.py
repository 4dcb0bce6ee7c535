"""Tests of ``ultralytics_biformer.cli.routes``: the ``routes`` command; points survive a shell, padding is marked,
every image format saves, bad arguments are reported. How it loads a model= is in test_cli_models.py."""

from __future__ import annotations

import shlex
import shutil
import subprocess

import cv2
import numpy as np
import pytest
from helpers import png_size

from ultralytics_biformer.cli import main, routes
from ultralytics_biformer.cli.args import parse_options
from ultralytics_biformer.functional import region_grid


def test_points_are_separated_by_a_slash_and_semicolons_are_refused():
    assert routes._points("0.5,0.5/0.1,0.9/1,0") == [(0.5, 0.5), (0.1, 0.9), (1.0, 0.0)]
    with pytest.raises(ValueError, match=r"separate points with '/'.*';' ends a shell command"):
        routes._points("0.5,0.5;0.1,0.9")
    with pytest.raises(ValueError, match="expected 'x,y/x,y/...'"):
        routes._points("0.5,0.5/")


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_help_example_pasted_into_a_shell_passes_every_point():
    lines = routes.usage().splitlines()
    command = lines[lines.index("examples:") + 1].strip()
    stub = 'ultralytics-biformer() { printf "%s\\n" "$@"; }'  # prints the arguments the shell passes
    passed = subprocess.run(["bash", "-c", f"{stub}\n{command}"], capture_output=True, text=True).stdout.splitlines()
    assert passed == shlex.split(command)[1:]
    values = parse_options(passed[1:], routes.OPTIONS, "routes")
    assert len(values["points"]) > 1  # the example shows how to give several


def _layer(routes_of_region: dict[int, list[int]]) -> routes.LayerRoutes:
    """A 4x4 map of 1x1-token regions at stride 32 (a 128 px input) with the given routes, the rest routed to 0."""
    grid = region_grid(4, 4, 4)
    table = np.zeros((grid.num_regions, 2), dtype=np.int64)
    for region, keys in routes_of_region.items():
        table[region] = keys
    return routes.LayerRoutes("model.10.m.0.attn", 4, 4, 32.0, grid, table)


def test_routed_regions_on_letterbox_padding_are_marked_as_padding():
    # A 128 px letterbox of a 2:1 image: the picture fills rows 32..96, rows 0..32 and 96..128 are padding.
    content = routes.letterbox_box(50, 100, 128)
    assert content == (0, 32, 128, 96)
    layer = _layer({5: [1, 6], 14: [15, 9]})  # query regions 5 (row 1) and 14 (row 3) -> regions in rows 0, 1, 3, 2
    queries = [(40.0, 40.0), (70.0, 100.0)]
    marked = routes.marked_regions(layer, queries, content)
    padding_rows = {0, 3}
    for point, kind, box in marked:
        row = int(box[1] // 32)
        if kind != "query":
            assert kind == ("padding" if row in padding_rows else "routed"), (point, kind, box)
    assert sorted(kind for _, kind, _ in marked) == ["padding", "padding", "query", "query", "routed", "routed"]

    image = routes.letterbox(np.full((50, 100, 3), 200, np.uint8), 128)
    fig = routes.figure(image, [layer], queries, ["layer 10"], "test", content)
    ax = fig.axes[0]
    patches = {(p.get_x(), p.get_y(), p.get_width(), p.get_height()): p for p in ax.patches}
    for i, kind, box in marked:
        x0, y0, x1, y1 = routes.query_outline(box, i, 128)  # where query i's outline of the region is drawn
        patch = patches[(x0, y0, x1 - x0, y1 - y0)]
        if kind == "padding":
            assert patch.get_hatch() and not patch.get_fill(), "a routed padding region must be hatched, not filled"
        elif kind == "routed":
            assert patch.get_fill() and not patch.get_hatch()
    # The padding bands themselves are hatched too, and the legend says what hatching means.
    for band in ((0, 0, 128, 32), (0, 96, 128, 32)):
        assert patches[band].get_hatch()
    legend = " ".join(
        t.get_text()
        for legend in [*fig.legends, *(a.get_legend() for a in fig.axes)]
        if legend
        for t in legend.get_texts()
    )
    assert "letterbox padding" in legend


@pytest.mark.parametrize("kind", ["yaml", "checkpoint"])
def test_routes_runs_end_to_end_on_a_wide_image(kind, image_file, tmp_path, capsys):
    model = "yolo11n-biformer.yaml"
    if kind == "checkpoint":
        from ultralytics import YOLO

        model = str(tmp_path / "biformer.pt")
        YOLO("yolo11n-biformer.yaml").save(model)
    out = tmp_path / "routes.png"
    assert (
        main(["routes", f"model={model}", f"source={image_file}", "imgsz=96", f"out={out}", "points=0.5,0.5/0.05,0.95"])
        == 0
    )
    assert capsys.readouterr().out.strip().endswith(str(out)) and out.is_file()


def _formats() -> list[str]:
    from matplotlib.backend_bases import FigureCanvasBase

    return sorted(set(FigureCanvasBase.get_supported_filetypes()) - {"pgf"})  # pgf needs a LaTeX install


@pytest.mark.parametrize("name", ["routes.txt", "routes", "routes.pgf"])
def test_out_without_an_image_extension_is_refused_before_any_model_work(
    name, image_file, tmp_path, monkeypatch, capsys
):
    monkeypatch.setattr(routes, "_load_model", lambda spec: pytest.fail("loaded the model before checking out="))
    out = tmp_path / name
    assert main(["routes", "model=yolo11n-biformer.yaml", f"source={image_file}", "imgsz=64", f"out={out}"]) == 2
    err = capsys.readouterr().err
    line = next(line for line in err.splitlines() if line.startswith("ultralytics-biformer routes: error:"))
    assert f"out={out}" in line and ", ".join(f".{f}" for f in _formats()) in line, line
    assert not out.exists()


@pytest.mark.parametrize("fmt", _formats())
def test_every_accepted_out_extension_saves(fmt, tmp_path):
    name = f"routes.{fmt.upper()}"
    assert parse_options([f"out={name}"], routes.OPTIONS, "routes")["out"] == name
    image = routes.letterbox(np.full((50, 100, 3), 200, np.uint8), 128)
    out = routes.draw(image, [_layer({})], [(40.0, 40.0)], ["layer 10"], "test", tmp_path / name)
    assert out.stat().st_size > 0


def test_points_on_the_far_edge_of_the_image_query_a_region_of_the_image(tmp_path, monkeypatch):
    image = tmp_path / "wide.png"
    cv2.imwrite(str(image), np.zeros((50, 100, 3), np.uint8))
    drawn = {}

    def draw(image_rgb, layers, points, titles, suptitle, out, content):
        drawn.update(layers=layers, points=points, content=content)
        return out

    monkeypatch.setattr(routes, "draw", draw)
    argv = ["routes", "model=yolo11n-biformer.yaml", f"source={image}", "imgsz=128", "points=0.5,1/1,0.5/1,1/0,0"]
    assert main(argv) == 0
    # 100x50 scaled by 128/100 to 128x64, centred: rows 32..96 hold the image, the rest is padding.
    content = drawn["content"]
    assert content == (0, 32, 128, 96)
    x0, y0, x1, y1 = content
    for px, py in drawn["points"]:
        assert x0 <= px < x1 and y0 <= py < y1, (px, py)
    for layer in drawn["layers"]:
        for _, kind, box in routes.marked_regions(layer, drawn["points"], content):
            if kind == "query":
                assert routes._overlaps(box, content), f"{layer.name}: query region {box} is all padding"


def test_each_query_keeps_its_own_outline_where_routes_overlap():
    box = (0.0, 0.0, 64.0, 64.0)
    outlines = [routes.query_outline(box, i, 640) for i in range(3)]
    assert outlines[0] == box and len(set(outlines)) == 3  # nested, one per query
    assert all(a[0] < b[0] and a[2] > b[2] for a, b in zip(outlines, outlines[1:]))
    tiny = routes.query_outline((0.0, 0.0, 4.0, 4.0), 5, 640)
    assert tiny[0] < tiny[2] and tiny[1] < tiny[3]  # never inverted


def test_routes_uses_the_checkpoint_training_size_and_says_when_weights_are_random(
    bad_models, image_file, tmp_path, capsys
):
    import torch
    from ultralytics import YOLO

    # A trained checkpoint keeps its training arguments; Ultralytics puts them in model.args on loading.
    torch.save({"model": YOLO("yolo11n-biformer.yaml").model, "train_args": {"imgsz": 96}}, tmp_path / "trained96.pt")
    assert (
        main(["routes", f"model={tmp_path / 'trained96.pt'}", f"source={image_file}", f"out={tmp_path / 'a.png'}"]) == 0
    )
    out = capsys.readouterr().out
    assert "the checkpoint's weights; imgsz 96 (the checkpoint's training imgsz)" in out
    assert (
        main(["routes", "model=yolo11n-biformer.yaml", f"source={image_file}", "imgsz=70", f"out={tmp_path / 'b.png'}"])
        == 0
    )
    out = capsys.readouterr().out
    assert "random weights (a YAML: not trained); imgsz 96 (imgsz= as given, 70 rounded up to a multiple of 32)" in out


def test_routes_draws_every_bra_layer_of_an_untrained_model(scene_image, tmp_path, capsys):
    from ultralytics_biformer.cli import routes
    from ultralytics_biformer.cli.offline import offline_ultralytics

    out = tmp_path / "routes.png"
    assert (
        main(
            [
                "routes",
                "model=yolo11n-biformer.yaml",
                f"source={scene_image}",
                "imgsz=128",
                f"out={out}",
                "points=0.5,0.5/0.1,0.9",
            ]
        )
        == 0
    )
    assert capsys.readouterr().out.strip().endswith(str(out))
    width, height = png_size(out)
    assert width > 4 * height / 2  # four BRA layers in one row

    offline_ultralytics()
    model = routes._load_model("yolo11n-biformer.yaml")
    layers = routes.capture_routes(model, routes.letterbox(np.zeros((50, 80, 3), np.uint8), 128))
    assert [layer.name for layer in layers] == [
        "model.10.m.0.attn",
        "model.16.bra.attn",
        "model.19.bra.attn",
        "model.22.bra.attn",
    ]
    for layer in layers:
        regions, k = layer.routes.shape
        assert regions == layer.grid.num_regions and 1 <= k <= regions
        assert ((layer.routes >= 0) & (layer.routes < regions)).all()
        assert layer.box_of(regions - 1)[2:] == (layer.width * layer.stride, layer.height * layer.stride)


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["model=yolo11n.yaml"], "has no bi-level routing attention layers"),
        (["model=missing.pt"], "model=missing.pt: no such file"),
        (["model=yolo11n-biformer.yaml", "points=0.5,1.5"], "outside [0, 1]"),
        (["model=yolo11n-biformer.yaml", "source=/nonexistent.jpg"], "not a readable image file"),
        (["source=x.jpg"], "routes needs model=..."),
    ],
)
def test_bad_routes_arguments_are_reported(arguments, message, scene_image, capsys):
    if not any(a.startswith("source=") for a in arguments):
        arguments = [*arguments, f"source={scene_image}"]
    assert main(["routes", *arguments]) == 2
    assert message in capsys.readouterr().err
