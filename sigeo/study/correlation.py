"""The RecSys correlation study: do proxies measured in a warmed-up supernet rank subnets by test loss?

A fixed set of architectures is drawn once per data set and space. Each is trained from scratch with
the final-training code (its test log loss is the ground truth); every proxy scores all of them inside
the supernet of every warm-up level. The table gives, per proxy and level, the rank correlation of
the proxy's *goodness* with the *negated* test loss (direction-adjusted, :mod:`sigeo.study.stats`),
so higher is better for every proxy and a useful one is positive.

Subnet ``i`` is drawn from its own generator seeded by ``(seed, i)``: raising ``num_subnets`` adds
architectures without changing the ones already trained, so their jobs stay up to date.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure

from ..data.store import Dataset
from ..final import FinalSettings, train_final
from ..io import atomic_path, read_json, write_json, write_text
from ..proxies import ProbeSettings, get_proxy
from ..report.plots import subplots
from ..report.tables import markdown
from ..space.choice import Path as Architecture
from ..space.choice import get_space, sample_architecture
from ..train import TrainingDiverged
from .stats import correlation_frame

log = logging.getLogger(__name__)

PathLike = str | os.PathLike

#: Zero-cost baselines scored next to the configured proxies when ``correlation.proxies`` is null.
BASELINES = ("zico", "fisher_rao", "loss", "grad_norm", "snip", "synflow", "naswot", "params", "flops")
#: Shown first, in this order, so SiGeo and ZiCo sit side by side in every level's block of rows.
LEAD = ("sigeo", "zico")
LABELS = {
    "sigeo": "SiGeo",
    "zico": "ZiCo",
    "fisher_rao": "Fisher–Rao",
    "loss": "training loss",
    "grad_abs_mean": "mean |grad|",
    "grad_std": "std of grad",
    "grad_norm": "grad norm",
    "snip": "SNIP",
    "synflow": "SynFlow",
    "fisher": "Fisher",
    "jacob_cov": "Jacob. cov.",
    "naswot": "NASWOT",
    "params": "#params",
    "flops": "FLOPs",
    "random": "random",
    "oneshot": "one-shot",
}


#: SiGeo solid on top, ZiCo dashed under it: with a small Fisher–Rao term the two lines can coincide.
LEAD_STYLES = {"sigeo": ("C3", "-", 4), "zico": ("C0", "--", 3)}
OTHER_COLORS = ("C1", "C2", "C4", "C5", "C6", "C8", "C9")
OTHER_STYLES = ("-", "--", ":")


def label(proxy: str) -> str:
    return LABELS.get(proxy, proxy)


def percent(level: float) -> str:
    return f"{100 * level:g} %"


@dataclass(frozen=True)
class CorrelationSettings:
    """The config's ``correlation`` section, with its defaults resolved against the rest of the config."""

    num_subnets: int
    proxies: tuple[str, ...]
    seed: int
    bootstrap: int

    @classmethod
    def from_config(cls, config: Mapping) -> CorrelationSettings:
        c = config["correlation"]
        proxies = ordered_proxies(c["proxies"] or [*config["proxies"], *BASELINES])
        for name in proxies:
            get_proxy(name)  # an unknown name fails at start, listing the known ones
        return cls(
            num_subnets=c["num_subnets"],
            proxies=tuple(proxies),
            seed=sampling_seed(config),
            bootstrap=c["bootstrap"],
        )


def sampling_seed(config: Mapping) -> int:
    """The study's seed: ``correlation.seed``, else the run's."""
    seed = config["correlation"]["seed"]
    return config["seed"] if seed is None else seed


def truth_settings(config: Mapping) -> FinalSettings:
    """The final training's settings with the study's ``epochs`` and ``max_train_rows`` where set."""
    c = config["correlation"]
    changes = {key: c[key] for key in ("epochs", "max_train_rows") if c[key] is not None}
    return replace(FinalSettings.from_config(config), **changes)


def ordered_proxies(names: Sequence[str]) -> list[str]:
    """Distinct names, SiGeo and ZiCo first, the rest in their given order."""
    distinct = list(dict.fromkeys(names))
    return [n for n in LEAD if n in distinct] + [n for n in distinct if n not in LEAD]


# --- the subnets -----------------------------------------------------------------------------------
def subnet(
    space_name: str, num_blocks: int, seed: int, index: int, widths: dict[str, list[int]] | None = None
) -> Architecture:
    """Subnet ``index`` of the study: a search candidate drawn from the generator seeded by (seed, index).

    ``widths``: the config's ``space_widths`` (None: the paper's widths).
    """
    return sample_architecture(np.random.default_rng([seed, index]), get_space(space_name, widths), num_blocks)


def subnets(
    space_name: str, num_blocks: int, seed: int, count: int, widths: dict[str, list[int]] | None = None
) -> list[Architecture]:
    return [subnet(space_name, num_blocks, seed, i, widths) for i in range(count)]


def train_subnet(
    arch: Architecture,
    dataset_dir: PathLike,
    settings: FinalSettings,
    out_dir: PathLike,
    device: torch.device,
) -> dict:
    """Ground truth of one subnet: train it from scratch like a final candidate; ``arch.json`` next to it.

    A subnet whose training diverges gets null metrics and ``diverged: true`` instead of failing the
    job (the reference scored such runs 999.99); the study drops it from every correlation and counts it.
    """
    out_dir = Path(out_dir)
    write_json(out_dir / "arch.json", arch.to_dict())
    try:
        return train_final(arch, dataset_dir, settings, out_dir, device)
    except TrainingDiverged as exc:
        log.warning("subnet %s diverged: %s", arch.hash(), exc)
        (out_dir / "resume.pt").unlink(missing_ok=True)
        empty = {"logloss": None, "auc": None, "accuracy": None}
        metrics = {"arch_hash": arch.hash(), "diverged": True, "error": str(exc), "val": empty, "test": empty}
        write_json(out_dir / "metrics.json", metrics)
        return metrics


def score_subnets(
    supernet_path: PathLike,
    dataset_dir: PathLike,
    space_name: str,
    archs: Sequence[Architecture],
    proxies: Sequence[str],
    config: Mapping,
    out_csv: PathLike,
    device: torch.device,
) -> pd.DataFrame:
    """Score every architecture with every proxy inside one supernet (loaded once); one CSV row each."""
    from ..search import CandidateScorer, ProbeData, scoring_workers
    from ..warmup import WarmupSettings, build_supernet

    dataset = Dataset.open(dataset_dir)
    warm = WarmupSettings.from_config(config)
    supernet = build_supernet(get_space(space_name, warm.space_widths), dataset, warm)
    supernet.load_state_dict(torch.load(supernet_path, map_location="cpu", weights_only=True))
    supernet.to(device)
    scorer = CandidateScorer(
        supernet, dataset, list(proxies), ProbeSettings.from_config(config), ProbeData.from_config(config), device
    )

    def timed(arch: Architecture) -> tuple[dict[str, float], float]:
        started = time.perf_counter()
        return scorer.score(arch), time.perf_counter() - started

    rows = []
    with scoring_workers(device, scorer.cost) as workers:
        for index, (arch, (scores, seconds)) in enumerate(zip(archs, workers.map(timed, archs), strict=True)):
            rows.append({"subnet": index, "hash": arch.hash(), **scores, "seconds": seconds})
            log.info("subnet %d/%d scored in %.2f s", index + 1, len(archs), seconds)
    frame = pd.DataFrame(rows)
    with atomic_path(out_csv, ".csv") as tmp:
        frame.to_csv(tmp, index=False)
    return frame


# --- analysis --------------------------------------------------------------------------------------
def _loss(value: float | None) -> float:
    return math.nan if value is None else float(value)


def collect(
    truth_paths: Sequence[PathLike], score_paths: Mapping[float, PathLike], proxies: Sequence[str]
) -> pd.DataFrame:
    """One row per (level, subnet): the proxies' scores next to the subnet's val and test log loss.

    A subnet drawn twice (possible only in tiny spaces) is kept once, so ties cannot inflate n.
    """
    truth = pd.DataFrame(
        [
            {
                "subnet": i,
                "hash": m["arch_hash"],
                "val_loss": _loss(m["val"]["logloss"]),
                "test_loss": _loss(m["test"]["logloss"]),
            }
            for i, m in enumerate(read_json(p) for p in truth_paths)
        ]
    )
    duplicated = truth["hash"].duplicated()
    if duplicated.any():
        log.warning("%d subnets repeat an earlier architecture; each is counted once", int(duplicated.sum()))
    truth = truth[~duplicated]
    frames = []
    for level, path in sorted(score_paths.items()):
        scores = pd.read_csv(path, dtype={"hash": str})[["subnet", "hash", *proxies]]
        missing = set(truth["subnet"]) - set(scores["subnet"])
        if missing:
            raise ValueError(f"{path}: no scores for subnets {sorted(missing)}")
        merged = truth.merge(scores, on="subnet", how="left", suffixes=("", "_scored"), validate="one_to_one")
        if (merged["hash"] != merged.pop("hash_scored")).any():
            raise ValueError(f"{path}: its subnets are not the study's (architectures differ); rerun the scoring")
        frames.append(merged.assign(level=level))
    return pd.concat(frames, ignore_index=True)[["level", "subnet", "hash", "val_loss", "test_loss", *proxies]]


def correlation_table(data: pd.DataFrame, proxies: Sequence[str], n_resamples: int, seed: int) -> pd.DataFrame:
    """Rows = level × proxy (SiGeo and ZiCo first): direction-adjusted Spearman ρ and Kendall τ with
    their bootstrap 95 % intervals against the test log loss."""
    direction = {name: get_proxy(name).higher_is_better for name in proxies}
    table = correlation_frame(
        data, list(proxies), by="level", higher_is_better=direction, n_resamples=n_resamples, seed=seed
    )
    table = table.rename(columns={"statistic": "proxy"})
    table.insert(2, "higher_is_better", table["proxy"].map(direction))
    order = {name: i for i, name in enumerate(ordered_proxies(proxies))}
    table = table.sort_values(["level", "proxy"], key=lambda col: col.map(order) if col.name == "proxy" else col)
    return table.reset_index(drop=True)


@dataclass(frozen=True)
class Check:
    """The report's fidelity target: SiGeo's ρ at the highest warm-up level ≥ its ρ at level 0."""

    passed: bool | None
    text: str


def fidelity_check(table: pd.DataFrame) -> Check:
    sigeo = table[table["proxy"] == "sigeo"].set_index("level")["spearman"]
    if sigeo.empty or 0.0 not in sigeo.index or len(sigeo) < 2:
        return Check(None, "SiGeo's Spearman ρ at the highest level ≥ at 0 %: n/a (needs SiGeo at level 0 and above)")
    top = max(sigeo.index)
    low, high = sigeo[0.0], sigeo[top]
    passed = bool(high >= low) if math.isfinite(low) and math.isfinite(high) else None
    verdict = {True: "PASS", False: "FAIL", None: "n/a (undefined ρ)"}[passed]
    return Check(passed, f"SiGeo's Spearman ρ at {percent(top)} ({high:.3f}) ≥ at 0 % ({low:.3f}): {verdict}")


def side_by_side(table: pd.DataFrame) -> pd.DataFrame:
    """SiGeo next to ZiCo per level: ρ and τ with their intervals as text (for the summary)."""
    rows = []
    for level, group in table.groupby("level", sort=True):
        row: dict[str, object] = {"warm-up": percent(level)}
        for name in LEAD:
            hit = group[group["proxy"] == name]
            if hit.empty:
                continue
            r = hit.iloc[0]
            row[f"{label(name)} ρ [95 % CI]"] = f"{r.spearman:.3f} [{r.spearman_low:.2f}, {r.spearman_high:.2f}]"
            row[f"{label(name)} τ [95 % CI]"] = f"{r.kendall:.3f} [{r.kendall_low:.2f}, {r.kendall_high:.2f}]"
        row["n"] = int(group["n"].max())
        rows.append(row)
    return pd.DataFrame(rows)


def write_summary(table: pd.DataFrame, title: str, md: PathLike, html: PathLike) -> Check:
    """SiGeo and ZiCo per level and the fidelity check, as Markdown and HTML (the text next to the table)."""
    check = fidelity_check(table)
    pair = side_by_side(table)
    note = "Direction-adjusted: a proxy's goodness against −(test log loss), so higher is better for every proxy."
    write_text(md, f"## {title}\n\n{markdown(pair)}\n\n{note}\n\nFidelity check: {check.text}\n")
    write_text(
        html,
        f"<h3>{title}</h3>\n{pair.to_html(index=False, border=0)}\n<p>{note}</p>\n"
        f"<p><b>Fidelity check:</b> {check.text}</p>\n",
    )
    return check


def warmup_figure(table: pd.DataFrame, title: str) -> Figure:
    """Spearman ρ of each proxy against warm-up level (equally spaced); SiGeo and ZiCo bold with 95 % bands."""
    levels = sorted(table["level"].unique())
    position = {level: i for i, level in enumerate(levels)}
    fig, axes = subplots(1, 1, panel=(7.5, 4.2))
    ax = axes[0, 0]
    others = 0
    for name in ordered_proxies(list(table["proxy"])):
        rows = table[table["proxy"] == name].sort_values("level")
        x = rows["level"].map(position)
        if name in LEAD:
            color, style, z = LEAD_STYLES[name]
            ax.plot(x, rows["spearman"], marker="o", lw=2.4, ms=7, color=color, ls=style, label=label(name), zorder=z)
            ax.fill_between(x, rows["spearman_low"], rows["spearman_high"], color=color, alpha=0.15, lw=0)
            continue
        color, style = OTHER_COLORS[others % len(OTHER_COLORS)], OTHER_STYLES[others // len(OTHER_COLORS) % 3]
        if name == "random":
            color, style = "0.45", ":"
        ax.plot(x, rows["spearman"], marker=".", lw=1.1, ms=5, color=color, ls=style, alpha=0.8, label=label(name))
        others += 1
    ax.axhline(0, color="0.4", lw=0.8)
    ax.set_xticks(range(len(levels)), [percent(level) for level in levels])
    ax.set(
        xlabel="supernet warm-up (% of the training split)",
        ylabel="Spearman ρ with −(test log loss)",
        ylim=(-1.05, 1.05),
        title=title,
    )
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=8, title="proxy (shaded: 95 % CI)",
              title_fontsize=8)  # fmt: skip
    return fig
