"""Zero-setup activation: ``ultralytics_biformer.pth`` imports this module by this name at interpreter start-up.

It runs ``ultralytics_biformer/_import_hook.py`` (see there) as that very module but without the package's
``__init__``, so start-up imports neither the package, torch nor Ultralytics; the package's own import later finds the
hook already in ``sys.modules``. The file is located where ``import ultralytics_biformer`` would find the package, so an
editable install runs its checkout's hook, not something copied next to this file.
"""

import importlib.util
import os
import sys


def _load_hook():
    name = "ultralytics_biformer._import_hook"
    if name in sys.modules:
        return sys.modules[name]
    package = importlib.util.find_spec("ultralytics_biformer")  # locates the package, executes nothing
    if package is None or not package.submodule_search_locations:
        return None  # uninstalled, this file left behind
    location = os.path.join(package.submodule_search_locations[0], "_import_hook.py")
    if not os.path.isfile(location):
        return None  # a directory an uninstall left behind: nothing to run, and start-up must not fail over it
    spec = importlib.util.spec_from_file_location(name, location)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


_hook = _load_hook()
if _hook is not None and _hook.autoload_enabled():
    _hook.install()
