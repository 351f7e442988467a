"""Toolchain archives made from the toolchains installed on this machine, laid out like the
official releases, kept in the shared test cache and served to fetch() from loopback."""

import hashlib
import os
import subprocess
import tarfile
from pathlib import Path

from conftest import SHARED_CACHE

ARCHIVES = SHARED_CACHE / "test-toolchains"


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


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
    """go<version>.linux-amd64.tar: everything under a top-level go/ folder, as go.dev ships it."""
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
