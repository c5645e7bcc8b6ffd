"""Preprocessing throughput and memory (issue: data layer).

Generates synthetic Criteo-format files of 1 M and 4 M rows (cached under --workdir), then runs
the full prepare step (parse + hash + split + write) on each in a fresh process and prints rows/s
and peak RSS. As a baseline measured in the same run it times the reference's way of turning a
row into numbers — a Python loop per line (split the fields, ``int`` the label and the dense
values, ``int(token, 16) % (N - 1) + 1`` per categorical) — which its loader repeats every epoch.

    python bench/preprocess.py [--rows 1000000 4000000] [--workdir /tmp/sigeo-bench]
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import time
from pathlib import Path

CHILD = r"""
import json, resource, sys, time
from sigeo.data.formats import get_format
from sigeo.data.prepare import PrepareSettings, prepare
raw, out = sys.argv[1], sys.argv[2]
t = time.perf_counter()
meta = prepare(get_format("criteo"), raw, out, PrepareSettings(seed=1))
seconds = time.perf_counter() - t
peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"rows": sum(meta["rows"].values()), "seconds": seconds, "peak_rss_mb": peak_mb}))
"""


def reference_style_parse(raw: Path, limit: int) -> float:
    """Rows/s of the reference loader's per-row Python parse (REFERENCE §1.5) on the first ``limit`` rows."""
    from sigeo.data.formats import CRITEO_TABLE_SIZES

    moduli = [n - 1 for n in CRITEO_TABLE_SIZES]
    rows = 0
    t = time.perf_counter()
    with open(raw) as fh:
        for line in fh:
            fields = line.rstrip("\n").split("\t")
            _label = int(fields[0])
            _dense = [math.log(max(int(v), 0) + 1) if v else 0.0 for v in fields[1:14]]
            _sparse = [int(v, 16) % m + 1 if v else 0 for v, m in zip(fields[14:], moduli, strict=True)]
            rows += 1
            if rows == limit:
                break
    return rows / (time.perf_counter() - t)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 4_000_000])
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/sigeo-bench"))
    args = parser.parse_args()
    from sigeo.data.formats import get_format
    from sigeo.data.synthetic import SyntheticSpec, generate

    results = []
    for rows in args.rows:
        raw = args.workdir / f"criteo-{rows}" / "train.txt"
        if not raw.exists():
            print(f"generating {rows:,} synthetic Criteo rows in {raw} ...", flush=True)
            generate(get_format("criteo"), SyntheticSpec(rows=rows, seed=1, max_vocab=200_000), raw)
        proc = subprocess.run(
            [sys.executable, "-c", CHILD, str(raw), str(args.workdir / f"out-{rows}")],
            capture_output=True,
            text=True,
            check=True,
        )
        result = json.loads(proc.stdout.strip().splitlines()[-1])
        results.append(result)
        print(
            f"prepare {result['rows']:>10,} rows: {result['seconds']:6.2f} s, "
            f"{result['rows'] / result['seconds']:>9,.0f} rows/s, peak RSS {result['peak_rss_mb']:7.1f} MB",
            flush=True,
        )
    raw = args.workdir / f"criteo-{args.rows[0]}" / "train.txt"
    baseline = reference_style_parse(raw, 200_000)
    ours = results[0]["rows"] / results[0]["seconds"]
    print(f"baseline (reference-style per-row Python parse): {baseline:,.0f} rows/s; prepare is {ours / baseline:.1f}x")
    if len(results) > 1:
        growth = results[-1]["peak_rss_mb"] / results[0]["peak_rss_mb"] - 1
        print(f"peak RSS growth from {results[0]['rows']:,} to {results[-1]['rows']:,} rows: {growth:+.1%}")
    print("target: >= 300,000 rows/s on 2 cores; RSS growth within 10 %")


if __name__ == "__main__":
    main()
