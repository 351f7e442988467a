"""tdx.lock: modules installed by real pip from a path, a git repository (over `git daemon`), an
editable checkout and a local package index on 127.0.0.1, plus uninstalled modules/*/ folders
and fetch()es from a loopback HTTP server; tdx lock, tdx build (adds entries) and --frozen."""

import hashlib
import os
import re
import shutil
import tomllib
from pathlib import Path

import pytest

from conftest import run_tdx, tdx_env, write_tdxfile
from inputs_support import (GitDaemon, StaticServer, Venv, build_wheel, git, make_repo, module_source,
                            record_payload_hash, sha, simple_index, snapshot, tree_hash)

HERE = Path(__file__).parent
GOLDEN = HERE / "golden" / "lockfile-v1"  # one folder per lockfile schema version

WORLD_TDXFILE = """\
import json  # the standard library is not locked
from tdx import Image
import tdx_alpha, tdx_beta, tdx_gamma, tdx_delta, tdx_epsilon
try:
    import yaml  # the OS's python3-yaml, if present: pinned by apt, not by tdx.lock
except ImportError:
    pass

image = Image("world")
tdx_alpha.apply(image)
tdx_beta.Module().apply(image)
tdx_gamma.apply(image)
tdx_delta.apply(image)
tdx_epsilon.apply(image)
"""


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """One virtualenv holding a module from each source kind, and a project that imports them all."""
    root = tmp_path_factory.mktemp("world")
    venv = Venv(root / "venv")
    # path
    venv.install("--no-index", module_source(root / "src" / "alpha", "tdx-alpha", "1.0.0"))
    # git, served by git daemon on loopback
    beta = module_source(root / "repos" / "beta.git", "tdx-beta", "2.0.0", form="class")
    make_repo(beta, {})
    git(beta, "tag", "-a", "v2.0.0", "-m", "2.0.0")
    daemon = GitDaemon(root / "repos")
    try:
        venv.install("--no-index", f"git+{daemon.url}/beta.git@v2.0.0")
    finally:
        daemon.close()
    # a local package index (PEP 503) served by http.server on loopback
    wheel = build_wheel(module_source(root / "src" / "gamma", "tdx-gamma", "3.0.0"), root / "wheels")
    index = StaticServer(simple_index(root / "index", [wheel]))
    try:
        venv.install("--index-url", f"{index.url}/simple", "tdx-gamma==3.0.0")
    finally:
        index.close()
    # editable
    venv.install("--no-index", "-e", module_source(root / "src" / "epsilon", "tdx-epsilon", "5.0.0"))
    # a local module, not installed
    project = root / "project"
    module_source(project / "modules" / "delta", "tdx-delta", "4.0.0")
    write_tdxfile(project, WORLD_TDXFILE)
    return {"root": root, "venv": venv, "project": project, "beta": beta, "daemon_url": daemon.url}


def venv_env(venv, cache, **extra):
    return tdx_env(VIRTUAL_ENV=venv.path, TDX_CACHE_DIR=cache, **extra)


def lock(project, env, *args, expect=0):
    return run_tdx("lock", "-C", project, *args, env=env, expect=expect)


def build(project, env, *args, expect=0, out=None):
    return run_tdx("build", "-C", project, "--emit-mkosi", out or (project.parent / "tree"), *args, env=env, expect=expect)


def read_lock(project):
    return tomllib.loads((project / "tdx.lock").read_text())


def test_each_source_is_recorded_from_real_metadata(world, tmp_path):
    venv, project = world["venv"], world["project"]
    lock(project, venv_env(venv, tmp_path / "cache"))
    data = read_lock(project)
    assert data["version"] == 1 and "fetch" not in data
    modules = {m["name"]: m for m in data["module"]}
    assert list(modules) == ["tdx-alpha", "tdx-beta", "tdx-delta", "tdx-epsilon", "tdx-gamma"]  # sorted; no yaml
    assert modules["tdx-alpha"] == {
        "name": "tdx-alpha", "version": "1.0.0", "source": "path", "path": str(world["root"] / "src" / "alpha"),
        "integrity": sha(record_payload_hash(venv.dist_info("tdx-alpha")))}
    assert modules["tdx-beta"] == {
        "name": "tdx-beta", "version": "2.0.0", "source": "git", "git": f"{world['daemon_url']}/beta.git",
        "resolved_rev": git(world["beta"], "rev-parse", "v2.0.0^{commit}"),
        "integrity": sha(record_payload_hash(venv.dist_info("tdx-beta")))}
    assert modules["tdx-gamma"] == {
        "name": "tdx-gamma", "version": "3.0.0", "source": "pypi",
        "integrity": sha(record_payload_hash(venv.dist_info("tdx-gamma")))}
    assert modules["tdx-delta"] == {
        "name": "tdx-delta", "version": "4.0.0", "source": "path", "path": "modules/delta",
        "integrity": sha(tree_hash(project / "modules" / "delta", module_source=True))}
    assert modules["tdx-epsilon"] == {
        "name": "tdx-epsilon", "version": "5.0.0", "source": "path", "path": str(world["root"] / "src" / "epsilon"),
        "integrity": sha(tree_hash(world["root"] / "src" / "epsilon", module_source=True))}
    # `tdx module hash` prints the integrity a local module gets.
    assert run_tdx("module", "hash", project / "modules" / "delta").stdout.split()[1] == modules["tdx-delta"]["integrity"]


def test_locking_twice_gives_the_same_bytes(world, tmp_path):
    venv, project = world["venv"], world["project"]
    env = venv_env(venv, tmp_path / "cache")
    lock(project, env)
    first = (project / "tdx.lock").read_bytes()
    out = lock(project, env).stdout
    assert "(up to date)" in out
    lock(project, env, "--update")
    assert (project / "tdx.lock").read_bytes() == first
    assert first.startswith(b"# Auto-generated by tdx lock. Do not edit.\nversion = 1\n")
    assert sorted(p.name for p in project.iterdir()) == ["TDXfile", "modules", "tdx.lock"], "temporary files left behind"
    # --frozen passes on the up-to-date lock and leaves it alone.
    build(project, env, "--frozen", out=tmp_path / "tree")
    assert (project / "tdx.lock").read_bytes() == first


def test_frozen_without_a_lock(tmp_path):
    write_tdxfile(tmp_path / "p", "from tdx import Image\nimage = Image('x')\n")
    err = build(tmp_path / "p", tdx_env(TDX_CACHE_DIR=tmp_path / "cache"), "--frozen", expect=1).stderr
    assert f"--frozen: there is no lockfile at {tmp_path / 'p' / 'tdx.lock'}" in err and "run `tdx lock`" in err
    assert not (tmp_path / "p" / "tdx.lock").exists() and not (tmp_path / "tree").exists()


@pytest.fixture
def served(tmp_path):
    files = tmp_path / "www"
    files.mkdir()
    (files / "a.bin").write_bytes(b"toolchain a\n")
    (files / "b.bin").write_bytes(b"toolchain b\n")
    server = StaticServer(files)
    yield server
    server.close()


def digest_of(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def small_project(tmp_path, served, *, fetches=("a.bin",), extra_import=""):
    """A venv with tdx-alpha 1.0.0 installed from a path, and a TDXfile that imports it and fetches."""
    venv = Venv(tmp_path / "venv")
    alpha = module_source(tmp_path / "alpha", "tdx-alpha", "1.0.0")
    venv.install("--no-index", alpha)
    project = tmp_path / "project"
    write_project(project, served, fetches, extra_import)
    return venv, alpha, project


def write_project(project, served, fetches, extra_import=""):
    lines = ["from tdx import Image, fetch", "import tdx_alpha" + extra_import, "image = Image('x')", "tdx_alpha.apply(image)"]
    for name in fetches:
        lines.append(f"fetch({served.url + '/' + name!r}, sha256={digest_of(served.folder / name)!r})")
    write_tdxfile(project, "\n".join(lines) + "\n")


def test_frozen_lists_every_difference(tmp_path, served):
    venv, alpha, project = small_project(tmp_path, served)
    cache = tmp_path / "cache"
    env = venv_env(venv, cache)
    lock(project, env)
    build(project, env, "--frozen")
    locked = (project / "tdx.lock").read_text()
    old_alpha = read_lock(project)["module"][0]["integrity"]
    old_a = "sha256:" + digest_of(served.folder / "a.bin")
    assert f'[[fetch]]\nurl = "{served.url}/a.bin"\nintegrity = "{old_a}"\n' in locked

    # A module version bump, a changed fetch hash and a new fetch.
    module_source(alpha, "tdx-alpha", "1.1.0")
    venv.install("--no-index", alpha)
    (served.folder / "a.bin").write_bytes(b"toolchain a, rebuilt\n")
    write_project(project, served, ("a.bin", "b.bin"))
    new_alpha = sha(record_payload_hash(venv.dist_info("tdx-alpha")))
    new_a = "sha256:" + digest_of(served.folder / "a.bin")

    before = snapshot(project / "tdx.lock")
    fetched_before = sorted(p.name for p in (cache / "fetch").iterdir())
    err = build(project, env, "--frozen", expect=1, out=tmp_path / "refused").stderr
    # The refused build downloaded neither the changed nor the new file.
    assert sorted(p.name for p in (cache / "fetch").iterdir()) == fetched_before
    assert "does not match what the TDXfile resolved; 3 difference(s):" in err
    assert f"changed module tdx-alpha: version 1.0.0 -> 1.1.0; integrity {old_alpha} -> {new_alpha}" in err
    assert f"changed fetch {served.url}/a.bin: integrity {old_a} -> {new_a}" in err
    assert f"added   fetch {served.url}/b.bin" in err
    assert snapshot(project / "tdx.lock") == before and not (tmp_path / "refused").exists()

    # Without --frozen, the new fetch alone would be added, but changed entries need --update.
    err = build(project, env, expect=1).stderr
    assert "pins 2 entries differently" in err
    assert f"hint: if the new values are right, accept them with: tdx lock --update {served.url}/a.bin tdx-alpha" in err
    assert snapshot(project / "tdx.lock") == before
    err = lock(project, env, expect=1).stderr
    assert "pins 2 entries differently" in err and snapshot(project / "tdx.lock") == before

    # Accepting one is not enough; accepting both is.
    lock(project, env, "--update", "tdx-alpha", expect=1)
    assert snapshot(project / "tdx.lock") == before
    out = lock(project, env, "--update", "tdx-alpha", f"{served.url}/a.bin").stdout
    assert "changed module tdx-alpha: version 1.0.0 -> 1.1.0" in out and f"added   fetch {served.url}/b.bin" in out
    build(project, env, "--frozen")


def test_build_adds_new_entries_and_keeps_unused_ones(tmp_path, served):
    venv, alpha, project = small_project(tmp_path, served, fetches=())
    module_source(project / "modules" / "delta", "tdx-delta", "4.0.0")
    env = venv_env(venv, tmp_path / "cache")
    build(project, env)
    assert [m["name"] for m in read_lock(project)["module"]] == ["tdx-alpha"]
    write_project(project, served, ("a.bin",), extra_import=", tdx_delta")
    err = build(project, env).stderr
    assert "[lock] tdx.lock: added   module tdx-delta 4.0.0 (path)" in err
    assert f"[lock] tdx.lock: added   fetch {served.url}/a.bin" in err
    data = read_lock(project)
    assert [m["name"] for m in data["module"]] == ["tdx-alpha", "tdx-delta"] and len(data["fetch"]) == 1
    build(project, env, "--frozen")
    # A module of the project's own modules/ folder is part of the project: its entry follows its edits
    # (tdx build and tdx lock update it; --frozen reports the difference).
    old = read_lock(project)["module"][1]["integrity"]
    (project / "modules" / "delta" / "tdx_delta" / "data" / "notes.txt").write_text("edited\n")
    new = sha(tree_hash(project / "modules" / "delta", module_source=True))
    err = build(project, env, "--frozen", expect=1).stderr
    assert f"changed module tdx-delta: integrity {old} -> {new}" in err
    assert f"[lock] tdx.lock: changed module tdx-delta: integrity {old} -> {new}" in build(project, env).stderr
    build(project, env, "--frozen")
    # No longer used: tdx build keeps the entry (and says so), --frozen calls it removed, tdx lock drops it.
    write_project(project, served, ())
    assert "entries this TDXfile no longer uses" in build(project, env).stderr
    assert len(read_lock(project)["module"]) == 2
    err = build(project, env, "--frozen", expect=1).stderr
    assert "removed module tdx-delta 4.0.0 (path)" in err and f"removed fetch {served.url}/a.bin" in err
    out = lock(project, env).stdout
    assert "removed module tdx-delta" in out
    assert [m["name"] for m in read_lock(project)["module"]] == ["tdx-alpha"] and "fetch" not in read_lock(project)


def test_a_local_module_linked_from_a_shared_folder_is_locked_under_the_project(tmp_path):
    """modules/<name> may link to a module folder several projects share: the lock names it as the
    project does (modules/<name>), so the lock stays valid wherever the checkout lives."""
    shared = module_source(tmp_path / "shared" / "hardening", "tdx-shared", "1.0.0")
    project = tmp_path / "project"
    (project / "modules").mkdir(parents=True)
    (project / "modules" / "hardening").symlink_to("../../shared/hardening")
    write_tdxfile(project, "from tdx import Image\nimport tdx_shared\nimage = Image('p')\ntdx_shared.apply(image)\n")
    lock(project, tdx_env(TDX_CACHE_DIR=tmp_path / "cache"))
    (entry,) = read_lock(project)["module"]
    assert entry == {"name": "tdx-shared", "version": "1.0.0", "source": "path", "path": "modules/hardening",
                     "integrity": sha(tree_hash(shared, module_source=True))}


def test_installed_files_that_changed_are_refused_until_updated(tmp_path, served):
    venv, alpha, project = small_project(tmp_path, served, fetches=())
    env = venv_env(venv, tmp_path / "cache")
    lock(project, env)
    before = snapshot(project / "tdx.lock")
    installed = venv.site / "tdx_alpha" / "__init__.py"
    installed.write_text(installed.read_text() + "# patched in place\n")
    for proc in (lock(project, env, expect=1), build(project, env, expect=1)):
        assert "changed module tdx-alpha: integrity" in proc.stderr
        assert "the files of tdx-alpha 1.0.0 (path) no longer match the lock: reinstall it" in proc.stderr
        assert "tdx lock --update tdx-alpha" in proc.stderr
    assert snapshot(project / "tdx.lock") == before
    # A file listed in RECORD that is gone is an error of its own.
    notes = venv.site / "tdx_alpha" / "data" / "notes.txt"
    kept = notes.read_bytes()
    notes.unlink()
    err = lock(project, env, expect=1).stderr
    assert "tdx_alpha/data/notes.txt, listed in its RECORD, is missing" in err and "reinstall it" in err
    assert snapshot(project / "tdx.lock") == before
    notes.write_bytes(kept)
    # The update names the module by any spelling of its name.
    lock(project, env, "--update", "TDX_Alpha")
    assert read_lock(project)["module"][0]["integrity"] == sha(record_payload_hash(venv.dist_info("tdx-alpha")))


@pytest.mark.parametrize("text,needles", [
    ("version = 1\n[[module]\n", ["tdx.lock:2: not valid TOML"]),
    ("version = 2\n", ["lockfile version 2 is not one this tdx reads", "upgrade tdx"]),
    ("[[module]]\nname = 'a'\n", ["'version = 1' is missing"]),
    ("version = 1\n[[module]]\nname = 'tdx-a'\nversion = '1'\nsource = 'pypi'\nintegrty = 'x'\n",
     ["[[module]] #1 ('tdx-a'): unknown key 'integrty' (did you mean 'integrity'?)"]),
    ("version = 1\n[[module]]\nname = 'tdx-a'\nsource = 'ftp'\nintegrity = 'sha256:" + "0" * 64 + "'\n",
     ["source 'ftp' is not one of pypi, git, path, url"]),
    ("version = 1\n[[fetch]]\nurl = 'http://example.invalid/a'\nintegrity = 'sha256:abc'\n",
     ["[[fetch]] #1: integrity 'sha256:abc' is not a content hash"]),
    ("version = 1\n" + "[[fetch]]\nurl = 'http://example.invalid/a'\nintegrity = 'sha256:" + "0" * 64 + "'\n" * 1 +
     "[[fetch]]\nurl = 'http://example.invalid/a'\nintegrity = 'sha256:" + "0" * 64 + "'\n",
     ["'http://example.invalid/a' is listed twice"]),
])
def test_malformed_lockfiles_are_refused_and_kept(tmp_path, text, needles):
    project = tmp_path / "p"
    write_tdxfile(project, "from tdx import Image\nimage = Image('x')\n")
    (project / "tdx.lock").write_text(text)
    for proc in (lock(project, tdx_env(TDX_CACHE_DIR=tmp_path / "c"), expect=1),
                 build(project, tdx_env(TDX_CACHE_DIR=tmp_path / "c"), expect=1)):
        for n in needles:
            assert n in proc.stderr, proc.stderr
        assert "hint: tdx.lock is generated" in proc.stderr
    assert (project / "tdx.lock").read_text() == text


def test_update_of_an_unknown_name(tmp_path, served):
    venv, alpha, project = small_project(tmp_path, served, fetches=())
    env = venv_env(venv, tmp_path / "cache")
    lock(project, env)
    before = snapshot(project / "tdx.lock")
    err = lock(project, env, "--update", "tdx-alpah", expect=1).stderr
    assert "--update tdx-alpah: no module or fetched URL of this TDXfile is called 'tdx-alpah'" in err
    assert "(did you mean 'tdx-alpha'?)" in err
    assert snapshot(project / "tdx.lock") == before


def test_golden_lockfile(tmp_path, served):
    """The bytes of a lock with local modules and fetches (the loopback port replaced by a placeholder)."""
    project = tmp_path / "project"
    for name, version in (("tdx-zeta", "0.2.0"), ("tdx-eta", "1.0.0")):
        module_source(project / "modules" / name.split("-")[1], name, version)
    fetches = "\n".join(f"fetch({served.url + '/' + n!r}, sha256={digest_of(served.folder / n)!r})" for n in ("b.bin", "a.bin"))
    write_tdxfile(project, f"from tdx import Image, fetch\nimport tdx_zeta, tdx_eta\nimage = Image('g')\n{fetches}\n")
    lock(project, tdx_env(TDX_CACHE_DIR=tmp_path / "cache"))
    text = (project / "tdx.lock").read_text().replace(served.url, "http://127.0.0.1:PORT")
    golden = GOLDEN / "tdx.lock"
    if os.environ.get("TDX_TEST_ACCEPT") == "1":
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(text)
    assert text == golden.read_text(), "tdx.lock differs from golden (TDX_TEST_ACCEPT=1 rewrites)"


def test_toolchains_builders_will_fetch_are_locked_without_fetching(tmp_path):
    """A builder's toolchain (here Go's, from a module proxy) is pinned from the build plan at
    evaluation; `tdx lock` downloads nothing (the proxy address has no server behind it)."""
    project = tmp_path / "p"
    cache = tmp_path / "cache"
    env = tdx_env(TDX_CACHE_DIR=cache, TDX_GOPROXY="http://127.0.0.1:9", GOPROXY=None)
    write_tdxfile(project, "from tdx import Image, Build\nimage = Image('x')\n"
                           "image.build(Build.go(name='app', version='0.0.0', src='.', output='/usr/local/bin/app'))\n")
    unknown_version = lock(project, env, expect=1).stderr
    known = re.search(r"it knows ([0-9.]+)", unknown_version)
    if known is None:
        pytest.skip("the go builder plugin lists no Go release it knows")
    (project / "TDXfile").write_text((project / "TDXfile").read_text().replace("0.0.0", known.group(1)))
    lock(project, env)
    (fetch_entry,) = read_lock(project)["fetch"]
    assert fetch_entry["url"] == f"http://127.0.0.1:9/golang.org/toolchain/@v/v0.0.1-go{known.group(1)}.linux-amd64.zip"
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", fetch_entry["integrity"])
    assert not (cache / "fetch").exists()
    locked = (project / "tdx.lock").read_text()
    # Another proxy is only another place for the same pinned bytes: --frozen accepts the lock, and
    # the build goes on to download (here from an address with no server behind it).
    other_proxy = tdx_env(TDX_CACHE_DIR=cache, TDX_GOPROXY="http://127.0.0.1:10", GOPROXY=None)
    err = run_tdx("build", "-C", project, "--frozen", "--emit-mkosi", tmp_path / "t", env=other_proxy, expect=1).stderr
    assert "does not match" not in err and "127.0.0.1 port 10" in err, err
    assert (project / "tdx.lock").read_text() == locked
    assert not [f for f in (cache / "fetch").rglob("*") if f.is_file()]  # the failed download left nothing
    # Another release is another digest: --frozen reports it before anything is built or fetched.
    listed = re.search(r"it knows ([0-9., ]+)\)", unknown_version).group(1)
    others = [v for v in re.findall(r"[0-9]+\.[0-9]+\.[0-9]+", listed) if v != known.group(1)]
    if others:
        (project / "TDXfile").write_text((project / "TDXfile").read_text().replace(known.group(1), others[0]))
        err = run_tdx("build", "-C", project, "--frozen", "--emit-mkosi", tmp_path / "t2", env=other_proxy,
                      expect=1).stderr
        assert "removed fetch http://127.0.0.1:9/" in err and "added   fetch http://127.0.0.1:10/" in err
        assert not [f for f in (cache / "fetch").rglob("*") if f.is_file()] and not (tmp_path / "t2").exists()
