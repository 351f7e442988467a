"""Toolchain archives made from the toolchains installed on this machine, laid out like the
official releases, kept in the shared test cache and served to fetch() from loopback."""

import contextlib
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from conftest import EXAMPLES, SHARED_CACHE
from loopback import LoopbackServer

ARCHIVES = SHARED_CACHE / "test-toolchains"


def _atomic_tar(target: Path, add):
    if target.exists():
        return target
    ARCHIVES.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(f".partial-{os.getpid()}")
    with tarfile.open(partial, "w") as tar:
        add(tar)
    partial.rename(target)
    return target


def go_root():
    for candidate in ("/usr/local/go", "/usr/lib/go"):
        if Path(candidate, "bin", "go").exists():
            return Path(candidate)
    return None


def go_version(root: Path) -> str:
    return (root / "VERSION").read_text().splitlines()[0]  # e.g. go1.26.8


def go_tarball() -> Path:
    """go<version>.linux-amd64.tar: everything under a top-level go/ folder, as the official Go release tarballs are laid out."""
    root = go_root()
    return _atomic_tar(ARCHIVES / f"{go_version(root)}.linux-amd64.tar",
                       lambda tar: tar.add(root, arcname="go", filter=lambda ti: None if "/pkg/obj" in ti.name else ti))


def rust_sysroot() -> Path | None:
    try:
        out = subprocess.run(["rustc", "--print", "sysroot"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    root = Path(out.strip())
    return root if (root / "bin" / "cargo").exists() else None


def rust_tarball() -> Path:
    """rust-<version>-x86_64-unknown-linux-gnu.tar in the rust-installer layout: a components file
    and one folder per component (here one, 'rustc', holding rustc, cargo and the target's std)."""
    root = rust_sysroot()
    version = subprocess.run(["rustc", "--version"], capture_output=True, text=True).stdout.split()[1]
    top = f"rust-{version}-x86_64-unknown-linux-gnu"

    def add(tar):
        info = tarfile.TarInfo(f"{top}/components")
        data = b"rustc\n"
        info.size = len(data)
        import io
        tar.addfile(info, io.BytesIO(data))
        for rel in ("bin/rustc", "bin/cargo"):
            tar.add(root / rel, arcname=f"{top}/rustc/{rel}")
        for lib in sorted((root / "lib").iterdir()):
            if lib.is_file() or lib.is_symlink():
                tar.add(lib, arcname=f"{top}/rustc/lib/{lib.name}")
        tar.add(root / "lib/rustlib/x86_64-unknown-linux-gnu", arcname=f"{top}/rustc/lib/rustlib/x86_64-unknown-linux-gnu")

    return _atomic_tar(ARCHIVES / f"{top}.tar", add)


GO_PINNED = "1.22.5"  # a release the go plugin pins (by its golang.org/toolchain zip)


def go_toolchain_zip(version: str = GO_PINNED) -> Path:
    """The release's golang.org/toolchain module zip from this machine's Go module cache; skips
    the test, saying how to get it, when it is not there."""
    if shutil.which("go") is None:
        pytest.skip("go is not installed on this machine: its module cache holds the pinned Go release zips")
    modcache = subprocess.run(["go", "env", "GOMODCACHE"], capture_output=True, text=True).stdout.strip()
    zip_path = Path(modcache) / f"cache/download/golang.org/toolchain/@v/v0.0.1-go{version}.linux-amd64.zip"
    if not zip_path.exists():
        pytest.skip(f"the Go {version} toolchain zip is not in this machine's Go module cache ({zip_path}); "
                    f"`go mod download golang.org/toolchain@v0.0.1-go{version}.linux-amd64` puts it there")
    return zip_path


@contextlib.contextmanager
def go_module_proxy(version: str = GO_PINNED):
    """A Go module proxy on loopback serving the release's toolchain zip from the local module cache,
    for GoBuild(version=...); yields the server (GOPROXY=server.url(""))."""
    zip_path = go_toolchain_zip(version)
    with LoopbackServer() as proxy:
        proxy.add(f"/golang.org/toolchain/@v/v0.0.1-go{version}.linux-amd64.zip", str(zip_path), kind="file")
        yield proxy


def go_source_repo() -> Path:
    """A git repository of Go 1.22.5's source tagged go1.22.5, made once (in the shared test cache)
    by the audited-build example's own script from the release zip in the local module cache."""
    go_toolchain_zip(GO_PINNED)
    repo = ARCHIVES / f"go{GO_PINNED}-source"
    if not repo.exists():
        ARCHIVES.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ, GOPROXY="off")  # the zip is in the module cache: no download
        subprocess.run([sys.executable, str(EXAMPLES / "audited-build" / "make-go-source.py"), str(repo)],
                       env=env, check=True, capture_output=True, text=True)
    return repo
