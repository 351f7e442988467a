"""The Go builder: `GoBuild(...)` is `Build.go(...)`; `GoFromSource` builds Go itself.

    GoBuild(version="1.22.5", src="./app", output="/usr/local/bin/app", ldflags="-s -w")
    GoBuild(compiler=fetch(url, sha256=...), src="./app", output="/usr/local/bin/app")
    GoBuild(compiler=GoFromSource(version="1.22.5", bootstrap_version="1.21.0",
                                  source=fetch_git(url, tag="go1.22.5", sha256=...)), ...)

Programs build with CGO_ENABLED=0 (cgo=True enables it), -trimpath and an empty build id;
the network is off, so modules must be vendored (go mod vendor).
"""

import os

from tdx import Build, BuildSpec, Error, _site, _where


def GoBuild(**kwargs) -> BuildSpec:
    """A Go program build spec; parameters: version or compiler, src, output, ldflags, package, tags, cgo."""
    return Build.go(**kwargs)


class GoFromSource:
    """A Go toolchain compiled from a Go source tree with make.bash, for GoBuild(compiler=...).

    The bootstrap compiler is a release (bootstrap_version=) or a fetched tarball (bootstrap=).
    The toolchain is itself a cached build, so it is compiled once.
    """

    def __init__(self, version: str, bootstrap_version: str | None = None, *, source, bootstrap=None):
        if bootstrap_version is None and bootstrap is None:
            raise Error(f"{_where(_site())}: GoFromSource needs bootstrap_version= or bootstrap=fetch(...)")
        self.version = version
        self.toolchain_spec = Build.go(
            name=f"go{version}-from-source",
            src=os.fspath(source),
            output=f"/opt/tdx-toolchains/go{version}",
            make_toolchain=True,
            version=bootstrap_version,
            compiler=bootstrap,
            install=False,
        )


__all__ = ["GoBuild", "GoFromSource"]
