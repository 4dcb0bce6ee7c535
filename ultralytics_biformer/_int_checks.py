"""The one definition of "a positive integer" (and "an integer of at least n") for every check in the package.

An integer here is a Python ``int`` that is not a ``bool``: ``True`` would otherwise pass as 1, and floats such as
``2.0`` are refused rather than truncated. Kept free of imports so that anything, the command line included, can use
it without loading torch or Ultralytics.
"""

from __future__ import annotations

__all__ = ["check_int_at_least", "check_positive_int", "is_int_at_least", "is_positive_int"]


def is_int_at_least(x, minimum: int) -> bool:
    """Whether ``x`` is an ``int`` (not a ``bool``) of at least ``minimum``."""
    return isinstance(x, int) and not isinstance(x, bool) and x >= minimum


def is_positive_int(x) -> bool:
    """Whether ``x`` is an ``int`` (not a ``bool``) of at least 1."""
    return is_int_at_least(x, 1)


def _kind(minimum: int) -> str:
    return {0: "a non-negative integer", 1: "a positive integer"}.get(minimum, f"an integer >= {minimum}")


def check_int_at_least(name: str, x, minimum: int) -> int:
    """Return ``x`` if :func:`is_int_at_least`, else raise ValueError ``"<name> must be <kind>, got <x!r>"``."""
    if not is_int_at_least(x, minimum):
        raise ValueError(f"{name} must be {_kind(minimum)}, got {x!r}")
    return x


def check_positive_int(name: str, x) -> int:
    """Return ``x`` if :func:`is_positive_int`, else raise ValueError ``"<name> must be a positive integer, got <x!r>"``."""
    return check_int_at_least(name, x, 1)
