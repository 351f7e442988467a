#!/usr/bin/env python3
"""Make ./go-source: a git repository holding Go 1.22.5's source, tagged go1.22.5, for the
TDXfile's fetch_git().

The files are those of the Go release's golang.org/toolchain module (what Go's toolchain
switching downloads), without its prebuilt bin/ and pkg/: `go mod download` takes the zip from
your Go module proxy (GOPROXY) and checks it against the Go checksum database. The commit is made
with fixed names, dates and git settings, so the repository, its commit id and its tree hash are
the same wherever it is made.

    python3 make-go-source.py [DEST]        (DEST defaults to ./go-source beside this script)
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

VERSION = "1.22.5"
MODULE = f"golang.org/toolchain@v0.0.1-go{VERSION}.linux-amd64"
PREBUILT = ("bin/", "pkg/")


def release_zip() -> Path:
    proc = subprocess.run(["go", "mod", "download", "-json", MODULE], capture_output=True, text=True)
    info = json.loads(proc.stdout or "{}")
    if proc.returncode != 0 or "Zip" not in info:
        sys.exit(f"make-go-source: `go mod download {MODULE}` failed: {info.get('Error') or proc.stderr.strip()}\n"
                 "  hint: set GOPROXY to a Go module proxy you can reach (`go env GOPROXY` shows the current one)")
    return Path(info["Zip"])


def extract(zip_path: Path, dest: Path) -> str:
    """The release's source files with their modes; returns the time line of its VERSION file."""
    prefix = MODULE + "/"
    with zipfile.ZipFile(zip_path) as z:
        for info in z.infolist():
            rel = info.filename[len(prefix):] if info.filename.startswith(prefix) else None
            if not rel or rel.endswith("/") or rel.startswith(PREBUILT):
                continue
            target = dest / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            with z.open(info) as src, open(target, "wb") as out:
                shutil.copyfileobj(src, out)
            target.chmod(0o755 if (info.external_attr >> 16) & 0o111 else 0o644)
    lines = (dest / "VERSION").read_text().splitlines()
    if lines[0] != f"go{VERSION}":
        sys.exit(f"make-go-source: {zip_path} holds {lines[0]}, not go{VERSION}")
    return next((line.split(" ", 1)[1] for line in lines[1:] if line.startswith("time ")), "2000-01-01T00:00:00Z")


def commit(repo: Path, when: str):
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(repo), "GIT_CONFIG_NOSYSTEM": "1",
           "GIT_CONFIG_GLOBAL": os.devnull, "GIT_AUTHOR_NAME": "Go release", "GIT_AUTHOR_EMAIL": "go@example.invalid",
           "GIT_COMMITTER_NAME": "Go release", "GIT_COMMITTER_EMAIL": "go@example.invalid",
           "GIT_AUTHOR_DATE": when, "GIT_COMMITTER_DATE": when}
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", f"go{VERSION} source"],
                 ["tag", f"go{VERSION}"]):
        subprocess.run(["git", "-C", str(repo), "-c", "core.autocrlf=false", *args], env=env, check=True)


def main():
    dest = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).resolve().parent / "go-source").absolute()
    if dest.exists():
        sys.exit(f"make-go-source: {dest} already exists; remove it to make it again")
    dest.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".go-source-", dir=dest.parent))
    try:
        commit(work, extract(release_zip(), work))
        work.rename(dest)  # whole or not at all
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"{dest}: go{VERSION}'s source, tagged go{VERSION}")


if __name__ == "__main__":
    main()
