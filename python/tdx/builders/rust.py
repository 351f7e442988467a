"""The rust builder: `RustBuild(...)` is `Build.rust(...)`, checked by the rust plugin."""

from tdx import Build, BuildSpec


def RustBuild(**kwargs) -> BuildSpec:
    """A rust build spec; see the rust plugin for its parameters."""
    return Build.rust(**kwargs)


__all__ = ["RustBuild"]
