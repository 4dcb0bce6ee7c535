"""Strict Ultralytics-style ``key=value`` argument parsing for the ``ultralytics-biformer`` commands."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, Callable

from .._int_checks import is_int_at_least

__all__ = [
    "ArgumentError",
    "ExitCode",
    "Option",
    "choice",
    "comma_list",
    "non_negative_int",
    "parse_options",
    "usage_text",
    "positive_int",
    "text",
]


class ArgumentError(ValueError):
    """A command-line argument is wrong; the message says what was wrong and what is accepted."""


class ExitCode(enum.IntEnum):
    """The exit status of every command and worker process, for scripts that tell outcomes apart."""

    OK = 0
    FAILED = 1  # it ran, but a step failed (compare: a training run or a benchmark left no record)
    USAGE = 2  # a bad argument or command: nothing ran
    INTERRUPTED = 130  # Ctrl-C: the shell's convention, 128 + SIGINT


@dataclass(frozen=True)
class Option:
    """One accepted ``key=value`` argument.

    Attributes:
        key (str): The key.
        convert (Callable[[str], Any]): Turns the value text into the value; raises ValueError with a reason.
        default (Any): The value when the key is not given (None: decided later, e.g. by a preset).
        help (str): One line for the usage text.
    """

    key: str
    convert: Callable[[str], Any]
    default: Any
    help: str


def keys_help(options: list[Option], width: int = 0) -> str:
    """The ``keys:`` lines of a usage text, one per option, each naming its default unless its help already does; keys
    are padded to ``width`` or the longest key."""
    width = max(width, *(len(o.key) for o in options))
    lines = []
    for o in options:
        text = o.help
        if o.default is not None and "default" not in text:
            shown = ",".join(map(str, o.default)) if isinstance(o.default, (list, tuple)) else o.default
            text += f" (default {shown})"
        lines.append(f"  {o.key:<{width}}  {text}")
    return "\n".join(lines)


def usage_text(
    command: str,
    synopsis: str,
    about: str,
    options: list[Option],
    examples: list[str],
    sections: dict[str, list[tuple[str, str]]] | None = None,
) -> str:
    """A command's help text, laid out alike for every command.

    Args:
        command (str): The subcommand, e.g. ``"compare"``.
        synopsis (str): What follows the command in the usage line, e.g. ``"model=... [key=value ...]"``.
        about (str): What the command does, as wrapped lines; paragraphs separated by blank lines.
        options (list[Option]): Its keys, listed with their help and defaults (:func:`keys_help`).
        examples (list[str]): Example command lines.
        sections (dict, optional): Further named lists after the keys, each of ``(name, text)`` rows (e.g. presets),
            aligned with the keys.

    Returns:
        (str): The text, ending with a newline.
    """
    sections = sections or {}
    width = max(len(name) for name in [o.key for o in options] + [n for rows in sections.values() for n, _ in rows])
    blocks = [f"usage: ultralytics-biformer {command} {synopsis}", about.strip("\n")]
    blocks.append("keys:\n" + keys_help(options, width))
    for title, rows in sections.items():
        blocks.append(f"{title}:\n" + "\n".join(f"  {name:<{width}}  {text}" for name, text in rows))
    blocks.append("examples:\n" + "\n".join(f"  {example}" for example in examples))
    return "\n\n".join(blocks) + "\n"


def parse_options(tokens: list[str], options: list[Option], command: str) -> dict[str, Any]:
    """Parse ``key=value`` tokens against ``options``.

    Args:
        tokens (list[str]): The command's arguments.
        options (list[Option]): The accepted keys.
        command (str): The command's name, for messages.

    Returns:
        (dict[str, Any]): Every option's key mapped to its converted value, or its default when not given.

    Raises:
        ArgumentError: A token is not ``key=value``, a key is unknown or repeated, or a value does not convert.
    """
    by_key = {option.key: option for option in options}
    accepted = ", ".join(by_key)
    values, given = {key: option.default for key, option in by_key.items()}, set()
    for token in tokens:
        key, sep, raw = token.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ArgumentError(f"'{command}' takes key=value arguments, got '{token}'. Accepted keys: {accepted}")
        if key not in by_key:
            raise ArgumentError(f"unknown argument '{key}' for '{command}'. Accepted keys: {accepted}")
        if key in given:
            raise ArgumentError(f"argument '{key}' is given more than once")
        try:
            values[key] = by_key[key].convert(raw.strip())
        except ValueError as e:
            raise ArgumentError(f"{key}={raw}: {e}") from None
        given.add(key)
    return values


def positive_int(raw: str) -> int:
    """An integer of at least 1."""
    return _int_at_least(raw, 1)


def non_negative_int(raw: str) -> int:
    """An integer of at least 0."""
    return _int_at_least(raw, 0)


def image_size(raw: str) -> int:
    """A positive multiple of 32, the largest stride of every YOLO11 and YOLO26 model (Ultralytics would round
    another size up in training only, leaving validation and benchmarks at the size given)."""
    value = positive_int(raw)
    if value % 32:
        raise ValueError(f"expected a multiple of 32, e.g. {max(value // 32, 1) * 32} or {-(-value // 32) * 32}")
    return value


def _int_at_least(raw: str, minimum: int) -> int:
    try:
        value = int(raw)
    except ValueError:
        value = None
    if not is_int_at_least(value, minimum):
        raise ValueError(f"expected an integer >= {minimum}")
    return value


def text(raw: str) -> str:
    """A non-empty string."""
    if not raw:
        raise ValueError("expected a value")
    return raw


def choice(*allowed: str) -> Callable[[str], str]:
    """A converter accepting exactly one of ``allowed``."""

    def convert(raw: str) -> str:
        if raw not in allowed:
            raise ValueError(f"expected one of {', '.join(allowed)}")
        return raw

    return convert


def boolean(raw: str) -> bool:
    """``True``/``False`` as Ultralytics' CLI spells them (any case), or 1/0, yes/no."""
    value = raw.strip().lower()
    if value in {"true", "1", "yes"}:
        return True
    if value in {"false", "0", "no"}:
        return False
    raise ValueError("expected True or False")


def comma_list(raw: str) -> list[str]:
    """A comma-separated list of non-empty items, e.g. ``yolo11n.yaml,yolo11n-biformer.yaml``."""
    items = [item.strip() for item in raw.strip("[]").split(",")]
    if not raw or not all(items):
        raise ValueError("expected a comma-separated list with no empty items")
    return items
