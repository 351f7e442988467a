#!/usr/bin/env python3
"""fetch() against `curl -o` for the same 1 GiB file from a loopback nginx, side by side in one run.

fetch() hashes while it streams and renames into the cache only on a match; curl just writes.
Prints throughputs (median of --runs) and the ratio fetch/curl (goal: at least 0.9).
Usage: bench/fetch_bench.py [--build build] [--work /var/tmp/tdx-bench] [--runs 5] [--size-mib 1024]
"""

import argparse
import hashlib
import os
import shutil
import socket
import statistics
import subprocess
import time
from pathlib import Path

NGINX_CONF = """daemon off;
worker_processes 1;
pid {work}/nginx.pid;
error_log {work}/nginx-error.log;
events {{ worker_connections 64; }}
http {{
  access_log off;
  sendfile on;
  client_body_temp_path {work}/tmp-body;
  proxy_temp_path {work}/tmp-proxy;
  fastcgi_temp_path {work}/tmp-fastcgi;
  uwsgi_temp_path {work}/tmp-uwsgi;
  scgi_temp_path {work}/tmp-scgi;
  server {{
    listen 127.0.0.1:{port};
    root {root};
  }}
}}
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=Path(__file__).resolve().parents[1] / "build", type=Path)
    ap.add_argument("--work", default=Path("/var/tmp/tdx-bench/fetch"), type=Path)
    ap.add_argument("--runs", default=5, type=int)
    ap.add_argument("--size-mib", default=1024, type=int)
    args = ap.parse_args()
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(nginx).exists():
        raise SystemExit("nginx is not installed (scripts/setup-debian.sh installs nginx-light)")
    work = args.work
    root = work / "www"
    root.mkdir(parents=True, exist_ok=True)
    blob = root / "blob.bin"
    size = args.size_mib << 20
    if not blob.exists() or blob.stat().st_size != size:
        with open(blob, "wb") as f:
            for _ in range(args.size_mib):
                f.write(os.urandom(1 << 20))
    sha = hashlib.sha256(blob.read_bytes()).hexdigest()
    port = free_port()
    (work / "nginx.conf").write_text(NGINX_CONF.format(work=work, port=port, root=root))
    server = subprocess.Popen([nginx, "-c", str(work / "nginx.conf"), "-p", str(work)])
    try:
        for _ in range(50):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        url = f"http://127.0.0.1:{port}/blob.bin"
        out = work / "curl.out"
        cache = work / "cache"
        bench = args.build / "bin" / "tdx_fetch_bench"
        tdx_times, curl_times = [], []
        for _ in range(args.runs):  # alternate, so both see the same machine state
            shutil.rmtree(cache, ignore_errors=True)
            t = time.perf_counter()
            subprocess.run([str(bench), url, sha], check=True, capture_output=True,
                           env={**os.environ, "TDX_CACHE_DIR": str(cache)})
            tdx_times.append(time.perf_counter() - t)
            out.unlink(missing_ok=True)
            t = time.perf_counter()
            subprocess.run(["curl", "-sS", "-o", str(out), url], check=True)
            curl_times.append(time.perf_counter() - t)
        assert (cache / "fetch" / sha).stat().st_size == size
        tdx_t, curl_t = statistics.median(tdx_times), statistics.median(curl_times)
        mib = size / (1 << 20)
        print(f"file: {mib:.0f} MiB from nginx on loopback, {args.runs} runs each, medians")
        print(f"tdx fetch (sha256 verified, cached): {tdx_t:6.3f} s  {mib / tdx_t:7.0f} MiB/s")
        print(f"curl -o                            : {curl_t:6.3f} s  {mib / curl_t:7.0f} MiB/s")
        print(f"throughput ratio fetch/curl: {curl_t / tdx_t:.2f}x (goal: at least 0.9)")
    finally:
        server.terminate()
        server.wait()
        shutil.rmtree(work / "cache", ignore_errors=True)
        (work / "curl.out").unlink(missing_ok=True)


if __name__ == "__main__":
    main()
