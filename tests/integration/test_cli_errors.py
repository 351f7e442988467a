"""Bad input gets a clear error, exit code 1 (2 for usage), and nothing half-written."""

import os
import socket
import subprocess
import threading
from pathlib import Path

import pytest

from conftest import SHARED_CACHE, need, run_tdx, tdx_env, write_tdxfile


def build(folder, *args, expect=1, env=None):
    return run_tdx("build", "-C", folder, "--format", "directory", *args, expect=expect, env=env)


def test_syntax_error_shows_file_and_line(tmp_path):
    write_tdxfile(tmp_path, "from tdx import Image\nimage = Image('x'\nimage.install('curl')\n")
    err = build(tmp_path).stderr
    assert f"{tmp_path}/TDXfile:2: SyntaxError" in err or f"{tmp_path}/TDXfile:3: SyntaxError" in err
    assert not (tmp_path / "build").exists()


def test_runtime_error_shows_file_line_and_traceback(tmp_path):
    write_tdxfile(tmp_path, "from tdx import Image\n\nimage = Image('x')\nimage.install(undefined_name)\n")
    err = build(tmp_path).stderr
    assert f"{tmp_path}/TDXfile:4: NameError: name 'undefined_name' is not defined" in err
    assert "traceback (most recent call last)" in err


def test_sys_exit_is_honoured(tmp_path):
    write_tdxfile(tmp_path, "import sys\nfrom tdx import Image\nimage = Image('x')\nsys.exit(3)\n")
    proc = build(tmp_path, expect=3)
    assert "error" not in proc.stderr
    write_tdxfile(tmp_path, "import sys\nsys.exit()\n")
    build(tmp_path, expect=0)
    assert not (tmp_path / "build").exists()


def test_unknown_builder_did_you_mean(tmp_path):
    write_tdxfile(tmp_path, "from tdx import Image, Build\nimage = Image('x')\n"
                            "image.build(Build.scrpit(name='a', src='.', build_script='true', output='/a'))\n")
    err = build(tmp_path).stderr
    assert "TDXfile:3: unknown builder 'scrpit' (did you mean 'script'?)" in err


def test_missing_src_file(tmp_path):
    write_tdxfile(tmp_path, "from tdx import Image\nimage = Image('x')\nimage.file('/etc/app.conf', src='app.conf')\n")
    err = build(tmp_path).stderr
    assert "TDXfile:3: cannot read file source 'app.conf'" in err


def test_missing_build_src_folder(tmp_path):
    write_tdxfile(tmp_path, "from tdx import Image, Build\nimage = Image('x')\n"
                            "image.build(Build.script(name='a', src='./nope', build_script='true', output='/a'))\n")
    need("mkosi", "bwrap")
    err = build(tmp_path).stderr
    assert "TDXfile:3: build 'a': source folder" in err and "nope' does not exist" in err


def test_invalid_package_name(tmp_path):
    write_tdxfile(tmp_path, "from tdx import Image\nimage = Image('x')\nimage.install('libfoo_dev')\n")
    err = build(tmp_path).stderr
    assert "TDXfile:3: 'libfoo_dev' is not a valid Debian package name" in err


def test_duplicate_user(tmp_path):
    write_tdxfile(tmp_path, "from tdx import Image\nimage = Image('x')\nimage.user('app')\nimage.user('app')\n")
    err = build(tmp_path).stderr
    assert "TDXfile:4: user 'app' is declared twice: here and at" in err and "TDXfile:3" in err


def test_no_tdxfile(tmp_path):
    err = build(tmp_path).stderr
    assert "no TDXfile at" in err and "hint:" in err


@pytest.mark.parametrize("args", [["build", "--format", "floppy"], ["frobnicate"], [], ["build", "--no-such-flag"]])
def test_usage_errors_exit_2(tmp_path, args):
    run_tdx(*args, cwd=tmp_path, expect=2)


def test_help_teaches():
    out = run_tdx("build", "--help").stdout
    for flag in ("--emit-mkosi", "--format", "--no-cache", "--json", "--mirror"):
        assert flag in out


def test_mkosi_missing_gives_install_hint(tmp_path):
    write_tdxfile(tmp_path, "from tdx import Image\nimage = Image('x')\n")
    err = build(tmp_path, env=tdx_env(PATH=str(tmp_path / "empty-bin"))).stderr
    assert "mkosi is not installed" in err and "setup-debian.sh" in err


def test_bwrap_missing_gives_install_hint(tmp_path):
    need("mkosi")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "mkosi").symlink_to("/usr/bin/mkosi")
    write_tdxfile(tmp_path / "p", "from tdx import Image, Build\nimage = Image('x')\n"
                                  "image.build(Build.script(name='a', src='.', build_script='true', output='/a'))\n")
    err = build(tmp_path / "p", "--no-cache", env=tdx_env(PATH=str(bin_dir))).stderr
    assert "bubblewrap (bwrap) is not installed" in err and "apt-get install bubblewrap" in err


def test_failing_build_script_shows_log_tail_and_caches_nothing(tmp_path):
    need("mkosi", "bwrap")
    cache = tmp_path / "cache"
    # Reuse the shared build roots so this test does not make its own.
    cache.mkdir()
    (SHARED_CACHE / "buildroots").mkdir(parents=True, exist_ok=True)
    (cache / "buildroots").symlink_to(SHARED_CACHE / "buildroots")
    (cache / "mkosi-packages").symlink_to(SHARED_CACHE / "mkosi-packages", target_is_directory=True)
    (SHARED_CACHE / "mkosi-packages").mkdir(parents=True, exist_ok=True)
    write_tdxfile(tmp_path / "p", "from tdx import Image, Build\nimage = Image('x')\n"
                                  "image.build(Build.script(name='boom', src='.', output='/usr/bin/boom',\n"
                                  "    build_script='echo compiler exploded on line 42 >&2; exit 7'))\n")
    err = build(tmp_path / "p", env=tdx_env(TDX_CACHE_DIR=cache)).stderr
    assert "build 'boom' failed (exit 7)" in err and "compiler exploded on line 42" in err
    assert "TDXfile:3" in err
    assert not list((cache / "builds").glob("sha256-*")), "a failed build left a cache entry"
    assert not (tmp_path / "p" / "build" / "x").exists()


def test_build_has_no_network(tmp_path):
    """A build script cannot reach even a server on the host's loopback."""
    need("mkosi", "bwrap", "perl")
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(4)
    server.settimeout(0.5)
    port = server.getsockname()[1]
    connections = []
    stop = threading.Event()

    def serve():
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            connections.append(1)
            conn.close()

    thread = threading.Thread(target=serve)
    thread.start()
    try:
        probe = ("perl -MIO::Socket::INET -e "
                 "'exit(IO::Socket::INET->new(PeerAddr => \"127.0.0.1:%d\", Timeout => 3) ? 0 : 9)'" % port)
        # Control: the same probe run on the host does connect.
        assert subprocess.run(["sh", "-c", probe]).returncode == 0
        assert len(connections) == 1
        write_tdxfile(tmp_path, "from tdx import Image, Build\nimage = Image('x')\n"
                                f"image.build(Build.script(name='net', src='.', output='/n', build_script={probe!r}))\n")
        err = build(tmp_path, "--no-cache").stderr
    finally:
        stop.set()
        thread.join()
        server.close()
    assert "build 'net' failed (exit 9)" in err
    assert len(connections) == 1, "the build reached the host's loopback"
