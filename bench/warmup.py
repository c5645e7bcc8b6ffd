"""Does the warm-up teach the supernet something? The figures of issue 16, with verdicts.

On the embedded demo (prepared by the workflow: ``snakemake --cores 1 results/data/demo/meta.json``)
it warms up at 0 %, 10 % and 100 % with the settings of ``config/config.yaml`` and prints: the full
path's validation log loss and the fraction of the base-rate-to-Bayes gap it closes (claim: at
least half), the panel's mean against the base rate (claim: below), the 10 % panel against the 0 %
panel (claim: better), and seconds per warm-up step. On a real ratings data set in Criteo's format
(``bench/realdata.py``: MovieLens 100K from RecBole's wheel) it warms up at 100 % and compares the
full path with a logistic regression on one-hot ids and standardised integers (scikit-learn), on
the same split (claim: the full path closes at least half the base-rate-to-LR gap).

Intervals are 95 % paired bootstraps over validation rows; a claim PASSes only when its whole
interval lies on the claimed side (sigeo.study.verdict).

    python bench/warmup.py [--workdir /tmp/sigeo-bench-warmup] [--threads 2] [--skip-real] [--skip-demo]
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from scipy import sparse
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from sigeo.config import load_config, load_settings
from sigeo.data.formats import get_format
from sigeo.data.prepare import PrepareSettings, prepare
from sigeo.data.store import Dataset, Split
from sigeo.space.choice import full_path, get_space
from sigeo.study.verdict import Verdict, interval_verdict
from sigeo.warmup import WarmupSettings, build_supernet, panel_architectures, supernet_outputs, warm_up

ROOT = Path(__file__).resolve().parents[1]
CPU = torch.device("cpu")
RESAMPLES = 1000


def row_losses(prob: np.ndarray, label: np.ndarray) -> np.ndarray:
    p = np.clip(prob, 1e-12, 1 - 1e-12)
    return -(label * np.log(p) + (1 - label) * np.log1p(-p))


def supernet_row_losses(out_dir: Path, data: Dataset, settings: WarmupSettings, space_name: str) -> dict:
    """Per validation row: the full path's log loss and the panel's mean log loss, from ``supernet.pt``."""
    space = get_space(space_name, settings.space_widths)
    net = build_supernet(space, data, settings)
    net.load_state_dict(torch.load(out_dir / "supernet.pt", weights_only=True))
    net.eval()
    val = data.split("val").head(settings.eval_rows) if settings.eval_rows else data.split("val")
    dense, ids, label = (torch.from_numpy(a) for a in val.batch(0, len(val)))

    def losses(path) -> np.ndarray:
        with torch.no_grad():
            prob = torch.sigmoid(net(dense, ids, path).double()).numpy()
        return row_losses(prob, label.numpy())

    panel_archs = panel_architectures(space, settings.num_blocks, settings.panel_size, settings.seed)
    panel = np.mean([losses(p) for p in panel_archs], 0)
    rate = float(np.mean(np.asarray(data.split("val").label)))
    return {"full": losses(full_path(space, settings.num_blocks)), "panel": panel,
            "base": row_losses(np.full(len(label), rate), label.numpy())}  # fmt: skip


def bootstrap(stat: Callable[[np.ndarray], float], n: int, seed: int = 0) -> tuple[float, float, float]:
    """``stat(all rows)`` and the 2.5 / 97.5 percentiles of ``stat`` over row resamples."""
    rng = np.random.default_rng(seed)
    draws = [stat(rng.integers(0, n, n)) for _ in range(RESAMPLES)]
    return stat(np.arange(n)), float(np.percentile(draws, 2.5)), float(np.percentile(draws, 97.5))


def half_gap_verdict(claim: str, model: np.ndarray, base: np.ndarray, target: float) -> tuple[Verdict, float]:
    """Does ``model`` close at least half the gap between the base rate and ``target`` (a fixed log loss)?"""
    gap = float(base.mean()) - target
    estimate, low, high = bootstrap(lambda i: float((base[i] - model[i]).mean()) / gap, len(base))
    return interval_verdict(claim, estimate, low, high, threshold=0.5), estimate


def logistic_regression(data: Dataset) -> np.ndarray:
    """Per-row validation log loss of an L2 logistic regression on one-hot ids and standardised integers."""
    train, val = data.split("train"), data.split("val")
    onehot, scale = OneHotEncoder(handle_unknown="ignore"), StandardScaler()

    def features(split: Split, fit: bool) -> sparse.csr_matrix:
        ids, dense = np.asarray(split.sparse), np.asarray(split.dense)
        if fit:
            return sparse.hstack([onehot.fit_transform(ids), scale.fit_transform(dense)]).tocsr()
        return sparse.hstack([onehot.transform(ids), scale.transform(dense)]).tocsr()

    model = LogisticRegression(C=1.0, max_iter=2000).fit(features(train, True), np.asarray(train.label))
    prob = model.predict_proba(features(val, False))[:, 1]
    return row_losses(prob, np.asarray(val.label, dtype=np.float64))


def demo(args: argparse.Namespace, settings: WarmupSettings, space: str) -> list[Verdict]:
    data_dir = ROOT / "results" / "data" / "demo"
    if not (data_dir / "meta.json").exists():
        sys.exit(f"{data_dir}/meta.json missing: run `snakemake --cores 1 results/data/demo/meta.json` first")
    data = Dataset.open(data_dir)
    bayes = data.meta["bayes_logloss"]["val"]
    runs, verdicts = {}, []
    for level in (0.0, 0.1, 1.0):
        out = args.workdir / "demo" / f"w{level}"
        started = time.perf_counter()
        metrics = warm_up(data_dir, space, level, settings, supernet_outputs(out), CPU)
        seconds = time.perf_counter() - started
        runs[level] = (metrics, supernet_row_losses(out, data, settings, space))
        per_step = metrics["wall_seconds"] / metrics["steps"] if metrics["steps"] else float("nan")
        print(f"demo {level:>4.0%}: {metrics['steps']} steps, {per_step:.3f} s/step ({seconds:.0f} s with "
              f"validation); full path {metrics['val_full_path']['logloss']:.4f} (AUC "
              f"{metrics['val_full_path']['auc']:.3f}), panel mean {metrics['val_panel']['logloss_mean']:.4f} "
              f"(AUC {metrics['val_panel']['auc_mean']:.3f}), base rate {metrics['base_rate_logloss']:.4f}, "
              f"learned {metrics['learned']}")  # fmt: skip
    full = runs[1.0][1]
    verdict, fraction = half_gap_verdict(
        "demo 100 %: the full path closes at least half the base-rate-to-Bayes gap", full["full"], full["base"], bayes
    )
    print(f"demo 100 %: Bayes {bayes:.4f}; fraction of the gap closed {fraction:.3f}")
    verdicts.append(verdict)
    est, low, high = bootstrap(lambda i: float((full["base"][i] - full["panel"][i]).mean()), len(full["base"]))
    verdicts.append(interval_verdict("demo 100 %: the panel's mean log loss is below the base rate's", est, low, high))
    w0, w10 = runs[0.0][1]["panel"], runs[0.1][1]["panel"]
    est, low, high = bootstrap(lambda i: float((w0[i] - w10[i]).mean()), len(w0))
    verdicts.append(interval_verdict("demo: the 10 % panel's mean log loss is below the 0 % panel's", est, low, high))
    return verdicts


def real(args: argparse.Namespace, prep: PrepareSettings, settings: WarmupSettings, space: str) -> list[Verdict]:
    sys.path.insert(0, str(ROOT / "bench"))
    from realdata import criteo_frame

    raw = args.workdir / "movielens" / "raw.txt"
    data_dir = args.workdir / "movielens" / "data"
    if not (data_dir / "meta.json").exists():
        raw.parent.mkdir(parents=True, exist_ok=True)
        np.savetxt(raw, criteo_frame().to_numpy(dtype=str), fmt="%s", delimiter="\t")
        prepare(get_format("criteo"), raw, data_dir, replace(prep, max_table_size=5000))
    data = Dataset.open(data_dir)
    lr = logistic_regression(data)
    metrics = warm_up(data_dir, space, 1.0, settings, supernet_outputs(args.workdir / "movielens" / "w1.0"), CPU)
    rows = supernet_row_losses(args.workdir / "movielens" / "w1.0", data, settings, space)
    n = len(rows["full"])
    lr_loss = float(lr[:n].mean())
    print(f"movielens 100 %: {metrics['steps']} steps; full path {metrics['val_full_path']['logloss']:.4f} (AUC "
          f"{metrics['val_full_path']['auc']:.3f}), panel mean {metrics['val_panel']['logloss_mean']:.4f}, base "
          f"rate {metrics['base_rate_logloss']:.4f}, logistic regression {lr_loss:.4f}")  # fmt: skip
    verdict, fraction = half_gap_verdict(
        "movielens 100 %: the full path closes at least half the base-rate-to-LR gap", rows["full"], rows["base"],
        lr_loss,
    )  # fmt: skip
    print(f"movielens 100 %: fraction of the base-rate-to-LR gap closed {fraction:.3f}")
    return [verdict]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/sigeo-bench-warmup"))
    parser.add_argument("--config", type=Path, default=ROOT / "config" / "config.yaml")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--skip-real", action="store_true", help="only the demo")
    parser.add_argument("--skip-demo", action="store_true", help="only the real-format data set")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    config = load_config(args.config)
    first = next(iter(load_settings(config).datasets.values()))
    settings, space = first.warmup, config["spaces"][0]
    print(f"warm-up settings: {settings}")
    verdicts = [] if args.skip_demo else demo(args, settings, space)
    if not args.skip_real:
        verdicts += real(args, first.prepare, settings, space)
    for verdict in verdicts:
        print(verdict.line())


if __name__ == "__main__":
    main()
