"""`tdx build` of the bundled example makes a real image with mkosi: check what is inside."""

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import file_sha256, installed_packages, need, read_json, run_tdx, tdx_env, tree_listing


@pytest.fixture(scope="module")
def directory_image(tmp_path_factory):
    need("mkosi", "bwrap")
    from conftest import EXAMPLES
    project = tmp_path_factory.mktemp("img") / "hello"
    shutil.copytree(EXAMPLES / "hello", project, ignore=shutil.ignore_patterns("build", "__pycache__"))
    proc = run_tdx("build", "-C", project, "--format", "directory", "--json")
    return project, json.loads(proc.stdout), proc.stderr


def test_progress_and_result(directory_image):
    project, result, progress = directory_image
    for phase in ("[evaluate]", "[build] hello-server:", "[mkosi]", "[summary] evaluate and lock"):
        assert phase in progress
    assert re.search(r"\[summary\] .* builds \d+\.\d\d s \(\d cache hit\(s\), \d built\), assemble \d+\.\d\d s, mkosi "
                     r"\d+\.\d\d s", progress), progress
    assert list(result["phases"]) == ["evaluate", "builds", "assemble", "mkosi"]
    assert all(isinstance(v, float) and v >= 0 for v in result["phases"].values()) and result["phases"]["mkosi"] > 0
    assert Path(result["image"]) == project / "build" / "hello"
    assert result["builds"][0]["name"] == "hello-server"


def test_artifact_at_its_output_path_and_runs(directory_image):
    project, _, _ = directory_image
    root = project / "build" / "hello"
    binary = root / "usr/local/bin/hello-server"
    assert binary.stat().st_mode & 0o111
    need("bwrap")
    out = subprocess.run(["bwrap", "--bind", str(root), "/", "--dev", "/dev", "--proc", "/proc",
                          "/usr/local/bin/hello-server", "--version"], capture_output=True, text=True)
    assert out.stdout == "hello-server 1.0\n", out.stderr


def test_users_with_their_uids(directory_image):
    root = directory_image[0] / "build" / "hello"
    passwd = {line.split(":")[0]: line.split(":") for line in (root / "etc/passwd").read_text().splitlines()}
    assert passwd["hello-en"][2:4] == ["810", "810"] and passwd["hello-en"][5] == "/var/lib/hello-en"
    assert passwd["hello-fr"][2] == "811" and passwd["hello-fr"][6] == "/usr/sbin/nologin"
    assert (root / "var/lib/hello-fr").stat().st_uid == 811


def test_units_with_extra_keys_enabled(directory_image):
    root = directory_image[0] / "build" / "hello"
    unit = (root / "etc/systemd/system/hello-fr.service").read_text()
    assert "MemoryMax=32M\n" in unit and "LimitNOFILE=1024\n" in unit and "User=hello-fr\n" in unit
    assert "ExecStart=/usr/local/bin/hello-server /etc/hello-fr/hello.conf\n" in unit
    for name in ("hello-en", "hello-fr"):
        link = root / f"etc/systemd/system/multi-user.target.wants/{name}.service"
        assert link.is_symlink() and str(link.readlink()) == f"/etc/systemd/system/{name}.service"


def test_rendered_template_and_files(directory_image):
    root = directory_image[0] / "build" / "hello"
    conf = (root / "etc/hello-fr/hello.conf").read_text()
    assert "greeting=bonjour\nport=8081\ndatadir=/var/lib/hello-fr\n" in conf
    assert "kernel.kptr_restrict = 2" in (root / "etc/sysctl.d/99-tdx.conf").read_text()
    assert (root / "etc/tdx-baseline").read_text() == "tdx baseline applied\n"
    assert not (root / "tdx-stage").exists()


def test_requested_packages_installed_and_no_build_deps(directory_image):
    root = directory_image[0] / "build" / "hello"
    status = installed_packages(root)
    for pkg in ("ca-certificates", "netbase", "passwd", "systemd"):
        assert status.get(pkg) == "install ok installed", pkg
    for build_dep in ("gcc", "libc6-dev", "make", "gcc-12"):
        assert build_dep not in status, f"build dependency {build_dep} reached the image"


def test_manifest(directory_image):
    project, result, _ = directory_image
    manifest = read_json(project / "build" / "hello.manifest.json")
    assert manifest["packages"] == ["ca-certificates", "netbase"]
    assert [(u["name"], u["uid"]) for u in manifest["users"]] == [("hello-en", 810), ("hello-fr", 811)]
    assert [s["name"] for s in manifest["services"]] == ["hello-en", "hello-fr"]
    (build,) = manifest["builds"]
    assert build["cache_key"] == result["builds"][0]["cache_key"] and len(build["cache_key"]) == 7 + 64
    assert manifest["image"]["sha256"] == result["sha256"] and manifest["image"]["sha256"].startswith("h1:")
    assert manifest["mkosi_version"].startswith("mkosi 24")
    # Every package in the image with its version, read from the image's own dpkg database.
    status = (project / "build/hello/var/lib/dpkg/status").read_text()
    installed = {p["name"]: p["version"] for p in manifest["installed_packages"]}
    assert set(installed) >= {"ca-certificates", "netbase", "systemd", "passwd"}
    for name in ("ca-certificates", "systemd"):
        assert f"Package: {name}\nStatus: install ok installed\n" in status
        assert f"Version: {installed[name]}\n" in status.split(f"Package: {name}\n", 1)[1].split("\n\n", 1)[0]
    assert not (project / "build" / "tdx-packages.tsv").exists()
    # The lock entries the TDXfile used: its two local modules, with their integrity.
    modules = {m["name"]: m for m in manifest["lock"]["modules"]}
    assert set(modules) == {"tdx-baseline", "tdx-hello-service"}
    assert all(m["source"] == "path" and m["integrity"].startswith("sha256:") for m in modules.values())
    assert len(manifest["inputs_digest"]) == 64


def build_twice(tmp_path, *args):
    """The bundled example built in two checkout folders, each with its own build and mkosi image
    caches and TMPDIR; returns both results (each a cold build) and both project folders."""
    from conftest import EXAMPLES, private_cache
    results, projects = [], []
    for run in ("a", "b"):
        project = tmp_path / f"checkout-{run}" / "hello"
        shutil.copytree(EXAMPLES / "hello", project, ignore=shutil.ignore_patterns("build", "__pycache__"))
        (tmp_path / f"tmp-{run}").mkdir()
        env = tdx_env(TDX_CACHE_DIR=private_cache(tmp_path / f"cache-{run}"), TMPDIR=tmp_path / f"tmp-{run}")
        results.append(json.loads(run_tdx("build", "-C", project, *args, "--json", env=env).stdout))
        assert results[-1]["mkosi_skipped"] is False and results[-1]["builds"][0]["cached"] is False
        projects.append(project)
    return results, projects


@pytest.mark.slow
def test_bootable_disk_with_uki_is_reproducible(tmp_path):
    """Two cold builds of the bundled example's disk image, in different folders with their
    own build and mkosi image caches and TMPDIRs, give the same bytes; the disk boots its UKI."""
    need("mkosi", "bwrap", "sfdisk", "mcopy")
    results, _ = build_twice(tmp_path)
    raw = tmp_path / "checkout-a/hello/build/hello.raw"
    assert Path(results[0]["image"]) == raw
    assert results[0]["sha256"] == file_sha256(raw)
    assert results[0]["sha256"] == results[1]["sha256"] == file_sha256(tmp_path / "checkout-b/hello/build/hello.raw")
    assert read_json(raw.parent / "hello.manifest.json") == \
        read_json(tmp_path / "checkout-b/hello/build/hello.manifest.json")

    table = json.loads(subprocess.run(["sfdisk", "--json", str(raw)], capture_output=True, text=True, check=True).stdout)
    parts = table["partitiontable"]["partitions"]
    esp = [p for p in parts if p["type"].upper() == "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"]
    assert esp and len(parts) >= 2
    offset = esp[0]["start"] * table["partitiontable"]["sectorsize"]
    # With Bootloader=uki the firmware boots the UKI directly from the ESP's default path.
    extracted = tmp_path / "BOOTX64.EFI"
    copy = subprocess.run(["mcopy", "-n", "-i", f"{raw}@@{offset}", "::/EFI/BOOT/BOOTX64.EFI", str(extracted)],
                          capture_output=True, text=True)
    assert copy.returncode == 0, copy.stderr
    uki = extracted.read_bytes()
    assert uki[:2] == b"MZ" and b".linux" in uki[:4096] and b".initrd" in uki[:4096]
    assert uki == (raw.parent / "hello.efi").read_bytes()


def test_unchanged_inputs_skip_mkosi_and_a_config_change_does_not(project):
    need("mkosi", "bwrap")
    first = json.loads(run_tdx("build", "-C", project, "--format", "directory", "--json").stdout)
    again = run_tdx("build", "-C", project, "--format", "directory", "--json")
    result = json.loads(again.stdout)
    assert result["mkosi_skipped"] is True and "[mkosi] skipped" in again.stderr
    assert result["sha256"] == first["sha256"]
    assert all(b["cached"] for b in result["builds"])
    # A template variable changes: the build stays cached, mkosi runs again, the config follows.
    tdxfile = project / "TDXfile"
    tdxfile.write_text(tdxfile.read_text().replace('greeting="bonjour"', 'greeting="salut"'))
    changed = json.loads(run_tdx("build", "-C", project, "--format", "directory", "--json").stdout)
    assert changed["mkosi_skipped"] is False and all(b["cached"] for b in changed["builds"])
    assert "greeting=salut" in (project / "build/hello/etc/hello-fr/hello.conf").read_text()
    assert changed["sha256"] != first["sha256"]


def test_directory_image_is_reproducible_across_folders_caches_and_tmpdirs(tmp_path):
    need("mkosi", "bwrap")
    results, _ = build_twice(tmp_path, "--format", "directory")
    assert results[0]["sha256"] == results[1]["sha256"]
    a = tree_listing(tmp_path / "checkout-a/hello/build/hello")
    b = tree_listing(tmp_path / "checkout-b/hello/build/hello")
    assert a.keys() == b.keys()
    assert [k for k in a if a[k] != b[k]] == []
    # The manifests record the same inputs, so they are identical too.
    assert read_json(tmp_path / "checkout-a/hello/build/hello.manifest.json") == \
        read_json(tmp_path / "checkout-b/hello/build/hello.manifest.json")
