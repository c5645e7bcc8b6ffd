"""Analysis and outputs of the theory study: correlations per level, the README comparison, figures.

Kept apart from ``theory`` so the per-width training jobs do not import scipy and matplotlib.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ..io import write_text
from ..proxies import get_proxy
from ..report.plots import subplots
from ..report.tables import markdown, write_table
from .stats import bootstrap_rows, claim_positive, claim_rises, rank_correlation, spearman_last_axis
from .theory import STATISTICS
from .verdict import INCONCLUSIVE, Verdict, interval_verdict

LABELS = {
    "loss": "training loss",
    "fisher_rao": "Fisher–Rao",
    "grad_abs_mean": "mean |grad|",
    "grad_std": "std of grad",
    "zico": "ZiCo",
    "sigeo": "SiGeo",
}
PathLike = str | os.PathLike
#: How to read the checks' ρ, which unlike the tables' is direction-adjusted.
CHECKS_NOTE = (
    "ρ here is direction-adjusted: a statistic's goodness against −(test loss), so the README's negative "
    "Fisher–Rao and mean |grad| correlations are positive; a claim PASSes when its paired-bootstrap 95 % "
    "interval over runs lies above the threshold, FAILs when below, and is INCONCLUSIVE otherwise"
)

# README table of NasRec-SiGeo (docs/reference.md §8): level -> statistic -> (Spearman, Kendall) vs test loss.
README_CORRELATIONS: dict[float, dict[str, tuple[float, float]]] = {
    0.0: {"loss": (0.30, 0.21), "fisher_rao": (-0.31, -0.21), "grad_abs_mean": (-0.48, -0.34)},
    0.1: {"loss": (0.71, 0.52), "fisher_rao": (-0.61, -0.44), "grad_abs_mean": (-0.54, -0.40)},
    0.2: {"loss": (0.79, 0.61), "fisher_rao": (-0.70, -0.52), "grad_abs_mean": (-0.57, -0.42)},
    0.4: {"loss": (0.80, 0.61), "fisher_rao": (-0.71, -0.53), "grad_abs_mean": (-0.58, -0.43)},
    0.6: {"loss": (0.82, 0.63), "fisher_rao": (-0.71, -0.52), "grad_abs_mean": (-0.58, -0.44)},
    0.8: {"loss": (0.83, 0.64), "fisher_rao": (-0.71, -0.51), "grad_abs_mean": (-0.58, -0.44)},
    1.0: {"loss": (0.85, 0.66), "fisher_rao": (-0.69, -0.51), "grad_abs_mean": (-0.59, -0.44)},
}


def correlation_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Rows = warm-up levels; raw Spearman and Kendall of each statistic against the test loss."""
    rows = []
    for level, group in runs.groupby("level", sort=True):
        row: dict[str, float | int] = {"level": level, "start_batch": int(group["start_batch"].iloc[0])}
        for name in STATISTICS:
            result = rank_correlation(group[name], group["test_loss"], raw=True, n_resamples=0)
            row[f"{name}_spearman"] = result.spearman
            row[f"{name}_kendall"] = result.kendall
        row["n"] = len(group)
        rows.append(row)
    return pd.DataFrame(rows)


def readme_comparison(table: pd.DataFrame) -> pd.DataFrame:
    """Our correlations next to the README's for the statistics and levels it published."""
    published = table[table["level"].isin(list(README_CORRELATIONS))]
    rows = []
    for _, row in published.iterrows():
        out: dict[str, float] = {"level": row["level"]}
        for name in README_CORRELATIONS[0.0]:
            rho, tau = README_CORRELATIONS[row["level"]][name]
            out |= {
                f"{name}_spearman": row[f"{name}_spearman"],
                f"{name}_spearman_readme": rho,
                f"{name}_kendall": row[f"{name}_kendall"],
                f"{name}_kendall_readme": tau,
            }
        rows.append(out)
    return pd.DataFrame(rows)


def _goodness(runs: pd.DataFrame, name: str) -> tuple[dict[float, np.ndarray], np.ndarray]:
    """Per level, ``name``'s goodness (its value if higher is better, else its negation) for every run in
    one fixed order, and −(test loss) of those runs: the inputs of a direction-adjusted ρ."""
    sign = 1.0 if get_proxy(name).higher_is_better else -1.0
    wide = runs.pivot(index=["width", "repeat"], columns="level", values=name).sort_index()
    target = -runs.drop_duplicates(["width", "repeat"]).set_index(["width", "repeat"])["test_loss"]
    return {level: sign * wide[level].to_numpy() for level in wide.columns}, target.loc[wide.index].to_numpy()


def _verdict(claim: str, statistic: Callable[[np.ndarray], np.ndarray], n: int, n_resamples: int, seed: int) -> Verdict:
    estimate, low, high = bootstrap_rows(statistic, n, n_resamples=n_resamples, seed=seed)
    verdict = interval_verdict(claim, estimate, low, high)
    return Verdict(verdict.claim, verdict.status, verdict.reason, {**verdict.numbers, "n": n})


def fidelity_checks(runs: pd.DataFrame, *, n_resamples: int = 1000, seed: int = 0) -> list[Verdict]:
    """The README's qualitative shape as claims on direction-adjusted ρ (a statistic's goodness against
    −(test loss), as in the RecSys study), each PASS / FAIL / INCONCLUSIVE by a paired bootstrap over
    runs (a run's statistics at every level and its test loss are resampled together).

    Training loss is lower-is-better, so its ρ is its raw one; Fisher–Rao and mean |grad| are
    higher-is-better, so the README's negative raw ρ is a positive one here. "Every level from 10 %"
    is decided on the smallest of those levels' values in each resample.
    """
    levels = sorted(runs["level"].unique())
    later = [level for level in levels if level >= 0.1]
    claims = [
        claim_rises(LABELS["loss"], _percent(0.1), _percent(0.0)),
        claim_rises(LABELS["loss"], f"every level from {_percent(0.1)}", _percent(0.0)),
        claim_positive(LABELS["fisher_rao"], f"every level from {_percent(0.1)}"),
        claim_positive(LABELS["grad_abs_mean"], f"every level from {_percent(0.1)}"),
    ]
    if 0.0 not in levels or 0.1 not in levels:
        return [Verdict(claim, INCONCLUSIVE, "not measured: needs levels 0 % and 10 %") for claim in claims]
    loss, target = _goodness(runs, "loss")
    n = len(target)

    def lowest(values: dict[float, np.ndarray], at: Sequence[float], i: np.ndarray) -> np.ndarray:
        return np.min([spearman_last_axis(values[level][i], target[i]) for level in at], axis=0)

    def rise(at: Sequence[float]) -> Callable[[np.ndarray], np.ndarray]:
        return lambda i: lowest(loss, at, i) - spearman_last_axis(loss[0.0][i], target[i])

    def positive(name: str) -> Callable[[np.ndarray], np.ndarray]:
        goodness, _ = _goodness(runs, name)
        return lambda i: lowest(goodness, later, i)

    statistics = [rise([0.1]), rise(later), positive("fisher_rao"), positive("grad_abs_mean")]
    return [
        _verdict(claim, statistic, n, n_resamples, seed) for claim, statistic in zip(claims, statistics, strict=True)
    ]


def _percent(level: float) -> str:
    return f"{100 * level:g} %"


def _comparison_label(column: str) -> str:
    """``fisher_rao_spearman_readme`` -> ``Fisher–Rao ρ (README)``."""
    if column == "level":
        return column
    name, kind, *readme = column.rsplit("_", 2 if column.endswith("_readme") else 1)
    return f"{LABELS[name]} {'ρ' if kind == 'spearman' else 'τ'}{' (README)' if readme else ''}"


def write_comparison(
    comparison: pd.DataFrame,
    checks: Sequence[Verdict],
    csv: PathLike,
    md: PathLike,
    html: PathLike,
) -> None:
    """The comparison table (CSV), and the same with the fidelity checks as Markdown and HTML."""
    write_table(comparison, csv=csv, digits=2)
    shown = comparison.rename(columns=_comparison_label)
    lines = [check.line() for check in checks]
    md_checks = "\n".join(f"- {line}" for line in lines)
    md_table = markdown(shown, 2)
    write_text(md, f"{md_table}\n\nFidelity checks ({CHECKS_NOTE}):\n\n{md_checks}\n")
    html_checks = "".join(f"<li>{line.replace('**', '')}</li>" for line in lines)
    table = shown.to_html(index=False, float_format="{:.2f}".format, border=0)
    write_text(
        html,
        "<h3>Raw rank correlation with the test loss: ours vs the NasRec-SiGeo README</h3>\n"
        f"{table}\n<h4>Fidelity checks</h4>\n<p>{CHECKS_NOTE}.</p>\n<ul>{html_checks}</ul>\n",
    )


def scatter_figure(runs: pd.DataFrame, table: pd.DataFrame) -> Figure:
    """Levels × statistics: each statistic against the test loss, colored by width, titled with ρ and τ."""
    levels = sorted(runs["level"].unique())
    # a fixed layout: constrained/tight layout over dozens of panels costs seconds per saved file
    fig, axes = subplots(len(levels), len(STATISTICS), panel=(2.6, 2.1), sharey=True, layout=None)
    width, height = fig.get_size_inches()
    fig.subplots_adjust(
        left=0.9 / width, right=1 - 1.1 / width, bottom=0.6 / height, top=1 - 0.35 / height, hspace=0.55, wspace=0.3
    )
    by_level = table.set_index("level")
    widths = runs["width"]
    for i, level in enumerate(levels):
        group = runs[runs["level"] == level]
        for j, name in enumerate(STATISTICS):
            ax = axes[i, j]
            points = ax.scatter(
                group[name], group["test_loss"], c=group["width"], cmap="viridis",
                vmin=widths.min(), vmax=widths.max(), s=6, alpha=0.7, linewidths=0, rasterized=True,
            )  # fmt: skip
            rho, tau = by_level.loc[level, f"{name}_spearman"], by_level.loc[level, f"{name}_kendall"]
            ax.set_title(f"ρ={rho:.2f}  τ={tau:.2f}", fontsize=9)
            ax.set_xlabel(LABELS[name] if i == len(levels) - 1 else "")
            ax.set_ylabel(f"warm-up {_percent(level)}\ntest loss" if j == 0 else "")
            ax.tick_params(labelsize=7)
    fig.colorbar(points, cax=fig.add_axes((1 - 0.8 / width, 0.3, 0.15 / width, 0.4)), label="hidden width")
    return fig


def warmup_figure(table: pd.DataFrame) -> Figure:
    """Spearman ρ of each statistic vs warm-up level; the README's published values dashed."""
    fig, axes = subplots(1, 1, panel=(6.5, 4.0))
    ax = axes[0, 0]
    x = 100 * table["level"]
    for k, name in enumerate(STATISTICS):
        color = f"C{k}"
        ax.plot(x, table[f"{name}_spearman"], marker="o", color=color, label=LABELS[name])
        if name in README_CORRELATIONS[0.0]:
            levels = sorted(README_CORRELATIONS)
            published = [README_CORRELATIONS[level][name][0] for level in levels]
            ax.plot(100 * np.array(levels), published, ls="--", marker="x", color=color, alpha=0.6,
                    label=f"{LABELS[name]} (README)")  # fmt: skip
    ax.axhline(0, color="0.5", lw=0.8)
    ax.set(xlabel="warm-up (% of the first epoch)", ylabel="Spearman ρ with test loss", ylim=(-1, 1))
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=8)
    return fig
