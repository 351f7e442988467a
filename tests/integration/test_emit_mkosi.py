"""The generated mkosi tree: golden files, byte-identical re-emits, and what mkosi understood."""

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import need, run_tdx

HERE = Path(__file__).parent
GOLDEN_PROJECT = HERE / "golden" / "project"
GOLDEN = HERE / "golden" / "v1"  # one folder per schema version of the generated tree
PLACEHOLDER_MIRROR = "https://example.invalid/debian/"


def emit(tmp_path, name):
    project = tmp_path / f"project-{name}"
    shutil.copytree(GOLDEN_PROJECT, project)
    tree = tmp_path / f"tree-{name}"
    run_tdx("build", "-C", project, "--emit-mkosi", tree)
    return tree


def text_files(tree):
    """Every generated file but the build artifacts, with the machine's mirror replaced."""
    out = {}
    for path in sorted(tree.rglob("*")):
        rel = path.relative_to(tree).as_posix()
        if path.is_file() and not rel.startswith("artifacts/"):
            text = path.read_text()
            if rel.endswith("mkosi.sources"):
                text = re.sub(r"(?m)^URIs: .*$", f"URIs: {PLACEHOLDER_MIRROR}", text)
            out[rel] = text
    return out


@pytest.fixture(scope="module")
def trees(tmp_path_factory):
    need("mkosi", "bwrap")
    tmp = tmp_path_factory.mktemp("emit")
    return emit(tmp, "a"), emit(tmp, "b")


def test_matches_golden_files(trees):
    generated = text_files(trees[0])
    if os.environ.get("TDX_TEST_ACCEPT") == "1":
        shutil.rmtree(GOLDEN, ignore_errors=True)
        for rel, text in generated.items():
            (GOLDEN / rel).parent.mkdir(parents=True, exist_ok=True)
            (GOLDEN / rel).write_text(text)
    expected = {p.relative_to(GOLDEN).as_posix(): p.read_text() for p in sorted(GOLDEN.rglob("*")) if p.is_file()}
    assert sorted(generated) == sorted(expected), "generated files differ from golden (TDX_TEST_ACCEPT=1 rewrites)"
    for rel in expected:
        assert generated[rel] == expected[rel], f"{rel} differs from golden (TDX_TEST_ACCEPT=1 rewrites)"


def test_emit_is_byte_identical_for_the_same_tdxfile(trees):
    a, b = trees
    files_a = sorted(p.relative_to(a) for p in a.rglob("*"))
    assert files_a == sorted(p.relative_to(b) for p in b.rglob("*"))
    for rel in files_a:
        pa, pb = a / rel, b / rel
        if pa.is_file():
            assert pa.read_bytes() == pb.read_bytes(), rel
            assert pa.stat().st_mode == pb.stat().st_mode, rel


def test_the_artifact_is_in_the_tree(trees):
    (motd,) = trees[0].glob("artifacts/*/usr/share/golden/motd.j2")
    assert motd.read_text() == "Welcome to {{ who }}.\n"


def test_mkosi_understands_the_tree(trees):
    summary = subprocess.run(["mkosi", "-C", str(trees[0]), "--json", "summary"], capture_output=True, text=True,
                             env={**os.environ, "PATH": "/usr/bin:/usr/sbin:/bin:/sbin"})
    assert summary.returncode == 0, summary.stderr
    (config,) = json.loads(summary.stdout)["Images"]
    assert config["Distribution"] == "debian" and config["Release"] == "bookworm"
    assert config["Output"] == "golden" and config["ImageId"] == "golden"
    assert config["Format"] == "directory"
    assert config["Packages"] == ["ca-certificates", "curl", "passwd", "systemd"]
    assert config["Bootable"] == "disabled"
    assert config["SourceDateEpoch"] == 0
    assert config["Incremental"] is True or config["Incremental"] == "yes"
    extra = [t["Source"] for t in config["ExtraTrees"]]
    assert len(extra) == 2 and any("/artifacts/" in s for s in extra) and extra[-1].endswith("tdx-stage")
    assert [t["Target"] for t in config["ExtraTrees"]] == ["/", "/tdx-stage"]
    assert [Path(s).name for s in config["PostInstallationScripts"]] == ["mkosi.postinst.chroot"]
    assert [Path(s).name for s in config["FinalizeScripts"]] == ["mkosi.finalize.chroot"]
    assert config["Seed"]


def test_disk_tree_gives_the_default_initrd_the_finalize_step(tmp_path):
    need("mkosi", "bwrap")
    project = tmp_path / "p"
    shutil.copytree(GOLDEN_PROJECT, project)
    tree = tmp_path / "disk-tree"
    run_tdx("build", "-C", project, "--format", "disk", "--emit-mkosi", tree)
    # The initrd gets the same normalization; only the image's own script lists its packages.
    initrd_step = (tree / "tdx-initrd" / "mkosi.finalize.chroot").read_text()
    image_step = (tree / "mkosi.finalize.chroot").read_text()
    assert "/var/cache/ldconfig/aux-cache" in initrd_step and image_step.startswith(initrd_step)
    assert "dpkg-query" in image_step and "dpkg-query" not in initrd_step
    # Partition file systems made with fixed seeds and timestamps (see mkosi.env).
    assert "EnvironmentFiles=mkosi.env" in (tree / "mkosi.conf").read_text()
    env = (tree / "mkosi.env").read_text()
    assert "SYSTEMD_REPART_MKFS_OPTIONS_EXT4=-E nodiscard,lazy_itable_init=1,hash_seed=" in env
    assert "SYSTEMD_REPART_MKFS_OPTIONS_VFAT=--invariant" in env
    summary = subprocess.run(["mkosi", "-C", str(tree), "--json", "summary"], capture_output=True, text=True,
                             env={**os.environ, "PATH": "/usr/bin:/usr/sbin:/bin:/sbin"})
    assert summary.returncode == 0 and "should be configured in" not in summary.stderr, summary.stderr
    (config,) = json.loads(summary.stdout)["Images"]
    assert [Path(p).name for p in config["InitrdInclude"]] == ["tdx-initrd"]
    assert config["Format"] == "disk" and config["Bootable"] == "enabled"
