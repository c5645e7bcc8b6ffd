"""The RecSys correlation study: do proxies measured in a warmed-up supernet rank subnets by test loss?

A fixed set of architectures is drawn once per data set and space. Each is trained from scratch with
the final-training code (its test log loss is the ground truth); every proxy scores all of them inside
the supernet of every warm-up level. The table gives, per proxy and level, the rank correlation of
the proxy's *goodness* with the *negated* test loss (direction-adjusted, :mod:`sigeo.study.stats`),
so higher is better for every proxy and a useful one is positive.

Subnet ``i`` is drawn from its own generator seeded by ``(seed, i)``: raising ``num_subnets`` adds
architectures without changing the ones already trained, so their jobs stay up to date.

The ground truth is only worth predicting if it is reproducible: ``seed_repeats`` trains subnets with
more seeds, a subnet's truth is its mean over them, and the seeds' agreement (the noise ceiling) is
reported beside the proxies and gates every claim (:func:`claims`). Diverged runs enter no statistic
and are counted.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure

from ..data.store import Dataset
from ..final import FinalSettings, train_final
from ..io import ARCH_FILE, METRICS_FILE, TrainingOutputs, atomic_path, read_json, write_json, write_text
from ..proxies import aznas, get_proxy
from ..report.plots import subplots
from ..report.tables import markdown
from ..space.choice import Architecture, get_space, sample_architecture
from .stats import (
    Reliability,
    claim_beats,
    claim_positive,
    claim_rises,
    correlation_frame,
    paired_difference,
    reliability,
)
from .verdict import INCONCLUSIVE, Verdict, interval_verdict

if TYPE_CHECKING:
    from ..config import ScoreJob

log = logging.getLogger(__name__)

PathLike = str | os.PathLike

#: The table's row for the ground truth's seed-to-seed agreement, next to the proxies' rows.
SEEDS = "seeds"
#: Zero-cost baselines scored next to the configured proxies when ``correlation.proxies`` is null.
BASELINES = (
    "zico", "fisher_rao", "loss", "grad_norm", "snip", "synflow", "naswot", "meco", "aznas", "swap", "params", "flops",
)  # fmt: skip
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
    "meco": "MeCo",
    "aznas": "AZ-NAS",
    "swap": "SWAP",
    "params": "#params",
    "flops": "FLOPs",
    "random": "random",
    "oneshot": "one-shot",
    SEEDS: "seed vs seed (noise ceiling)",
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
    """The config's ``correlation`` section, its nulls resolved against the rest of the config (built
    by :func:`sigeo.config.load_settings`): ``proxies`` in the table's order, ``seed`` the study's.

    ``repeat_subnets`` is resolved to a count: the first that many subnets train with
    ``1 + seed_repeats`` seeds, the others with one.
    """

    num_subnets: int
    proxies: tuple[str, ...]
    seed: int
    bootstrap: int
    seed_repeats: int
    repeat_subnets: int
    min_reliability: float | None

    def seeds(self, subnet: int) -> range:
        """The training seeds of ``subnet`` (0 is its first training)."""
        return range(1 + self.seed_repeats) if subnet < self.repeat_subnets else range(1)

    def runs(self) -> list[tuple[int, int]]:
        """Every ground-truth training, as (subnet, seed), subnet by subnet."""
        return [(i, s) for i in range(self.num_subnets) for s in self.seeds(i)]

    def truth_files(self) -> list[str]:
        """Each run's ``metrics.json`` under the study's folder, in :meth:`runs` order: seed 0 where a study
        without repeats writes it, seed ``s`` in ``seed{s}/`` beside it."""
        return [
            f"subnets/{i}/{METRICS_FILE}" if s == 0 else f"subnets/{i}/seed{s}/{METRICS_FILE}" for i, s in self.runs()
        ]


def truth_settings(
    final: FinalSettings, epochs: int | None, max_train_rows: int | None, embedding_l2: float | None = None
) -> FinalSettings:
    """The ground truth's training: the final training's settings with the study's ``epochs``,
    ``max_train_rows`` and ``embedding_l2`` where set (None: the final training's).

    ``epochs`` caps the training whatever the schedule: it replaces both the cosine schedule's fixed
    ``epochs`` and the plateau schedule's ``max_epochs``.
    """
    changes = {} if max_train_rows is None else {"max_train_rows": max_train_rows}
    if embedding_l2 is not None:
        changes |= {"embedding_l2": embedding_l2}
    if epochs is not None:
        changes |= {"epochs": epochs, "max_epochs": epochs}
    return replace(final, **changes)


def training_seed(truth: FinalSettings, seed: int) -> FinalSettings:
    """Training seed ``seed`` of a subnet: it initialises with the run's seed + ``seed``, so seed 0 is
    the training a study without repeats runs."""
    return replace(truth, seed=truth.seed + seed)


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
    outputs: TrainingOutputs,
    device: torch.device,
    arch_path: PathLike | None = None,
) -> dict:
    """Ground truth of one subnet: train it from scratch like a final candidate, its outputs as
    :func:`~sigeo.final.train_model`'s; its architecture to ``arch_path`` (default: ``arch.json`` beside
    the metrics).

    A subnet whose training diverges is reported so in ``metrics.json`` (null ``val`` and ``test``)
    instead of failing the job (the reference scored such runs 999.99); the study drops it from every
    correlation and counts it.
    """
    write_json(outputs.folder / ARCH_FILE if arch_path is None else arch_path, arch.to_dict())
    return train_final(arch, dataset_dir, settings, outputs, device)


def score_subnets(
    supernet_path: PathLike,
    dataset_dir: PathLike,
    space_name: str,
    archs: Sequence[Architecture],
    proxies: Sequence[str],
    settings: ScoreJob,
    out_csv: PathLike,
    device: torch.device,
) -> pd.DataFrame:
    """Score every architecture with every proxy inside one supernet (loaded once); one CSV row each."""
    from ..search import CandidateScorer, scoring_workers
    from ..warmup import load_supernet

    dataset = Dataset.open(dataset_dir)
    warm = settings.warmup
    supernet = load_supernet(supernet_path, get_space(space_name, warm.space_widths), dataset, warm, device)
    scorer = CandidateScorer(supernet, dataset, list(proxies), settings.proxy, settings.probe_data, device)

    def timed(arch: Architecture) -> tuple[dict[str, float], float]:
        started = time.perf_counter()
        return scorer.score(arch), time.perf_counter() - started

    rows = []
    with scoring_workers(device, scorer.cost) as workers:
        for index, (arch, (scores, seconds)) in enumerate(zip(archs, workers.map(timed, archs), strict=True)):
            rows.append({"subnet": index, "hash": arch.hash(), **scores, "seconds": seconds})
            log.info("subnet %d/%d scored in %.2f s", index + 1, len(archs), seconds)
    frame = pd.DataFrame(rows)
    if "aznas" in proxies:  # the paper's score: its components' ranks aggregated over this level's subnets
        frame["aznas"] = aznas.rank_aggregate(frame)
    with atomic_path(out_csv, ".csv") as tmp:
        frame.to_csv(tmp, index=False)
    return frame


# --- analysis --------------------------------------------------------------------------------------
def _diverged(metrics: Mapping, path: PathLike) -> bool:
    """Whether a run diverged (``status`` "diverged" or a ``diverged`` entry); if not, its losses must be numbers."""
    if metrics.get("status") == "diverged" or metrics.get("diverged"):
        return True
    for split in ("val", "test"):
        value = (metrics.get(split) or {}).get("logloss")
        if value is None or not math.isfinite(value):
            raise ValueError(f"{path}: {split}.logloss is {value!r} in a run not marked diverged")
    return False


def read_runs(paths: Mapping[tuple[int, int], PathLike]) -> pd.DataFrame:
    """One row per ground-truth training (subnet, seed): hash, diverged, val and test log loss (NaN if diverged)."""
    rows = []
    for (index, seed), path in paths.items():
        m = read_json(path)
        diverged = _diverged(m, path)
        nan = math.nan
        rows.append(
            {
                "subnet": index,
                "seed": seed,
                "hash": m["arch_hash"],
                "diverged": diverged,
                "val_loss": nan if diverged else float(m["val"]["logloss"]),
                "test_loss": nan if diverged else float(m["test"]["logloss"]),
            }
        )
    runs = pd.DataFrame(rows).sort_values(["subnet", "seed"], ignore_index=True)
    changed = runs.groupby("subnet")["hash"].nunique() > 1
    if changed.any():
        raise ValueError(f"subnets {list(changed[changed].index)}: their seeds trained different architectures")
    return runs


def ground_truth(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per subnet: ``seeds`` (runs that converged), ``diverged`` (runs that did not), and the mean
    val and test log loss over the converged seeds (NaN when none converged: such a subnet enters no
    statistic). A subnet drawn twice (possible only in tiny spaces) is kept once, so ties cannot inflate n."""
    truth = runs.groupby("subnet", sort=True).agg(
        hash=("hash", "first"),
        seeds=("diverged", lambda d: int((~d).sum())),
        diverged=("diverged", "sum"),
        val_loss=("val_loss", "mean"),
        test_loss=("test_loss", "mean"),
    )
    truth = truth.reset_index().astype({"diverged": int})
    duplicated = truth["hash"].duplicated()
    if duplicated.any():
        log.warning("%d subnets repeat an earlier architecture; each is counted once", int(duplicated.sum()))
    return truth[~duplicated].reset_index(drop=True)


def seed_matrix(runs: pd.DataFrame) -> tuple[np.ndarray, int]:
    """(subnets × seeds) test losses of the subnets trained with the most seeds, and how many of those
    are left out because a seed diverged. Repeated architectures count once, like in :func:`ground_truth`."""
    runs = runs[runs["subnet"].isin(ground_truth(runs)["subnet"])]
    counts = runs.groupby("subnet")["seed"].count()
    if counts.empty or counts.max() < 2:
        return np.empty((0, 1)), 0
    repeated = runs[runs["subnet"].isin(counts[counts == counts.max()].index)]
    wide = repeated.pivot(index="subnet", columns="seed", values="test_loss")
    complete = wide.notna().all(axis=1)
    return wide[complete].to_numpy(), int((~complete).sum())


def read_learned(paths: Mapping[float, PathLike]) -> dict[float, bool | None]:
    """Per warm-up level, its supernet's ``learned`` flag (None where the warm-up did not record one)."""
    learned = {}
    for level, path in paths.items():
        flag = read_json(path).get("learned")
        if flag is not None and not isinstance(flag, bool):
            raise ValueError(f"{path}: learned must be true or false, got {flag!r}")
        learned[level] = flag
    return learned


def collect(truth: pd.DataFrame, score_paths: Mapping[float, PathLike], proxies: Sequence[str]) -> pd.DataFrame:
    """One row per (level, subnet): the proxies' scores next to the subnet's ground truth (:func:`ground_truth`)."""
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
    columns = ["level", "subnet", "hash", "seeds", "diverged", "val_loss", "test_loss", *proxies]
    return pd.concat(frames, ignore_index=True)[columns]


def usable(data: pd.DataFrame) -> pd.DataFrame:
    """The subnets with at least one converged seed: the only ones any statistic sees."""
    return data[data["seeds"] > 0]


def measure_reliability(runs: pd.DataFrame, n_resamples: int, seed: int) -> tuple[Reliability, int]:
    """The ground truth's noise ceiling (:func:`sigeo.study.stats.reliability`) and the repeated subnets
    it leaves out because one of their seeds diverged."""
    matrix, left_out = seed_matrix(runs)
    return reliability(matrix, n_resamples=n_resamples, seed=seed), left_out


def correlation_table(
    data: pd.DataFrame,
    proxies: Sequence[str],
    n_resamples: int,
    seed: int,
    *,
    noise: Reliability,
    noise_left_out: int = 0,
    learned: Mapping[float, bool | None] | None = None,
) -> pd.DataFrame:
    """Rows = level × proxy (SiGeo and ZiCo first), then the seeds' row: direction-adjusted Spearman ρ and
    Kendall τ with their bootstrap 95 % intervals against the test log loss.

    ``learned``: whether the level's supernet learned (None: not recorded). ``n``: subnets in the ρ;
    ``dropped``: subnets whose score was NaN/inf; ``diverged``: subnets left out because every seed
    diverged (on the seeds' row: repeated subnets left out because one seed diverged).
    """
    direction = {name: get_proxy(name).higher_is_better for name in proxies}
    kept = usable(data)
    table = correlation_frame(
        kept, list(proxies), by="level", higher_is_better=direction, n_resamples=n_resamples, seed=seed
    )
    table = table.rename(columns={"statistic": "proxy"})
    table.insert(2, "higher_is_better", table["proxy"].map(direction))
    levels = sorted(data["level"].unique())
    excluded = int((data.loc[data["level"] == levels[0], "seeds"] == 0).sum())
    table["diverged"] = excluded
    ceiling = pd.DataFrame(
        {
            "level": levels,
            "proxy": SEEDS,
            "higher_is_better": None,
            "spearman": noise.spearman,
            "spearman_low": noise.spearman_ci[0],
            "spearman_high": noise.spearman_ci[1],
            "kendall": noise.kendall,
            "kendall_low": noise.kendall_ci[0],
            "kendall_high": noise.kendall_ci[1],
            "n": noise.subnets,
            "dropped": 0,
            "diverged": noise_left_out,
        }
    )
    table = pd.concat([table, ceiling], ignore_index=True)
    table.insert(3, "learned", table["level"].map(lambda level: (learned or {}).get(level)))
    order = {name: i for i, name in enumerate([*ordered_proxies(proxies), SEEDS])}
    table = table.sort_values(["level", "proxy"], key=lambda col: col.map(order) if col.name == "proxy" else col)
    return table.reset_index(drop=True)


def not_learned(flag: object) -> bool:
    """True only for a recorded ``learned: false`` (None: not recorded)."""
    return isinstance(flag, bool | np.bool_) and not flag


def _goodness(frame: pd.DataFrame, proxy: str) -> np.ndarray:
    values = frame[proxy].to_numpy(dtype=float)
    return values if get_proxy(proxy).higher_is_better else -values


def claims(
    data: pd.DataFrame,
    table: pd.DataFrame,
    noise: Reliability,
    min_reliability: float | None,
    n_resamples: int,
    seed: int,
) -> list[Verdict]:
    """The summary's claims, each PASS / FAIL / INCONCLUSIVE (:func:`sigeo.study.verdict.interval_verdict`):

    (a) SiGeo's ρ at the highest warm-up level exceeds its ρ at 0 %; (b) SiGeo's ρ exceeds ZiCo's at each
    level above 0; (c) SiGeo's ρ at the lowest level above 0 is above 0. Differences come from a paired
    bootstrap over the same subnets; (c) from the table's interval. Every claim is INCONCLUSIVE when the
    ground truth's seed-pair Spearman is below ``min_reliability`` (or unmeasured), or when a warmed-up
    level it rests on has a supernet that did not learn.
    """
    kept = usable(data)
    by_level = {level: frame.sort_values("subnet") for level, frame in kept.groupby("level", sort=True)}
    levels = sorted(by_level)
    warmed = [level for level in levels if level > 0]
    learned = table.drop_duplicates("level").set_index("level")["learned"]
    proxies = set(table["proxy"])

    def decide(claim: str, estimate: float, low: float, high: float, rests_on: Sequence[float], n: int) -> Verdict:
        verdict = interval_verdict(
            claim, estimate, low, high, reliability=noise.spearman, min_reliability=min_reliability
        )
        verdict = replace(verdict, numbers={**verdict.numbers, "n": n})
        if min_reliability is not None and math.isnan(noise.spearman) and verdict.reason.startswith("ground truth"):
            verdict = replace(verdict, reason="ground truth's reliability not measured (correlation.seed_repeats)")
        untrained = [level for level in rests_on if level > 0 and not_learned(learned.get(level))]
        if untrained:
            where = ", ".join(percent(level) for level in untrained)
            verdict = replace(verdict, status=INCONCLUSIVE, reason=f"the supernet at {where} did not learn")
        return verdict

    def missing(claim: str, what: str) -> Verdict:
        return Verdict(claim, INCONCLUSIVE, f"not measured: {what}")

    def difference(a: tuple[float, str], b: tuple[float, str]) -> tuple[float, float, float, int]:
        frame_a, frame_b = by_level[a[0]], by_level[b[0]]
        result = paired_difference(
            _goodness(frame_a, a[1]),
            _goodness(frame_b, b[1]),
            -frame_a["test_loss"].to_numpy(),
            n_resamples=n_resamples,
            seed=seed,
        )
        return result.estimate, result.low, result.high, result.n

    sigeo, zico = label("sigeo"), label("zico")
    verdicts = []
    if "sigeo" in proxies and 0.0 in by_level and warmed:
        top = warmed[-1]
        estimate, low, high, n = difference((top, "sigeo"), (0.0, "sigeo"))
        verdicts.append(decide(claim_rises(sigeo, percent(top), percent(0.0)), estimate, low, high, [top], n))
    else:
        verdicts.append(missing(claim_rises(sigeo, "the highest level", percent(0.0)), "needs SiGeo at 0 % and above"))
    for level in warmed:
        claim = claim_beats(sigeo, zico, percent(level))
        if {"sigeo", "zico"} <= proxies:
            estimate, low, high, n = difference((level, "sigeo"), (level, "zico"))
            verdicts.append(decide(claim, estimate, low, high, [level], n))
        else:
            verdicts.append(missing(claim, "needs SiGeo and ZiCo scored"))
    if "sigeo" in proxies and warmed:
        first = warmed[0]
        row = table[(table["level"] == first) & (table["proxy"] == "sigeo")].iloc[0]
        claim = claim_positive(sigeo, percent(first))
        verdicts.append(decide(claim, row.spearman, row.spearman_low, row.spearman_high, [first], int(row.n)))
    else:
        verdicts.append(missing(claim_positive(sigeo, "the lowest level above 0"), "needs SiGeo above 0 %"))
    return verdicts


def side_by_side(table: pd.DataFrame) -> pd.DataFrame:
    """SiGeo next to ZiCo per level: ρ and τ with their intervals as text (for the summary)."""
    rows = []
    for level, group in table.groupby("level", sort=True):
        flag = group["learned"].iloc[0]
        row: dict[str, object] = {
            "warm-up": percent(level),
            "supernet learned": {True: "yes", False: "NO"}.get(flag, "not recorded"),
        }
        for name in LEAD:
            hit = group[group["proxy"] == name]
            if hit.empty:
                continue
            r = hit.iloc[0]
            row[f"{label(name)} ρ [95 % CI]"] = f"{r.spearman:.3f} [{r.spearman_low:.2f}, {r.spearman_high:.2f}]"
            row[f"{label(name)} τ [95 % CI]"] = f"{r.kendall:.3f} [{r.kendall_low:.2f}, {r.kendall_high:.2f}]"
        row["n"] = int(group.loc[group["proxy"] != SEEDS, "n"].max())
        rows.append(row)
    return pd.DataFrame(rows)


def reliability_text(noise: Reliability, left_out: int, min_reliability: float | None) -> str:
    """The ground truth's noise ceiling in one paragraph."""
    if math.isnan(noise.spearman):
        return (
            f"Ground truth reliability: not measured ({noise.subnets} subnets with every one of {noise.seeds} "
            "seeds converged; at least 3 subnets with 2 seeds are needed: see correlation.seed_repeats and "
            "repeat_subnets)."
        )
    low, high = noise.spearman_ci
    bar = "none (min_reliability is null)" if min_reliability is None else f"{min_reliability:g}"
    return (
        f"Ground truth reliability over {noise.subnets} subnets × {noise.seeds} seeds: seed-pair Spearman ρ "
        f"{noise.spearman:.3f} [95 % CI {low:.2f}, {high:.2f}], Kendall τ {noise.kendall:.3f}, ICC(1) "
        f"{noise.icc1:.3f}; SD of the test log loss between architectures {noise.sd_between:.4f}, between "
        f"seeds {noise.sd_within:.4f}. Claims need a seed-pair Spearman of at least {bar}."
        + (f" Left out of these for a diverged seed: {left_out} repeated subnets." if left_out else "")
    )


def divergence_text(runs: pd.DataFrame, truth: pd.DataFrame) -> str:
    excluded = int((truth["seeds"] == 0).sum())
    return (
        f"Diverged training runs: {int(runs['diverged'].sum())} of {len(runs)}; {excluded} of {len(truth)} "
        "subnets had no converged seed and enter no statistic. A subnet's ground truth is the mean test log "
        "loss over its converged seeds."
    )


def write_summary(
    table: pd.DataFrame, verdicts: Sequence[Verdict], notes: Sequence[str], title: str, md: PathLike, html: PathLike
) -> None:
    """SiGeo and ZiCo per level, the ``notes`` (reliability, divergence) and each claim's verdict, as
    Markdown and HTML (the text next to the table)."""
    pair = side_by_side(table)
    note = "Direction-adjusted: a proxy's goodness against −(test log loss), so higher is better for every proxy."
    lines = [verdict.line() for verdict in verdicts]
    md_checks = "\n".join(f"- {line}" for line in lines)
    md_notes = "\n\n".join(notes)
    write_text(md, f"## {title}\n\n{markdown(pair)}\n\n{note}\n\n{md_notes}\n\nChecks:\n\n{md_checks}\n")
    html_notes = "".join(f"<p>{text}</p>\n" for text in notes)
    html_checks = "".join(f"<li>{line.replace('**', '')}</li>" for line in lines)
    write_text(
        html,
        f"<h3>{title}</h3>\n{pair.to_html(index=False, border=0)}\n<p>{note}</p>\n{html_notes}"
        f"<h4>Checks</h4>\n<ul>{html_checks}</ul>\n",
    )


def warmup_figure(table: pd.DataFrame, title: str) -> Figure:
    """Spearman ρ of each proxy against warm-up level (equally spaced); SiGeo and ZiCo bold with 95 % bands;
    the ground truth's seed-pair Spearman (its noise ceiling) a grey band; levels whose supernet did not
    learn are marked on the axis."""
    levels = sorted(table["level"].unique())
    position = {level: i for i, level in enumerate(levels)}
    fig, axes = subplots(1, 1, panel=(7.5, 4.2))
    ax = axes[0, 0]
    others = 0
    ceiling = table[table["proxy"] == SEEDS]
    if not ceiling.empty and math.isfinite(ceiling["spearman"].iloc[0]):
        r = ceiling.iloc[0]
        ax.axhspan(r.spearman_low, r.spearman_high, color="0.5", alpha=0.15, lw=0)
        ax.axhline(r.spearman, color="0.3", ls="-.", lw=1.2, label=label(SEEDS))
    for name in ordered_proxies([p for p in table["proxy"] if p != SEEDS]):
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
    learned = table.drop_duplicates("level").set_index("level")["learned"]
    ticks = [percent(level) + ("\n(not learned)" if not_learned(learned[level]) else "") for level in levels]
    ax.set_xticks(range(len(levels)), ticks)
    ax.set(
        xlabel="supernet warm-up (% of the training split)",
        ylabel="Spearman ρ with −(test log loss)",
        ylim=(-1.05, 1.05),
        title=title,
    )
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=8, title="proxy (shaded: 95 % CI)",
              title_fontsize=8)  # fmt: skip
    return fig
