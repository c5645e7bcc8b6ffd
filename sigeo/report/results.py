"""Search results: the selected architecture of every (data set, space, level, proxy) and what finding it cost.

Search cost = the warm-up job's plus the search job's wall-clock seconds, read from their Snakemake
benchmark files (column ``s``; the mean when a benchmark repeated the job). Proxies that never read
the supernet's weights (``random``, ``params``, ``flops``) need no warm-up, so only their search
counts. The unit follows the device the warm-up ran on (its ``metrics.json``): GPU-days on a GPU,
CPU-hours (wall-clock) on a CPU, as the paper plots GPU-days.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pandas as pd
from matplotlib.figure import Figure

from ..io import read_json
from ..report.plots import subplots
from ..study.correlation import label as proxy_label
from ..study.correlation import percent

log = logging.getLogger(__name__)

PathLike = str | os.PathLike

#: Proxies whose score does not depend on the supernet's weights: a search with them needs no warm-up.
SUPERNET_FREE = frozenset({"random", "params", "flops"})
UNITS = {"gpu": ("GPU-days", 86400.0), "cpu": ("CPU-hours", 3600.0)}

#: The paper's published points (REFERENCE §10, read off doc/{criteo,avazu,kdd}-logloss-gpu.png):
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
    """The files one row of the table is read from."""

    dataset: str
    space: str
    level: float
    proxy: str
    best: PathLike
    warmup_metrics: PathLike
    warmup_benchmark: PathLike
    search_benchmark: PathLike
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
        log.warning("%s is missing; the search cost of its row is left empty", path)
        return math.nan


def cost_unit(device: str) -> tuple[str, float]:
    """(unit name, seconds per unit) for a device as ``sigeo.train.device_name`` writes it."""
    return UNITS["cpu" if device.startswith("cpu") else "gpu"]


def method_label(proxy: str, level: float, space: str | None = None) -> str:
    """A method's name: "SiGeo @ 10 %", "one-shot @ 100 %", "random" (needs no warm-up); ``space`` if several."""
    text = proxy_label(proxy) if proxy in SUPERNET_FREE else f"{proxy_label(proxy)} @ {percent(level)}"
    return f"{text} ({space.capitalize()})" if space else text


def search_results(runs: Sequence[RunFiles]) -> pd.DataFrame:
    """One row per run: selected architecture's metrics, size, search cost, and gap to the Bayes log loss."""
    spaces = {(r.dataset, r.space) for r in runs}
    several = {d for d, _ in spaces if sum(1 for d2, _ in spaces if d2 == d) > 1}
    rows = []
    for r in runs:
        best, warm, meta = read_json(r.best), read_json(r.warmup_metrics), read_json(r.meta)
        warmup_s = 0.0 if r.proxy in SUPERNET_FREE else _seconds_or_nan(r.warmup_benchmark)
        search_s = _seconds_or_nan(r.search_benchmark)
        unit, seconds = cost_unit(warm["device"])
        bayes = (meta.get("bayes_logloss") or {}).get("test", math.nan)
        rows.append(
            {
                "dataset": r.dataset,
                "space": r.space,
                "level": r.level,
                "proxy": r.proxy,
                "method": method_label(r.proxy, r.level, r.space if r.dataset in several else None),
                "rank": best["rank"],
                "val_logloss": best["val"]["logloss"],
                "val_auc": best["val"]["auc"],
                "test_logloss": best["test"]["logloss"],
                "test_auc": best["test"]["auc"],
                "params": best["params"],
                "params_dense": best["params_dense"],
                "flops_per_sample": best["flops_per_sample"],
                "warmup_s": warmup_s,
                "search_s": search_s,
                "device": warm["device"],
                "search_cost": (warmup_s + search_s) / seconds,
                "cost_unit": unit,
                "bayes_logloss": bayes,
                "gap_to_bayes": best["test"]["logloss"] - bayes,
            }
        )
    return pd.DataFrame(rows)


def cost_axis_label(units: Sequence[str]) -> str:
    distinct = sorted(set(units))
    if distinct == ["CPU-hours"]:
        return "search cost (CPU-hours, wall-clock)"
    if distinct == ["GPU-days"]:
        return "search cost (GPU-days)"
    return "search cost (" + " / ".join(distinct) + ", mixed devices)"


PROXY_COLORS = {"sigeo": "C3", "zico": "C0", "oneshot": "C2", "random": "0.45"}
OTHER_COLORS = ("C1", "C4", "C5", "C6", "C8", "C9")
LEVEL_MARKERS = ("o", "s", "D", "^", "v", "P", "h", "<", ">", "p")
#: The published methods' marker by family; "@ Full" variants are drawn hollow.
PAPER_MARKERS = {"DNAS": "v", "PROFIT": "<", "AutoCTR": ">", "Random Search": "X", "NASRecNet": "o", "ZiCo": "D",
                 "SiGeo": "*"}  # fmt: skip


def cost_figure(rows: pd.DataFrame, dataset: str, paper: Sequence[tuple[str, float, float]] | None) -> Figure:
    """Test log loss against search cost, one marker per method (color: proxy, shape: warm-up level, a cross
    for supernet-free proxies); the paper's points in a panel of their own.

    Supernet-free methods searched at several levels select the same architecture; the cheapest is shown.
    """
    shown = rows.sort_values("search_cost").drop_duplicates("method").sort_values(["proxy", "level"])
    levels = sorted(rows["level"].unique())
    others = [p for p in dict.fromkeys(shown["proxy"]) if p not in PROXY_COLORS]
    colors = {**PROXY_COLORS, **{p: OTHER_COLORS[i % len(OTHER_COLORS)] for i, p in enumerate(others)}}
    fig, axes = subplots(1, 2 if paper else 1, panel=(5.6, 5.2))
    ax = axes[0, 0]
    for _, row in shown.iterrows():
        free = row["proxy"] in SUPERNET_FREE
        marker = "X" if free else LEVEL_MARKERS[levels.index(row["level"]) % len(LEVEL_MARKERS)]
        ax.plot(row["search_cost"], row["test_logloss"], ls="none", marker=marker, color=colors[row["proxy"]],
                ms=11 if row["proxy"] == "sigeo" else 8, markeredgecolor="black", markeredgewidth=0.5,
                alpha=0.9, label=row["method"])  # fmt: skip
    bayes = rows["bayes_logloss"].dropna()
    if not bayes.empty:
        ax.axhline(bayes.iloc[0], color="0.3", ls="--", lw=1, label="Bayes log loss (teacher)")
    costs = shown["search_cost"]
    if len(costs) > 1 and costs.min() > 0 and costs.max() / costs.min() > 20:
        ax.set_xscale("log")
    ax.set(xlabel=cost_axis_label(list(shown["cost_unit"])), ylabel="test log loss",
           title=f"{dataset}: measured (this run)")  # fmt: skip
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
    keys: Sequence[tuple[str, str, str, str]], levels: Mapping[str, float], files: Mapping[str, Sequence[PathLike]]
) -> list[RunFiles]:
    """Zip the rule's parallel input lists with their (dataset, space, level name, proxy) keys."""
    fields = ("best", "warmup_metrics", "warmup_benchmark", "search_benchmark", "meta")
    for name in fields:
        if len(files[name]) != len(keys):
            raise ValueError(f"{len(files[name])} {name} files for {len(keys)} runs")
    return [RunFiles(d, s, levels[lv], p, *(files[name][i] for name in fields)) for i, (d, s, lv, p) in enumerate(keys)]
