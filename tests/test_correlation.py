"""The RecSys correlation study: settings and seed repeats, seeded subnets, a diverging subnet, the ground
truth's reliability, the table's rows and signs, planted claims that PASS, FAIL and are INCONCLUSIVE, the plot."""

from __future__ import annotations

import json
from dataclasses import replace

import matplotlib.image as mpimg
import numpy as np
import pandas as pd
import pytest
import torch
from conftest import default_settings, synthetic_dataset
from scipy import stats

from sigeo.config import DatasetSettings, ScoreJob, job_settings, load_config, load_settings
from sigeo.io import TrainingOutputs
from sigeo.report.plots import save_figure
from sigeo.report.tables import write_table
from sigeo.space.choice import get_space
from sigeo.study.correlation import (
    SEEDS,
    claims,
    collect,
    correlation_table,
    divergence_text,
    ground_truth,
    measure_reliability,
    read_learned,
    read_runs,
    reliability_text,
    subnets,
    train_subnet,
    training_seed,
    warmup_figure,
    write_summary,
)
from sigeo.study.verdict import FAIL, INCONCLUSIVE, PASS

CPU = torch.device("cpu")


def config(**correlation) -> dict:
    return {"datasets": {"d": {"format": "criteo", "source": "synthetic", "synthetic": {"rows": 10}}},
            "seed": 5, "num_blocks": 2, "final": {"epochs": 2, "max_train_rows": 999},
            "proxy": {"probe_batch_size": 64}, "correlation": correlation}  # fmt: skip


def settings(**correlation) -> DatasetSettings:
    """Data set d's settings as the pipeline's builder makes them, with these correlation keys."""
    return load_settings(config(**correlation)).datasets["d"]


def test_settings_defaults_and_overrides():
    default = settings().correlation
    assert default.proxies[:2] == ("sigeo", "zico") and "oneshot" in default.proxies and "flops" in default.proxies
    assert len(set(default.proxies)) == len(default.proxies) and default.seed == 5 and default.num_subnets == 100
    chosen = settings(proxies=["random", "zico", "sigeo"], seed=9).correlation
    assert chosen.proxies == ("sigeo", "zico", "random") and chosen.seed == 9
    assert settings().truth.epochs == 2 and settings().truth.max_train_rows == 999
    short = settings(epochs=1, max_train_rows=50).truth
    assert short.max_train_rows == 50 and short.epochs == 1 and short.max_epochs == 1 and short.epochs_to_run == 1
    assert settings().truth.max_epochs == settings().final.max_epochs
    penalised = load_settings(config() | {"final": {"embedding_l2": 1e-3}}).datasets["d"]
    assert penalised.truth.embedding_l2 == 1e-3  # null: the final training's
    alone = load_settings(config(embedding_l2=0) | {"final": {"embedding_l2": 1e-3}}).datasets["d"]
    assert alone.truth.embedding_l2 == 0 and alone.final.embedding_l2 == 1e-3
    with pytest.raises(Exception, match="unknown proxy 'nope'"):
        settings(proxies=["nope"])


def test_seed_repeats_add_runs_and_keep_seed_zero():
    default = settings().correlation
    assert (default.seed_repeats, default.repeat_subnets, default.min_reliability) == (1, 100, 0.8)
    assert len(default.runs()) == 200 and default.runs()[:3] == [(0, 0), (0, 1), (1, 0)]
    some = settings(num_subnets=5, seed_repeats=2, repeat_subnets=3).correlation
    assert some.runs() == [(i, s) for i in range(3) for s in range(3)] + [(3, 0), (4, 0)]
    assert some.truth_files()[:3] == ["subnets/0/metrics.json", "subnets/0/seed1/metrics.json",
                                      "subnets/0/seed2/metrics.json"]  # fmt: skip
    assert some.truth_files()[-1] == "subnets/4/metrics.json"
    assert settings(num_subnets=4, repeat_subnets=9).correlation.repeat_subnets == 4
    none = settings(num_subnets=4, seed_repeats=0, min_reliability=None).correlation
    assert none.runs() == [(i, 0) for i in range(4)] and none.min_reliability is None
    assert settings().truth.seed == 5 and training_seed(settings().truth, 2).seed == 7
    with pytest.raises(Exception, match="repeat_subnets"):
        load_config({**config(), "correlation": {"repeat_subnets": "some"}})


def test_subnets_are_seeded_and_stay_put_when_the_study_grows():
    few = [a.hash() for a in subnets("small", 3, 7, 3)]
    assert few == [a.hash() for a in subnets("small", 3, 7, 6)][:3]
    assert len(set(few)) == 3 and few != [a.hash() for a in subnets("small", 3, 8, 3)]
    assert all(a.is_architecture() for a in subnets("full", 3, 7, 4))


def test_a_diverging_subnet_gets_null_metrics_instead_of_failing(tmp_path):
    synthetic_dataset(tmp_path, rows=2000, seed=3)
    final = replace(default_settings().final, lr=1e12, batch_size=128, epochs=3, eval_batch_size=4096,
                    max_train_rows=None, checkpoint_minutes=1e-9, log_every=100, seed=1)  # fmt: skip
    arch = subnets("small", 2, 3, 1)[0]
    metrics = train_subnet(arch, tmp_path / "data", final, TrainingOutputs.in_folder(tmp_path / "out"), CPU)
    assert metrics["status"] == "diverged" and metrics["val"] is None and metrics["test"] is None
    assert isinstance(metrics["diverged"]["step"], int) and metrics["diverged"]["reason"]
    assert json.loads((tmp_path / "out" / "metrics.json").read_text())["arch_hash"] == arch.hash()
    assert (tmp_path / "out" / "arch.json").exists() and (tmp_path / "out" / "model.pt").exists()
    assert not (tmp_path / "out" / "resume.pt").exists()


N = 30
LEVELS = (0.0, 0.1, 1.0)


def run_metrics(loss: float | None, index: int, status: str = "ok") -> dict:
    split = None if loss is None else {"logloss": loss}
    diverged = {"step": 3, "reason": "loss is nan"} if status == "diverged" else None
    return {"arch_hash": f"h{index}", "status": status, "diverged": diverged, "val": split, "test": split}


def planted(tmp_path, *, reliable: bool = True, diverged: dict | None = None, learned: dict | None = None):
    """30 subnets with two seeds each (seed 1 agrees with seed 0 when ``reliable``, else is unrelated) and
    three levels of scores planted so that every claim has a known answer:

    SiGeo is noise at 0 %, −truth plus noise at 10 %, −truth plus less noise at 100 %: it rises (PASS) and
    is above 0 at 10 % (PASS). ZiCo is −truth exactly at 10 % (SiGeo below it: FAIL) and SiGeo's scores
    with two subnets swapped at 100 % (a difference that resamples to both signs: INCONCLUSIVE).
    ``diverged`` maps (subnet, seed) to runs to mark diverged.
    """
    rng = np.random.default_rng(0)
    truth = rng.uniform(0.4, 0.6, N)
    seeds = [truth + rng.normal(0, 0.002, N), truth + rng.normal(0, 0.002, N) if reliable else rng.uniform(0.4, 0.6, N)]
    runs = {}
    for i in range(N):
        for s in range(2):
            path = tmp_path / f"t{i}_{s}.json"
            if (i, s) in (diverged or {}):
                metrics = run_metrics(None, i, "diverged")
            else:
                metrics = run_metrics(float(seeds[s][i]), i)
            path.write_text(json.dumps(metrics))
            runs[(i, s)] = path
    mean = np.mean(seeds, axis=0)
    zico_top = -mean + rng.normal(0, 0.02, N)
    sigeo_top = zico_top.copy()
    order = np.argsort(sigeo_top)
    sigeo_top[order[[10, 11]]] = sigeo_top[order[[11, 10]]]
    planted_scores = {
        0.0: (rng.normal(size=N), -mean),
        0.1: (-mean + rng.normal(0, 0.05, N), -mean),
        1.0: (sigeo_top, zico_top),
    }
    scores, warmup = {}, {}
    for level, (sigeo, zico) in planted_scores.items():
        frame = pd.DataFrame({"subnet": range(N), "hash": [f"h{i}" for i in range(N)], "sigeo": sigeo, "zico": zico,
                              "loss": mean, "random": rng.random(N)})  # fmt: skip
        scores[level] = tmp_path / f"s{level}.csv"
        frame.to_csv(scores[level], index=False)
        warmup[level] = tmp_path / f"w{level}.json"
        flag = (learned or {}).get(level, level > 0)
        warmup[level].write_text(json.dumps({"learned": flag}))
    return runs, scores, warmup


PROXIES = ["random", "loss", "zico", "sigeo"]


def study(tmp_path, min_reliability: float | None = 0.8, n_resamples: int = 50, **planting):
    runs_paths, score_paths, warmup = planted(tmp_path, **planting)
    runs = read_runs(runs_paths)
    truth = ground_truth(runs)
    data = collect(truth, score_paths, PROXIES)
    noise, left_out = measure_reliability(runs, n_resamples, 0)
    table = correlation_table(data, PROXIES, n_resamples, 0, noise=noise, noise_left_out=left_out,
                              learned=read_learned(warmup))  # fmt: skip
    return runs, truth, data, noise, left_out, table, claims(data, table, noise, min_reliability, n_resamples, 0)


def test_table_parses_back_with_rows_columns_signs_and_the_noise_ceiling(tmp_path):
    runs, _, data, noise, _, table, _ = study(tmp_path)
    out = {ext: tmp_path / f"c.{ext}" for ext in ("csv", "md", "tex")}
    write_table(table, out["csv"], out["md"], out["tex"])
    back = pd.read_csv(out["csv"])
    assert list(back.columns) == ["level", "proxy", "higher_is_better", "learned", "spearman", "spearman_low",
                                  "spearman_high", "kendall", "kendall_low", "kendall_high", "n", "dropped",
                                  "diverged"]  # fmt: skip
    assert list(back["proxy"]) == ["sigeo", "zico", "random", "loss", SEEDS] * 3
    assert list(back.drop_duplicates("level")["learned"]) == [False, True, True]
    by = back.set_index(["level", "proxy"])
    # the ground truth is the mean over seeds; `loss` equals it, so it ranks perfectly (lower is better)
    assert data.loc[data["subnet"] == 7, "test_loss"].iloc[0] == pytest.approx(
        runs.loc[runs["subnet"] == 7, "test_loss"].mean()
    )
    assert by.loc[(0.0, "loss"), "spearman"] == pytest.approx(1.0) and not by.loc[(0.0, "loss"), "higher_is_better"]
    assert by.loc[(0.1, "zico"), ["spearman", "kendall"]].tolist() == pytest.approx([1.0, 1.0])
    seed0, seed1 = (runs[runs["seed"] == s]["test_loss"].to_numpy() for s in (0, 1))
    ceiling = by.xs(SEEDS, level="proxy")
    assert ceiling["spearman"].tolist() == pytest.approx([stats.spearmanr(seed0, seed1)[0]] * 3)
    assert (ceiling["n"] == N).all()
    assert (ceiling["spearman_low"] <= ceiling["spearman"]).all() and noise.spearman > 0.9
    assert (back["diverged"] == 0).all() and (back["n"] == N).all()
    assert md_header(out["md"])[:4] == ["level", "proxy", "higher_is_better", "learned"]
    assert "\\begin{tabular}" in out["tex"].read_text()


def md_header(path) -> list[str]:
    return [cell.strip() for cell in path.read_text().splitlines()[0].split("|")[1:-1]]


def test_planted_claims_pass_fail_and_are_inconclusive_with_their_numbers(tmp_path):
    runs, truth, data, noise, left_out, table, verdicts = study(tmp_path)
    assert [(v.claim, v.status) for v in verdicts] == [
        ("SiGeo's ρ at 100 % exceeds its ρ at 0 %", PASS),
        ("SiGeo's ρ exceeds ZiCo's at 10 %", FAIL),
        ("SiGeo's ρ exceeds ZiCo's at 100 %", INCONCLUSIVE),
        ("SiGeo's ρ at 10 % is above 0", PASS),
    ]
    target = -truth["test_loss"].to_numpy()
    sigeo = {level: data.loc[data["level"] == level, "sigeo"].to_numpy() for level in LEVELS}
    rises = stats.spearmanr(sigeo[1.0], target)[0] - stats.spearmanr(sigeo[0.0], target)[0]
    assert verdicts[0].numbers["estimate"] == pytest.approx(rises) and verdicts[0].numbers["n"] == N
    assert verdicts[0].numbers["reliability"] == pytest.approx(noise.spearman)
    assert verdicts[1].numbers["high"] < 0 and verdicts[2].numbers["low"] < 0 <= verdicts[2].numbers["high"]
    assert verdicts[2].reason == "interval contains the threshold"
    row = table[(table["level"] == 0.1) & (table["proxy"] == "sigeo")].iloc[0]
    assert verdicts[3].numbers["estimate"] == row.spearman and verdicts[3].numbers["low"] == row.spearman_low
    summary = tmp_path / "s.md"
    notes = [reliability_text(noise, left_out, 0.8), divergence_text(runs, truth)]
    write_summary(table, verdicts, notes, "demo / small", summary, tmp_path / "s.html")
    text = summary.read_text()
    assert "SiGeo ρ [95 % CI]" in text and "ZiCo ρ [95 % CI]" in text and "supernet learned" in text
    assert "SiGeo's ρ exceeds ZiCo's at 10 %: **FAIL** (interval below the threshold; estimate" in text
    assert f"seed-pair Spearman ρ {noise.spearman:.3f}" in text and f"ICC(1) {noise.icc1:.3f}" in text
    assert "Diverged training runs: 0 of 60" in text and "<li>" in (tmp_path / "s.html").read_text()


def test_an_unreliable_ground_truth_makes_every_claim_inconclusive(tmp_path):
    *_, noise, _, _, verdicts = study(tmp_path, reliable=False)
    assert noise.spearman < 0.5
    assert {v.status for v in verdicts} == {INCONCLUSIVE}
    assert {v.reason for v in verdicts} == {"ground truth less reliable than required"}
    *_, decided = study(tmp_path, reliable=False, min_reliability=None)
    assert [v.status for v in decided] == [PASS, FAIL, INCONCLUSIVE, PASS]  # the intervals alone


def test_a_level_whose_supernet_did_not_learn_is_marked_and_its_claims_say_so(tmp_path):
    *_, table, verdicts = study(tmp_path, learned={0.1: False})
    assert list(table.drop_duplicates("level")["learned"]) == [False, False, True]
    assert [v.status for v in verdicts] == [PASS, INCONCLUSIVE, INCONCLUSIVE, INCONCLUSIVE]
    assert verdicts[1].reason == verdicts[3].reason == "the supernet at 10 % did not learn"
    assert verdicts[1].numbers["high"] < 0  # the numbers are still shown


def test_without_seed_repeats_the_reliability_is_unmeasured_and_claims_inconclusive(tmp_path):
    runs_paths, score_paths, _ = planted(tmp_path)
    runs = read_runs({key: path for key, path in runs_paths.items() if key[1] == 0})
    noise, left_out = measure_reliability(runs, 100, 0)
    assert np.isnan(noise.spearman) and noise.subnets == 0 and left_out == 0
    assert "not measured" in reliability_text(noise, left_out, 0.8)
    data = collect(ground_truth(runs), score_paths, ["sigeo", "zico"])
    table = correlation_table(data, ["sigeo", "zico"], 0, 0, noise=noise)
    verdicts = claims(data, table, noise, 0.8, 50, 0)
    assert {v.status for v in verdicts} == {INCONCLUSIVE} and "not measured" in verdicts[0].reason
    assert table["learned"].isna().all()  # no warm-up flags given: not recorded


def test_diverged_runs_enter_no_statistic_and_are_counted(tmp_path):
    """Subnet 3 diverges with both seeds (left out everywhere), subnet 5 with one (its truth is the other
    seed; the seed-pair statistics leave it out)."""
    diverged = {(3, 0), (3, 1), (5, 1)}
    runs, truth, data, noise, left_out, table, verdicts = study(tmp_path, diverged=diverged)
    assert int(runs["diverged"].sum()) == 3 and left_out == 2
    row5 = truth.set_index("subnet").loc[5]
    assert (row5["seeds"], row5["diverged"]) == (1, 1)
    assert row5["test_loss"] == runs.set_index(["subnet", "seed"]).loc[(5, 0), "test_loss"]
    proxies = table[table["proxy"] != SEEDS]
    assert (proxies["n"] == N - 1).all() and (proxies["diverged"] == 1).all() and (proxies["dropped"] == 0).all()
    ceiling = table[table["proxy"] == SEEDS]
    assert (ceiling["n"] == N - 2).all() and (ceiling["diverged"] == 2).all()
    kept = runs[~runs["subnet"].isin([3, 5])]
    seed0, seed1 = (kept[kept["seed"] == s]["test_loss"].to_numpy() for s in (0, 1))
    assert noise.spearman == pytest.approx(stats.spearmanr(seed0, seed1)[0])
    assert all(v.numbers["n"] == N - 1 for v in verdicts)
    ok = truth[truth["seeds"] > 0]
    target = -ok["test_loss"].to_numpy()
    level = data[(data["level"] == 0.1) & (data["seeds"] > 0)]
    assert table.set_index(["level", "proxy"]).loc[(0.1, "sigeo"), "spearman"] == pytest.approx(
        stats.spearmanr(level["sigeo"], target)[0]
    )
    text = divergence_text(runs, truth)
    assert "Diverged training runs: 3 of 60; 1 of 30 subnets had no converged seed" in text


def test_a_run_without_losses_must_say_it_diverged(tmp_path):
    path = tmp_path / "m.json"
    path.write_text(json.dumps(run_metrics(None, 0)))
    with pytest.raises(ValueError, match=r"m.json: val.logloss is None in a run not marked diverged"):
        read_runs({(0, 0): path})
    legacy = {"arch_hash": "h0", "diverged": True, "val": {"logloss": None}, "test": {"logloss": None}}
    path.write_text(json.dumps(legacy))
    assert read_runs({(0, 0): path})["diverged"].tolist() == [True]
    path.write_text(json.dumps({"learned": "yes"}))
    with pytest.raises(ValueError, match="learned must be true or false"):
        read_learned({0.0: path})


def test_scores_of_other_subnets_are_refused(tmp_path):
    runs_paths, scores, _ = planted(tmp_path)
    frame = pd.read_csv(scores[0.0])
    frame.loc[2, "hash"] = "other"
    frame.to_csv(scores[0.0], index=False)
    with pytest.raises(ValueError, match="not the study's"):
        collect(ground_truth(read_runs(runs_paths)), scores, ["sigeo"])


def test_warmup_plot_is_an_image_of_the_expected_size(tmp_path):
    *_, table, _ = study(tmp_path, n_resamples=20)
    save_figure(warmup_figure(table, "demo / small"), tmp_path / "p.png", tmp_path / "p.pdf")
    image = mpimg.imread(tmp_path / "p.png")
    assert image.shape[:2] == (630, 1125)  # 7.5 × 4.2 in at 150 dpi
    assert image[..., :3].std() > 0.05
    assert (tmp_path / "p.pdf").read_bytes().startswith(b"%PDF")


def test_scoring_supplies_oneshot_and_ranks_aznas_over_the_level(tmp_path):
    """score_subnets gives one-shot its fine-tuning (a finite val log loss per subnet), and its aznas column
    is the AZ-NAS paper's Σ_m log(rank_m / N) of the components over the level's subnets (scipy's ranks)."""
    import scipy.stats

    from sigeo.data.store import Dataset
    from sigeo.study.correlation import score_subnets
    from sigeo.warmup import build_supernet

    rng = np.random.default_rng(0)
    tables = [6, 9, 4, 11]
    for split, rows in {"train": 512, "val": 256, "test": 8}.items():
        (tmp_path / split).mkdir()
        np.save(tmp_path / split / "dense.npy", rng.exponential(1.0, (rows, 13)).astype(np.float32))
        np.save(tmp_path / split / "sparse.npy", (rng.random((rows, 4)) * tables).astype(np.int64))
        np.save(tmp_path / split / "label.npy", (rng.random(rows) < 0.3).astype(np.float32))
    meta = {"table_sizes": tables, "dense_features": [f"d{i}" for i in range(13)],
            "sparse_features": [f"c{i}" for i in range(4)]}  # fmt: skip
    (tmp_path / "meta.json").write_text(json.dumps(meta))
    cfg = config()
    cfg["proxy"].update(probe_batches=2, finetune_steps=2, eval_batches=1, eval_batch_size=64)
    job = job_settings(ScoreJob, load_settings(cfg).datasets["d"])
    torch.manual_seed(0)
    net = build_supernet(get_space("small"), Dataset.open(tmp_path), job.warmup)
    torch.save(net.state_dict(), tmp_path / "supernet.pt")
    archs = subnets("small", 2, 5, 4)
    frame = score_subnets(tmp_path / "supernet.pt", tmp_path, "small", archs, ["aznas", "oneshot"], job,
                          tmp_path / "scores.csv", CPU)  # fmt: skip
    parts = ("aznas_expressivity", "aznas_progressivity", "aznas_trainability", "aznas_complexity")
    expected = sum(np.log(scipy.stats.rankdata(frame[m]) / len(frame)) for m in parts)
    np.testing.assert_allclose(frame["aznas"], expected, rtol=1e-12)
    assert frame["aznas"].nunique() > 1 and (frame["aznas"] <= 0).all()
    assert np.isfinite(frame["oneshot"]).all() and (frame["oneshot"] > 0).all()
