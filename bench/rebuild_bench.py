#!/usr/bin/env python3
"""Rebuild speed of the bundled example against a cold full build, in one run.

  cold:        fresh build cache and mkosi image cache (the downloaded packages and build roots
               are kept, so the network is not measured)
  no-op:       `tdx build` again with nothing changed (no build runs, mkosi is skipped)
  config-only: a template variable changed (builds are cache hits; mkosi reuses its cached image)

Prints seconds and ratios to the cold build (goals: no-op under 0.2 s; config-only at most 0.2x).
Usage: bench/rebuild_bench.py [--build build] [--work /var/tmp/tdx-bench/rebuild] [--format directory]
"""

import argparse
import os
import shutil
import subprocess
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=REPO / "build", type=Path)
    ap.add_argument("--work", default=Path("/var/tmp/tdx-bench/rebuild"), type=Path)
    ap.add_argument("--format", default="directory", choices=["directory", "disk"])
    ap.add_argument("--runs", default=3, type=int, help="runs of the no-op and config-only rebuilds")
    args = ap.parse_args()
    tdx = args.build / "bin" / "tdx"
    shared = Path(os.environ.get("TDX_TEST_CACHE", "/var/tmp/tdx-test-cache"))
    project = args.work / "hello"
    cache = args.work / "cache"
    shutil.rmtree(args.work, ignore_errors=True)
    shutil.copytree(REPO / "examples" / "hello", project, ignore=shutil.ignore_patterns("build", "__pycache__"))
    cache.mkdir(parents=True)
    for part in ("buildroots", "mkosi-packages"):  # downloads and build roots are not what is measured
        (shared / part).mkdir(parents=True, exist_ok=True)
        (cache / part).symlink_to(shared / part, target_is_directory=True)
    env = {**os.environ, "TDX_CACHE_DIR": str(cache)}

    def build():
        t = time.perf_counter()
        subprocess.run([str(tdx), "-q", "build", "-C", str(project), "--format", args.format], env=env, check=True,
                       stdout=subprocess.DEVNULL)
        return time.perf_counter() - t

    cold = build()
    noop = sorted(build() for _ in range(args.runs))[args.runs // 2]
    tdxfile = project / "TDXfile"
    text = tdxfile.read_text()
    config = []
    for i in range(args.runs):
        tdxfile.write_text(text.replace('greeting="bonjour"', f'greeting="salut-{i}"'))
        config.append(build())
    config = sorted(config)[args.runs // 2]
    print(f"example: examples/hello, format {args.format}, medians of {args.runs} rebuilds")
    print(f"cold full build      {cold:7.2f} s")
    print(f"no-op build          {noop:7.2f} s  {noop / cold:6.4f}x cold (goal: under 0.2 s)")
    print(f"config-only rebuild  {config:7.2f} s  {config / cold:5.3f}x cold (goal: at most 0.2x)")


if __name__ == "__main__":
    main()
