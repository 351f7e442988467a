"""Real parts for the verified-inputs tests: loopback servers (static HTTP, git daemon, git smart
HTTP), git repositories made with the git CLI, module packages installed by real pip into a
virtualenv, and an independent implementation of Go's dirhash Hash1 to check tdx against.

Everything listens on 127.0.0.1 only; nothing here reaches another host.
"""

import base64
import csv
import hashlib
import http.server
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from functools import partial
from pathlib import Path

import pytest

SYSTEM_PYTHON = "/usr/bin/python3"


# --- Go's dirhash Hash1, written from its published definition ----------------------------------
# summary = "".join(f"{sha256(file).hexdigest()}  {name}\n" for name in sorted(names))
# h1 = "h1:" + base64(sha256(summary)); names are '/'-separated and sorted bytewise.

def hash1(entries):
    """entries: {name: bytes}. Returns the raw 32-byte digest."""
    summary = b""
    for name in sorted(entries, key=lambda n: n.encode()):
        summary += hashlib.sha256(entries[name]).hexdigest().encode() + b"  " + name.encode() + b"\n"
    return hashlib.sha256(summary).digest()


def h1(digest):
    return "h1:" + base64.b64encode(digest).decode()


def sha(digest):
    return "sha256:" + digest.hex()


def tree_entries(root, module_source=False):
    """The files tdx's README says a tree hash covers; a symlink's bytes are its target text."""
    root = Path(root)
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = Path(dirpath).relative_to(root)
        depth0 = rel_dir == Path(".")
        keep = []
        for d in dirnames:
            full = Path(dirpath, d)
            if full.is_symlink():
                filenames.append(d)  # not followed: listed as a symlink
                continue
            if d == ".git":
                continue
            if module_source and (d == "__pycache__" or (depth0 and (d in ("build", "dist") or d.endswith(".egg-info")))):
                continue
            keep.append(d)
        dirnames[:] = keep
        for f in filenames:
            if f == ".git" or (module_source and f.endswith(".pyc")):
                continue
            full = Path(dirpath, f)
            name = (rel_dir / f).as_posix()
            out[name] = os.readlink(full).encode() if full.is_symlink() else full.read_bytes()
    return out


def tree_hash(root, module_source=False):
    return hash1(tree_entries(root, module_source))


def record_payload_hash(dist_info):
    """Integrity of an installed distribution as the README defines it, from its RECORD."""
    dist_info = Path(dist_info)
    site = dist_info.parent
    entries = {}
    with open(dist_info / "RECORD", newline="") as f:
        for row in csv.reader(f):
            name = row[0]
            parts = name.split("/")
            if name.startswith("/") or parts[0] == ".." or parts[0].endswith(".dist-info"):
                continue
            if "__pycache__" in parts or name.endswith(".pyc"):
                continue
            p = site / name
            entries[name] = os.readlink(p).encode() if p.is_symlink() else p.read_bytes()
    return hash1(entries)


# --- snapshots: "the cache and the lockfile stay as they were" ----------------------------------

def snapshot(*paths):
    """Every file below `paths` with its bytes (symlinks as their target), and every folder."""
    out = {}
    for top in map(Path, paths):
        if not top.exists() and not top.is_symlink():
            out[str(top)] = None
            continue
        if top.is_file():
            out[str(top)] = top.read_bytes()
            continue
        for dirpath, dirnames, filenames in os.walk(top):
            out[dirpath] = "dir"
            for f in filenames:
                p = Path(dirpath, f)
                out[str(p)] = ("link:" + os.readlink(p)) if p.is_symlink() else p.read_bytes()
    return out


# --- loopback servers ---------------------------------------------------------------------------

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port, proc=None, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port}")


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


class StaticServer:
    """Serves a folder over HTTP on 127.0.0.1 (a thread of the test process)."""

    def __init__(self, folder):
        self.folder = Path(folder)
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(_Quiet, directory=str(folder)))
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


class GitDaemon:
    """`git daemon` exporting every repository below `base` on 127.0.0.1."""

    def __init__(self, base):
        if shutil.which("git") is None:
            pytest.skip("git is not installed (scripts/setup-debian.sh installs it)")
        self.port = free_port()
        self.proc = subprocess.Popen(
            ["git", "daemon", "--reuseaddr", "--export-all", f"--base-path={base}", "--listen=127.0.0.1",
             f"--port={self.port}", str(base)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=git_env())
        try:
            wait_for_port(self.port, self.proc)
        except RuntimeError as e:
            self.close()
            pytest.skip(f"git daemon does not start here: {e}")
        self.url = f"git://127.0.0.1:{self.port}"

    def close(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)


class _GitHttpBackend(http.server.BaseHTTPRequestHandler):
    """Git's smart HTTP protocol: each request runs `git http-backend` as a CGI program."""

    root = ""

    def log_message(self, *args):
        pass

    def _body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            data = b""
            while True:
                size = int(self.rfile.readline().strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    return data
                data += self.rfile.read(size)
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _cgi(self):
        path, _, query = self.path.partition("?")
        body = self._body()
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "GIT_PROJECT_ROOT": self.root, "GIT_HTTP_EXPORT_ALL": "1",
               "PATH_INFO": path, "QUERY_STRING": query, "REQUEST_METHOD": self.command, "REMOTE_ADDR": "127.0.0.1",
               "CONTENT_TYPE": self.headers.get("Content-Type", ""), "CONTENT_LENGTH": str(len(body)),
               "GIT_CONFIG_NOSYSTEM": "1", "HOME": self.root}
        if self.headers.get("Content-Encoding"):
            env["HTTP_CONTENT_ENCODING"] = self.headers["Content-Encoding"]
        if self.headers.get("Git-Protocol"):
            env["GIT_PROTOCOL"] = self.headers["Git-Protocol"]
        out = subprocess.run(["git", "http-backend"], input=body, env=env, capture_output=True).stdout
        sep = b"\r\n\r\n" if b"\r\n\r\n" in out else b"\n\n"
        head, _, payload = out.partition(sep)
        status, headers = 200, []
        for line in head.decode("latin-1").splitlines():
            key, _, value = line.partition(":")
            if key.lower() == "status":
                status = int(value.strip().split()[0])
            elif key:
                headers.append((key, value.strip()))
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = _cgi
    do_POST = _cgi


class GitHttpServer:
    def __init__(self, base):
        handler = type("Handler", (_GitHttpBackend,), {"root": str(base)})
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


# --- git repositories ---------------------------------------------------------------------------

def git_env(home=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL=os.devnull, GIT_AUTHOR_NAME="Test", GIT_AUTHOR_EMAIL="t@example.invalid",
               GIT_COMMITTER_NAME="Test", GIT_COMMITTER_EMAIL="t@example.invalid",
               GIT_AUTHOR_DATE="2024-01-01T00:00:00Z", GIT_COMMITTER_DATE="2024-01-01T00:00:00Z")
    if home:
        env["HOME"] = str(home)
    return env


def git(repo, *args):
    proc = subprocess.run(["git", "-C", str(repo), *args], env=git_env(), capture_output=True, text=True)
    if proc.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed:\n{proc.stderr}")
    return proc.stdout.strip()


def make_repo(path, files):
    """A repository whose first commit holds `files` ({name: bytes | ("link", target) | ("exec", bytes)})."""
    if shutil.which("git") is None:
        pytest.skip("git is not installed (scripts/setup-debian.sh installs it)")
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    write_files(path, files)
    git(path, "init", "-q", "-b", "main")
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", "first")
    return path


def write_files(root, files):
    for name, content in files.items():
        p = Path(root, name)
        p.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, tuple) and content[0] == "link":
            if p.is_symlink() or p.exists():
                p.unlink()
            p.symlink_to(content[1])
        elif isinstance(content, tuple) and content[0] == "exec":
            p.write_bytes(content[1])
            p.chmod(0o755)
        else:
            p.write_bytes(content if isinstance(content, bytes) else content.encode())


# --- module packages and pip --------------------------------------------------------------------

def module_source(folder, name, version, *, form="function", data=True, package_data=True):
    """A tdx module package (pyproject + package + a data file) written into `folder`."""
    folder = Path(folder)
    package = name.replace("-", "_")
    # What an earlier install built here (setuptools copies into build/ only files it thinks newer)
    # must not reach the next wheel: rewriting a module starts from its sources alone.
    for stale in [folder / "build", *folder.glob("*.egg-info")]:
        shutil.rmtree(stale, ignore_errors=True)
    (folder / package / "data").mkdir(parents=True, exist_ok=True)
    pkg_data = f'\n[tool.setuptools.package-data]\n{package} = ["data/*"]\n' if package_data else ""
    (folder / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["setuptools>=61"]\nbuild-backend = "setuptools.build_meta"\n\n'
        f'[project]\nname = "{name}"\nversion = "{version}"\ndependencies = ["tdx-vm-sdk"]\n\n'
        f'[tool.setuptools]\npackages = ["{package}"]\n{pkg_data}')
    if data:
        (folder / package / "data" / "motd").write_text(f"{name} {version}\n")
        (folder / package / "data" / "notes.txt").write_text("bundled, not used by apply()\n")
    if form == "function":
        code = ("from importlib.resources import files\n\n\ndef apply(image):\n"
                f"    image.file('/etc/{name}', src=str(files('{package}').joinpath('data', 'motd')))\n")
    else:
        code = ("class Module:\n    def setup(self, image):\n        image.install('curl')\n\n"
                "    def install(self, image, *, name='x'):\n        image.user(name, system=True)\n\n"
                "    def apply(self, image, **kw):\n        self.setup(image)\n        self.install(image, **kw)\n")
    (folder / package / "__init__.py").write_text(code)
    return folder


def pip_env():
    """pip with no configuration of the machine: no index, no find-links, nothing but what a test gives."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env.update(PIP_CONFIG_FILE=os.devnull, PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1",
               no_proxy="127.0.0.1,localhost", NO_PROXY="127.0.0.1,localhost")
    env.update(git_env())
    return env


def need_pip_tooling():
    probe = subprocess.run([SYSTEM_PYTHON, "-c", "import setuptools, wheel, venv, pip"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip("pip, setuptools, wheel or venv is missing for /usr/bin/python3 "
                    "(scripts/setup-debian.sh installs python3-pip python3-setuptools python3-wheel python3-venv)")


class Venv:
    """A virtualenv that sees the system's packages (setuptools, wheel) and pip; tdx uses it via VIRTUAL_ENV."""

    def __init__(self, path):
        need_pip_tooling()
        self.path = Path(path)
        subprocess.run([SYSTEM_PYTHON, "-m", "venv", "--without-pip", "--system-site-packages", str(self.path)], check=True)
        self.python = self.path / "bin" / "python"
        (self.site,) = self.path.glob("lib/python3*/site-packages")

    def pip(self, *args):
        proc = subprocess.run([str(self.python), "-m", "pip", *map(str, args)], env=pip_env(), capture_output=True, text=True)
        if proc.returncode != 0:
            raise AssertionError(f"pip {' '.join(map(str, args))} failed:\n{proc.stdout}\n{proc.stderr}")
        return proc

    def install(self, *args):
        return self.pip("install", "--no-deps", "--no-build-isolation", *args)

    def dist_info(self, name):
        (found,) = self.site.glob(name.replace("-", "_") + "-*.dist-info")
        return found


def build_wheel(source, out_dir):
    subprocess.run([SYSTEM_PYTHON, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q",
                    "-w", str(Path(out_dir).resolve()), str(Path(source).resolve())], env=pip_env(), check=True,
                   capture_output=True)
    (wheel,) = Path(out_dir).glob("*.whl")
    return wheel


def simple_index(root, wheels):
    """A PEP 503 simple index in `root` for the given wheels: root/simple/<project>/index.html."""
    root = Path(root)
    files = root / "files"
    files.mkdir(parents=True, exist_ok=True)
    projects = {}
    for w in wheels:
        shutil.copy(w, files / w.name)
        project = w.name.split("-")[0].replace("_", "-").lower()
        projects.setdefault(project, []).append(w.name)
    (root / "simple").mkdir(exist_ok=True)
    (root / "simple" / "index.html").write_text(
        "<!DOCTYPE html><html><body>" + "".join(f'<a href="{p}/">{p}</a>' for p in sorted(projects)) + "</body></html>")
    for project, names in projects.items():
        (root / "simple" / project).mkdir(exist_ok=True)
        links = "".join(f'<a href="../../files/{n}#sha256={hashlib.sha256((files / n).read_bytes()).hexdigest()}">{n}</a>'
                        for n in names)
        (root / "simple" / project / "index.html").write_text(f"<!DOCTYPE html><html><body>{links}</body></html>")
    return root
