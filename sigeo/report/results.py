"""Search results: the selected architecture of every search repeat, the baselines, and what each cost.

Cost of a searched method = the warm-up job's plus the search job's wall-clock seconds, read from
their Snakemake benchmark files (column ``s``; the mean when a benchmark repeated the job). Proxies
that never read the supernet's weights (``random``, ``params``, ``flops``) need no warm-up, so only
their search counts. Cost of a baseline = its training job's seconds (it is not searched; what it
costs is its training). The unit follows the device the job ran on: GPU-days on a GPU, CPU-hours
(wall-clock) on a CPU, as the paper plots GPU-days.

A search row's test figures are its found model's (``found_model``): with
``final.retrain_on_trainval`` the selected architecture retrained on train + val (what the paper
reports), else the one trained on train; both models' test figures stand beside them
(``test_*_train_only``, ``test_*_trainval``). Baselines are trained on train.

Each search runs ``search.repeats`` times with different seeds; the table has a row per repeat and
the summary the mean and spread per method, so that methods are compared on more than one draw each.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from scipy import stats

from ..io import read_json
from ..report.plots import subplots
from ..report.tables import markdown
from ..study.correlation import label as proxy_label
from ..study.correlation import percent
from ..study.verdict import FAIL, INCONCLUSIVE, PASS, Verdict, interval_verdict

log = logging.getLogger(__name__)

PathLike = str | os.PathLike

#: Proxies whose score does not depend on the supernet's weights: a search with them needs no warm-up.
SUPERNET_FREE = frozenset({"random", "params", "flops"})
UNITS = {"gpu": ("GPU-days", 86400.0), "cpu": ("CPU-hours", 3600.0)}

#: The paper's published points (docs/reference.md §10, read off doc/{criteo,avazu,kdd}-logloss-gpu.png):
#: data set format -> (method, search cost in GPU-days, test log loss).
PAPER_POINTS: dict[str, list[tuple[str, float, float]]] = {
    "criteo": [
        ("DNAS", 0.28, 0.4442),
        ("PROFIT", 0.5, 0.4427),
        ("AutoCTR", 0.75, 0.4413),
        ("Random Search @ Small", 1.0, 0.4411),
        ("Random Search @ Full", 1.0, 0.4418),
        ("NASRecNet @ Small", 0.25, 0.4395),
        ("NASRecNet @ Full", 0.3, 0.4404),
        ("ZiCo @ Small", 0.09, 0.4408),
        ("ZiCo @ Full", 0.11, 0.4404),
        ("SiGeo @ Small", 0.1, 0.4396),
    ],
    "avazu": [
        ("PROFIT", 0.5, 0.3735),
        ("AutoCTR", 0.75, 0.3800),
        ("Random Search @ Small", 1.0, 0.3748),
        ("Random Search @ Full", 1.0, 0.3767),
        ("NASRecNet @ Small", 0.25, 0.3741),
        ("NASRecNet @ Full", 0.3, 0.3736),
        ("ZiCo @ Small", 0.09, 0.3770),
        ("ZiCo @ Full", 0.11, 0.3772),
        ("SiGeo @ Small", 0.1, 0.3741),
    ],
    "kdd": [
        ("AutoCTR", 0.75, 0.1520),
        ("Random Search @ Small", 1.0, 0.1500),
        ("Random Search @ Full", 1.0, 0.1509),
        ("NASRecNet @ Small", 0.25, 0.1489),
        ("NASRecNet @ Full", 0.3, 0.1487),
        ("ZiCo @ Small", 0.09, 0.1491),
        ("ZiCo @ Full", 0.11, 0.1486),
        ("SiGeo @ Small", 0.1, 0.1484),
    ],
}


@dataclass(frozen=True)
class RunFiles:
    """The files one search row of the table is read from."""

    dataset: str
    space: str
    level: float
    proxy: str
    repeat: int
    best: PathLike
    warmup_metrics: PathLike
    warmup_benchmark: PathLike
    search_benchmark: PathLike
    meta: PathLike


@dataclass(frozen=True)
class BaselineFiles:
    """The files one baseline row is read from (``name``: ``logreg`` or ``nasrec_{space}``)."""

    dataset: str
    name: str
    metrics: PathLike
    benchmark: PathLike
    meta: PathLike


def benchmark_seconds(path: PathLike) -> float:
    """Wall-clock seconds of a job from its Snakemake benchmark TSV (mean over repeats)."""
    frame = pd.read_csv(path, sep="\t")
    if frame.empty or "s" not in frame:
        raise ValueError(f"{path}: not a Snakemake benchmark file (no rows or no 's' column)")
    return float(frame["s"].mean())


def _seconds_or_nan(path: PathLike) -> float:
    """A missing benchmark (deleted, or a job run outside Snakemake) leaves the cost empty, not the table."""
    try:
        return benchmark_seconds(path)
    except FileNotFoundError:
        log.warning("%s is missing; the cost of its row is left empty", path)
        return math.nan


def cost_unit(device: str) -> tuple[str, float]:
    """(unit name, seconds per unit) for a device as ``sigeo.train.device_name`` writes it."""
    return UNITS["cpu" if device.startswith("cpu") else "gpu"]


def method_label(proxy: str, level: float, space: str | None = None) -> str:
    """A method's name: "SiGeo @ 10 %", "one-shot @ 100 %", "random" (needs no warm-up); ``space`` if several."""
    text = proxy_label(proxy) if proxy in SUPERNET_FREE else f"{proxy_label(proxy)} @ {percent(level)}"
    return f"{text} ({space.capitalize()})" if space else text


def baseline_label(name: str) -> str:
    """A baseline's name: "logistic regression (baseline)", "NASRecNet Small (published, baseline)"."""
    if name == "logreg":
        return "logistic regression (baseline)"
    return f"NASRecNet {name.removeprefix('nasrec_').capitalize()} (published, baseline)"


def _bayes(meta: dict) -> float:
    return (meta.get("bayes_logloss") or {}).get("test", math.nan)


def search_results(runs: Sequence[RunFiles], baselines: Sequence[BaselineFiles] = ()) -> pd.DataFrame:
    """One row per search repeat (its selected architecture) and per baseline: metrics, size, cost,
    gap to the Bayes log loss, whether the warm-up learned and how many final trainings diverged."""
    spaces = {(r.dataset, r.space) for r in runs}
    several = {d for d, _ in spaces if sum(1 for d2, _ in spaces if d2 == d) > 1}
    rows = []
    for r in runs:
        best, warm, meta = read_json(r.best), read_json(r.warmup_metrics), read_json(r.meta)
        free = r.proxy in SUPERNET_FREE
        warmup_s = 0.0 if free else _seconds_or_nan(r.warmup_benchmark)
        search_s = _seconds_or_nan(r.search_benchmark)
        unit, seconds = cost_unit(warm["device"])
        rows.append(
            {
                "dataset": r.dataset,
                "kind": "search",
                "space": r.space,
                "level": r.level,
                "proxy": r.proxy,
                "repeat": r.repeat,
                "method": method_label(r.proxy, r.level, r.space if r.dataset in several else None),
                "rank": best["rank"],
                **_figures(best),
                **_both_models(best),
                "warmup_s": warmup_s,
                "search_s": search_s,
                "train_s": math.nan,
                "device": warm["device"],
                "cost": (warmup_s + search_s) / seconds,
                "cost_unit": unit,
                "bayes_logloss": _bayes(meta),
                "gap_to_bayes": best["test"]["logloss"] - _bayes(meta),
                # the warm-up's own verdict on itself (contract); empty where the proxy reads no weights
                "learned": None if free else warm.get("learned"),
                "diverged": best["diverged"],
            }
        )
    for b in baselines:
        metrics, meta = read_json(b.metrics), read_json(b.meta)
        train_s = _seconds_or_nan(b.benchmark)
        unit, seconds = cost_unit(metrics["device"])
        diverged = metrics.get("status") == "diverged"
        test = math.nan if diverged else metrics["test"]["logloss"]
        rows.append(
            {
                "dataset": b.dataset,
                "kind": "baseline",
                "space": b.name.removeprefix("nasrec_") if b.name.startswith("nasrec_") else "",  # any space
                "level": math.nan,
                "proxy": b.name,
                "repeat": 0,
                "method": baseline_label(b.name),
                "rank": math.nan,
                **_figures(metrics),
                **_both_models({"test": metrics["test"]}),
                "warmup_s": math.nan,
                "search_s": math.nan,
                "train_s": train_s,
                "device": metrics["device"],
                "cost": train_s / seconds,
                "cost_unit": unit,
                "bayes_logloss": _bayes(meta),
                "gap_to_bayes": test - _bayes(meta),
                "learned": None,
                "diverged": int(diverged),
            }
        )
    return pd.DataFrame(rows)


def _figures(doc: dict) -> dict[str, float]:
    """Validation and test metrics (empty for a diverged run, whose ``val``/``test`` are null), size, FLOPs."""
    val, test = doc["val"] or {}, doc["test"] or {}
    return {
        "val_logloss": val.get("logloss", math.nan),
        "val_auc": val.get("auc", math.nan),
        "test_logloss": test.get("logloss", math.nan),
        "test_auc": test.get("auc", math.nan),
        "params": doc["params"],
        "params_dense": doc["params_dense"],
        "flops_2x_all_blocks": doc["flops_2x_all_blocks"],
        "mflops_nasrec": doc.get("mflops_nasrec", math.nan),  # a baseline has no NASRec blocks
    }


def _both_models(best: dict) -> dict[str, object]:
    """Which model the row's test figures are (``found_model``: ``train`` or ``train+val``), and the test
    figures of both: the selected architecture trained on train only and retrained on train + val
    (empty without a retraining). A best.json without the split (or a baseline) is a train-only model."""
    train_only = (best.get("train_only") or best)["test"] or {}
    trainval = ((best.get("trainval") or {}).get("test")) or {}
    return {
        "found_model": best.get("found_model", "train"),
        "test_logloss_train_only": train_only.get("logloss", math.nan),
        "test_auc_train_only": train_only.get("auc", math.nan),
        "test_logloss_trainval": trainval.get("logloss", math.nan),
        "test_auc_trainval": trainval.get("auc", math.nan),
    }


METHOD_KEYS = ["dataset", "kind", "space", "proxy", "level", "method"]


def method_summary(table: pd.DataFrame) -> pd.DataFrame:
    """Per method (search at a level, or baseline): repeats, mean and SD over repeats of test log loss,
    AUC and cost (of the found model, ``found_model``; the means of both models' test log loss beside),
    mean size, the Bayes gap of the mean, whether its warm-up learned, diverged trainings.

    The SD is the sample SD (ddof 1), empty with one repeat. Runs whose metrics are empty (diverged)
    are left out of the means and counted in ``diverged``.
    """
    groups = table.groupby(METHOD_KEYS, dropna=False, sort=False)
    out = groups.agg(
        repeats=("repeat", "nunique"),
        test_logloss=("test_logloss", "mean"),
        test_logloss_sd=("test_logloss", "std"),
        test_auc=("test_auc", "mean"),
        test_auc_sd=("test_auc", "std"),
        found_model=("found_model", "first"),
        test_logloss_train_only=("test_logloss_train_only", "mean"),
        test_logloss_trainval=("test_logloss_trainval", "mean"),
        params=("params", "mean"),
        flops_2x_all_blocks=("flops_2x_all_blocks", "mean"),
        mflops_nasrec=("mflops_nasrec", "mean"),
        cost=("cost", "mean"),
        cost_sd=("cost", "std"),
        cost_unit=("cost_unit", "first"),
        bayes_logloss=("bayes_logloss", "first"),
        learned=("learned", "first"),
        diverged=("diverged", "sum"),
    ).reset_index()
    out["gap_to_bayes"] = out["test_logloss"] - out["bayes_logloss"]
    return out


#: Claim (d): SiGeo at sub-one-shot warm-up against one-shot at full warm-up (the paper's headline).
CLAIM_SIGEO, CLAIM_ONESHOT = ("sigeo", 0.1), ("oneshot", 1.0)
CONFIDENCE = 0.95


def mean_interval(values: Sequence[float], confidence: float = CONFIDENCE) -> tuple[float, float, float]:
    """The mean and its two-sided Student-t interval; the interval is NaN with fewer than two values and
    the mean itself when every value is the same."""
    x = np.asarray(values, dtype=float)
    mean = float(x.mean()) if len(x) else math.nan
    if len(x) < 2:
        return mean, math.nan, math.nan
    sem = float(stats.sem(x))
    if sem == 0.0:  # identical values (e.g. every repeat selected the same network): no spread to widen by
        return mean, mean, mean
    low, high = stats.t.interval(confidence, len(x) - 1, loc=mean, scale=sem)
    return mean, float(low), float(high)


def search_claim(rows: pd.DataFrame, margin: float) -> Verdict:
    """Claim (d) on one data set and space: SiGeo @ 10 % is within ``margin`` test log loss of one-shot
    @ 100 % at a lower measured cost.

    Repeat r of one method is paired with repeat r of the other (same final-training seed). Both
    parts are decided by the t interval of the mean paired difference over repeats (one repeat: no
    interval, INCONCLUSIVE): log loss PASSes when the whole interval of one-shot − SiGeo lies above
    −margin, cost when the whole interval of one-shot's − SiGeo's cost lies above 0. The claim PASSes
    when both parts do, FAILs when either fails, and is otherwise INCONCLUSIVE.
    """
    claim = (
        f"SiGeo @ {percent(CLAIM_SIGEO[1])} is within {margin:g} test log loss of one-shot @ "
        f"{percent(CLAIM_ONESHOT[1])} at a lower measured cost"
    )
    searched = rows[rows["kind"] == "search"]
    picked = [
        searched[(searched["proxy"] == proxy) & np.isclose(searched["level"], level)]
        for proxy, level in (CLAIM_SIGEO, CLAIM_ONESHOT)
    ]
    if any(frame.empty for frame in picked):
        return Verdict(claim, INCONCLUSIVE, "SiGeo @ 10 % or one-shot @ 100 % was not searched")
    cols = ["repeat", "test_logloss", "cost"]
    pairs = picked[0][cols].merge(picked[1][cols], on="repeat", suffixes=("_sigeo", "_oneshot")).dropna()
    gain, gain_low, gain_high = mean_interval(pairs["test_logloss_oneshot"] - pairs["test_logloss_sigeo"])
    saved, saved_low, saved_high = mean_interval(pairs["cost_oneshot"] - pairs["cost_sigeo"])
    loss = interval_verdict("log loss", gain, gain_low, gain_high, threshold=-margin)
    cost = interval_verdict("cost", saved, saved_low, saved_high)
    statuses = {loss.status, cost.status}
    status = FAIL if FAIL in statuses else PASS if statuses == {PASS} else INCONCLUSIVE
    numbers = {
        "repeats": len(pairs),
        "logloss_oneshot_minus_sigeo": gain,
        "low": gain_low,
        "high": gain_high,
        "margin": margin,
        "cost_sigeo": float(pairs["cost_sigeo"].mean()),
        "cost_oneshot": float(pairs["cost_oneshot"].mean()),
        "cost_saved_low": saved_low,
        "cost_saved_high": saved_high,
    }
    return Verdict(claim, status, f"log loss: {loss.reason}; cost: {cost.reason}", numbers)


def search_summary(table: pd.DataFrame, margin: float) -> str:
    """The search results' summary in Markdown: per data set and space, claim (d)'s verdict with its
    numbers and the methods' mean and spread over repeats (baselines included)."""
    summary = method_summary(table)
    repeats = int(table.loc[table["kind"] == "search", "repeat"].nunique())
    lines = [
        "# Search results: summary",
        "",
        f"Repeats per search: {repeats} (each with its own seed). Means and sample SDs over repeats; "
        f"costs in {', '.join(sorted(table['cost_unit'].unique()))} (searches: warm-up + search; baselines: "
        f"training). Claim margin: {margin:g} test log loss (`search.claim_margin`); intervals: "
        f"{100 * CONFIDENCE:g} % Student t over the repeats' paired differences.",
        "",
    ]
    for (dataset, space), rows in table[table["kind"] == "search"].groupby(["dataset", "space"], sort=False):
        shown = summary[(summary["dataset"] == dataset) & summary["space"].fillna("").isin([space, ""])]
        columns = ["method", "repeats", "test_logloss", "test_logloss_sd", "test_auc", "cost", "cost_sd",
                   "gap_to_bayes", "learned", "diverged"]  # fmt: skip
        lines += [
            f"## {dataset}, {space} space",
            "",
            f"Claim (d): {search_claim(rows, margin).line()}",
            "",
            markdown(shown[columns], digits=4),
            "",
        ]
    return "\n".join(lines)


def cost_axis_label(units: Sequence[str]) -> str:
    """The x axis: searches cost their warm-up and search, baselines their training."""
    what = "cost: warm-up + search; baselines: training"
    distinct = sorted(set(units))
    if distinct == ["CPU-hours"]:
        return f"{what} (CPU-hours, wall-clock)"
    if distinct == ["GPU-days"]:
        return f"{what} (GPU-days)"
    return f"{what} (" + " / ".join(distinct) + ", mixed devices)"


PROXY_COLORS = {"sigeo": "C3", "zico": "C0", "oneshot": "C2", "random": "0.45"}
OTHER_COLORS = ("C1", "C4", "C5", "C6", "C8", "C9")
LEVEL_MARKERS = ("o", "s", "D", "^", "v", "P", "h", "<", ">", "p")
#: Baselines: hollow black markers, a square for the logistic regression, a pentagon for NASRecNets.
BASELINE_MARKERS = {"logreg": "s", "nasrec": "p"}
#: The published methods' marker by family; "@ Full" variants are drawn hollow.
PAPER_MARKERS = {"DNAS": "v", "PROFIT": "<", "AutoCTR": ">", "Random Search": "X", "NASRecNet": "o", "ZiCo": "D",
                 "SiGeo": "*"}  # fmt: skip


def cost_figure(rows: pd.DataFrame, dataset: str, paper: Sequence[tuple[str, float, float]] | None) -> Figure:
    """Test log loss against cost, one marker per method at its mean over repeats with SD bars (color:
    proxy, shape: warm-up level, a cross for supernet-free proxies, hollow black for baselines); the
    paper's points in a panel of their own.

    Supernet-free methods searched at several levels select the same architecture; the cheapest is shown.
    """
    methods = method_summary(rows)
    shown = methods.sort_values("cost").drop_duplicates("method").sort_values(["kind", "proxy", "level"])
    searched = shown[shown["kind"] == "search"]
    levels = sorted(searched["level"].unique())
    others = [p for p in dict.fromkeys(searched["proxy"]) if p not in PROXY_COLORS]
    colors = {**PROXY_COLORS, **{p: OTHER_COLORS[i % len(OTHER_COLORS)] for i, p in enumerate(others)}}
    fig, axes = subplots(1, 2 if paper else 1, panel=(5.6, 5.2))
    ax = axes[0, 0]
    for _, row in shown.iterrows():
        if row["kind"] == "baseline":
            style = {"marker": BASELINE_MARKERS[row["proxy"].split("_")[0]], "color": "black", "mfc": "none", "ms": 9}
        else:
            free = row["proxy"] in SUPERNET_FREE
            marker = "X" if free else LEVEL_MARKERS[levels.index(row["level"]) % len(LEVEL_MARKERS)]
            style = {"marker": marker, "color": colors[row["proxy"]], "ms": 11 if row["proxy"] == "sigeo" else 8,
                     "markeredgecolor": "black", "markeredgewidth": 0.5, "alpha": 0.9}  # fmt: skip
        ax.errorbar(row["cost"], row["test_logloss"], xerr=row["cost_sd"], yerr=row["test_logloss_sd"], ls="none",
                    elinewidth=0.8, capsize=2, ecolor="0.4", label=row["method"], **style)  # fmt: skip
    bayes = rows["bayes_logloss"].dropna()
    if not bayes.empty:
        ax.axhline(bayes.iloc[0], color="0.3", ls="--", lw=1, label="Bayes log loss (teacher)")
    costs = shown["cost"]
    if len(costs) > 1 and costs.min() > 0 and costs.max() / costs.min() > 20:
        ax.set_xscale("log")
    repeats = int(searched["repeats"].max()) if not searched.empty else 1
    spread = f", mean ± SD of {repeats} repeats" if repeats > 1 else ""
    ax.set(xlabel=cost_axis_label(list(shown["cost_unit"])), ylabel="test log loss",
           title=f"{dataset}: measured (this run{spread})")  # fmt: skip
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(0.0, -0.15), ncol=2, frameon=False)
    if paper:
        ref = axes[0, 1]
        for name, cost, loss in paper:
            family = name.split(" @ ")[0]
            star = family == "SiGeo"
            ref.plot(cost, loss, ls="none", marker=PAPER_MARKERS.get(family, "o"), ms=13 if star else 8,
                     color="C3" if star else "0.3", mfc="none" if name.endswith("Full") else None,
                     label=name)  # fmt: skip
        ref.set(xlabel="search cost (GPU-days)", ylabel="test log loss",
                title="published (paper, reference only)")  # fmt: skip
        ref.legend(fontsize=7, loc="upper left", bbox_to_anchor=(0.0, -0.15), ncol=2, frameon=False)
    return fig


def paper_points(fmt: str, synthetic: bool) -> list[tuple[str, float, float]] | None:
    """The paper's points for a real Criteo/Avazu/KDD data set; None for synthetic data."""
    return None if synthetic else PAPER_POINTS.get(fmt)


def runs_from(
    keys: Sequence[tuple[str, str, str, str, int]],
    levels: Mapping[str, float],
    files: Mapping[str, Sequence[PathLike]],
) -> list[RunFiles]:
    """Zip the rule's parallel input lists with their (dataset, space, level name, proxy, repeat) keys."""
    fields = ("best", "warmup_metrics", "warmup_benchmark", "search_benchmark", "meta")
    _check_lengths(files, fields, len(keys))
    return [
        RunFiles(d, s, levels[lv], p, r, *(files[name][i] for name in fields))
        for i, (d, s, lv, p, r) in enumerate(keys)
    ]


def baselines_from(keys: Sequence[tuple[str, str]], files: Mapping[str, Sequence[PathLike]]) -> list[BaselineFiles]:
    """Zip the rule's parallel baseline input lists with their (dataset, baseline name) keys."""
    fields = ("metrics", "benchmark", "meta")
    _check_lengths(files, fields, len(keys))
    return [BaselineFiles(d, n, *(files[name][i] for name in fields)) for i, (d, n) in enumerate(keys)]


def _check_lengths(files: Mapping[str, Sequence[PathLike]], fields: Sequence[str], runs: int) -> None:
    for name in fields:
        if len(files[name]) != runs:
            raise ValueError(f"{len(files[name])} {name} files for {runs} runs")
