"""The go builder: `GoBuild(...)` is `Build.go(...)`, checked by the go plugin."""

from tdx import Build, BuildSpec


def GoBuild(**kwargs) -> BuildSpec:
    """A go build spec; see the go plugin for its parameters."""
    return Build.go(**kwargs)


__all__ = ["GoBuild"]
