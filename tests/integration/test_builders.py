"""Real builds with real toolchains: Go, Rust, C and script builds end up in an image and run."""

import hashlib
import json
import re
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from conftest import SHARED_CACHE, file_sha256, need, private_cache, run_tdx, tdx_env, write_tdxfile
from loopback import LoopbackServer
from toolchains import GO_PINNED, go_module_proxy, go_root, go_source_repo, go_tarball, rust_sysroot, rust_tarball

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def toolchains():
    """URLs and digests of the Go and Rust archives, served from loopback for the module."""
    need("mkosi", "bwrap")
    if go_root() is None:
        pytest.skip("no Go toolchain on this machine to package as a release tarball")
    if rust_sysroot() is None:
        pytest.skip("no Rust toolchain (rustc, cargo) on this machine to package as a release tarball")
    go, rust = go_tarball(), rust_tarball()
    with LoopbackServer() as server:
        yield {
            "go_url": server.add("/dl/" + go.name, str(go), kind="file"), "go_sha": file_sha256(go),
            "rust_url": server.add("/dist/" + rust.name, str(rust), kind="file"), "rust_sha": file_sha256(rust),
            "server": server,
        }


def project(folder: Path, tdxfile: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("go-service", "rust-hello", "c-tool"):
        shutil.copytree(DATA / name, folder / name)
    write_tdxfile(folder, tdxfile)
    return folder


FOUR = """
from tdx import Build, Image, fetch
from tdx.builders.c import CBuild
from tdx.builders.go import GoBuild
from tdx.builders.rust import RustBuild

image = Image("{name}", format="directory")
go = fetch("{go_url}", sha256="{go_sha}")
image.build(GoBuild(compiler=go, src="./go-service", output="/usr/local/bin/greeter", ldflags="-s -w"))
image.build(RustBuild(compiler=fetch("{rust_url}", sha256="{rust_sha}"), src="./rust-hello",
                      output="/usr/local/bin/rhello", features=["loud"]))
image.build(CBuild(src="./c-tool", build_script="make", artifacts={{"build/ctool": "/usr/bin/ctool"}}))
image.build(Build.script(name="notes", src="./c-tool", output="/usr/share/notes",
    build_script="mkdir -p $DESTDIR/usr/share/notes && echo scripted > $DESTDIR/usr/share/notes/README"))
"""


def in_image(root: Path, *argv):
    return subprocess.run(["bwrap", "--bind", str(root), "/", "--dev", "/dev", "--proc", "/proc", *argv],
                          capture_output=True, text=True)


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return private_cache(tmp_path_factory.mktemp("builders-cache"))


@pytest.fixture(scope="module")
def first_image(toolchains, cache, tmp_path_factory):
    folder = project(tmp_path_factory.mktemp("first") / "proj", FOUR.format(name="first", **toolchains))
    proc = run_tdx("build", "-C", folder, "--json", env=tdx_env(TDX_CACHE_DIR=cache))
    return folder, json.loads(proc.stdout), proc.stderr


def test_go_rust_c_and_script_builds_run_in_the_image(first_image):
    folder, result, progress = first_image
    root = folder / "build" / "first"
    assert in_image(root, "/usr/local/bin/greeter", "--version").stdout == "greeter 1.0 (go)\n"
    assert in_image(root, "/usr/local/bin/rhello").stdout == "HELLO FROM RUST\n"
    assert in_image(root, "/usr/bin/ctool").stdout == "ctool built at ctool.c\n"
    assert (root / "usr/share/notes/README").read_text() == "scripted\n"
    assert [b["cached"] for b in result["builds"]] == [False] * 4
    for name in ("greeter", "rhello", "ctool", "notes"):
        assert re.search(rf"\[build\] {name}: built in \d+\.\d\d s", progress), progress
    # Toolchains never reach the image.
    assert not (root / "opt/go").exists() and not (root / "opt/rust").exists()


def test_same_go_build_in_another_image_is_a_cache_hit(first_image, toolchains, cache, tmp_path):
    other = project(tmp_path / "other", FOUR.format(name="second", **toolchains))
    proc = run_tdx("build", "-C", other, "--json", env=tdx_env(TDX_CACHE_DIR=cache))
    result = json.loads(proc.stdout)
    assert [b["cached"] for b in result["builds"]] == [True] * 4
    assert "building greeter" not in proc.stderr and "greeter: cache hit" in proc.stderr
    first = first_image[0] / "build" / "first"
    second = other / "build" / "second"
    for binary in ("usr/local/bin/greeter", "usr/local/bin/rhello", "usr/bin/ctool"):
        assert (first / binary).read_bytes() == (second / binary).read_bytes(), binary
    assert result["builds"][0]["cache_key"] == first_image[1]["builds"][0]["cache_key"]


def emitted_keys(tree: Path):
    return re.findall(r"ExtraTrees=artifacts/([0-9a-f]{64}):/", (tree / "mkosi.conf").read_text())


def test_no_cache_builds_are_byte_identical(toolchains, tmp_path):
    folder = project(tmp_path / "p", FOUR.format(name="repro", **toolchains))
    trees = []
    for run in ("a", "b"):
        cache = private_cache(tmp_path / f"cache-{run}")
        run_tdx("build", "-C", folder, "--no-cache", "--emit-mkosi", tmp_path / run, env=tdx_env(TDX_CACHE_DIR=cache))
        trees.append(tmp_path / run)
    assert emitted_keys(trees[0]) == emitted_keys(trees[1])
    for binary in ("usr/local/bin/greeter", "usr/local/bin/rhello", "usr/bin/ctool"):
        a = list((trees[0] / "artifacts").glob(f"*/{binary}"))
        b = list((trees[1] / "artifacts").glob(f"*/{binary}"))
        assert len(a) == len(b) == 1 and a[0].read_bytes() == b[0].read_bytes(), binary


KEYED = """
from tdx import Build, Image
image = Image("keys", format="directory")
image.build(Build.script(name="k", src="./src", output="/k.txt", env={env!r}, build_deps={deps!r},
                         reproducible={repro!r}, build_script={script!r}))
"""
BASE = dict(env={"A": "1"}, deps=[], repro=True, script='cp in.txt "$DESTDIR/k.txt"')


def script_key(folder: Path, cache: Path, source="one\n", **changes):
    (folder / "src").mkdir(parents=True, exist_ok=True)
    (folder / "src" / "in.txt").write_text(source)
    write_tdxfile(folder, KEYED.format(**{**BASE, **changes}))
    tree = folder.parent / (folder.name + "-tree")
    run_tdx("build", "-C", folder, "--emit-mkosi", tree, env=tdx_env(TDX_CACHE_DIR=cache))
    (key,) = emitted_keys(tree)
    shutil.rmtree(tree)
    return key


def test_cache_key_table(tmp_path):
    need("mkosi", "bwrap")
    cache = private_cache(tmp_path / "cache")
    base = script_key(tmp_path / "p", cache)
    changed = {
        "source byte": dict(source="onE\n"),
        "flag (build script)": dict(script='cp -p in.txt "$DESTDIR/k.txt"'),
        "env value": dict(env={"A": "2"}),
        "build_dep": dict(deps=["make"]),
        "reproducible switch": dict(repro=False),
    }
    keys = {what: script_key(tmp_path / "p", cache, **change) for what, change in changed.items()}
    for what, key in keys.items():
        assert key != base, f"changing the {what} kept the key"
    assert len(set(keys.values())) == len(keys)
    # Renaming the checkout folder or the cache folder does not change the key.
    shutil.copytree(tmp_path / "p", tmp_path / "renamed-checkout")
    assert script_key(tmp_path / "renamed-checkout", private_cache(tmp_path / "other-cache")) == base


def test_toolchain_tarball_is_part_of_the_key(toolchains, tmp_path):
    go = go_tarball()
    variant = tmp_path / go.name
    shutil.copy(go, variant)
    import tarfile, io
    with tarfile.open(variant, "a") as tar:  # the same toolchain plus one file: another tarball
        info = tarfile.TarInfo("go/EXTRA")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
    url = toolchains["server"].add("/dl/variant/" + go.name, str(variant), kind="file")
    keys = []
    for i, (u, sha) in enumerate([(toolchains["go_url"], toolchains["go_sha"]), (url, file_sha256(variant))]):
        folder = project(tmp_path / f"p{i}", "from tdx import Image, fetch\nfrom tdx.builders.go import GoBuild\n"
                         "image = Image('tk', format='directory')\n"
                         f"image.build(GoBuild(compiler=fetch({u!r}, sha256={sha!r}), src='./go-service', output='/g'))\n")
        run_tdx("build", "-C", folder, "--emit-mkosi", tmp_path / f"t{i}",
                env=tdx_env(TDX_CACHE_DIR=private_cache(tmp_path / f"c{i}")))
        keys.append(emitted_keys(tmp_path / f"t{i}"))
    assert keys[0] != keys[1]


def test_missing_output_and_writes_outside_output_fail_clearly(tmp_path):
    need("mkosi", "bwrap")
    cache = private_cache(tmp_path / "cache")
    write_tdxfile(tmp_path / "a", "from tdx import Image, Build\nimage = Image('x')\n"
                  "image.build(Build.script(name='nothing', src='.', output='/usr/bin/nothing', build_script='echo done'))\n")
    err = run_tdx("build", "-C", tmp_path / "a", "--emit-mkosi", tmp_path / "t", expect=1,
                  env=tdx_env(TDX_CACHE_DIR=cache)).stderr
    assert "build 'nothing': the build finished but its output /usr/bin/nothing is missing" in err and "| done" in err
    write_tdxfile(tmp_path / "b", "from tdx import Image, Build\nimage = Image('x')\n"
                  "image.build(Build.script(name='sprawl', src='.', output='/usr/bin/s', build_script="
                  "'mkdir -p $DESTDIR/usr/bin $DESTDIR/etc && touch $DESTDIR/usr/bin/s $DESTDIR/etc/stray'))\n")
    err = run_tdx("build", "-C", tmp_path / "b", "--emit-mkosi", tmp_path / "t", expect=1,
                  env=tdx_env(TDX_CACHE_DIR=cache)).stderr
    assert "build 'sprawl': the build wrote outside its output /usr/bin/s:\n    /etc" in err
    assert not list((cache / "builds").glob("sha256-*"))


def test_unknown_go_version_names_known_ones_and_the_tarball_way(tmp_path):
    write_tdxfile(tmp_path, "from tdx import Image\nfrom tdx.builders.go import GoBuild\nimage = Image('x')\n"
                  "image.build(GoBuild(version='1.19.1', src='.', output='/g'))\n")
    err = run_tdx("build", "-C", tmp_path, "--emit-mkosi", tmp_path / "t", expect=1).stderr
    assert "TDXfile:4: invalid go build 'g'" in err and "Go 1.19.1 is not a release this plugin knows" in err
    assert "1.22.5" in err and "compiler=fetch(url, sha256=...)" in err


@pytest.mark.slow
def test_go_from_source_builds_go_then_a_program_with_it(tmp_path):
    """Go 1.22.5's source, committed to a local git repository (by the audited-build example's
    script, from the release zip in the local module cache), fetched with fetch_git, compiled by
    make.bash with the pinned 1.22.5 release as bootstrap; then the service is built with that Go.
    The shared build cache keeps the toolchain for examples/audited-build, whose key is the same."""
    need("mkosi", "bwrap", "git")
    repo = go_source_repo()
    tree = run_tdx("fetch", "--hash", repo).stdout.splitlines()[-1]
    folder = project(tmp_path / "p", f"""
from tdx import Image, fetch_git
from tdx.builders.go import GoBuild, GoFromSource

image = Image("from-source", format="directory")
go = GoFromSource(
    version="{GO_PINNED}",
    source=fetch_git("{repo.as_uri()}", tag="go{GO_PINNED}", sha256="{tree}"),
    bootstrap_version="{GO_PINNED}",
)
image.build(GoBuild(compiler=go, src="./go-service", output="/usr/local/bin/greeter"))
""")
    with go_module_proxy() as proxy:
        proc = run_tdx("build", "-C", folder, "--json", env=tdx_env(GOPROXY=proxy.url("")), timeout=1800)
    result = json.loads(proc.stdout)
    assert [b["name"] for b in result["builds"]] == [f"go{GO_PINNED}-from-source", "greeter"]
    image = folder / "build" / "from-source"
    assert in_image(image, "/usr/local/bin/greeter", "--version").stdout == "greeter 1.0 (go)\n"
    assert not (image / "opt" / "tdx-toolchains").exists(), "the compiler built from source reached the image"
    # The program was linked by the source-built toolchain, whose build is cached.
    entry = SHARED_CACHE / "builds" / result["builds"][0]["cache_key"]
    built_go = entry / "artifacts/opt/tdx-toolchains" / f"go{GO_PINNED}" / "bin" / "go"
    version = subprocess.run([str(built_go), "version"], capture_output=True, text=True).stdout
    assert version.startswith(f"go version go{GO_PINNED} linux/amd64"), version


def test_dotnet_end_to_end(tmp_path):
    dotnet = shutil.which("dotnet")
    if dotnet is None:
        pytest.skip("no .NET SDK on this machine: Debian 12 packages none and only package registries are "
                    "reachable here, so there is no SDK to package as a release tarball (the plugin's commands "
                    "are covered by the unit tests)")
    need("mkosi", "bwrap")
    sdk_root = Path(dotnet).resolve().parent
    tarball = tmp_path / "dotnet-sdk-linux-x64.tar"
    import tarfile
    with tarfile.open(tarball, "w") as tar:
        for entry in sdk_root.iterdir():
            tar.add(entry, arcname=entry.name)
    app = tmp_path / "p" / "app"
    app.mkdir(parents=True)
    (app / "app.csproj").write_text('<Project Sdk="Microsoft.NET.Sdk"><PropertyGroup><OutputType>Exe</OutputType>'
                                    '<TargetFramework>net8.0</TargetFramework></PropertyGroup></Project>\n')
    (app / "Program.cs").write_text('System.Console.WriteLine("hello from dotnet");\n')
    with LoopbackServer() as server:
        url = server.add("/" + tarball.name, str(tarball), kind="file")
        write_tdxfile(tmp_path / "p", "from tdx import Image, fetch\nfrom tdx.builders.dotnet import DotnetBuild\n"
                      "image = Image('dn', format='directory')\n"
                      f"image.build(DotnetBuild(compiler=fetch({url!r}, sha256={file_sha256(tarball)!r}), src='./app',"
                      " output='/opt/app/', self_contained=True))\n")
        run_tdx("build", "-C", tmp_path / "p", env=tdx_env(TDX_CACHE_DIR=private_cache(tmp_path / "c")))
    assert in_image(tmp_path / "p" / "build" / "dn", "/opt/app/app").stdout == "hello from dotnet\n"


def test_go_pinned_release_from_a_module_proxy(tmp_path):
    """Way 1: GoBuild(version=...) fetches the release's golang.org/toolchain zip from the Go module
    proxy named by GOPROXY and checks it against the digest the plugin carries. The test serves the
    real zip from this machine's Go module cache on loopback; nothing is downloaded."""
    need("mkosi", "bwrap")
    with go_module_proxy("1.22.5") as proxy:
        folder = project(tmp_path / "p", "from tdx import Image\nfrom tdx.builders.go import GoBuild\n"
                         "image = Image('pinned', format='directory')\n"
                         "image.build(GoBuild(version='1.22.5', src='./go-service', output='/usr/bin/greeter'))\n")
        cache = private_cache(tmp_path / "cache")
        (cache / "fetch").unlink()  # its own fetch and toolchain caches: the zip must come through the proxy
        (cache / "toolchains").unlink()
        # Credentials in the proxy URL are sent, but never shown nor written into tdx.lock.
        with_credentials = proxy.url('').replace("http://", "http://proxy-user:proxy-pass@", 1)
        env = tdx_env(TDX_CACHE_DIR=cache, GOPROXY=f"{with_credentials},direct")
        proc = run_tdx("build", "-C", folder, "--emit-mkosi", tmp_path / "tree", env=env)
        assert proxy.requests == ["/golang.org/toolchain/@v/v0.0.1-go1.22.5.linux-amd64.zip"]
        run_tdx("lock", "-C", folder, env=env)
    lock = (folder / "tdx.lock").read_text()
    assert "v0.0.1-go1.22.5.linux-amd64.zip" in lock and "***@" in lock
    assert "proxy-pass" not in lock + proc.stdout + proc.stderr
    (greeter,) = (tmp_path / "tree" / "artifacts").glob("*/usr/bin/greeter")
    assert subprocess.run([str(greeter), "--version"], capture_output=True, text=True).stdout == "greeter 1.0 (go)\n"
    assert b"go1.22.5" in greeter.read_bytes()
    assert "fetching toolchain" in proc.stderr


def test_lock_of_a_pinned_toolchain_holds_through_another_proxy(tmp_path):
    """A release a builder pins is fixed by its digest; the proxy it comes through is only this
    machine's setting. A tdx.lock written through one proxy lets `--frozen` build through another,
    and stays as it was."""
    need("mkosi", "bwrap")
    zip_path = "/golang.org/toolchain/@v/v0.0.1-go1.22.5.linux-amd64.zip"
    folder = project(tmp_path / "p", "from tdx import Image\nfrom tdx.builders.go import GoBuild\n"
                     "image = Image('pinned', format='directory')\n"
                     "image.build(GoBuild(version='1.22.5', src='./go-service', output='/usr/bin/greeter'))\n")
    with go_module_proxy("1.22.5") as first, go_module_proxy("1.22.5") as second:
        assert first.url("") != second.url("")
        run_tdx("lock", "-C", folder, env=tdx_env(GOPROXY=first.url("")))
        locked = (folder / "tdx.lock").read_text()
        assert first.url(zip_path) in locked
        cache = private_cache(tmp_path / "cache")
        (cache / "fetch").unlink()  # nothing cached: the zip must come through the second proxy
        (cache / "toolchains").unlink()
        run_tdx("build", "-C", folder, "--frozen", "--emit-mkosi", tmp_path / "tree",
                env=tdx_env(TDX_CACHE_DIR=cache, GOPROXY=second.url("")))
        assert second.requests == [zip_path] and first.requests == []
    assert (folder / "tdx.lock").read_text() == locked
    # Other bytes under the same name are still refused: the digest is the plugin's, not the lock's.
    with LoopbackServer() as other:
        other.add(zip_path, b"PK\x03\x04 not the release")
        cache = private_cache(tmp_path / "cache2")
        (cache / "fetch").unlink()
        (cache / "toolchains").unlink()
        proc = run_tdx("build", "-C", folder, "--frozen", "--emit-mkosi", tmp_path / "tree2",
                       env=tdx_env(TDX_CACHE_DIR=cache, GOPROXY=other.url("")), expect=None)
        assert proc.returncode != 0 and "sha256 mismatch" in proc.stderr


def test_go_pinned_release_with_wrong_bytes_is_refused(tmp_path):
    need("mkosi", "bwrap")
    with LoopbackServer() as proxy:
        proxy.add("/golang.org/toolchain/@v/v0.0.1-go1.23.4.linux-amd64.zip", b"PK\x03\x04 not the release")
        write_tdxfile(tmp_path, "from tdx import Image\nfrom tdx.builders.go import GoBuild\nimage = Image('x')\n"
                      "image.build(GoBuild(version='1.23.4', src='.', output='/g'))\n")
        cache = private_cache(tmp_path / "cache")
        (cache / "fetch").unlink()
        err = run_tdx("build", "-C", tmp_path, "--emit-mkosi", tmp_path / "t", expect=1,
                      env=tdx_env(TDX_CACHE_DIR=cache, GOPROXY=proxy.url(""))).stderr
    assert "sha256 mismatch" in err and "e1e33fbe9bdeed9d1eec878f90eaf9a1dc856b9197d89e6745373b8c61a57c87" in err
    assert not (cache / "fetch").exists() or not list((cache / "fetch").iterdir())


RUST_PINNED, RUST_OFFICIAL_SHA256 = "1.95.0", "a47ac940abd12399d59ad15c877e7113fa35f2b9ec7e6a8a045d4fd8b9741dea"
DOTNET_OFFICIAL_SHA512 = ("f78dbac30c9af2230d67ff5c224de3a5dbf63f8a78d1c206594dedb80e6909d2"
                          "cc8a9d865d5105c72c2fd2aa266fc0c6c77dedac60408cbccf272b116bd11b07")


def own_fetch_cache(folder: Path) -> Path:
    """A private cache whose fetch and toolchain caches are its own too (empty), so a refused
    download can be seen to leave nothing behind."""
    cache = private_cache(folder)
    (cache / "fetch").unlink()
    (cache / "toolchains").unlink()
    return cache


def cached_files(cache: Path):
    """What the fetch cache holds, and the unpacked toolchains (their lock files aside)."""
    fetched = sorted(str(p.relative_to(cache)) for p in (cache / "fetch").rglob("*")) if (cache / "fetch").exists() else []
    trees = sorted(p.name for p in (cache / "toolchains").iterdir() if p.name != ".locks") \
        if (cache / "toolchains").exists() else []
    return fetched + trees


def test_rust_pinned_release_is_checked_against_the_official_digest(tmp_path):
    """RustBuild(toolchain="1.95.0") downloads rust-1.95.0-x86_64-unknown-linux-gnu.tar.gz from the
    distribution server in TDX_RUST_DIST_SERVER and checks it against the official sha256 the plugin
    carries. Official bytes cannot be reached here, so the loopback server serves a tarball packed from
    this machine's toolchain at the official path: the build must refuse it and cache nothing. (The
    positive path through a fetched tarball is test_go_rust_c_and_script_builds_run_in_the_image.)"""
    need("mkosi", "bwrap")
    if rust_sysroot() is None:
        pytest.skip("no Rust toolchain (rustc, cargo) on this machine to package as a release tarball")
    tarball = rust_tarball()
    official_path = f"/dist/rust-{RUST_PINNED}-x86_64-unknown-linux-gnu.tar.gz"
    folder = project(tmp_path / "p", "from tdx import Image\nfrom tdx.builders.rust import RustBuild\n"
                     "image = Image('pinned-rust', format='directory')\n"
                     f"image.build(RustBuild(toolchain='{RUST_PINNED}', src='./rust-hello', output='/usr/bin/rhello'))\n")
    cache = own_fetch_cache(tmp_path / "cache")
    with LoopbackServer() as server:
        url = server.add(official_path, str(tarball), kind="file")
        err = run_tdx("build", "-C", folder, "--emit-mkosi", tmp_path / "tree", expect=1,
                      env=tdx_env(TDX_CACHE_DIR=cache, TDX_RUST_DIST_SERVER=server.url("/"),
                                  RUSTUP_DIST_SERVER=None)).stderr
        assert server.requests == [official_path]
    assert f"sha256 mismatch for {url}" in err and f"expected {RUST_OFFICIAL_SHA256}" in err, err
    assert f"actual   {file_sha256(tarball)}" in err and "which the builder plugin pins" in err, err
    assert cached_files(cache) == []

    # rustup's own variable names a mirror too; with neither set, the error says what to set.
    err = run_tdx("build", "-C", folder, "--emit-mkosi", tmp_path / "tree", expect=1,
                  env=tdx_env(TDX_CACHE_DIR=cache, TDX_RUST_DIST_SERVER=None, RUSTUP_DIST_SERVER=None)).stderr
    assert f"toolchain sha256:{RUST_OFFICIAL_SHA256} is not in the fetch cache and has no URL" in err, err
    assert "hint: set TDX_RUST_DIST_SERVER (or rustup's RUSTUP_DIST_SERVER)" in err, err
    assert cached_files(cache) == []


def test_unknown_rust_version_names_known_ones_and_the_tarball_way(tmp_path):
    write_tdxfile(tmp_path, "from tdx import Image\nfrom tdx.builders.rust import RustBuild\nimage = Image('x')\n"
                  "image.build(RustBuild(toolchain='1.83.0', src='.', output='/r'))\n")
    err = run_tdx("build", "-C", tmp_path, "--emit-mkosi", tmp_path / "t", expect=1).stderr
    assert "TDXfile:4: invalid rust build 'r'" in err and "Rust 1.83.0 is not a release this plugin knows" in err
    assert "1.72.1, 1.77.1, 1.81.0, 1.95.0" in err and "compiler=fetch(url, sha256=...)" in err


def test_dotnet_pinned_sdk_is_checked_against_the_official_sha512(tmp_path):
    """DotnetBuild(sdk_version="10.0") downloads the 10.0.100 SDK tarball from TDX_DOTNET_DIST_SERVER
    and checks it against the official SHA-512 (Microsoft publishes no SHA-256 for it). The loopback
    server serves other bytes at the official path: refused, naming both digests, nothing cached."""
    need("mkosi", "bwrap")
    sdk = tmp_path / "sdk"
    sdk.mkdir()
    (sdk / "dotnet").write_text("#!/bin/sh\necho 'not the official SDK'\n")
    tarball = tmp_path / "not-the-sdk.tar"
    with tarfile.open(tarball, "w") as tar:
        tar.add(sdk / "dotnet", arcname="dotnet")
    official_path = "/dotnet/Sdk/10.0.100/dotnet-sdk-10.0.100-linux-x64.tar.gz"
    app = tmp_path / "p" / "app"
    app.mkdir(parents=True)
    write_tdxfile(tmp_path / "p", "from tdx import Image\nfrom tdx.builders.dotnet import DotnetBuild\n"
                  "image = Image('pinned-dotnet', format='directory')\n"
                  "image.build(DotnetBuild(sdk_version='10.0', src='./app', output='/opt/app/'))\n")
    cache = own_fetch_cache(tmp_path / "cache")
    with LoopbackServer() as server:
        url = server.add(official_path, tarball.read_bytes())
        err = run_tdx("build", "-C", tmp_path / "p", "--emit-mkosi", tmp_path / "tree", expect=1,
                      env=tdx_env(TDX_CACHE_DIR=cache, TDX_DOTNET_DIST_SERVER=server.url(""))).stderr
        assert server.requests == [official_path]
    served = hashlib.sha512(tarball.read_bytes()).hexdigest()
    assert f"sha512 mismatch for {url}" in err and f"expected {DOTNET_OFFICIAL_SHA512}" in err, err
    assert f"actual   {served}" in err, err
    assert cached_files(cache) == []

    err = run_tdx("build", "-C", tmp_path / "p", "--emit-mkosi", tmp_path / "tree", expect=1,
                  env=tdx_env(TDX_CACHE_DIR=cache, TDX_DOTNET_DIST_SERVER=None)).stderr
    assert f"toolchain sha512:{DOTNET_OFFICIAL_SHA512} is not in the fetch cache and has no URL" in err, err
    assert "hint: set TDX_DOTNET_DIST_SERVER to your .NET download server or mirror" in err, err
    assert cached_files(cache) == []
