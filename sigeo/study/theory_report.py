"""Analysis and outputs of the theory study: correlations per level, the README comparison, figures.

Kept apart from ``theory`` so the per-width training jobs do not import scipy and matplotlib.
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ..io import write_text
from ..report.plots import subplots
from ..report.tables import markdown, write_table
from .stats import rank_correlation
from .theory import STATISTICS

LABELS = {
    "loss": "training loss",
    "fisher_rao": "Fisher–Rao",
    "grad_abs_mean": "mean |grad|",
    "grad_std": "std of grad",
    "zico": "ZiCo",
    "sigeo": "SiGeo",
}
PathLike = str | os.PathLike

# README table of NasRec-SiGeo (REFERENCE §8): level -> statistic -> (Spearman, Kendall) vs test loss.
README_CORRELATIONS: dict[float, dict[str, tuple[float, float]]] = {
    0.0: {"loss": (0.30, 0.21), "fisher_rao": (-0.31, -0.21), "grad_abs_mean": (-0.48, -0.34)},
    0.1: {"loss": (0.71, 0.52), "fisher_rao": (-0.61, -0.44), "grad_abs_mean": (-0.54, -0.40)},
    0.2: {"loss": (0.79, 0.61), "fisher_rao": (-0.70, -0.52), "grad_abs_mean": (-0.57, -0.42)},
    0.4: {"loss": (0.80, 0.61), "fisher_rao": (-0.71, -0.53), "grad_abs_mean": (-0.58, -0.43)},
    0.6: {"loss": (0.82, 0.63), "fisher_rao": (-0.71, -0.52), "grad_abs_mean": (-0.58, -0.44)},
    0.8: {"loss": (0.83, 0.64), "fisher_rao": (-0.70, -0.51), "grad_abs_mean": (-0.58, -0.44)},
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


def fidelity_checks(table: pd.DataFrame) -> list[tuple[str, bool | None]]:
    """The README's qualitative shape, checked on our table (None: a needed level was not run)."""
    rho = table.set_index("level")
    later = [level for level in rho.index if level >= 0.1]
    if 0.0 not in rho.index or 0.1 not in rho.index:
        return [("levels 0 and 0.1 are needed for the checks", None)]
    loss = rho["loss_spearman"]
    return [
        ("Spearman of training loss rises from 0 % to 10 %", bool(loss[0.1] > loss[0.0])),
        ("... and stays above the 0 % value at every later level", bool(all(loss[lv] > loss[0.0] for lv in later))),
        ("Fisher–Rao Spearman is negative from 10 % on", bool((rho.loc[later, "fisher_rao_spearman"] < 0).all())),
        ("mean |grad| Spearman is negative from 10 % on", bool((rho.loc[later, "grad_abs_mean_spearman"] < 0).all())),
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
    checks: list[tuple[str, bool | None]],
    csv: PathLike,
    md: PathLike,
    html: PathLike,
) -> None:
    """The comparison table (CSV), and the same with the fidelity checks as Markdown and HTML."""
    write_table(comparison, csv=csv, digits=2)
    verdict = {True: "yes", False: "NO", None: "n/a"}
    shown = comparison.rename(columns=_comparison_label)
    md_checks = "\n".join(f"- {text}: **{verdict[ok]}**" for text, ok in checks)
    md_table = markdown(shown, 2)
    write_text(md, f"{md_table}\n\nFidelity checks:\n\n{md_checks}\n")
    html_checks = "".join(f"<li>{text}: <b>{verdict[ok]}</b></li>" for text, ok in checks)
    table = shown.to_html(index=False, float_format="{:.2f}".format, border=0)
    write_text(
        html,
        "<h3>Raw rank correlation with the test loss: ours vs the NasRec-SiGeo README</h3>\n"
        f"{table}\n<h4>Fidelity checks</h4>\n<ul>{html_checks}</ul>\n",
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
