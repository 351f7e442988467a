"""fetch_git(): real repositories made with git, served over file://, `git daemon` and git's smart
HTTP protocol on 127.0.0.1, checked out by tdx (libgit2) and verified by their tree hash."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import PYTHON_DIR, run_tdx, tdx_env, write_tdxfile
from inputs_support import (GitDaemon, GitHttpServer, free_port, git, h1, make_repo, sha, snapshot, tree_entries,
                            tree_hash, write_files)

FILES = {
    "README": "hello\n",
    "src/main.c": "int main(void) { return 0; }\n",
    "tools/run.sh": ("exec", b"#!/bin/sh\necho run\n"),
    "docs/link-to-readme": ("link", "../README"),
    "data/blob.bin": bytes(range(256)) * 16,
}


@pytest.fixture
def repo(tmp_path):
    r = make_repo(tmp_path / "served" / "proj.git", FILES)
    git(r, "tag", "-a", "v1", "-m", "release 1")
    git(r, "tag", "light")
    return r


@pytest.fixture
def cache(tmp_path):
    return tmp_path / "cache"


def env_for(cache):
    return tdx_env(TDX_CACHE_DIR=cache)


def expected_hash(repo):
    """The tree hash derived independently from the files the test wrote (not from tdx)."""
    work = {k: (v[1].encode() if isinstance(v[1], str) else v[1]) if isinstance(v, tuple) else
            (v.encode() if isinstance(v, str) else v) for k, v in FILES.items()}
    return tree_entries(repo) == work and tree_hash(repo)


def project(tmp_path, url, pin, sha256, name="p"):
    folder = tmp_path / name
    write_tdxfile(folder, "import json, sys\nfrom tdx import Image, fetch_git\nimage = Image('x')\n"
                          f"src = fetch_git({url!r}, {pin}, sha256={sha256!r})\n"
                          "print(json.dumps({'path': str(src), 'type': type(src).__name__}))\n")
    return folder


def lock(folder, cache, *args, expect=0):
    return run_tdx("lock", "-C", folder, *args, env=env_for(cache), expect=expect)


def printed(proc):
    return json.loads(proc.stdout.splitlines()[0])


def test_tag_over_file_url_is_verified_cached_and_locked(tmp_path, repo, cache):
    digest = expected_hash(repo)
    assert digest, "the repository does not hold what the test wrote"
    commit = git(repo, "rev-parse", "v1^{commit}")
    folder = project(tmp_path, f"file://{repo}", "tag='v1'", sha(digest))
    proc = lock(folder, cache)
    out = printed(proc)
    checkout = Path(out["path"])
    assert out["type"] == "PosixPath"
    assert checkout == cache / "git" / commit
    assert (checkout / "README").read_text() == "hello\n"
    assert os.readlink(checkout / "docs" / "link-to-readme") == "../README"
    assert os.access(checkout / "tools" / "run.sh", os.X_OK)
    assert (checkout / ".git").is_dir()  # kept, but not part of the hash
    assert tree_hash(checkout) == digest
    text = (folder / "tdx.lock").read_text()
    assert (f'[[fetch]]\ngit = "file://{repo}"\ntag = "v1"\nresolved_rev = "{commit}"\n'
            f'integrity = "{sha(digest)}"\n') in text
    # Locking again: same bytes, and the checkout comes from the cache.
    lock(folder, cache)
    assert (folder / "tdx.lock").read_text() == text


def test_hash_may_be_written_as_h1_or_bare_hex_and_lightweight_tags_work(tmp_path, repo, cache):
    digest = tree_hash(repo)
    a = printed(lock(project(tmp_path, f"file://{repo}", "tag='light'", h1(digest), "a"), cache))
    b = printed(lock(project(tmp_path, str(repo), "tag='v1'", digest.hex(), "b"), cache))
    assert a["path"] == b["path"]


def test_commit_pin_uses_no_network_once_cached(tmp_path, repo, cache):
    commit = git(repo, "rev-parse", "HEAD")
    folder = project(tmp_path, f"file://{repo}", f"commit={commit!r}", sha(tree_hash(repo)))
    first = printed(lock(folder, cache))
    repo.rename(tmp_path / "gone")  # the remote disappears
    assert printed(lock(folder, cache)) == first
    assert f'git = "file://{repo}"\nresolved_rev = "{commit}"\n' in (folder / "tdx.lock").read_text()


def test_git_daemon_on_loopback(tmp_path, repo, cache):
    daemon = GitDaemon(repo.parent)
    try:
        folder = project(tmp_path, f"{daemon.url}/proj.git", "tag='v1'", sha(tree_hash(repo)))
        out = printed(lock(folder, cache))
    finally:
        daemon.close()
    assert tree_hash(out["path"]) == tree_hash(repo)
    assert f'git = "{daemon.url}/proj.git"' in (folder / "tdx.lock").read_text()


def test_smart_http_on_loopback(tmp_path, repo, cache):
    server = GitHttpServer(repo.parent)
    try:
        folder = project(tmp_path, f"{server.url}/proj.git", "tag='v1'", sha(tree_hash(repo)))
        out = printed(lock(folder, cache))
    finally:
        server.close()
    assert tree_hash(out["path"]) == tree_hash(repo)


def test_python_api_returns_a_path(tmp_path, repo, cache):
    code = ("import tdx\n"
            f"p = tdx.fetch_git({f'file://{repo}'!r}, tag='v1', sha256={sha(tree_hash(repo))!r})\n"
            "print(type(p).__name__, p)\n")
    proc = subprocess.run([sys.executable, "-c", code], env={**env_for(cache), "PYTHONPATH": str(PYTHON_DIR)},
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    kind, path = proc.stdout.split()
    assert kind == "PosixPath" and Path(path).parent == cache / "git"


# --- bad input: a clear error, exit 1, the cache and tdx.lock as they were ----------------------

def check_refused(tmp_path, folder, cache, *needles):
    before = snapshot(cache, folder / "tdx.lock")
    err = lock(folder, cache, expect=1).stderr
    for n in needles:
        assert n in err, f"{n!r} not in:\n{err}"
    assert f"{folder}/TDXfile:4" in err  # the TDXfile line that called fetch_git
    assert snapshot(cache, folder / "tdx.lock") == before, "a failed fetch_git changed the cache or the lock"
    return err


def test_tree_hash_mismatch_leaves_nothing_in_the_cache(tmp_path, repo, cache):
    wrong = "sha256:" + "0" * 64
    folder = project(tmp_path, f"file://{repo}", "tag='v1'", wrong)
    digest = tree_hash(repo)
    err = check_refused(tmp_path, folder, cache, "tree hash mismatch", "expected h1:", "actual   " + h1(digest),
                        sha(digest), f'hint: if this tree is right, pin it: sha256="{sha(digest)}"')
    assert not cache.exists(), f"the cache was created: {list(cache.rglob('*'))}"
    # With a populated cache, a wrong pin for a cached commit is refused too, without changing it.
    good = project(tmp_path, f"file://{repo}", "tag='v1'", sha(digest), "good")
    lock(good, cache)
    check_refused(tmp_path, folder, cache, "tree hash mismatch")
    assert err


def test_moved_tag_names_both_commits(tmp_path, repo, cache):
    old = git(repo, "rev-parse", "v1^{commit}")
    folder = project(tmp_path, f"file://{repo}", "tag='v1'", sha(tree_hash(repo)))
    lock(folder, cache)
    # The tag moves to a new commit with the same files: only the lock can tell.
    git(repo, "commit", "-q", "--allow-empty", "-m", "same tree, new commit")
    git(repo, "tag", "-f", "-a", "v1", "-m", "moved")
    new = git(repo, "rev-parse", "v1^{commit}")
    assert new != old
    check_refused(tmp_path, folder, cache, "tag 'v1' of file://", "moved since it was locked",
                  f"locked commit {old}", f"now at commit {new}", f"tdx lock --update file://{repo}")
    # tdx build refuses it the same way (before building anything).
    err = run_tdx("build", "-C", folder, "--emit-mkosi", tmp_path / "tree", env=env_for(cache), expect=1).stderr
    assert f"locked commit {old}" in err and not (tmp_path / "tree").exists()
    # Accepting the move explicitly updates the lock.
    lock(folder, cache, "--update", f"file://{repo}")
    assert f'resolved_rev = "{new}"' in (folder / "tdx.lock").read_text()


@pytest.mark.parametrize("pin,sha256,needles", [
    ("tag='v2'", None, ["has no tag 'v2' (did you mean 'v1'?)", "tags there: light, v1"]),
    ("commit='" + "ab" * 20 + "'", None, ["commit " + "ab" * 20 + " is not in the repository"]),
    ("commit='abc123'", None, ["commit 'abc123' is not a full 40-digit commit id"]),
    ("tag='v1', commit='" + "ab" * 20 + "'", None, ["needs exactly one of tag= or commit="]),
    ("tag='v1'", "", ["needs sha256=", "tdx fetch --hash"]),
    ("tag='v1'", "sha256:xyz", ["'sha256:xyz' is not a content hash", "sha256:<64 hex digits> or h1:<base64>"]),
    ("tag='v1'", "h1:abc", ["'h1:abc' is not a content hash"]),
])
def test_bad_arguments(tmp_path, repo, cache, pin, sha256, needles):
    folder = project(tmp_path, f"file://{repo}", pin, sha(tree_hash(repo)) if sha256 is None else sha256)
    check_refused(tmp_path, folder, cache, *needles)


def test_unreachable_remote(tmp_path, repo, cache):
    closed = free_port()
    folder = project(tmp_path, f"git://127.0.0.1:{closed}/proj.git", "tag='v1'", sha(tree_hash(repo)))
    check_refused(tmp_path, folder, cache, f"cannot reach git://127.0.0.1:{closed}/proj.git", "hint: check the URL")
    missing = project(tmp_path, f"file://{tmp_path}/no-such-repo", "tag='v1'", sha(tree_hash(repo)), "missing")
    check_refused(tmp_path, missing, cache, "cannot reach file://")
