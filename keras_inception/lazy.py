"""Names a package exports without importing their modules until first use, so that importing
the package stays light (TensorFlow, keras-cv and matplotlib load only where they are needed)."""

import importlib


def lazy_exports(package, exports):
    """A module `__getattr__` for `package` that imports `exports[name]`, a module path, the first
    time `name` is asked for."""

    def __getattr__(name):
        if name in exports:
            return getattr(importlib.import_module(exports[name]), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__
