"""Named dataset sizes, shared by the ``dataset`` and ``compare`` commands."""

from __future__ import annotations

from dataclasses import replace

from .synthetic import DatasetSpec

__all__ = ["PRESET_SPECS", "preset_spec"]

PRESET_SPECS = {
    "full": DatasetSpec(),
    "quick": DatasetSpec(train=160, val=40, imgsz=256),
    # The ablation study trained on exactly this spec, drawing version 1 included: it must never change.
    "study": DatasetSpec(seed=0, train=240, val=120, imgsz=256, version=1),
    # The context-range study of docs/results/context.md; its runs vary distance= only.
    "context": DatasetSpec(seed=0, train=320, val=120, imgsz=256, style="context", distance=24),
}


def preset_spec(name: str, **changes) -> DatasetSpec:
    """The spec of preset ``name`` with some fields replaced, e.g. ``preset_spec("quick", task="pose")``.

    Raises:
        ValueError: ``name`` is not a preset, or a changed field is invalid.
    """
    if name not in PRESET_SPECS:
        raise ValueError(f"unknown dataset preset {name!r}; accepted: {', '.join(PRESET_SPECS)}")
    return replace(PRESET_SPECS[name], **changes)
