"""How far are the found models from the Bayes log loss, and is the rest fit or estimation? (Issue 15.)

Retrains the architectures a default run selected (``best.json`` of every search under
``--results``: ``results/final/demo/<space>/w*/<proxy>/best.json``) and the logistic-regression
baseline with the config's final-training recipe, on the demo's synthetic data (its teacher, split
8:1:1) at each size in ``--rows``, and prints per size and model the test log loss, its gap to the
teacher's (Bayes) test log loss, and the same gap on the training split. A training gap far below
the test gap means the model fits the teacher on the rows it saw and the distance left on the test
split is estimation, which only more rows (or a stronger prior) close; equal gaps mean the
architecture or the training falls short. ``--set KEY=VALUE`` (repeatable) changes a key of the
``final`` section for every training (``--set schedule=cosine --set epochs=8``), to see whether
another recipe closes the test gap.

    snakemake --cores 2                  # a default run: its selected architectures
    python bench/found_models.py [--rows 100000 300000] [--results results] [--set KEY=VALUE] \
                                 [--procs 2] [--workdir /tmp/sigeo-bench-found]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path

import torch
import yaml
from ground_truth import demo_settings, make_data

from sigeo.baselines import LogisticRegression
from sigeo.data.store import Dataset
from sigeo.final import build_standalone, train_model
from sigeo.io import TrainingOutputs
from sigeo.space.choice import Architecture
from sigeo.train import evaluate

LOGREG = "logistic regression"


def selected(results: Path) -> dict[str, dict]:
    """The architecture each search of the default run selected, by ``<proxy> @ <level>``."""
    found = {}
    for path in sorted((results / "final" / "demo").glob("*/w*/*/best.json")):
        level, proxy = path.parent.parent.name, path.parent.name
        found[f"{proxy} @ {level[1:]}"] = json.loads(path.read_text())["arch"]
    return found


def train_one(job: tuple[Path, str, dict | None, dict, Path]) -> tuple[str, float, float, float]:
    """One training with the demo's final recipe: (name, log loss on the training split, test log loss,
    seconds); NaN losses for a diverged run."""
    data, name, arch, changes, out = job
    torch.set_num_threads(1)
    settings = replace(demo_settings().final, **changes)
    dataset = Dataset.open(data)
    cpu = torch.device("cpu")
    started = time.perf_counter()
    if arch is None:
        model = LogisticRegression(dataset.num_dense, dataset.table_sizes)
    else:
        model = build_standalone(Architecture.from_dict(arch), dataset, settings, cpu)
    metrics = train_model(model, data, settings, TrainingOutputs.in_folder(out), cpu)
    took = time.perf_counter() - started
    if metrics.get("test") is None:
        return name, float("nan"), float("nan"), took
    model.eval()
    with torch.no_grad():
        fit = evaluate(lambda b: model(b[0], b[1]), dataset.split("train"), 16384, cpu)
    return name, fit["logloss"], metrics["test"]["logloss"], took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, nargs="+", default=None, help="synthetic rows (default: the demo's)")
    parser.add_argument("--results", type=Path, default=Path("results"), help="a default run's results folder")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="a final-training key")
    parser.add_argument("--procs", type=int, default=2)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/sigeo-bench-found"))
    args = parser.parse_args()
    archs = selected(args.results)
    if not archs:
        sys.exit(f"no {args.results}/final/demo/*/w*/*/best.json: run the default config first (snakemake --cores 2)")
    demo = demo_settings()
    changes = {key: yaml.safe_load(value) for key, value in (item.split("=", 1) for item in args.set)}
    final = replace(demo.final, **changes)
    models: dict[str, dict | None] = {**archs, LOGREG: None}
    print(
        f"{len(archs)} selected architectures and the logistic regression, trained with the demo's final "
        f"recipe{f' with {changes}' if changes else ''} ({final.schedule}, up to {final.epochs_to_run} "
        f"epochs, embedding L2 {final.embedding_l2:g})",
        flush=True,
    )
    for rows in args.rows or [demo.spec.synthetic.rows]:
        folder = args.workdir / f"rows{rows}"
        data = make_data(demo, rows, folder)
        meta = json.loads((data / "meta.json").read_text())
        bayes_test = meta["bayes_logloss"]["test"]
        bayes_fit = meta["bayes_logloss"]["train"]
        tag = "-".join(f"{key}{value}" for key, value in changes.items()) or "config"
        runs = folder / f"runs-{tag}"
        jobs = [(data, name, arch, changes, runs / name.replace(" ", "_")) for name, arch in models.items()]
        print(
            f"{rows:,} rows ({meta['rows']['train']:,} training): Bayes test {bayes_test:.4f}, "
            f"on the training split {bayes_fit:.4f}",
            flush=True,
        )
        with ProcessPoolExecutor(args.procs) as pool:
            for name, fit, test, took in pool.map(train_one, jobs):
                print(
                    f"  {name:20s} test {test:.4f} (gap {test - bayes_test:+.4f}); training split "
                    f"{fit:.4f} (gap {fit - bayes_fit:+.4f}); {took:.0f} s",
                    flush=True,
                )


if __name__ == "__main__":
    main()
