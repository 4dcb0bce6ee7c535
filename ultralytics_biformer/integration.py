"""The Ultralytics integration: the only code that patches Ultralytics (replaces functions of its modules).

``register()`` patches two names in ``ultralytics.nn.tasks`` and allow-lists our classes for restricted loading:

- ``parse_model``: rows naming our blocks are handed to the stock parser as their stock twin (``C2PSA_BRA`` as
  ``C2PSA``, ``C3k2_BRA`` as ``C3k2``, ``BRA`` as a 1x1 ``Conv``), so they get exactly the stock bookkeeping: input
  channels, width scaling, ``max_channels`` caps, depth-scaled repeats and the per-scale C3k2 flags. The built twins
  are then turned into our blocks in place. A YAML row of ours is its twin's row with ``n_win, topk`` appended, e.g.
  ``[-1, 2, C2PSA_BRA, [1024, 2, 2]]``; ``BRA`` rows are ``[c2, n_win, topk]`` with c2 scaled like any stock row's
  and required to equal the incoming channels, since BRA preserves them. Optional top-level keys set what rows do
  not: ``bra_layer_scale: 0.1`` starts every new BRA block's residual branches at that gain instead of zero, and
  ``bra_region_means: true`` makes every routing attention also attend to each region's mean key and value. Each
  block is one :class:`BlockSpec` in ``_BLOCKS``.
- ``check_yaml``: bare names of the model YAMLs we ship (``yolo11n-biformer.yaml``) resolve to our ``cfg/``, from any
  working directory, unless a file of that name exists locally.

Separately, :func:`use_local_fonts` (called only by this package's own commands, never by ``register()``) points
Ultralytics' ``check_font`` at fonts on disk, because it otherwise downloads Arial for every dataset check and plot,
even with ``YOLO_OFFLINE=1``.

What relies on Ultralytics internals:

- this module, on ``parse_model(d, ch, ...)`` (leading parameters checked by ``register()``, the rest passed
  through), on it logging one table row per layer that starts ``f"{i:>3}{f!s:>20}"`` and on the ``i``, ``f``,
  ``type`` and ``np`` it sets on each layer; on the twins' names in its module and their YAML argument order; and on
  ``yaml_model_load`` calling ``check_yaml`` through the module.
- ``modules/``, which patches nothing but subclasses ``Attention``, ``C2PSA``, ``PSABlock`` and ``C3k2`` and converts
  built ones by swapping ``__class__``, on their attributes: ``Attention``'s ``qkv``, ``pe``, ``proj``, ``num_heads``,
  ``key_dim``, ``head_dim``, ``scale`` and ``format``; ``C2PSA``'s ``m`` (``PSABlock``s with ``attn``); ``C3k2``'s
  ``c``, ``cv1``, ``cv2`` and ``m``.

``register()`` checks the Ultralytics version against the range this package declares, the parser's signature and
that the twins exist, and raises instead of patching anything it was not made for.
"""

from __future__ import annotations

import contextlib
import copy
import inspect
import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from importlib import metadata, resources
from pathlib import Path
from typing import NamedTuple

import torch
import torch.nn as nn
from ultralytics.nn.modules.conv import Conv

from ._int_checks import is_positive_int
from .functional import check_routing_args
from .modules import BRA, C2PSA_BRA, BiLevelRoutingAttention, C3k2_BRA
from .modules.blocks import check_layer_scale

__all__ = ["config_dir", "is_registered", "register", "unregister", "use_local_fonts"]

DIST_NAME = "ultralytics-biformer"
_MODULES = (BRA, C2PSA_BRA, C3k2_BRA, BiLevelRoutingAttention)
_lock = threading.RLock()
# Name in ultralytics.nn.tasks -> what our patch replaced. Kept after unregister(): references to our wrappers taken
# while registered (Ultralytics' own ``ultralytics.nn.parse_model``, another plug-in's wrapper) then pass straight
# through to it.
_stock = {}
_displaced = {}  # name -> the patch another plug-in stacked on ours, which unregister() left in place
_active = False


def config_dir() -> Path:
    """The folder of bundled model YAMLs, the package's ``cfg/``."""
    return Path(resources.files(__package__) / "cfg")  # a package on disk, as pip installs it, gives a real path


def _supported_ultralytics():
    from packaging.requirements import Requirement

    try:
        requirements = metadata.requires(DIST_NAME) or []
    except metadata.PackageNotFoundError as e:
        raise ImportError(f"{DIST_NAME} is not installed: run `pip install -e .` in its checkout") from e
    return next(Requirement(r).specifier for r in requirements if Requirement(r).name == "ultralytics")


def _check_version():
    import ultralytics

    supported = _supported_ultralytics()
    if not supported.contains(ultralytics.__version__, prereleases=True):
        raise RuntimeError(
            f"{DIST_NAME} supports ultralytics{supported}, but ultralytics {ultralytics.__version__} is installed. "
            f"Install a supported version (pip install 'ultralytics{supported}') or a {DIST_NAME} release made for it."
        )


def _positive_number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and x > 0


def _is_bool(x) -> bool:
    return isinstance(x, bool)


def _bra_from_conv(conv: Conv, *, n_win: int, topk: int, layer_scale: float = 0.0, region_means: bool = False) -> BRA:
    c1, c2 = conv.conv.in_channels, conv.conv.out_channels
    if c1 != c2:
        raise ValueError(
            f"BRA preserves channels, but its input has {c1} and the row asks for {c2} (after width scaling)"
        )
    return BRA(c1, n_win=n_win, topk=topk, layer_scale=layer_scale, region_means=region_means)


@dataclass(frozen=True)
class BlockSpec:
    """One YAML block of ours: the stock row it is parsed as, and how the built stock layer becomes our block.

    A row of ours is its twin's row with ``n_win, topk`` appended. The stock parser builds the twin, so the row gets
    exactly the stock bookkeeping (input channels, width scaling, ``max_channels`` caps, depth-scaled repeats,
    per-scale flags), and ``convert`` then turns the built twin into our block.

    Attributes:
        name: The block's name in model YAMLs, e.g. ``"C2PSA_BRA"``.
        twin: The name of the stock block whose row it borrows, e.g. ``"C2PSA"``; looked up in
            ``ultralytics.nn.tasks`` as the stock parser does.
        convert: Turns one built twin into our block, given ``n_win``, ``topk`` and ``region_means`` (and
            ``layer_scale`` when ``takes_layer_scale``); raises ValueError or TypeError when the built twin cannot
            become one.
        form: The accepted args, as error messages quote them.
        stock_checks: The twin's args in YAML order, each a ``(name, test)`` pair; a row gives at most this many
            before ``n_win, topk``, and the first (``c2``) is required.
        twin_args: Appended to the row's stock args when it is handed to the stock parser, for twin arguments the
            YAML form leaves out (BRA's 1x1 kernel).
        takes_layer_scale: Whether ``convert`` creates new BRA blocks, whose residual branches start at the gain of
            the model YAML's ``bra_layer_scale`` key.
    """

    name: str
    twin: str
    convert: Callable[..., nn.Module]
    form: str
    stock_checks: tuple[tuple[str, Callable[[object], bool]], ...]
    twin_args: tuple = ()
    takes_layer_scale: bool = False

    def split_args(self, i: int, args) -> tuple[list, int, int]:
        """Split layer ``i``'s args into the twin's args and ``(n_win, topk)``, validating every one of them.

        The count and the types of ``n_win, topk`` are checked before their values, so a row that left one out (its
        last stock argument then sitting where ``n_win`` belongs) is reported as such rather than as a bad ``n_win``.

        Raises:
            ValueError: Naming the layer, the block, the problem and the accepted form.
        """

        def fail(problem):
            return ValueError(f"model YAML layer {i} ({self.name}): {problem}; {self.name} rows take {self.form}")

        if not isinstance(args, list):
            raise fail(f"args must be a list, got {args!r}")
        if len(args) < 3:
            raise fail(f"expected c2, n_win and topk at least, got {args!r}")
        if len(args) > len(self.stock_checks) + 2:
            raise fail(f"expected at most {len(self.stock_checks) + 2} args, got {len(args)}: {args!r}")
        *stock_args, n_win, topk = args
        for key, value in (("n_win", n_win), ("topk", topk)):
            if not isinstance(value, int) or isinstance(value, bool):
                raise fail(
                    f"expected n_win and topk, positive integers, at the end of the args, got {args!r} ({key} is {value!r})"
                )
        try:
            check_routing_args(n_win, topk)
        except ValueError as e:
            raise fail(str(e)) from None
        for value, (key, ok) in zip(stock_args, self.stock_checks):
            if not ok(value):
                raise fail(f"{key} is {value!r}")
        return stock_args, n_win, topk

    def convert_layer(self, stock: nn.Module, *, n_win: int, topk: int, options: _YamlOptions) -> nn.Module:
        """Our block from the built twin, or an ``nn.Sequential`` of them where the parser built ``n > 1`` repeats
        of a twin that takes no repeat count (a 1x1 Conv)."""
        kwargs = {"n_win": n_win, "topk": topk, "region_means": options.region_means}
        if self.takes_layer_scale:
            kwargs["layer_scale"] = options.layer_scale
        if isinstance(stock, nn.Sequential):
            return nn.Sequential(*(self.convert(m, **kwargs) for m in stock))
        return self.convert(stock, **kwargs)


# The blocks the model YAML accepts; adding a block is adding its spec here.
_BLOCKS = {
    spec.name: spec
    for spec in (
        BlockSpec(
            name="C2PSA_BRA",
            twin="C2PSA",
            convert=C2PSA_BRA.from_stock,
            form="[c2, n_win, topk] or [c2, e, n_win, topk]",
            stock_checks=(("c2", is_positive_int), ("e", _positive_number)),
        ),
        BlockSpec(
            name="C3k2_BRA",
            twin="C3k2",
            convert=C3k2_BRA.from_stock,
            form="[c2, c3k, e, attn, g, shortcut, n_win, topk], all but c2, n_win and topk optional",
            stock_checks=(
                ("c2", is_positive_int),
                ("c3k", _is_bool),
                ("e", _positive_number),
                ("attn", _is_bool),
                ("g", is_positive_int),
                ("shortcut", _is_bool),
            ),
            takes_layer_scale=True,
        ),
        BlockSpec(
            name="BRA",
            twin="Conv",  # a 1x1 Conv: c2 gets a stock row's width scaling and cap; BRA then checks c2 == c1
            convert=_bra_from_conv,
            form="[c2, n_win, topk]",
            stock_checks=(("c2", is_positive_int),),
            twin_args=(1,),  # kernel size
            takes_layer_scale=True,
        ),
    )
}

# Optional top-level model-YAML keys, for every block of ours that takes them (see ``BRA``).
LAYER_SCALE_KEY = "bra_layer_scale"  # initial gain of every new BRA block's residual branches
REGION_MEANS_KEY = "bra_region_means"  # every routing attention also attends to each region's mean key and value


def _spec_of(row) -> BlockSpec | None:
    """The spec of the block a model-YAML row names, or None for a stock row."""
    return _BLOCKS.get(row[2]) if isinstance(row[2], str) else None


class _YamlOptions(NamedTuple):
    """The model YAML's optional top-level keys of ours, validated."""

    layer_scale: float = 0.0
    region_means: bool = False

    @classmethod
    def of(cls, d: dict) -> _YamlOptions:
        """Read them from the model dict ``d``, defaults where absent.

        Raises:
            ValueError: Naming the key, what it holds and what it accepts.
        """
        layer_scale, region_means = d.get(LAYER_SCALE_KEY, 0.0), d.get(REGION_MEANS_KEY, False)
        try:
            check_layer_scale(layer_scale)
        except ValueError as e:
            raise ValueError(f"model YAML key {LAYER_SCALE_KEY}: {e}") from None
        if not isinstance(region_means, bool):
            raise ValueError(f"model YAML key {REGION_MEANS_KEY} must be true or false, got {region_means!r}")
        return cls(layer_scale, region_means)


class _Conversion(NamedTuple):
    """A row of ours, due to be converted once the stock parser has built its twin at ``index``."""

    index: int
    spec: BlockSpec
    n_win: int
    topk: int


def _translate_rows(d: dict) -> tuple[list, list[_Conversion], ValueError | None]:
    """The rows of the model dict ``d`` with each row of ours replaced by its twin's row, the conversions to make once
    the stock parser has built them, and the error of the first row of ours whose args are invalid, or None.

    Translation stops at an invalid row, and its error is returned with the rows before it rather than raised: the
    caller builds those first, so that the layer table is logged up to the bad row, as the stock parser logs it up to a
    bad row of its own, and a stock error in an earlier row is the one reported.
    """
    rows, conversions = [], []
    for i, row in enumerate([*d["backbone"], *d["head"]]):
        spec = _spec_of(row)
        if spec is None:
            rows.append(row)
            continue
        f, n, _, args = row
        try:
            stock_args, n_win, topk = spec.split_args(i, args)
        except ValueError as e:
            return rows, conversions, e
        rows.append([f, n, spec.twin, [*stock_args, *spec.twin_args]])
        conversions.append(_Conversion(i, spec, n_win, topk))
    return rows, conversions, None


def _with_rows(d: dict, rows: list) -> dict:
    """A shallow copy of the model dict ``d`` whose backbone and head are ``rows``, split where ``d``'s split; ``rows``
    may stop short of ``d``'s end."""
    d = copy.copy(d)
    d["backbone"], d["head"] = rows[: len(d["backbone"])], rows[len(d["backbone"]) :]
    return d


class _RowLabel(NamedTuple):
    """How one layer-table row is relabelled: the stock parser's row for the twin, rewritten to name our block.

    A row is recognised by its ``start``, ``f"{i:>3}{f!s:>20}"`` as the stock parser prints it, never by its cell
    alone: a stock layer can print the same parameter count and type as our block's twin.
    """

    start: str
    stock_cell: str  # parameter count and module type, as printed for the twin
    our_cell: str
    note: str  # appended inside the printed args list


def _convert_layer(model: nn.Sequential, conversion: _Conversion, options: _YamlOptions) -> _RowLabel:
    """Replace the twin the stock parser built at ``conversion.index`` with our block, returning its row's label.

    Raises:
        ValueError: Naming the layer and the block, when the built twin cannot become our block.
    """
    i, spec = conversion.index, conversion.spec
    stock = model[i]
    start = f"{i:>3}{stock.f!s:>20}"
    stock_cell = f"{stock.np:10.0f}  {stock.type:<45}"  # read first: conversion may happen in place
    try:
        layer = spec.convert_layer(stock, n_win=conversion.n_win, topk=conversion.topk, options=options)
    except (ValueError, TypeError) as e:
        raise ValueError(f"model YAML layer {i} ({spec.name}): {e}") from e
    layer.i, layer.f, layer.type = stock.i, stock.f, f"ultralytics_biformer.{spec.name}"
    layer.np = sum(p.numel() for p in layer.parameters())
    model[i] = layer
    our_cell = f"{layer.np:10.0f}  {layer.type:<45}"
    note = f"n_win={conversion.n_win}, topk={conversion.topk}" + (", region_means" if options.region_means else "")
    return _RowLabel(start, stock_cell, our_cell, note)


@contextlib.contextmanager
def _held_log_records(logger: logging.Logger, rewrite):
    """Hold back what this thread logs to ``logger`` inside the block, then re-emit it as ``rewrite(message)``.

    The records are re-emitted however the block ends, so a failed build still prints the rows made before the error,
    as a stock build does.
    """
    thread, held = threading.get_ident(), []

    def hold(record):
        if record.thread != thread:
            return True
        held.append(record)
        return False

    logger.addFilter(hold)
    try:
        yield
    finally:
        logger.removeFilter(hold)
        for record in held:
            record.msg, record.args = rewrite(record.getMessage()), ()
            logger.handle(record)


def _relabel(message: str, labels: Iterable[_RowLabel]) -> str:
    """``message`` with its cell rewritten if it is the layer-table row of one of ``labels``, else unchanged."""
    for label in labels:
        if message.startswith(label.start) and label.stock_cell in message[len(label.start) :]:
            row = label.start + message[len(label.start) :].replace(label.stock_cell, label.our_cell, 1).rstrip()
            return f"{row[:-1]}, {label.note}]"  # inside the printed args list
    return message


def _parse_model(d, ch, *args, **kwargs):
    """``ultralytics.nn.tasks.parse_model`` that also builds our blocks; see :class:`BlockSpec`.

    Three steps: our rows are translated into their stock twins' rows, the stock parser builds the model, and the
    built twins are converted into our blocks; the layer table the parser logs meanwhile is held back and re-emitted
    with the converted rows relabelled. Arguments after ``d`` and ``ch`` go to the stock parser untouched, so a
    parameter a newer Ultralytics adds works. Stock models go straight to the stock parser.
    """
    from ultralytics.utils import LOGGER

    parse = _stock["parse_model"]
    if not _active or not any(_spec_of(row) for row in [*d["backbone"], *d["head"]]):
        return parse(d, ch, *args, **kwargs)

    options = _YamlOptions.of(d)
    rows, conversions, bad_row = _translate_rows(d)
    labels = []  # filled as layers are converted: a failed build relabels only the rows of blocks it made
    with _held_log_records(LOGGER, lambda message: _relabel(message, labels)):
        model, save = parse(_with_rows(d, rows), ch, *args, **kwargs)
        for conversion in conversions:
            labels.append(_convert_layer(model, conversion, options))
        if bad_row is not None:  # raised once the rows before it are built and logged
            raise bad_row
    if warning := _misread_head(model):
        LOGGER.warning(warning)
    return model, save


def _misread_head(model: nn.Sequential) -> str | None:
    """A warning when the head reads a layer no YOLO head is written to read, or None.

    The usual trap: a row inserted into a copy of a stock YAML shifts every later index by one, so a head written for
    ``[16, 19, 22]`` silently reads the Concat or Upsample just before each C3k2 it meant. Stock heads (Detect and
    its subclasses, and Classify) read C3k2, C2PSA, A2C2f, Conv or our blocks, never a Concat or an Upsample, so
    that much can be detected; a head pointed at another wrong layer of a plausible kind cannot.
    """
    from ultralytics.nn.modules import Concat

    head = model[-1]
    sources = head.f if isinstance(head.f, (list, tuple)) else [head.f]
    misread = [
        f"layer {i} ({type(model[i]).__name__})"
        for i in sources
        if i >= 0 and isinstance(model[i], (Concat, nn.Upsample))
    ]
    if not misread:
        return None
    return (
        f"the head ({type(head).__name__}) reads {', '.join(misread)}: heads read feature blocks, not joins or "
        "upsamplings. Adding a row shifts every later layer's index by one; point the head and the later 'from' "
        "entries at the new indices (see how yolo11-biformer-neck.yaml appends its rows and renumbers its head)."
    )


def _check_yaml(file, *args, **kwargs):
    """``check_yaml`` that resolves the bare names of our bundled model YAMLs to ``cfg/``, and names the closest
    bundled YAML when a bare name that Ultralytics cannot find either is a near miss of one of ours."""
    path = Path(str(file))
    bundled = config_dir() / path.name
    ours = _active and path.parent == Path() and not path.exists()
    if ours and bundled.is_file():
        return str(bundled)
    try:
        return _stock["check_yaml"](file, *args, **kwargs)
    except FileNotFoundError:
        if ours and (closest := _closest_bundled_name(path.name)):
            raise FileNotFoundError(
                f"'{file}' does not exist; did you mean '{closest}' (bundled with ultralytics-biformer, any scale "
                "n/s/m/l/x)?"
            ) from None
        raise


def _closest_bundled_name(name: str) -> str | None:
    """The bundled model YAML closest to ``name`` by its scale-n name (``yolo11n-biformer.yaml``), or None when none
    is close: a near miss differs by a typo or two, not by being another model. Ultralytics asks for the name with
    its scale letter removed (``yolo11-biformr.yaml``), so both spellings are compared."""
    import difflib
    import re

    scale_n = {path.name: re.sub(r"^(yolo\d+)-", r"\g<1>n-", path.name) for path in config_dir().glob("*.yaml")}
    unscaled = re.sub(r"^(yolo\d+)[nslmx]-", r"\g<1>-", name)
    found = difflib.get_close_matches(unscaled, sorted(scale_n), n=1, cutoff=0.85)
    return scale_n[found[0]] if found else None


# Everything register() patches: name in ultralytics.nn.tasks -> ours. Patching the module attribute is enough because
# Ultralytics' model classes call parse_model, and yaml_model_load calls check_yaml, through it.
_PATCHES = {"parse_model": _parse_model, "check_yaml": _check_yaml}


def _check_twins(tasks) -> None:
    """Raise unless every twin our rows are parsed as is a block the stock parser can name.

    The parser looks row names up among its module's globals: a twin renamed or moved by a newer Ultralytics would
    otherwise break every model of ours with a bare KeyError while stock models still build.
    """
    missing = [
        spec.twin
        for spec in _BLOCKS.values()
        if not (isinstance(getattr(tasks, spec.twin, None), type) and issubclass(getattr(tasks, spec.twin), nn.Module))
    ]
    if missing:
        raise RuntimeError(
            f"ultralytics.nn.tasks has no {', '.join(missing)}, which {DIST_NAME} builds its blocks from: this "
            f"Ultralytics is not supported; {DIST_NAME} supports ultralytics{_supported_ultralytics()}."
        )


def _check_parser_signature(parse) -> None:
    """Raise unless ``parse`` takes ``d`` and ``ch`` first, as the wrapper does; later parameters are passed through.

    A parser whose leading parameters changed would otherwise fail with a TypeError, or misread its arguments, in the
    middle of building every model, stock ones included.
    """
    plain = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    try:
        signature = inspect.signature(parse)
    except (TypeError, ValueError):  # no signature to read: as unknown as a wrong one
        signature = None
    params = list(signature.parameters.values())[:2] if signature is not None else []
    if [p.name for p in params] != ["d", "ch"] or any(p.kind not in plain for p in params):
        raise RuntimeError(
            f"ultralytics.nn.tasks.parse_model{signature or '(<no signature>)'} is not the parse_model(d, ch, ...) {DIST_NAME} wraps: "
            f"this Ultralytics is not supported (or another plug-in replaced its parser first); {DIST_NAME} "
            f"supports ultralytics{_supported_ultralytics()} with its own parse_model."
        )


def register() -> None:
    """Teach Ultralytics' model parser our blocks and let restricted checkpoint loading accept them.

    Idempotent and thread-safe. Raises RuntimeError, patching nothing, on an unsupported Ultralytics version, an
    unknown ``parse_model`` signature or a stock twin of our blocks that ``ultralytics.nn.tasks`` lacks.
    """
    global _active
    with _lock:
        if _active:
            return
        _check_version()
        from ultralytics.nn import tasks

        for name in _PATCHES:
            if not callable(getattr(tasks, name, None)):
                raise RuntimeError(f"ultralytics.nn.tasks.{name} is missing: this Ultralytics is not supported")
        _check_twins(tasks)
        # Where unregister() left another plug-in's patch over ours, ours still runs beneath it: wrapping that patch
        # again would make each call the other.
        wrap = {name: getattr(tasks, name) for name in _PATCHES if getattr(tasks, name) is not _displaced.get(name)}
        if "parse_model" in wrap:
            _check_parser_signature(wrap["parse_model"])
        if hasattr(torch.serialization, "add_safe_globals"):
            # Process-wide and kept after unregister(): torch offers no way to withdraw a single entry.
            torch.serialization.add_safe_globals(list(_MODULES))
        _stock.update(wrap)
        for name in wrap:
            setattr(tasks, name, _PATCHES[name])
        _displaced.clear()
        _active = True


def unregister() -> None:
    """Restore Ultralytics' own parser and YAML lookup. Idempotent and thread-safe.

    A name another plug-in has patched since :func:`register` keeps that patch; the wrapper of ours it calls then
    passes straight through, as does any other reference to our wrappers, until :func:`register` turns it back on.
    """
    global _active
    with _lock:
        if not _active:
            return
        from ultralytics.nn import tasks

        for name, ours in _PATCHES.items():
            if getattr(tasks, name) is ours:
                setattr(tasks, name, _stock[name])
            else:
                _displaced[name] = getattr(tasks, name)
        _active = False


def is_registered() -> bool:
    """Whether :func:`register` is in effect."""
    return _active


def local_font(font: str = "Arial.ttf") -> Path:
    """``check_font`` without downloads: ``font`` if it is on disk, else matplotlib's bundled DejaVu Sans."""
    import os

    from matplotlib import font_manager
    from ultralytics.utils import USER_CONFIG_DIR

    name = Path(font).name
    if (USER_CONFIG_DIR / name).exists():
        return USER_CONFIG_DIR / name
    matches = [f.fname for f in font_manager.fontManager.ttflist if name in f.fname and os.path.exists(f.fname)]
    return Path(matches[0] if matches else font_manager.findfont("DejaVu Sans", fallback_to_default=True))


def use_local_fonts() -> None:
    """Make every Ultralytics font lookup (dataset checks, plots) local-only; idempotent."""
    import ultralytics.data.utils as data_utils
    from ultralytics.utils import checks, plotting

    for module in (checks, data_utils, plotting):
        if not hasattr(module, "check_font"):
            raise RuntimeError(f"{module.__name__}.check_font is missing: this Ultralytics is not supported")
        module.check_font = local_font
