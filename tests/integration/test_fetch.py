"""fetch(): real downloads from loopback servers, verified while streaming, cached by content."""

import hashlib
import os

import pytest

from conftest import need, run_tdx, tdx_env, write_tdxfile
from loopback import LoopbackServer, make_ca_and_server_cert

import tdx
from tdx import Error

DATA = os.urandom(3 * 1024 * 1024 + 17)
SHA = hashlib.sha256(DATA).hexdigest()


@pytest.fixture
def cache(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    monkeypatch.setenv("TDX_CACHE_DIR", str(folder))
    return folder


def fetch_files(cache):
    d = cache / "fetch"
    return sorted(p.name for p in d.iterdir()) if d.exists() else []


def test_download_verifies_caches_and_second_call_uses_no_network(cache):
    with LoopbackServer() as s:
        url = s.add("/go.tar.gz", DATA)
        path = tdx.fetch(url, sha256=SHA)
        assert path == cache / "fetch" / SHA and path.read_bytes() == DATA
        assert tdx.fetch(url, sha256="sha256:" + SHA.upper()) == path
        assert s.requests == ["/go.tar.gz"]
    assert fetch_files(cache) == [SHA]


def test_hash_is_mandatory_before_any_download(cache):
    with LoopbackServer() as s:
        url = s.add("/x", DATA)
        with pytest.raises(Error, match=r"needs sha256=.*\n  hint: run `tdx fetch --hash"):
            tdx.fetch(url)
        with pytest.raises(Error, match="is not a sha256 digest"):
            tdx.fetch(url, sha256="904b")
        assert s.requests == []


def test_mismatch_is_fatal_names_both_hashes_and_caches_nothing(cache):
    with LoopbackServer() as s:
        url = s.add("/x", DATA)
        wrong = "0" * 64
        with pytest.raises(Error) as e:
            tdx.fetch(url, sha256=wrong)
    msg = str(e.value)
    assert f"sha256 mismatch for {url}" in msg and f"expected {wrong}" in msg and f"actual   {SHA}" in msg
    assert "tdx fetch --hash" in msg
    assert fetch_files(cache) == []


def test_404_is_not_retried(cache):
    with LoopbackServer() as s:
        url = s.url("/missing")
        with pytest.raises(Error, match="HTTP 404"):
            tdx.fetch(url, sha256=SHA)
        assert s.requests == ["/missing"]
    assert fetch_files(cache) == []


def test_transient_failures_retry_then_fail(cache):
    with LoopbackServer() as s:
        url = s.add("/short", DATA[:1000], kind="truncate")
        with pytest.raises(Error, match="cannot download"):
            tdx.fetch(url, sha256=SHA)
        assert len(s.requests) == 4  # first try plus three retries
        s.add("/busy", 503, kind="status")
        with pytest.raises(Error, match="HTTP 503"):
            tdx.fetch(s.url("/busy"), sha256=SHA)
    assert fetch_files(cache) == []


def test_refused_connection(cache):
    with LoopbackServer() as s:
        url = s.url("/x")
    with pytest.raises(Error, match="cannot download .*127.0.0.1"):
        tdx.fetch(url, sha256=SHA)


def test_redirect_is_followed(cache):
    with LoopbackServer() as s:
        s.add("/real", DATA)
        url = s.add("/old", s.url("/real"), kind="redirect")
        assert tdx.fetch(url, sha256=SHA).read_bytes() == DATA
        assert s.requests == ["/old", "/real"]


def test_file_urls(cache, tmp_path):
    f = tmp_path / "local.bin"
    f.write_bytes(DATA)
    assert tdx.fetch(f.as_uri(), sha256=SHA).read_bytes() == DATA


def test_tls_with_private_ca(cache, tmp_path):
    need("openssl")
    ca, cert, key = make_ca_and_server_cert(tmp_path)
    with LoopbackServer(tls_cert=cert, tls_key=key) as s:
        url = s.add("/secure", DATA)
        with pytest.raises(Error) as e:
            tdx.fetch(url, sha256=SHA)
        assert "TLS failed" in str(e.value) and "certificate" in str(e.value).lower() and "--ca-bundle" in str(e.value)
        assert fetch_files(cache) == []
        assert tdx.fetch(url, sha256=SHA, ca_bundle=ca).read_bytes() == DATA


def test_cli_hash_and_tdxfile_errors(tmp_path):
    with LoopbackServer() as s:
        url = s.add("/tool.tar.gz", DATA)
        out = run_tdx("fetch", "--hash", url).stdout
        assert out == f"sha256:{SHA}\n"
        write_tdxfile(tmp_path, f"from tdx import Image, fetch\nimage = Image('f')\nfetch({url!r}, sha256='{'1' * 64}')\n")
        err = run_tdx("build", "-C", tmp_path, "--emit-mkosi", tmp_path / "t", expect=1,
                      env=tdx_env(TDX_CACHE_DIR=tmp_path / "c")).stderr
    assert f"{tmp_path}/TDXfile:3: fetch: sha256 mismatch for {url}" in err
    assert not (tmp_path / "c" / "fetch").exists() or not any((tmp_path / "c" / "fetch").iterdir())
