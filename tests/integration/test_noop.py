"""The no-op path of `tdx build`: an unchanged project is up to date without evaluating the
TDXfile or running mkosi, and any change to what the last build depended on is noticed."""

import json
import os
import time

import pytest

from conftest import need, run_tdx, tdx_env

# Inputs changed within this many seconds of a build's end are not trusted by the stamp
# (DigestCache::k_racy_seconds): wait it out so that the next build can record.
RACY = 2.1


def build(project, env=None, expect=0):
    proc = run_tdx("build", "-C", project, "--format", "directory", "--json", env=env or tdx_env(), expect=expect)
    return (json.loads(proc.stdout) if expect == 0 else None), proc.stderr


@pytest.fixture
def built(project):
    need("mkosi", "bwrap")
    first, _ = build(project)
    assert first["evaluated"] is True
    time.sleep(RACY)
    build(project)  # records the stamp (the copy's files were too fresh during the first build)
    return project, first


def test_unchanged_project_is_up_to_date_without_evaluating(built):
    project, first = built
    result, stderr = build(project)
    assert result["evaluated"] is False and result["mkosi_skipped"] is True
    assert result["sha256"] == first["sha256"] and result["image"] == first["image"]
    assert [(b["name"], b["cache_key"]) for b in result["builds"]] == \
        [(b["name"], b["cache_key"]) for b in first["builds"]]
    assert "[evaluate] skipped" in stderr and "[mkosi] skipped" in stderr
    assert list(result["phases"]) == ["check"]


@pytest.mark.parametrize("change", [
    "touch the TDXfile",
    "touch a module's data file",
    "edit a module file that nothing imports",
    "touch the manifest",
    "change the environment",
    "emit an mkosi tree",
])
def test_a_change_is_noticed(built, change):
    project, first = built
    env = None
    args = []
    if change == "touch the TDXfile":
        os.utime(project / "TDXfile")
    elif change == "touch a module's data file":
        os.utime(project / "modules/hello-service/tdx_hello_service/data/hello.conf.j2")
    elif change == "edit a module file that nothing imports":
        (project / "modules/baseline/NOTES.txt").write_text("not imported, but part of the module\n")
    elif change == "touch the manifest":
        os.utime(project / "build/hello.manifest.json")
    elif change == "change the environment":
        env = tdx_env(TDX_NOOP_TEST="1")
    time.sleep(RACY)
    if change == "emit an mkosi tree":
        proc = run_tdx("build", "-C", project, "--format", "directory", "--emit-mkosi", project.parent / "tree", "--json")
        assert json.loads(proc.stdout)["mkosi_tree"]
        result, _ = build(project)
        assert result["evaluated"] is False  # emitting a tree does not touch the image's stamp
        return
    result, _ = build(project, env=env)
    assert result["evaluated"] is True
    # Nothing the image is made of changed: mkosi is still skipped by the inputs digest.
    assert result["mkosi_skipped"] is True and result["sha256"] == first["sha256"]
    # Recorded again (after a lock update, tdx.lock itself is too fresh: one more evaluation).
    time.sleep(RACY)
    build(project, env=env)
    again, _ = build(project, env=env)
    assert again["evaluated"] is False


def test_a_config_change_rebuilds_and_a_failed_build_leaves_no_stamp(built):
    project, first = built
    tdxfile = project / "TDXfile"
    good = tdxfile.read_text()
    tdxfile.write_text(good.replace('greeting="bonjour"', 'greeting="salut"'))
    changed, _ = build(project)
    assert changed["evaluated"] is True and changed["mkosi_skipped"] is False
    assert changed["sha256"] != first["sha256"]
    assert "greeting=salut" in (project / "build/hello/etc/hello-fr/hello.conf").read_text()

    tdxfile.write_text(good + "\nraise RuntimeError('broken on purpose')\n")
    _, stderr = build(project, expect=1)
    assert "broken on purpose" in stderr
    assert list((project / "build").glob(".tdx-uptodate-*")) == []
    # Restored to the last good content: evaluated again, not taken from a stale stamp.
    tdxfile.write_text(good.replace('greeting="bonjour"', 'greeting="salut"'))
    result, _ = build(project)
    assert result["evaluated"] is True and result["sha256"] == changed["sha256"]
