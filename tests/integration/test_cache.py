"""The build cache shared by concurrent tdx runs: no half-written entry, no key built twice."""

import re
import tomllib
import subprocess
from pathlib import Path

from conftest import TDX, need, private_cache, tdx_env, write_tdxfile

SLOW_BUILD = """from tdx import Image, Build
image = Image("race", format="directory")
image.build(Build.script(name="slow", src=".", output="/slow.txt",
    build_script='sleep 3; echo done > "$DESTDIR/slow.txt"'))
"""


def test_two_runs_at_once_build_a_key_once(tmp_path):
    need("mkosi", "bwrap")
    cache = private_cache(tmp_path / "cache")
    runs = []
    for name in ("a", "b"):
        write_tdxfile(tmp_path / name, SLOW_BUILD)
        runs.append(subprocess.Popen([str(TDX), "build", "-C", str(tmp_path / name), "--emit-mkosi",
                                      str(tmp_path / f"tree-{name}")], env=tdx_env(TDX_CACHE_DIR=cache),
                                     stderr=subprocess.PIPE, text=True))
    outputs = [r.communicate(timeout=600)[1] for r in runs]
    assert [r.returncode for r in runs] == [0, 0], outputs
    verdicts = sorted(re.search(r"\[build\] slow: (built|cache hit)", o).group(1) for o in outputs)
    assert verdicts == ["built", "cache hit"]
    entries = list((cache / "builds").glob("sha256-*"))
    assert len(entries) == 1
    assert (entries[0] / "manifest.toml").exists()
    assert not [p for p in (cache / "builds").iterdir() if p.name.startswith(".staging")]
    for name in ("a", "b"):
        (art,) = Path(tmp_path / f"tree-{name}" / "artifacts").glob("*/slow.txt")
        assert art.read_text() == "done\n"


def test_cache_entry_records_its_spec(tmp_path):
    need("mkosi", "bwrap")
    cache = private_cache(tmp_path / "cache")
    write_tdxfile(tmp_path / "p", SLOW_BUILD.replace("sleep 3; ", ""))
    subprocess.run([str(TDX), "build", "-C", str(tmp_path / "p"), "--emit-mkosi", str(tmp_path / "t")],
                   env=tdx_env(TDX_CACHE_DIR=cache), check=True, capture_output=True)
    (entry,) = (cache / "builds").glob("sha256-*")
    manifest = tomllib.loads((entry / "manifest.toml").read_text())
    assert (manifest["key"], manifest["builder"], manifest["name"]) == (entry.name, "script", "slow")
    assert manifest["output"] == "/slow.txt" and manifest["source_tree"].startswith("h1:")
    assert (entry / "artifacts" / "slow.txt").read_text() == "done\n"
