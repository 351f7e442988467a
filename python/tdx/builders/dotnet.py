"""The dotnet builder: `DotnetBuild(...)` is `Build.dotnet(...)`, checked by the dotnet plugin."""

from tdx import Build, BuildSpec


def DotnetBuild(**kwargs) -> BuildSpec:
    """A dotnet build spec; see the dotnet plugin for its parameters."""
    return Build.dotnet(**kwargs)


__all__ = ["DotnetBuild"]
