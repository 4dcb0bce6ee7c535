"""The ``ultralytics-biformer`` command: ``compare``, ``dataset``, ``routes`` and ``erf`` subcommands.

Arguments are Ultralytics-style ``key=value`` pairs, parsed strictly: an unknown key or a bad value stops the command
before any work with a message saying what is wrong and what is accepted (exit code 2). Each subcommand lives in its
own module, imported only when it runs. ``YOLO_OFFLINE=true`` is put in the environment (unless set) before that import,
so that Ultralytics, wherever it is first imported, skips its network connectivity check.
"""

from __future__ import annotations

import importlib
import sys

from .args import ArgumentError, ExitCode

__all__ = ["COMMANDS", "main"]

COMMANDS = {
    "compare": "train and benchmark models side by side: accuracy, size, latency, training time, memory",
    "dataset": "generate the bundled context-tokens benchmark dataset and print its data YAML path",
    "routes": "draw where each bi-level routing attention layer of a model looks, for chosen query points",
    "erf": "measure and draw the effective receptive field of a detection model's P3-P5 levels",
}
HELP = {"-h", "--help", "help"}


def usage() -> str:
    """The top-level help text."""
    commands = "\n".join(f"  {name:<8}  {text}" for name, text in COMMANDS.items())
    return (
        "usage: ultralytics-biformer COMMAND [key=value ...]\n\n"
        f"commands:\n{commands}\n\n"
        "Run 'ultralytics-biformer COMMAND help' for a command's keys.\n"
    )


def main(argv: list[str] | None = None) -> int:
    """Run the ``ultralytics-biformer`` command line; return the exit code.

    Args:
        argv (list[str], optional): The arguments after the program name; ``sys.argv[1:]`` when None.
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in HELP:
        print(usage())
        return ExitCode.OK if argv else ExitCode.USAGE
    command, tokens = argv[0], argv[1:]
    if command not in COMMANDS:
        print(f"ultralytics-biformer: unknown command '{command}'. Accepted: {', '.join(COMMANDS)}\n", file=sys.stderr)
        print(usage(), file=sys.stderr)
        return ExitCode.USAGE
    # Before the command module is imported: whatever imports Ultralytics first triggers its connectivity check.
    from .offline import offline_environment

    offline_environment()
    module = importlib.import_module(f".{command}", __name__)
    if any(token in HELP for token in tokens):
        print(module.usage())
        return ExitCode.OK

    try:
        return module.run(tokens)
    except ArgumentError as e:
        print(f"ultralytics-biformer {command}: error: {e}", file=sys.stderr)
        print(f"Run 'ultralytics-biformer {command} help' for the accepted keys.", file=sys.stderr)
        return ExitCode.USAGE
    except KeyboardInterrupt:
        print(f"ultralytics-biformer {command}: interrupted", file=sys.stderr)
        return ExitCode.INTERRUPTED
