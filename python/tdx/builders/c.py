"""The c builder: `CBuild(...)` is `Build.c(...)`, checked by the c plugin."""

from tdx import Build, BuildSpec


def CBuild(**kwargs) -> BuildSpec:
    """A c build spec; see the c plugin for its parameters."""
    return Build.c(**kwargs)


__all__ = ["CBuild"]
