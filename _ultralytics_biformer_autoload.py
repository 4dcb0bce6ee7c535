"""Zero-setup activation of ultralytics-biformer, run at interpreter start-up by ``ultralytics_biformer.pth``.

It imports neither torch nor Ultralytics. It only puts a one-shot finder on ``sys.meta_path`` that waits for
``ultralytics.nn.tasks`` (the model parser, which every Ultralytics entry point imports) and registers our blocks
right after that module has executed. So the stock ``yolo`` command, ``from ultralytics import YOLO``, loading a saved
biformer checkpoint and Ultralytics' DDP worker processes all know our blocks, while programs that never import
Ultralytics pay for nothing but this file. ``ULTRALYTICS_BIFORMER_AUTOLOAD=0`` turns it off.
"""

import os
import sys

TARGET = "ultralytics.nn.tasks"


def _register_after(module_exec):
    def exec_module(module):
        module_exec(module)
        try:
            import ultralytics_biformer  # noqa: F401  (importing registers)
        except Exception as e:  # a broken plug-in must not take stock Ultralytics down with it, but it must be seen
            print(
                f"WARNING ultralytics-biformer could not register with Ultralytics, so its model YAMLs and "
                f"checkpoints will not load: {type(e).__name__}: {e}",
                file=sys.stderr,
            )

    return exec_module


class _RegisterAfterTasks:
    """Meta-path finder that lets the normal finders locate ``TARGET``, then wraps its loader."""

    def find_spec(self, name, path=None, target=None):
        if name != TARGET:
            return None
        sys.meta_path.remove(self)  # one shot, and the lookup below must not find us again
        from importlib.util import find_spec

        spec = find_spec(name)
        if spec is not None and spec.loader is not None and hasattr(spec.loader, "exec_module"):
            spec.loader.exec_module = _register_after(spec.loader.exec_module)
        return spec


def install():
    """Arrange registration once ``ultralytics.nn.tasks`` is imported, unless disabled by the environment."""
    if os.environ.get("ULTRALYTICS_BIFORMER_AUTOLOAD", "1").strip().lower() in {"0", "false", "no", "off"}:
        return
    if TARGET in sys.modules:
        import ultralytics_biformer  # noqa: F401
    elif not any(isinstance(f, _RegisterAfterTasks) for f in sys.meta_path):
        sys.meta_path.insert(0, _RegisterAfterTasks())


install()
