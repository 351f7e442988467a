"""Shared fixtures: the built tdx binary, its Python package, and a cache shared by the run.

The tests drive the real `tdx` binary with real mkosi and bubblewrap. Build roots and
mkosi's package cache are kept in one cache per machine (TDX_TEST_CACHE, default
/var/tmp/tdx-test-cache) so that repeated runs do not download the same packages again;
tests about caching itself use a cache of their own.
"""

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BUILD = Path(os.environ.get("TDX_BUILD_DIR", REPO / "build")).resolve()
TDX = BUILD / "bin" / "tdx"
PYTHON_DIR = BUILD / "lib" / "tdx" / "python"
EXAMPLES = REPO / "examples"
SHARED_CACHE = Path(os.environ.get("TDX_TEST_CACHE", "/var/tmp/tdx-test-cache"))

if str(PYTHON_DIR) not in sys.path:
    sys.path.insert(0, str(PYTHON_DIR))


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: builds a bootable disk image or runs a VM (minutes)")
    if not TDX.exists():
        raise pytest.UsageError(f"{TDX} is missing: run scripts/build.sh first")


def tdx_env(**overrides):
    env = dict(os.environ)
    env.pop("TDX_PLUGIN_PATH", None)
    env.pop("TDX_MIRROR", None)
    env.pop("PYTEST_CURRENT_TEST", None)  # changes between a fixture and its test: tdx build's no-op path sees it
    env["TDX_CACHE_DIR"] = str(SHARED_CACHE)
    for key, value in overrides.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = str(value)
    return env


def run_tdx(*args, cwd=None, env=None, expect=0, timeout=900):
    """Runs the real tdx binary; checks its exit code (expect=None skips the check)."""
    proc = subprocess.run([str(TDX), *map(str, args)], cwd=cwd, env=env or tdx_env(), capture_output=True,
                          text=True, timeout=timeout)
    if expect is not None and proc.returncode != expect:
        raise AssertionError(f"tdx {' '.join(map(str, args))} exited {proc.returncode}, expected {expect}\n"
                             f"--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}")
    return proc


def need(*programs):
    """Skips (saying why) when a real part this test uses is missing on the machine."""
    for p in programs:
        if shutil.which(p) is None and not Path("/usr/sbin", p).exists():
            pytest.skip(f"{p} is not installed on this machine (scripts/setup-debian.sh installs it)")


@pytest.fixture
def project(tmp_path):
    """A fresh copy of the bundled example in this test's own folder."""
    dest = tmp_path / "hello"
    shutil.copytree(EXAMPLES / "hello", dest, ignore=shutil.ignore_patterns("build", "__pycache__"))
    return dest


def write_tdxfile(folder: Path, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "TDXfile"
    path.write_text(text)
    return path


def file_sha256(path: Path) -> str:
    """The sha256 of a file (hex), read in 1 MiB chunks: disk images are over a GB."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_json(path):
    return json.loads(Path(path).read_text())


def installed_packages(root: Path):
    """Package name -> dpkg status, read from an image's own dpkg database."""
    status = {}
    for stanza in (root / "var/lib/dpkg/status").read_text().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in stanza.splitlines() if ": " in line and not line.startswith(" "))
        if "Package" in fields:
            status[fields["Package"]] = fields.get("Status", "")
    return status


def private_cache(folder: Path) -> Path:
    """A cache whose build results are this test's own, sharing the slow, content-addressed
    parts (build roots, mkosi's packages, toolchains, fetched files) with the run."""
    folder.mkdir(parents=True, exist_ok=True)
    for part in ("buildroots", "mkosi-packages", "toolchains", "fetch"):
        (SHARED_CACHE / part).mkdir(parents=True, exist_ok=True)
        link = folder / part
        if not link.exists():
            link.symlink_to(SHARED_CACHE / part, target_is_directory=True)
    return folder


def tree_listing(root: Path):
    """Every entry's name, type, mode, owner, mtime and content digest."""
    out = {}
    for path in sorted(root.rglob("*")):
        st = path.lstat()
        if path.is_symlink():
            content = "-> " + os.readlink(path)
        elif path.is_file():
            content = hashlib.sha256(path.read_bytes()).hexdigest()
        else:
            content = ""
        out[str(path.relative_to(root))] = (st.st_mode, st.st_uid, st.st_gid, int(st.st_mtime), content)
    return out
