"""Preprocessing throughput and memory (issue: data layer).

Generates synthetic Criteo-format files of 1 M and 4 M rows (cached under --workdir), then runs
the full prepare step (parse + hash + split + write) on each in a fresh process and prints rows/s
and peak RSS. As a baseline measured in the same run it times the reference's way of turning a
row into numbers — a Python loop per line (split the fields, ``int`` the label and the dense
values, ``int(token, 16) % (N - 1) + 1`` per categorical) — which its loader repeats every epoch.

The tabular format (your own CSV/Parquet files) is timed on the same rows at each size, rewritten
as a Parquet file and as a CSV file with a header and declared as label, 13 dense and 26
categorical columns; its rows/s are printed as a ratio to the Criteo parser's in the same run.

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
import json, sys, time
from sigeo.data.formats import get_format
from sigeo.data.prepare import PrepareSettings, prepare
from sigeo.data.tabular import TabularFormat, prepare_tabular
raw, out = sys.argv[1], sys.argv[2]
t = time.perf_counter()
if raw.endswith(".txt"):
    meta = prepare(get_format("criteo"), raw, out, PrepareSettings(seed=1, max_bad_rows=1000, max_table_size=None))
else:
    fmt = TabularFormat(label="label", at_least=None, dense_columns=tuple(f"I{i}" for i in range(1, 14)),
                        sparse_features=tuple(f"C{i}" for i in range(1, 27)))
    meta = prepare_tabular(fmt, [raw], out, PrepareSettings(seed=1, max_bad_rows=1000, max_table_size=TABULAR_CAP))
seconds = time.perf_counter() - t
# VmHWM, not ru_maxrss: Linux carries ru_maxrss over exec, so it would report the parent's peak
peak_mb = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:")) / 1024
print(json.dumps({"rows": sum(meta["rows"].values()), "seconds": seconds, "peak_rss_mb": peak_mb}))
"""


#: The tabular runs' max_table_size (it bounds the distinct values counted per column).
TABULAR_CAP = 1_000_000


#: Rows per row group of the bench's Parquet file (Arrow's writer makes each write at least one group).
PARQUET_ROW_GROUP = 65_536


def run_child(raw: Path, out: Path) -> dict:
    """``prepare`` of one file in a fresh process (so its peak RSS is its own): rows, seconds, peak RSS."""
    child = CHILD.replace("TABULAR_CAP", str(TABULAR_CAP))
    proc = subprocess.run([sys.executable, "-c", child, str(raw), str(out)], capture_output=True, text=True, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def as_tabular(raw: Path, folder: Path) -> tuple[Path, Path]:
    """The Criteo file's rows as ``train.parquet`` and ``train.csv`` (with a header), streamed block by block."""
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    from sigeo.data.formats import CRITEO

    parquet, text = folder / "train.parquet", folder / "train.csv"
    if parquet.exists() and text.exists():
        return parquet, text
    types = {name: pa.int64() if name[0] in "lI" else pa.string() for name in CRITEO.columns}
    reader = pacsv.open_csv(
        raw,
        read_options=pacsv.ReadOptions(column_names=list(CRITEO.columns)),
        parse_options=pacsv.ParseOptions(delimiter="\t", quote_char=False),
        convert_options=pacsv.ConvertOptions(column_types=types, strings_can_be_null=True),
    )
    with (
        pq.ParquetWriter(parquet, reader.schema) as pw,
        pacsv.CSVWriter(text, reader.schema, write_options=pacsv.WriteOptions(quoting_style="none")) as cw,
    ):
        pending: list = []
        for batch in reader:
            cw.write_batch(batch)
            pending.append(batch)
            if sum(b.num_rows for b in pending) >= PARQUET_ROW_GROUP:
                pw.write_table(pa.Table.from_batches(pending))  # one row group per PARQUET_ROW_GROUP rows or so
                pending = []
        if pending:
            pw.write_table(pa.Table.from_batches(pending))
    return parquet, text


def _speed(result: dict) -> float:
    return result["rows"] / result["seconds"]


def reference_style_parse(raw: Path, limit: int) -> float:
    """Rows/s of the reference loader's per-row Python parse (docs/reference.md §1.5) on the first ``limit`` rows."""
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
    from sigeo.config import load_settings
    from sigeo.data.synthetic import generate

    results: dict[str, list[dict]] = {"criteo": [], "parquet": [], "csv": []}
    for rows in args.rows:
        raw = args.workdir / f"criteo-{rows}" / "train.txt"
        if not raw.exists():
            print(f"generating {rows:,} synthetic Criteo rows in {raw} ...", flush=True)
            synthetic = {
                "format": "criteo",
                "source": "synthetic",
                "synthetic": {"rows": rows, "seed": 1, "max_vocab": 200_000},
            }
            spec = load_settings({"datasets": {"criteo": synthetic}}).datasets["criteo"].spec
            generate(spec.raw_format, spec.synthetic, raw)
        parquet, text = as_tabular(raw, raw.parent)
        for name, source in (("criteo", raw), ("parquet", parquet), ("csv", text)):
            result = run_child(source, args.workdir / f"out-{rows}-{name}")
            results[name].append(result)
            speed = result["rows"] / result["seconds"]
            ratio = "" if name == "criteo" else f" ({speed / _speed(results['criteo'][-1]):.2f}x the Criteo parser)"
            print(
                f"prepare {name:>7} {result['rows']:>10,} rows: {result['seconds']:6.2f} s, {speed:>9,.0f} rows/s"
                f"{ratio}, peak RSS {result['peak_rss_mb']:7.1f} MB",
                flush=True,
            )
    raw = args.workdir / f"criteo-{args.rows[0]}" / "train.txt"
    ours = _speed(results["criteo"][0])
    baseline = reference_style_parse(raw, 200_000)
    print(f"baseline (reference-style per-row Python parse): {baseline:,.0f} rows/s; prepare is {ours / baseline:.1f}x")
    if len(args.rows) > 1:
        for name, runs in results.items():
            growth = runs[-1]["peak_rss_mb"] / runs[0]["peak_rss_mb"] - 1
            print(f"{name}: peak RSS growth from {runs[0]['rows']:,} to {runs[-1]['rows']:,} rows: {growth:+.1%}")
    print("target: >= 300,000 rows/s on 2 cores; RSS growth within 10 %")


if __name__ == "__main__":
    main()
