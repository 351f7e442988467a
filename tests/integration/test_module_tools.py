"""tdx module hash / validate and tdx cache clean, driven through the real binary.

Tree hashes are checked against an independent implementation of Go's dirhash Hash1
(inputs_support.hash1) and, where the Go toolchain is installed, against the h1: values the
Go toolchain itself computes for a module served from a local file:// module proxy.
"""

import json
import os
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest

from conftest import run_tdx, tdx_env
from inputs_support import h1, hash1, module_source, need_pip_tooling, sha, snapshot, tree_hash, write_files

VECTORS = {
    # Names chosen so that bytewise order matters: '-' (0x2d) < '.' (0x2e) < '/' (0x2f) < 'Z' < 'a'.
    "go.mod": "module example.com/m\n\ngo 1.20\n",
    "a-b.txt": "dash\n",
    "a.b": "dot\n",
    "a/b.txt": "slash\n",
    "Z.txt": "upper\n",
    "empty": "",
    "sub dir/with space.txt": "space\n",
    "deep/er/still/blob.bin": bytes(range(256)) * 40,
    "\u00e9t\u00e9.txt": "unicode name\n",
}


def hash_of(path):
    out = run_tdx("module", "hash", path).stdout.split()
    assert len(out) == 2 and out[0].startswith("h1:") and out[1].startswith("sha256:"), out
    return out


def test_hash_matches_independent_hash1(tmp_path):
    root = tmp_path / "m"
    write_files(root, VECTORS)
    expected = hash1({k: v.encode() if isinstance(v, str) else v for k, v in VECTORS.items()})
    assert hash_of(root) == [h1(expected), sha(expected)]
    data = json.loads(run_tdx("module", "hash", root, "--json").stdout)
    assert data["h1"] == h1(expected) and data["sha256"] == sha(expected)


def test_hash_of_a_single_file_and_of_an_empty_folder(tmp_path):
    (tmp_path / "one").mkdir()
    (tmp_path / "one" / "go.mod").write_text("module x\n")
    assert hash_of(tmp_path / "one")[0] == h1(hash1({"go.mod": b"module x\n"}))
    (tmp_path / "none").mkdir()
    # Hash1 of no files is the sha256 of the empty summary.
    assert hash_of(tmp_path / "none")[1] == "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


def test_what_the_module_hash_leaves_out(tmp_path):
    root = tmp_path / "m"
    write_files(root, {"pyproject.toml": "[project]\n", "pkg/__init__.py": "x = 1\n", "pkg/build/keep.txt": "nested build/ counts\n"})
    before = hash_of(root)
    assert before[1] == sha(tree_hash(root, module_source=True))
    write_files(root, {
        ".git/HEAD": "ref: refs/heads/main\n", "pkg/.git": "gitdir: /elsewhere\n",
        "pkg/__pycache__/__init__.cpython-311.pyc": "bytecode", "pkg/stale.pyc": "bytecode",
        "build/lib/pkg/__init__.py": "x = 1\n", "dist/pkg-1.0.tar.gz": "sdist", "pkg.egg-info/PKG-INFO": "meta",
    })
    (root / "empty-folder" / "deeper").mkdir(parents=True)
    assert hash_of(root) == before
    # ... but a nested build/ folder is source and counts.
    (root / "pkg" / "build" / "keep.txt").write_text("changed\n")
    assert hash_of(root) != before


def test_file_modes_do_not_count_but_content_and_names_do(tmp_path):
    root = tmp_path / "m"
    write_files(root, {"run.sh": "#!/bin/sh\necho hi\n", "data": "1\n"})
    before = hash_of(root)
    (root / "run.sh").chmod(0o755)
    (root / "data").chmod(0o600)
    assert hash_of(root) == before
    (root / "data").write_text("2\n")
    changed = hash_of(root)
    assert changed != before
    (root / "data").rename(root / "data2")
    assert hash_of(root) != changed


def test_symlinks_count_as_their_target_text_and_are_not_followed(tmp_path):
    outside = tmp_path / "outside.txt"
    outside.write_text("outside the tree\n")
    root = tmp_path / "m"
    write_files(root, {"real.txt": "payload\n", "dir/inner.txt": "inner\n"})
    (root / "link.txt").symlink_to("real.txt")
    (root / "dirlink").symlink_to("dir")
    (root / "dangling").symlink_to("does-not-exist")
    (root / "escape").symlink_to(outside)
    expected = hash1({"real.txt": b"payload\n", "dir/inner.txt": b"inner\n", "link.txt": b"real.txt",
                      "dirlink": b"dir", "dangling": b"does-not-exist", "escape": str(outside).encode()})
    assert hash_of(root)[1] == sha(expected)
    # Changing what a link points at outside the tree does not change the tree.
    outside.write_text("something else\n")
    assert hash_of(root)[1] == sha(expected)
    # The same tree in another folder hashes the same.
    shutil.copytree(root, tmp_path / "deeper" / "copy", symlinks=True)
    assert hash_of(tmp_path / "deeper" / "copy")[1] == sha(expected)


def test_special_files_are_refused(tmp_path):
    root = tmp_path / "m"
    write_files(root, {"a": "1"})
    os.mkfifo(root / "pipe")
    err = run_tdx("module", "hash", root, expect=1).stderr
    assert f"{root}/pipe is a fifo" in err


def test_hash_of_missing_or_non_folder_path(tmp_path):
    err = run_tdx("module", "hash", tmp_path / "nope", expect=1).stderr
    assert f"'{tmp_path / 'nope'}' is not a folder (it does not exist)" in err and "hint:" in err
    (tmp_path / "file").write_text("x")
    assert "is not a folder" in run_tdx("module", "hash", tmp_path / "file", expect=1).stderr


GO = shutil.which("go") or ("/usr/local/go/bin/go" if os.access("/usr/local/go/bin/go", os.X_OK) else None)


def test_hash_equals_what_the_go_toolchain_computes(tmp_path):
    """Go computes go.sum's h1 for a module zip served by a local file:// module proxy (no network).
    The zip's names carry the prefix example.com/m@v1.0.0/, so the same files laid out under that
    prefix must give tdx the same hash; go.mod's own h1 is Hash1 of the one file "go.mod"."""
    if GO is None:
        pytest.skip("the Go toolchain is not installed; the independent Python Hash1 still checks tdx")
    files = {k: v.encode() if isinstance(v, str) else v for k, v in VECTORS.items()}
    prefix = "example.com/m@v1.0.0/"
    proxy = tmp_path / "proxy" / "example.com" / "m" / "@v"
    proxy.mkdir(parents=True)
    with zipfile.ZipFile(proxy / "v1.0.0.zip", "w") as z:
        for name, data in files.items():
            z.writestr(prefix + name, data)
    (proxy / "v1.0.0.mod").write_bytes(files["go.mod"])
    (proxy / "v1.0.0.info").write_text('{"Version":"v1.0.0"}')
    (proxy / "list").write_text("v1.0.0\n")
    env = {"PATH": f"{Path(GO).parent}:/usr/bin:/bin", "HOME": str(tmp_path), "GOPROXY": f"file://{tmp_path / 'proxy'}",
           "GOSUMDB": "off", "GOFLAGS": "-modcacherw", "GOMODCACHE": str(tmp_path / "modcache"),
           "GOPATH": str(tmp_path / "gopath"), "GOTOOLCHAIN": "local", "GO111MODULE": "on"}
    proc = subprocess.run([GO, "mod", "download", "-json", "example.com/m@v1.0.0"], cwd=tmp_path, env=env,
                          capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip(f"go mod download does not work with a file:// proxy here: {proc.stderr.strip()}")
    go = json.loads(proc.stdout)

    # The independent implementation agrees with Go ...
    assert h1(hash1({prefix + k: v for k, v in files.items()})) == go["Sum"]
    assert h1(hash1({"go.mod": files["go.mod"]})) == go["GoModSum"]
    # ... and so does tdx.
    laid_out = tmp_path / "laid-out"
    write_files(laid_out / prefix, VECTORS)
    assert hash_of(laid_out)[0] == go["Sum"]
    only_mod = tmp_path / "only-mod"
    write_files(only_mod, {"go.mod": VECTORS["go.mod"]})
    assert hash_of(only_mod)[0] == go["GoModSum"]
    # tdx fetch --hash of a folder (the fetch_git pin) is the same algorithm.
    assert run_tdx("fetch", "--hash", laid_out).stdout.split()[0] == go["Sum"]


# --- tdx module validate ----------------------------------------------------------------------

def validate(path, expect):
    return run_tdx("module", "validate", path, expect=expect)


def test_validate_accepts_function_and_class_modules(tmp_path):
    need_pip_tooling()
    fn = module_source(tmp_path / "fn", "tdx-fn", "1.0.0")
    cls = module_source(tmp_path / "cls", "tdx-cls", "2.0.0", form="class", data=False)
    before = snapshot(tmp_path)
    out = validate(fn, 0).stdout
    assert "ok: tdx-fn 1.0.0 (package tdx_fn, function apply(image)) is a valid tdx module" in out
    out = validate(cls, 0).stdout
    assert "ok: tdx-cls 2.0.0 (package tdx_cls, class Module)" in out
    report = json.loads(run_tdx("module", "validate", fn, "--json").stdout)
    assert report["valid"] is True and report["problems"] == [] and report["package"] == "tdx_fn"
    assert snapshot(tmp_path) == before, "validate wrote into the module folder"


def test_validate_lists_every_problem(tmp_path):
    need_pip_tooling()
    root = module_source(tmp_path / "bad", "tdx-bad", "1.0", package_data=False)
    head = '[build-system]\nrequires = ["setuptools>=61"]\nbuild-backend = "setuptools.build_meta"\n[project]\nname = "tdx-bad"\n'
    tail = 'dependencies = ["requests"]\n[tool.setuptools]\npackages = ["tdx_bad"]\n'
    (root / "pyproject.toml").write_text(head + 'version = "1.0"\n' + tail)
    (root / "tdx_bad" / "__init__.py").write_text("def apply():\n    pass\n")
    out = validate(root, 1).stdout
    assert "tdx-bad 1.0 (package tdx_bad, function apply(image)): 4 problems" in out, out
    assert 'dependencies do not include the SDK; add "tdx-vm-sdk"' in out
    assert "tdx_bad.apply() does not take the image" in out
    assert "data file tdx_bad/data/motd is not in the built package" in out and "package-data" in out
    assert "data file tdx_bad/data/notes.txt is not in the built package" in out
    report = json.loads(run_tdx("module", "validate", root, "--json", expect=1).stdout)
    assert report["valid"] is False and len(report["problems"]) == 4

    # Without a version, pip cannot build it either: both are listed, with the others.
    (root / "pyproject.toml").write_text(head + tail)
    out = validate(root, 1).stdout
    assert "4 problems" in out, out
    assert "version is missing" in out and "the package does not build with pip" in out
    assert "tdx_bad.apply() does not take the image" in out


def test_validate_import_failure_and_incomplete_class(tmp_path):
    need_pip_tooling()
    broken = module_source(tmp_path / "broken", "tdx-broken", "1.0.0", data=False)
    (broken / "tdx_broken" / "__init__.py").write_text("import os\n\nraise RuntimeError('module exploded')\n")
    out = validate(broken, 1).stdout
    assert "the package tdx_broken does not import: RuntimeError: module exploded" in out
    assert f"{broken}/tdx_broken/__init__.py:3" in out

    half = module_source(tmp_path / "half", "tdx-half", "1.0.0", form="class", data=False)
    (half / "tdx_half" / "__init__.py").write_text("class Half:\n    def setup(self, image):\n        pass\n")
    out = validate(half, 1).stdout
    assert "class tdx_half.Half has setup but not install(image), apply(image)" in out


def test_validate_imports_a_project_module_beside_its_local_dependencies(tmp_path):
    """In a project's modules/ folder a module may import another one there, as its TDXfile does."""
    need_pip_tooling()
    module_source(tmp_path / "modules" / "base", "tdx-base", "1.0.0", data=False)
    user = module_source(tmp_path / "modules" / "user", "tdx-user", "1.0.0", data=False)
    (user / "tdx_user" / "__init__.py").write_text("import tdx_base\n\napply = tdx_base.apply\n")
    assert "ok: tdx-user 1.0.0" in validate(user, 0).stdout
    # Outside a modules/ folder the dependency must be installed: the import failure says which.
    alone = shutil.copytree(user, tmp_path / "alone")
    assert "does not import: ModuleNotFoundError: No module named 'tdx_base'" in validate(alone, 1).stdout


def test_validate_without_pyproject_or_package(tmp_path):
    (tmp_path / "empty").mkdir()
    out = validate(tmp_path / "empty", 1).stdout
    assert "no pyproject.toml" in out and "cannot tell which package to import" in out
    err = validate(tmp_path / "missing", 1).stderr
    assert "is not a folder" in err


# --- tdx cache clean --------------------------------------------------------------------------

CACHE_PARTS = ["builds", "buildroots", "logs", "digests", "fetch", "git", "toolchains", "work", "mkosi-packages",
               "mkosi-images"]


def fill_cache(cache):
    for part in CACHE_PARTS:
        write_files(cache / part, {"entry/file": f"{part}\n"})
    (cache / "buildroots" / "entry" / "ro").mkdir()
    (cache / "buildroots" / "entry" / "ro" / "f").write_text("x")
    (cache / "buildroots" / "entry" / "ro").chmod(0o555)
    (cache / "unrelated.txt").write_text("not tdx's\n")


@pytest.mark.parametrize("flags,removed", [
    (["--builds"], {"builds", "buildroots", "logs", "digests"}),
    (["--fetches"], {"fetch", "git", "toolchains"}),
    (["--builds", "--fetches"], {"builds", "buildroots", "logs", "digests", "fetch", "git", "toolchains"}),
    ([], set(CACHE_PARTS)),
])
def test_cache_clean(tmp_path, flags, removed):
    cache = tmp_path / "cache"
    fill_cache(cache)
    out = run_tdx("cache", "clean", *flags, env=tdx_env(TDX_CACHE_DIR=cache)).stdout
    left = {p.name for p in cache.iterdir()}
    assert left == (set(CACHE_PARTS) - removed) | {"unrelated.txt"}
    assert "freed" in out
    for part in removed:
        assert f"removed {cache / part}" in out


def test_cache_clean_json_and_empty_cache(tmp_path):
    cache = tmp_path / "cache"
    fill_cache(cache)
    report = json.loads(run_tdx("cache", "clean", "--fetches", "--json", env=tdx_env(TDX_CACHE_DIR=cache)).stdout)
    assert report["cache_dir"] == str(cache)
    assert [p["name"] for p in report["removed"]] == ["fetch", "git", "toolchains"]
    assert all(p["existed"] and p["files"] == 1 for p in report["removed"])
    # Nothing left to remove is not an error.
    run_tdx("cache", "clean", "--fetches", env=tdx_env(TDX_CACHE_DIR=cache))
    run_tdx("cache", "clean", env=tdx_env(TDX_CACHE_DIR=tmp_path / "never-made"))
    assert not (tmp_path / "never-made").exists()


@pytest.mark.parametrize("args", [["cache"], ["cache", "clean", "--everything"], ["module"], ["module", "hash"],
                                  ["module", "validate"], ["lock", "--bogus"]])
def test_usage_errors_exit_2(tmp_path, args):
    run_tdx(*args, cwd=tmp_path, expect=2)


@pytest.mark.parametrize("args,words", [
    (["lock", "--help"], ["--update", "tdx.lock", "--frozen", "--json"]),
    (["module", "hash", "--help"], ["h1:", "sha256:", "__pycache__", "tdx.lock"]),
    (["module", "validate", "--help"], ["tdx-vm-sdk", "apply(image)", "importlib.resources", "--json"]),
    (["cache", "clean", "--help"], ["--builds", "--fetches", "buildroots", "git/"]),
    (["build", "--help"], ["--frozen"]),
])
def test_help_teaches(args, words):
    out = run_tdx(*args).stdout
    for w in words:
        assert w in out, (args, w)
