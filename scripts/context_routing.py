"""Does routing find the evidence? For the context study's trained biformer models: how much of the background that
decides a token's class lies in the key regions each BRA layer routes the token's region to.

In a context scene (``ultralytics_biformer.data.context``) a token's class is decided only by the texture outside
the clearings, at least ``d`` px from every token centre. For every token of every validation image, each BRA layer
routes the region holding the token's centre to ``topk`` key regions; this script measures the share of evidence
pixels (pixels outside every clearing) of each region and averages it over those routed regions, next to two
references over the same layer's regions (at the study's 256 px every region has as many pixels as every other):

- ``uniform``: the mean share over all regions, what routing to regions drawn at random would see;
- ``oracle``: the mean share of the ``topk`` regions that hold the most evidence, the most routing could see.

Routing that sought out the evidence would sit near the oracle, routing blind to it near uniform. The scenes are
drawn again from their datasets' seeds (``context_scene``), so the evidence is known exactly. It reads each run's
weights under ``runs/`` (not committed: a machine that did not train them has none) and its record, and writes
``routing.csv`` and ``routing.md`` into the study folder. Exploratory: no verdict rests on it.

Usage:
    python scripts/context_routing.py [--project docs/results/context] [--model yolo11n-biformer.yaml]
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import shlex
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

from ultralytics_biformer.cli.routes import LayerRoutes, capture_routes
from ultralytics_biformer.data.context import clearing_mask, token_centres
from ultralytics_biformer.data.synthetic import DatasetSpec, context_scene

COLUMNS = ("distance", "seed", "layer", "map", "regions", "topk", "tokens", "routed", "uniform", "oracle", "self")
SHARES = ("routed", "uniform", "oracle", "self")


def region_shares(layer: LayerRoutes, evidence: np.ndarray) -> np.ndarray:
    """Share of ``evidence`` pixels (a boolean map of the input image) in each of the layer's regions."""
    shares = []
    for region in range(layer.grid.num_regions):
        x0, y0, x1, y1 = (round(v) for v in layer.box_of(region))
        shares.append(evidence[y0:y1, x0:x1].mean())
    return np.asarray(shares)


def token_routing(layer: LayerRoutes, evidence: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """``(tokens, 4)``: per token centre ``(x, y)``, the evidence share of its region's routed regions, of all
    regions (uniform) and of the ``topk`` regions richest in evidence (oracle), and 1 where the token's own region is
    among its routed ones (self), else 0."""
    shares = region_shares(layer, evidence)
    topk = layer.routes.shape[-1]
    best = np.sort(shares)[-topk:].mean()
    rows = []
    for x, y in centres:
        region = layer.region_of(x, y)
        routed = layer.routes[region]
        rows.append((shares[routed].mean(), shares.mean(), best, float(region in routed)))
    return np.asarray(rows, dtype=np.float64).reshape(-1, len(SHARES))


def dataset_spec(record: dict) -> DatasetSpec:
    """The spec of the dataset a run trained on, from the ``dataset.json`` beside its ``data.yaml``."""
    data = Path(record["train_args"]["data"])
    info_path = data.parent / "dataset.json"
    if not info_path.is_file():
        raise FileNotFoundError(f"{info_path} is missing: run the study's compare once to generate its dataset")
    info = json.loads(info_path.read_text())
    return DatasetSpec(**{k: info[k] for k in DatasetSpec.__dataclass_fields__ if k in info})


def study_runs(project: Path, model: str):
    """``(distance, seed, weights, record)`` of every finished run of ``model`` with weights under ``project``."""
    stem = Path(model).stem
    folders = {int(m.group(1)): f for f in project.iterdir() if (m := re.fullmatch(r"context-d(\d+)", f.name))}
    for distance, folder in sorted(folders.items()):
        for path in sorted(folder.glob(f"records/{stem}-seed*.json")):
            if not re.fullmatch(rf"{re.escape(stem)}-seed\d+\.json", path.name):
                continue  # a job file, or another model whose name starts with this one's
            record = json.loads(path.read_text())
            weights = _weights(record, folder)
            if weights is None:
                print(f"{path}: no weights at {record.get('weights')}, skipped", file=sys.stderr)
                continue
            yield distance, record["seed"], weights, record


def _weights(record: dict, folder: Path) -> Path | None:
    """The run's weights where the record says, else in its run folder under ``folder`` (a moved checkout)."""
    recorded = Path(record.get("weights") or "")
    here = folder / "runs" / Path(record.get("save_dir") or "").name / "weights" / recorded.name
    return next((p for p in (recorded, here) if recorded.name and p.is_file()), None)


def measure(weights: Path, spec: DatasetSpec) -> list[dict]:
    """One run's rows: per BRA layer, the mean shares over every token of the validation split."""
    from ultralytics import YOLO

    model = YOLO(str(weights)).model.float().eval()
    parts: dict[str, list[np.ndarray]] = defaultdict(list)
    layers: dict[str, LayerRoutes] = {}
    for index in range(spec.val):
        scene = context_scene(spec, "val", index)
        boxes = [o.box for o in scene.objects]
        evidence = ~clearing_mask(spec.imgsz, boxes, spec.distance)
        rgb = np.ascontiguousarray(scene.image[..., ::-1])  # written BGR, read back as RGB by the trainer
        for layer in capture_routes(model, rgb):
            parts[layer.name].append(token_routing(layer, evidence, token_centres(boxes)))
            layers[layer.name] = layer
    rows = []
    for name, chunks in parts.items():
        shares, layer = np.concatenate(chunks), layers[name]
        rows.append(
            {
                "layer": name,
                "map": f"{layer.height}x{layer.width}",
                "regions": f"{layer.grid.rows}x{layer.grid.cols}",
                "topk": layer.routes.shape[-1],
                "tokens": len(shares),
                **dict(zip(SHARES, (round(float(v), 4) for v in shares.mean(0)))),
            }
        )
    return rows


def markdown(rows: list[dict], command: str) -> str:
    lines = [
        "# Does routing find the evidence?",
        "",
        f"- command: `{command}`",
        (
            "- per token of every validation image, the share of evidence pixels (outside every clearing) of a "
            "region, averaged over the key regions the token's region is routed to (`routed`), over all regions "
            "(`uniform`) and over the `topk` regions richest in evidence (`oracle`), and the share of tokens whose own "
            "region is among its routed ones (`self`); means over tokens; exploratory"
        ),
        "",
        "| distance | seed | layer | map | regions | topk | tokens | routed | uniform | oracle | self |",
        "|---:|---:|---|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    lines += ["| " + " | ".join(str(row[c]) for c in COLUMNS) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--project", type=Path, default=Path("docs/results/context"), help="the study's folder")
    parser.add_argument("--model", default="yolo11n-biformer.yaml", help="the model's YAML, as compare names it")
    args = parser.parse_args(argv)
    if not args.project.is_dir():
        parser.error(f"--project {args.project} is not a folder")
    rows = []
    for distance, seed, weights, record in study_runs(args.project, args.model):
        print(f"d={distance} seed={seed}: {weights}", file=sys.stderr, flush=True)
        rows += [{"distance": distance, "seed": seed, **row} for row in measure(weights, dataset_spec(record))]
    if not rows:
        parser.error(f"no finished run of {args.model} with weights under {args.project}")
    with open(args.project / "routing.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    args_given = argv if argv is not None else sys.argv[1:]
    command = " ".join(["python scripts/context_routing.py", *map(shlex.quote, args_given)])
    (args.project / "routing.md").write_text(markdown(rows, command))
    print(f"wrote {args.project / 'routing.csv'} and {args.project / 'routing.md'}", file=sys.stderr)
    return rows


if __name__ == "__main__":
    main()
