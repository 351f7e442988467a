#!/usr/bin/env python3
"""Tree benchmarks for the build cache, each measured side by side with its yardstick in one run.

  1. hashing a tree cold:   tdx tree hash  vs  tar --sort=name -cf - TREE | openssl dgst -sha256
  2. re-checking unchanged: tdx with its digest cache  vs  git diff-files (index refreshed);
     both are whole processes: tdx_bench links only the tree code and OpenSSL, as git links its own
  3. restoring artifacts:   tdx restore (hard links)  vs  cp -a

Trees: a copy of /usr/include, and 50,000 small files. Prints medians of --runs runs and ratios.
Usage: bench/tree_bench.py [--build build] [--work /var/tmp/tdx-bench] [--runs 5]
"""

import argparse
import os
import random
import shutil
import statistics
import subprocess
import time
from pathlib import Path


def sh(cmd, **kw):
    return subprocess.run(cmd, shell=isinstance(cmd, str), check=True, capture_output=True, text=True, **kw)


def drop_caches():
    """Cold means the page cache is dropped first; where that is not allowed, say so once."""
    try:
        sh("sync")
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
        return True
    except OSError:
        return False


def side_by_side(ours, yardstick, before=None, runs=5):
    """Median seconds of each command, run alternately so both see the same machine state."""
    samples = ([], [])
    for _ in range(runs):
        for cmd, out in ((ours, samples[0]), (yardstick, samples[1])):
            if before:
                before()
            t = time.perf_counter()
            sh(cmd)
            out.append(time.perf_counter() - t)
    return statistics.median(samples[0]), statistics.median(samples[1])


def make_trees(work: Path):
    include = work / "usr-include"
    if not include.exists():
        shutil.copytree("/usr/include", include, symlinks=True)
    small = work / "small-50k"
    if not small.exists():
        rng = random.Random(42)
        for i in range(50_000):
            d = small / f"d{i % 250:03d}"
            d.mkdir(parents=True, exist_ok=True)
            (d / f"f{i:05d}.txt").write_bytes(rng.randbytes(rng.randint(1000, 9000)))
    return {"/usr/include copy": include, "50k small files": small}


def size_of(tree: Path):
    files = total = 0
    for p in tree.rglob("*"):
        if p.is_file() and not p.is_symlink():
            files += 1
            total += p.stat().st_size
    return files, total


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=Path(__file__).resolve().parents[1] / "build", type=Path)
    ap.add_argument("--work", default=Path("/var/tmp/tdx-bench"), type=Path)
    ap.add_argument("--runs", default=5, type=int)
    args = ap.parse_args()
    bench = args.build / "bin" / "tdx_bench"
    args.work.mkdir(parents=True, exist_ok=True)
    trees = make_trees(args.work)
    cold = drop_caches()
    print(f"cores: {os.cpu_count()}; page cache dropped before cold runs: {'yes' if cold else 'no (not permitted)'}")
    rows = []
    for label, tree in trees.items():
        files, total = size_of(tree)
        print(f"\n== {label}: {files} files, {total / 1e6:.0f} MB")
        # 1. cold hash
        tdx_t, tar_t = side_by_side([str(bench), "hash", str(tree)],
                                    f"tar --sort=name -C {tree} -cf - . | openssl dgst -sha256",
                                    before=drop_caches if cold else None, runs=args.runs)
        rows.append((label, "hash, cold" if cold else "hash, warm", tdx_t, "tar | openssl dgst", tar_t, 1.2))
        # 2. re-check unchanged tree
        cache = args.work / f"{tree.name}.digests"
        # git's repository lives beside the tree, so the other measurements see the same files.
        git = ["git", f"--git-dir={args.work / (tree.name + '.git')}", f"--work-tree={tree}"]
        if not (args.work / (tree.name + ".git")).exists():
            sh(git + ["init", "-q"])
            sh(git + ["add", "-A"])
        time.sleep(2.5)  # older than both tools' racy windows
        sh(git + ["update-index", "--refresh"])
        sh([str(bench), "hash", str(tree), str(cache)])
        out = sh([str(bench), "hash", str(tree), str(cache)]).stdout
        assert " misses 0" in out, out
        tdx_t, git_t = side_by_side([str(bench), "hash", str(tree), str(cache)], git + ["diff-files", "--quiet"],
                                    runs=args.runs)
        rows.append((label, "re-check unchanged", tdx_t, "git diff-files", git_t, 1.5))
        # 3. restore into an image tree
        target = args.work / "restore-target"

        def clear():
            if target.exists():
                aside = args.work / f"old-{time.monotonic_ns()}"
                target.rename(aside)
                shutil.rmtree(aside)

        tdx_t, cp_t = side_by_side([str(bench), "restore", str(tree), str(target)], ["cp", "-a", str(tree), str(target)],
                                   before=clear, runs=args.runs)
        clear()
        rows.append((label, "restore artifacts", tdx_t, "cp -a", cp_t, 0.35))
    print(f"\n{'tree':<20} {'operation':<20} {'tdx':>9} {'yardstick':<20} {'time':>9} {'ratio':>7} {'goal':>7}")
    for label, op, a, name, b, goal in rows:
        ratio = a / b
        print(f"{label:<20} {op:<20} {a * 1000:7.1f}ms {name:<20} {b * 1000:7.1f}ms {ratio:6.2f}x {'<=' + str(goal):>7}"
              f"  {'ok' if ratio <= goal else 'MISSED'}")


if __name__ == "__main__":
    main()
