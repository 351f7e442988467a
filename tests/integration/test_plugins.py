"""Plugins load through one versioned path: stock ones, refused ones, a third party's."""

import hashlib
import json
import subprocess
from pathlib import Path

import pytest

from conftest import BUILD, REPO, need, run_tdx, tdx_env, write_tdxfile

STOCK = {("c", "builder"), ("dotnet", "builder"), ("go", "builder"), ("rust", "builder"), ("script", "builder"),
         ("script", "secret-delivery"), ("ssh", "secret-delivery"), ("vsock", "secret-delivery")}


def plugins_json(env=None):
    return json.loads(run_tdx("plugins", "list", "--json", env=env).stdout)


def test_lists_the_eight_stock_plugins_with_their_hashes():
    listing = plugins_json()
    assert listing["host_interface"] == "2.0"
    found = {(p["name"], p["kind"]) for p in listing["plugins"]}
    assert found == STOCK
    for p in listing["plugins"]:
        assert p["loaded"] and p["interface"] == "2.0" and p["version"] and p["description"]
        assert p["sha256"] == hashlib.sha256(Path(p["path"]).read_bytes()).hexdigest()
        assert Path(p["path"]).parent == BUILD / "lib" / "tdx" / "plugins"
    text = run_tdx("plugins", "list").stdout
    assert "tdx plugin interface 2.0" in text and "go  (builder, version" in text


@pytest.mark.parametrize("case,theirs,message", [
    ("abi_major", "3.0", "incompatible with this tdx's interface 2.0"),
    ("abi_minor_newer", "2.7", "newer than this tdx's interface 2.0"),
])
def test_plugin_with_other_interface_is_refused_with_both_versions(case, theirs, message):
    folder = BUILD / "tests" / "plugins" / case
    listing = plugins_json(tdx_env(TDX_PLUGIN_PATH=folder))
    refused = [p for p in listing["plugins"] if not p["loaded"]]
    assert len(refused) == 1
    assert refused[0]["interface"] == theirs
    assert f"plugin interface {theirs}" in refused[0]["error"] and message in refused[0]["error"]
    assert {(p["name"], p["kind"]) for p in listing["plugins"] if p["loaded"]} == STOCK


def test_shared_object_without_entry_point_is_not_a_plugin():
    listing = plugins_json(tdx_env(TDX_PLUGIN_PATH=BUILD / "tests" / "plugins" / "no_entry"))
    (refused,) = [p for p in listing["plugins"] if not p["loaded"]]
    assert "no 'tdx_plugin_descriptor' symbol" in refused["error"]


@pytest.fixture(scope="module")
def make_plugin(tmp_path_factory):
    """The example third-party plugin, built out of tree against an installed tdx."""
    need("cmake")
    root = tmp_path_factory.mktemp("third-party")
    prefix, build = root / "prefix", root / "build"
    subprocess.run(["cmake", "--install", str(BUILD), "--prefix", str(prefix)], check=True, capture_output=True)
    subprocess.run(["cmake", "-S", str(REPO / "examples" / "plugins" / "make-builder"), "-B", str(build),
                    f"-DCMAKE_PREFIX_PATH={prefix}"], check=True, capture_output=True)
    subprocess.run(["cmake", "--build", str(build)], check=True, capture_output=True)
    return prefix, build


def test_out_of_tree_plugin_is_listed_and_usable(make_plugin, tmp_path):
    need("mkosi", "bwrap")
    prefix, plugin_dir = make_plugin
    env = tdx_env(TDX_PLUGIN_PATH=plugin_dir)
    listing = plugins_json(env)
    (make,) = [p for p in listing["plugins"] if p["name"] == "make"]
    assert make["loaded"] and make["kind"] == "builder" and make["version"] == "1.0.0"
    assert Path(make["path"]).parent == plugin_dir

    src = tmp_path / "tool"
    src.mkdir()
    (src / "Makefile").write_text("greet: greet.c\n\t$(CC) -O2 -o $@ $<\n")
    (src / "greet.c").write_text('#include <stdio.h>\nint main(void){puts("made by make");return 0;}\n')
    write_tdxfile(tmp_path, "from tdx import Image, Build\nimage = Image('third')\n"
                            "image.build(Build.make(name='greet', src='./tool', target='greet',\n"
                            "                       artifacts={'greet': '/usr/bin/greet'}))\n")
    # The installed tdx (not the build tree) runs the third-party build for real.
    proc = subprocess.run([str(prefix / "bin" / "tdx"), "build", "-C", str(tmp_path), "--emit-mkosi",
                           str(tmp_path / "tree")], env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    (greet,) = (tmp_path / "tree" / "artifacts").glob("*/usr/bin/greet")
    assert subprocess.run([str(greet)], capture_output=True, text=True).stdout == "made by make\n"

    # Without the plugin path the same TDXfile names an unknown builder.
    err = run_tdx("build", "-C", tmp_path, "--emit-mkosi", tmp_path / "t2", expect=1).stderr
    assert "unknown builder 'make'" in err
