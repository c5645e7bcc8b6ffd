"""Soak test: run the DAG N times with random SIGKILLs and check nothing is lost or changed.

Each run starts from scratch in its own folder and is killed (Snakemake and its jobs, SIGKILL, at a
random moment) until a restart completes; then its tables and final metrics are compared with an
uninterrupted run of the same config. Prints runs, kills, resumes (jobs that continued from a
checkpoint or from stored search records) and mismatches (0 expected).

    python bench/soak.py [--runs 3] [--config config/config.yaml] [--kill-after 5 60] [--workdir /tmp/sigeo-soak]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--cores", "2", "--rerun-incomplete"]
#: Wall-clock figures (they differ between any two runs): JSON keys and table columns, by exact name.
TIMING_COLUMNS = {"seconds", "wall_seconds", "warmup_s", "search_s", "search_cost"}


def fresh(workdir: Path, config: Path) -> None:
    shutil.rmtree(workdir, ignore_errors=True)
    (workdir / "config").mkdir(parents=True)
    shutil.copy(config, workdir / "config" / "config.yaml")


def run_to_completion(workdir: Path, kill_after: tuple[float, float], rng: random.Random) -> int:
    """Start Snakemake, SIGKILL it at a random moment, restart, until a run completes; returns the kills."""
    kills = 0
    while True:
        subprocess.run([*SNAKEMAKE, "-d", str(workdir), "--unlock"], capture_output=True, check=False)
        proc = subprocess.Popen(
            [*SNAKEMAKE, "-d", str(workdir)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + rng.uniform(*kill_after)
        while proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        if proc.poll() is not None:
            if proc.returncode != 0:
                raise RuntimeError(f"snakemake failed in {workdir} (exit {proc.returncode}); see its logs")
            return kills
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        kills += 1


def resumes(workdir: Path) -> int:
    pattern = re.compile(r"resumed from \S+ at step|resuming: \d+ candidates")
    return sum(len(pattern.findall(log.read_text(errors="replace"))) for log in (workdir / "logs").rglob("*.log"))


def comparable(path: Path) -> str:
    """A result file's content without wall-clock figures (they differ between any two runs)."""
    if path.suffix == ".json":
        data = json.loads(path.read_text())
        return json.dumps(_drop_timing(data), sort_keys=True)
    if path.suffix == ".csv":
        import pandas as pd

        frame = pd.read_csv(path)
        frame = frame.drop(columns=[c for c in frame.columns if c in TIMING_COLUMNS])
        return frame.to_csv(index=False)
    return path.read_text()


def _drop_timing(value):
    if isinstance(value, dict):
        return {k: _drop_timing(v) for k, v in value.items() if k not in TIMING_COLUMNS}
    if isinstance(value, list):
        return [_drop_timing(v) for v in value]
    return value


def outputs(workdir: Path) -> dict[str, str]:
    files = [*(workdir / "results" / "tables").glob("*.csv"), *(workdir / "results" / "final").rglob("*.json")]
    return {str(f.relative_to(workdir)): comparable(f) for f in files}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--config", type=Path, default=ROOT / "config" / "config.yaml")
    parser.add_argument("--kill-after", type=float, nargs=2, default=(5.0, 60.0), metavar=("MIN_S", "MAX_S"))
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/sigeo-soak"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    reference = args.workdir / "reference"
    fresh(reference, args.config)
    started = time.monotonic()
    subprocess.run([*SNAKEMAKE, "-d", str(reference)], capture_output=True, check=True)
    expected = outputs(reference)
    print(f"uninterrupted run: {time.monotonic() - started:.0f} s, {len(expected)} result files", flush=True)
    total_kills = total_resumes = mismatches = 0
    for run in range(args.runs):
        workdir = args.workdir / f"run{run}"
        fresh(workdir, args.config)
        kills = run_to_completion(workdir, tuple(args.kill_after), rng)
        got = outputs(workdir)
        bad = sorted(k for k in expected.keys() | got.keys() if expected.get(k) != got.get(k))
        total_kills += kills
        total_resumes += resumes(workdir)
        mismatches += len(bad)
        print(f"run {run}: {kills} kills, {resumes(workdir)} resumes, {len(bad)} mismatches {bad[:3]}", flush=True)
    print(f"runs {args.runs}, kills {total_kills}, resumes {total_resumes}, mismatches {mismatches}")


if __name__ == "__main__":
    main()
