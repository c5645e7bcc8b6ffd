"""Search: the EA's mutation schedule and selection, records (reproducible, resumable), broken candidates,
faithful versus fixed SiGeo inside a supernet, one-shot scoring, and the top-k export."""

from __future__ import annotations

import copy
import csv
import json
import math
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import sigeo.search.evolution
import sigeo.search.records
from sigeo.config import SearchJob, job_settings, load_config, load_settings
from sigeo.errors import ConfigError
from sigeo.proxies import PROXIES, ProbeSettings, register, score
from sigeo.search import (
    CandidateScorer,
    ProbeData,
    RecordLog,
    SearchSettings,
    Workers,
    export_top,
    mutation_count,
    run_search,
    search,
)
from sigeo.space.choice import SMALL, Architecture, get_space, sample_architecture
from sigeo.space.supernet import SuperNet
from sigeo.warmup import build_supernet

TABLES = [6, 9, 4, 11]
CPU = torch.device("cpu")


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def tiny_dataset(tmp_path_factory) -> Path:
    """A prepared dataset written directly: 3 dense and 4 categorical features, random labels."""
    root = tmp_path_factory.mktemp("search-data")
    rng = np.random.default_rng(0)
    for split, rows in {"train": 1024, "val": 512, "test": 8}.items():
        (root / split).mkdir()
        np.save(root / split / "dense.npy", rng.exponential(1.0, (rows, 3)).astype(np.float32))
        np.save(root / split / "sparse.npy", (rng.random((rows, 4)) * TABLES).astype(np.int64))
        np.save(root / split / "label.npy", (rng.random(rows) < 0.3).astype(np.float32))
    meta = {"table_sizes": TABLES, "dense_features": ["d0", "d1", "d2"], "sparse_features": ["c0", "c1", "c2", "c3"]}
    (root / "meta.json").write_text(json.dumps(meta))
    return root


def supernet() -> SuperNet:
    torch.manual_seed(11)
    with torch.no_grad():
        net = SuperNet(SMALL, 3, TABLES, num_blocks=2)
        for p in net.parameters():  # LayerNorm affine and biases away from 1/0, so every region matters
            p.add_(torch.randn_like(p) * 0.05)
    return net


def probe_settings(mode: str = "fixed") -> ProbeSettings:
    return ProbeSettings(zico_coef=1.0, fr_coef=1.0, loss_coef=0.0, sigeo_mode=mode, seed=3)


# the tiny train split holds 16 fine-tuning batches of 64 (2 in each of its 8 shards of 128 rows); the schedule
# is the paper's 500 steps (warm-up 50)
DATA = ProbeData(probe_batches=4, probe_batch_size=64, finetune_steps=500, finetune_lr=0.04, eval_batches=2,
                 eval_batch_size=128, shards=8)  # fmt: skip


def ea(**changes) -> SearchSettings:
    base = SearchSettings(method="regularized-ea", init_population=6, sample_size=3, n_childs=2, n_generations=3,
                          random_budget=10, seed=5, max_nan_fraction=0.05)  # fmt: skip
    return replace(base, **changes)


# --- regularized evolution --------------------------------------------------------------------------
def test_mutation_count_follows_the_reference_schedule():
    expected = {0: 6, 48: 5, 49: 4, 96: 4, 97: 3, 144: 3, 145: 2, 192: 2, 193: 1, 239: 1}
    assert {g: mutation_count(g, 240) for g in expected} == expected
    assert [mutation_count(g, 50) for g in (0, 10, 11, 30, 31, 49)] == [3, 3, 2, 2, 1, 1]  # max(20, G/5) = 20


def test_each_child_gets_the_generations_mutation_count(tmp_path, monkeypatch):
    """The paper's EA sizes (128 + 240 × 8 = 2,048 candidates) with a free scorer: every child is its parent
    after m(g) mutations, or a multiple of m(g) when it had to be mutated again to be new."""
    real_mutate = sigeo.search.evolution.mutate
    chain_length: dict[int, int] = {}  # id of a mutation's result -> mutations since the scored parent
    made, scored = [], set()  # results kept alive so that ids stay unique; ids of scored candidates

    def counting_mutate(rng, arch):
        out = real_mutate(rng, arch)
        chain_length[id(out)] = 1 if id(arch) in scored else chain_length[id(arch)] + 1
        made.append(out)
        return out

    per_child: list[int] = []

    def scorer(arch):
        per_child.append(chain_length.get(id(arch), 0))
        scored.add(id(arch))
        return {"random": float(int(arch.hash()[-40:], 8) % 1000)}

    monkeypatch.setattr(sigeo.search.evolution, "mutate", counting_mutate)
    monkeypatch.setattr(sigeo.search.records.os, "fsync", lambda fd: None)  # durability is not under test here
    settings = ea(init_population=128, sample_size=64, n_childs=8, n_generations=240)
    history = run_search(scorer, "small", 7, "random", settings, RecordLog(tmp_path / "records.csv"))
    assert len(history) == 2048 == settings.evaluations
    assert per_child[:128] == [0] * 128
    for record, count in zip(history[128:], per_child[128:], strict=True):
        m = mutation_count(record.generation - 1, 240)
        assert count % m == 0 and count >= m
    fewest: dict[int, int] = {}
    for record, count in zip(history[128:], per_child[128:], strict=True):
        fewest[record.generation - 1] = min(count, fewest.get(record.generation - 1, count))
    assert fewest == {g: mutation_count(g, 240) for g in range(240)}
    assert per_child[128] == 6
    assert len({r.arch.hash() for r in history[128:]}) == 1920  # every child is new


@pytest.mark.parametrize("criterion", ["loss", "zico"])
def test_the_parent_is_the_best_sampled_member_in_the_proxys_direction(tmp_path, monkeypatch, criterion):
    parents = []
    real_mutate = sigeo.search.evolution.mutate
    monkeypatch.setattr(
        sigeo.search.evolution, "mutate", lambda rng, arch: (parents.append(arch), real_mutate(rng, arch))[1]
    )
    values = iter([0.3, 0.9, math.nan, 0.1, 0.5, 0.7, 0.2])
    settings = ea(init_population=6, sample_size=6, n_childs=1, n_generations=1, max_nan_fraction=1.0)
    history = run_search(lambda arch: {criterion: next(values)}, "small", 3, criterion, settings,
                         RecordLog(tmp_path / "records.csv"))  # fmt: skip
    best = history[3] if criterion == "loss" else history[1]  # 0.1 is lowest, 0.9 highest; NaN is never best
    assert parents[0] == best.arch


# --- records: reproducible, resumable ----------------------------------------------------------------
def search_config(demo_config: dict, **proxy) -> dict:
    config = load_config(demo_config)
    config["num_blocks"] = 2
    config["proxy"].update(probe_batches=4, probe_batch_size=64, **proxy)
    config["search"].update(init_population=6, sample_size=3, n_childs=2, n_generations=3)
    return config


def run_rule(tiny_dataset: Path, config: dict, out: Path, proxy: str = "sigeo") -> bytes:
    """The search rule's work: load the saved supernet (made once per test folder), search, write records.csv."""
    from sigeo.data.store import Dataset

    checkpoint = out.parents[1] / "supernet.pt"
    settings = job_settings(SearchJob, load_settings(config).dataset("demo"))
    if not checkpoint.exists():
        warm = settings.warmup
        net = build_supernet(get_space("small", warm.space_widths), Dataset.open(tiny_dataset), warm)
        torch.save(net.state_dict(), checkpoint)
    search(checkpoint, tiny_dataset, "small", proxy, settings, out, CPU)
    return out.read_bytes()


def test_same_config_gives_byte_identical_records_whatever_the_workers_and_a_resume_replays_them(
    tiny_dataset, tmp_path, demo_config, monkeypatch
):
    config = search_config(demo_config)
    first = run_rule(tiny_dataset, config, tmp_path / "a" / "records.csv")  # 1 thread: 1 worker
    torch.set_num_threads(3)  # 3 single-threaded workers (the one_thread fixture restores the count)
    assert run_rule(tiny_dataset, config, tmp_path / "b" / "records.csv") == first
    assert torch.get_num_threads() == 3
    lines = first.decode().splitlines(keepends=True)
    assert len(lines) == 1 + 12 and lines[0].startswith(
        "index,generation,hash,arch,sigeo,sigeo_zico,sigeo_fisher_rao,sigeo_loss,params"
    )
    # a kill after 5 candidates, halfway through writing the 6th line
    out = tmp_path / "c" / "records.csv"
    out.parent.mkdir()
    (out.parent / "records.partial.csv").write_text("".join(lines[:6]) + lines[6][:40])
    scored = []
    real_score = CandidateScorer.score
    monkeypatch.setattr(CandidateScorer, "score", lambda self, arch: (scored.append(arch), real_score(self, arch))[1])
    assert run_rule(tiny_dataset, config, out) == first
    assert len(scored) == 12 - 5
    assert not (out.parent / "records.partial.csv").exists()


def test_workers_start_the_costliest_candidates_first_and_record_in_seeded_order(tmp_path, monkeypatch):
    monkeypatch.setattr(sigeo.search.records.os, "fsync", lambda fd: None)
    started, gate = [], threading.Event()

    def scorer(arch):
        started.append(arch.hash())
        gate.wait(5)  # hold both workers until the queue order is fixed
        return {"random": float(int(arch.hash()[-40:], 8) % 1000)}

    def cost(arch):
        return float(int(arch.hash()[-12:], 8) % 97)

    threading.Timer(1.0, gate.set).start()
    settings = ea(init_population=8, sample_size=4, n_childs=4, n_generations=2)
    history = run_search(scorer, "small", 3, "random", settings, RecordLog(tmp_path / "records.csv"),
                         Workers(2, cost))  # fmt: skip
    alone = run_search(lambda a: {"random": float(int(a.hash()[-40:], 8) % 1000)}, "small", 3, "random", settings,
                       RecordLog(tmp_path / "alone" / "records.csv"))  # fmt: skip
    assert [r.arch.hash() for r in history] == [r.arch.hash() for r in alone]  # seeded order, same choices
    initial = [r.arch for r in history[:8]]
    by_cost = sorted(initial, key=cost, reverse=True)
    assert set(started[:2]) == {a.hash() for a in by_cost[:2]}  # the two workers took the two costliest


def test_every_proxy_scores_the_same_in_concurrent_workers(tiny_dataset):
    """Workers share one supernet and the probe batches: no proxy may let one candidate disturb another."""
    from sigeo.data.store import Dataset

    names = sorted(PROXIES)
    scorer = CandidateScorer(supernet(), Dataset.open(tiny_dataset), names, probe_settings(), DATA, CPU)
    rng = np.random.default_rng(4)
    archs = [sample_architecture(rng, SMALL, 2) for _ in range(6)]
    alone = [scorer.score(arch) for arch in archs]
    with ThreadPoolExecutor(3) as pool:
        together = list(pool.map(scorer.score, archs))
    assert together == alone or pd.DataFrame(together).equals(pd.DataFrame(alone))  # NaN == NaN in .equals
    assert {"sigeo", "synflow", "jacob_cov", "naswot", "oneshot"} <= set(alone[0])


def test_a_broken_candidate_ranks_last_and_the_search_goes_on(tiny_dataset, tmp_path, monkeypatch):
    @register("test_fragile", higher_is_better=True)
    def fragile(ctx):
        width = ctx.model.path.blocks[0].dense_dim
        if width in (16, 32, 64):
            raise RuntimeError("singular matrix")  # a numerical failure inside a proxy
        return {"test_fragile": math.nan if width in (128, 256) else float(width)}

    parents = []
    real_mutate = sigeo.search.evolution.mutate
    monkeypatch.setattr(
        sigeo.search.evolution, "mutate", lambda rng, arch: (parents.append(arch), real_mutate(rng, arch))[1]
    )
    try:
        from sigeo.data.store import Dataset

        scorer = CandidateScorer(supernet(), Dataset.open(tiny_dataset), ["test_fragile"], probe_settings(), DATA, CPU)
        settings = ea(init_population=12, sample_size=6, n_generations=4, max_nan_fraction=1.0)
        records = RecordLog(tmp_path / "records.csv")
        history = run_search(scorer.score, "small", 2, "test_fragile", settings, records)
        assert len(history) == settings.evaluations
        broken = [r for r in history if math.isnan(r.scores["test_fragile"])]
        assert 0 < len(broken) < len(history)
        broken_hashes = {r.arch.hash() for r in broken}
        assert not any(p.hash() in broken_hashes for p in parents)
        records.finish()
        exported = export_top(tmp_path / "records.csv", "test_fragile", len({r.arch.hash() for r in history}),
                              tmp_path / "top")  # fmt: skip
        scores = [doc["score"] for doc in exported]
        n_ok = len(scores) - len(broken_hashes)
        assert all(s is not None for s in scores[:n_ok]) and all(s is None for s in scores[n_ok:])
    finally:
        del PROXIES["test_fragile"]


def test_a_search_with_too_many_nan_candidates_fails_naming_how_many_and_why(tiny_dataset, tmp_path):
    """The same broken proxy under the default limit (5 % of 20 candidates: 1): the search stops after
    the initial population, with the counts of each cause found by an unlimited run of the same search."""
    from sigeo.data.store import Dataset

    @register("test_fragile", higher_is_better=True)
    def fragile(ctx):
        width = ctx.model.path.blocks[0].dense_dim
        if width in (16, 32, 64):
            raise RuntimeError("singular matrix\nwith details")
        return {"test_fragile": math.nan if width in (128, 256) else float(width)}

    try:
        dataset = Dataset.open(tiny_dataset)
        settings = ea(init_population=12, sample_size=6, n_generations=4)
        assert settings.nan_allowed == 1
        free = CandidateScorer(supernet(), dataset, ["test_fragile"], probe_settings(), DATA, CPU)
        unlimited = run_search(free.score, "small", 2, "test_fragile", replace(settings, max_nan_fraction=1.0),
                               RecordLog(tmp_path / "free" / "records.csv"))  # fmt: skip
        widths = [r.arch.blocks[0].dense_dim for r in unlimited[:12]]
        raised, nan = sum(w in (16, 32, 64) for w in widths), sum(w in (128, 256) for w in widths)
        assert raised + nan > 1
        scorer = CandidateScorer(supernet(), dataset, ["test_fragile"], probe_settings(), DATA, CPU)
        records = RecordLog(tmp_path / "records.csv")
        with pytest.raises(sigeo.search.TooManyNaN) as failure:
            run_search(scorer.score, "small", 2, "test_fragile", settings, records, causes=lambda: scorer.failures)
        message = str(failure.value)
        assert f"{raised + nan} of the 12 candidates scored so far have no finite score" in message
        assert "search.max_nan_fraction = 0.05 of its 20 candidates allows (1)" in message
        expected = {f"{raised}x RuntimeError: singular matrix", f"{nan}x returned a non-finite score"}
        assert set(message.split("causes: ")[1].split("; ")) == {c for c in expected if not c.startswith("0x")}
        assert len((tmp_path / "records.partial.csv").read_text().splitlines()) == 1 + 12  # kept, not renamed
        assert not (tmp_path / "records.csv").exists()
    finally:
        del PROXIES["test_fragile"]


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 8.00 GiB.\nGPU 0 has a total capacity"),
         "out of memory: CUDA out of memory. Tried to allocate 8.00 GiB."),
        (RuntimeError("CUDA error: an illegal memory access was encountered"),
         "device error: CUDA error: an illegal memory access was encountered"),
    ],
)  # fmt: skip
def test_a_device_failure_stops_the_search_naming_the_candidate_and_device(tiny_dataset, tmp_path, error, kind):
    """Never a NaN score: the first candidate that hits it ends the search with one line."""
    from sigeo.data.store import Dataset
    from sigeo.devices import DeviceFailure

    scored = []

    @register("test_gpu", higher_is_better=True)
    def on_gpu(ctx):
        scored.append(ctx.extras["hash"])
        if len(scored) == 3:
            raise error
        return {"test_gpu": 1.0}

    try:
        scorer = CandidateScorer(supernet(), Dataset.open(tiny_dataset), ["test_gpu"], probe_settings(), DATA, CPU)
        records = RecordLog(tmp_path / "records.csv")
        with pytest.raises(DeviceFailure) as failure:
            run_search(scorer.score, "small", 2, "test_gpu", ea(max_nan_fraction=1.0), records)
        message = str(failure.value)
        assert message.startswith(f"scoring candidate {scored[2]} failed on cpu: {kind} (")
        assert "\n" not in message and len(scored) == 3
    finally:
        del PROXIES["test_gpu"]


# --- SiGeo inside the supernet: fixed versus faithful -------------------------------------------------
def first_element_zico(flat: np.ndarray, sizes: tuple[int, ...]) -> float:
    total = 0.0
    for g in np.split(flat, np.cumsum(sizes)[:-1], axis=1):
        mu, sigma = np.abs(g).mean(0), g.std(0, ddof=1)
        first = np.flatnonzero(sigma != 0)
        if len(first):
            total += math.log(mu[first[0]] / sigma[first[0]])
    return total


def full_zico(flat: np.ndarray, sizes: tuple[int, ...]) -> float:
    total = 0.0
    for g in np.split(flat, np.cumsum(sizes)[:-1], axis=1):
        mu, sigma = np.abs(g).mean(0), g.std(0, ddof=1)
        if (sigma != 0).any():
            total += math.log((mu[sigma != 0] / sigma[sigma != 0]).sum())
    return total


class TableStem(torch.nn.Module):
    """The reference's stem: one ``nn.Embedding`` per feature."""

    def __init__(self, weights: list[torch.Tensor]) -> None:
        super().__init__()
        self.tables = torch.nn.ModuleList(torch.nn.Embedding.from_pretrained(w, freeze=False) for w in weights)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return torch.stack([table(ids[:, f]) for f, table in enumerate(self.tables)], dim=1)


def test_zico_takes_one_term_per_embedding_table(tiny_dataset):
    """ZiCo (and SiGeo's ZiCo component) of a candidate equals ZiCo computed independently on the same
    network with one ``nn.Embedding`` per feature, every parameter its own log term, and differs
    from pooling the tables into one term."""
    from sigeo.data.store import Dataset
    from sigeo.train import logloss

    net = supernet()
    oracle = copy.deepcopy(net)
    stem = net.stem
    oracle.stem = TableStem([stem.embedding.weight.detach()[o : o + n].clone()
                             for o, n in zip(stem.table_offsets, stem.table_sizes, strict=True)])  # fmt: skip
    scorer = CandidateScorer(net, Dataset.open(tiny_dataset), ["sigeo"], probe_settings(), DATA, CPU)
    arch = sample_architecture(np.random.default_rng(4), SMALL, 2)
    grads = []
    for dense, ids, label in scorer.probe_batches:
        oracle.zero_grad(set_to_none=True)
        logloss(oracle(dense, ids, arch), label).backward()
        grads.append({name: p.grad.double().flatten().numpy() for name, p in oracle.named_parameters()
                      if p.grad is not None})  # fmt: skip

    def ratio(g: np.ndarray) -> float:  # Σ_{σ>0} μ/σ over the batches (rows)
        mu, sigma = np.abs(g).mean(0), g.std(0, ddof=1)
        return float((mu[sigma != 0] / sigma[sigma != 0]).sum())

    ratios = {name: ratio(np.stack([g[name] for g in grads])) for name in grads[0]}
    per_table = sum(math.log(r) for r in ratios.values() if r > 0)
    pooled = sum(math.log(r) for name, r in ratios.items() if r > 0 and not name.startswith("stem."))
    pooled += math.log(sum(r for name, r in ratios.items() if name.startswith("stem.")))
    assert sum(name.startswith("stem.tables.") and r > 0 for name, r in ratios.items()) == len(TABLES)
    ctx = scorer.context(arch)
    for proxy, column in (("zico", "zico"), ("sigeo", "sigeo_zico")):  # the ZiCo proxy, and SiGeo's component
        assert score([proxy], ctx)[column] == pytest.approx(per_table, rel=1e-6)
    assert abs(per_table - pooled) > 1.0


def test_fixed_and_faithful_sigeo_differ_where_the_reference_does(tiny_dataset):
    """docs/reference.md §5.3: faithful measures only the head, steps Adagrad between the probe batches (clipped
    gradients, lr 1e-8, 1e-8, 8e-4, 1.6e-3) and keeps the first element's ZiCo ratio; fixed measures every
    parameter the candidate reads at fixed weights and sums all ratios. The supernet never changes."""
    from sigeo.data.store import Dataset

    net = supernet()
    state = {k: v.clone() for k, v in net.state_dict().items()}
    dataset = Dataset.open(tiny_dataset)
    fixed = CandidateScorer(net, dataset, ["sigeo"], probe_settings("fixed"), DATA, CPU)
    faithful = CandidateScorer(net, dataset, ["sigeo", "zico"], probe_settings("faithful"), DATA, CPU)
    arch = sample_architecture(np.random.default_rng(2), SMALL, 2)

    ctx = fixed.context(arch)
    record = ctx.gradients()
    tables = {f"stem.tables.{f}.weight" for f in range(len(TABLES))}
    # every region the candidate reads (all receive gradients), the embedding rows one group per table
    assert set(record.names) == set(ctx.model.regions) - {"stem.embedding.weight"} | tables
    assert "blocks.1.efc.weight" in record.names
    for name, theta in record.theta.items():
        region = ctx.model.regions.get(name)
        if region is not None:
            assert torch.equal(theta, region.select(region.param.detach()))
    flat = record.flat.double().numpy()  # the float32 gradients, exactly; the maths in float64
    inner = record.theta_flat.double().numpy() @ flat.sum(0)
    scores = fixed.score(arch)
    assert scores["sigeo_zico"] == pytest.approx(full_zico(flat, record.sizes), rel=1e-9)
    assert scores["sigeo_fisher_rao"] == pytest.approx(math.log(abs(inner) + 1e-10), rel=1e-9)
    assert scores["sigeo"] == pytest.approx(scores["sigeo_zico"] + scores["sigeo_fisher_rao"], rel=1e-12)

    fctx = faithful.context(arch)
    frecord = fctx.gradients()
    assert frecord.names == ("head.weight", "head.bias")
    grads = {name: g.double().numpy() for name, g in record.grads.items()}
    head_rows = np.concatenate([grads["head.weight"], grads["head.bias"]], axis=1)
    clip = min(1.0, 5.0 / (np.linalg.norm(head_rows[0]) + 1e-6))
    np.testing.assert_allclose(frecord.flat.double().numpy()[0], head_rows[0] * clip, rtol=1e-5, atol=1e-9)
    theta = np.concatenate([record.theta["head.weight"].double().numpy(), record.theta["head.bias"].double().numpy()])
    accumulated = np.zeros_like(theta)
    fflat = frecord.flat.double().numpy()
    for lr, g in zip([1e-8, 1e-8, 1e-8 + (0.04 - 1e-8) / 50, 1e-8 + 2 * (0.04 - 1e-8) / 50], fflat,
                     strict=True):  # fmt: skip
        accumulated += g * g
        theta = theta - lr * g / (np.sqrt(accumulated) + 1e-2)
    np.testing.assert_allclose(frecord.theta_flat.double().numpy(), theta, rtol=1e-6, atol=1e-9)
    fscores = faithful.score(arch)
    assert fscores["sigeo_zico"] == pytest.approx(first_element_zico(fflat, frecord.sizes), rel=1e-6)
    finner = frecord.theta_flat.double().numpy() @ fflat.sum(0)
    assert fscores["sigeo_fisher_rao"] == pytest.approx(math.log(abs(finner) + 1e-10), rel=1e-6)
    assert frecord.losses[0] == pytest.approx(record.losses[0], rel=1e-6)  # before any step
    assert fscores["sigeo_loss"] == frecord.losses[3] != pytest.approx(record.losses[3], rel=1e-4)  # after three
    # faithful ZiCo, scored beside SiGeo: the reference's zero-shot ZiCo, first-element term minus the loss
    assert fscores["zico"] == pytest.approx(fscores["sigeo_zico"] - frecord.losses[3], rel=1e-12)
    assert all(torch.equal(state[k], v) for k, v in net.state_dict().items())


def test_oneshot_fine_tunes_a_copy_of_the_head_and_scores_val_logloss(tiny_dataset):
    """At a negligible lr (an Adagrad step moves each weight by at most lr) the score is the plain val log
    loss of the supernet's subnet; at the real lr the fine-tuning changes it; the supernet never changes."""
    from sigeo.data.store import Dataset

    net = supernet()
    state = {k: v.clone() for k, v in net.state_dict().items()}
    dataset = Dataset.open(tiny_dataset)
    arch = sample_architecture(np.random.default_rng(4), SMALL, 2)
    val = dataset.split("val")
    # val's 512 rows are read as 8 shards of 64: the 2 evaluation batches of 128 are shards 0 and 1, each a
    # partial batch of 64 rows, so rows 0-127
    with torch.no_grad():
        z = net(torch.from_numpy(val.dense[:128].copy()), torch.from_numpy(val.sparse[:128].copy()), arch).double()
    y = torch.from_numpy(val.label[:128].copy()).double()
    expected = float((z.clamp(min=0) - z * y + torch.log1p(torch.exp(-z.abs()))).mean())
    still = CandidateScorer(net, dataset, ["oneshot"], probe_settings(), replace(DATA, finetune_lr=1e-8), CPU)
    assert still.score(arch)["oneshot"] == pytest.approx(expected, rel=1e-4)
    tuned = CandidateScorer(net, dataset, ["oneshot"], probe_settings(), DATA, CPU)
    assert tuned.score(arch)["oneshot"] < expected - 0.1
    assert all(torch.equal(state[k], v) for k, v in net.state_dict().items())


def test_oneshot_on_cached_head_features_matches_full_forwards(tiny_dataset):
    """The head fine-tuned on features computed once per batch scores what full forwards of the candidate
    give (the uncached way, written out here), over several architectures, at the real lr."""
    from sigeo.data.store import Dataset
    from sigeo.search.scorer import _head_finetuning, _loss
    from sigeo.space.supernet import Candidate
    from sigeo.train import logloss

    net = supernet()
    scorer = CandidateScorer(net, Dataset.open(tiny_dataset), ["oneshot"], probe_settings(), DATA, CPU)

    def uncached(arch) -> float:
        candidate = Candidate(net, arch)
        _, step = _head_finetuning(candidate, DATA)
        with torch.enable_grad():
            for batch in scorer.finetune:
                candidate.zero_grad(set_to_none=True)
                _loss(candidate, batch).backward()
                step()
        with torch.no_grad():
            losses = [(float(logloss(candidate(b[0], b[1]).double(), b[2].double())), len(b[2])) for b in scorer.eval]
        return sum(loss * n for loss, n in losses) / sum(n for _, n in losses)

    rng = np.random.default_rng(7)
    for arch in [sample_architecture(rng, SMALL, 2) for _ in range(4)]:
        assert scorer.oneshot(arch) == pytest.approx(uncached(arch), rel=1e-6)


# --- export -------------------------------------------------------------------------------------------
def write_records(
    path: Path, proxy: str, rows: list[tuple[Architecture, float]], generations: list[int] | None = None
) -> None:
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["index", "generation", "hash", "arch", proxy])
        for i, (arch, value) in enumerate(rows):
            writer.writerow([i, generations[i] if generations else 0, arch.hash(), arch.to_json(), value])


def strict_json(path: Path) -> dict:
    def refuse(token):
        raise ValueError(f"{path}: {token} is not JSON")

    return json.loads(path.read_text(), parse_constant=refuse)


@pytest.mark.parametrize("proxy", ["zico", "loss"])
def test_export_takes_distinct_hashes_in_score_order_nan_last(tmp_path, proxy):
    rng = np.random.default_rng(9)
    a, b, c, d, e = (sample_architecture(rng, SMALL, 7) for _ in range(5))
    rows = [(a, 1.0), (b, 3.0), (c, math.nan), (a, 5.0), (d, 3.0), (e, 2.0)]  # a twice; b and d tie
    write_records(tmp_path / "records.csv", proxy, rows)
    exported = export_top(tmp_path / "records.csv", proxy, 5, tmp_path / "top")
    if proxy == "zico":  # higher is better: a's better duplicate (5.0), then b and d in record order
        order, values = [a, b, d, e, c], [5.0, 3.0, 3.0, 2.0, None]
    else:  # lower is better: a's 1.0 first
        order, values = [a, e, b, d, c], [1.0, 2.0, 3.0, 3.0, None]
    for rank, (arch, value) in enumerate(zip(order, values, strict=True)):
        doc = strict_json(tmp_path / "top" / f"{rank}.json")
        assert doc == exported[rank]
        assert doc["hash"] == arch.hash() and doc["score"] == value and doc["proxy"] == proxy
        assert doc["test_loss"] == (None if value is None else value if proxy == "loss" else -value)
        assert Architecture.load(tmp_path / "top" / f"{rank}.json") == arch
    with pytest.raises(ValueError, match="only 5 distinct"):
        export_top(tmp_path / "records.csv", proxy, 6, tmp_path / "more")


def test_export_from_history_ranks_only_the_best_children_of_each_generation(tmp_path):
    """The reference's history: per generation the 2 best children; the initial population never enters."""
    rng = np.random.default_rng(11)
    p0, p1, c1, c2, c3, c4, c5, c6, c8, c9 = (sample_architecture(rng, SMALL, 7) for _ in range(10))
    rows = [
        (p0, 0.1), (p1, 0.9),  # initial population: p0 is the best of all records
        (c1, 0.5), (c2, 0.3), (c3, 0.7),  # generation 1 keeps c2, c1
        (c4, 0.2), (c5, math.nan), (c6, 0.25),  # generation 2 keeps c4, c6 (NaN ranks last)
        (c8, 0.4), (c1, 0.45), (c9, 0.8),  # generation 3 keeps c8 and c1's better duplicate
    ]  # fmt: skip
    write_records(tmp_path / "records.csv", "loss", rows, [0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3])
    history = export_top(tmp_path / "records.csv", "loss", 5, tmp_path / "h", export_from="history", history_top_k=2)
    assert [d["hash"] for d in history] == [a.hash() for a in (c4, c6, c2, c8, c1)]
    assert [d["score"] for d in history] == [0.2, 0.25, 0.3, 0.4, 0.45]
    everything = export_top(tmp_path / "records.csv", "loss", 4, tmp_path / "a", export_from="all")
    assert [d["hash"] for d in everything] == [a.hash() for a in (p0, c4, c6, c2)]
    one = export_top(tmp_path / "records.csv", "loss", 3, tmp_path / "o", export_from="history", history_top_k=1)
    assert [d["hash"] for d in one] == [a.hash() for a in (c4, c2, c8)]
    with pytest.raises(ValueError, match="only 5 distinct"):
        export_top(tmp_path / "records.csv", "loss", 6, tmp_path / "more", export_from="history")
    with pytest.raises(ConfigError, match=r"search\.export_from must be one of history, all"):
        export_top(tmp_path / "records.csv", "loss", 1, tmp_path / "bad", export_from="best")


def test_export_from_history_of_a_search_without_children_is_every_record(tmp_path):
    rng = np.random.default_rng(12)
    a, b, c = (sample_architecture(rng, SMALL, 7) for _ in range(3))
    write_records(tmp_path / "records.csv", "loss", [(a, 0.3), (b, 0.1), (c, 0.2)])
    exported = export_top(tmp_path / "records.csv", "loss", 3, tmp_path / "top", export_from="history")
    assert [d["hash"] for d in exported] == [x.hash() for x in (b, c, a)]
