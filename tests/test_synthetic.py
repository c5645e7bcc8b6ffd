"""The synthetic generator: raw format, teacher probabilities and log loss recomputed from the written files."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from conftest import prepare_settings, synthetic_spec
from scipy.special import expit

from sigeo.data.formats import get_format
from sigeo.data.prepare import prepare
from sigeo.data.synthetic import Teacher, generate


def teacher_logloss_from_files(fmt_name: str, folder) -> tuple[float, float, int, np.ndarray]:
    """Re-read the raw file with pandas, look tokens up in the teacher's vocabularies, score.

    Returns the teacher's mean log loss, the positive rate, the row count and every row's probability.
    """
    fmt = get_format(fmt_name)
    teacher = Teacher.load(folder / "teacher.npz")
    raw = pd.read_csv(
        folder / fmt.file_name,
        sep=fmt.delimiter,
        header=0 if fmt.header else None,
        names=None if fmt.header else list(fmt.columns),
        dtype=str,
        keep_default_na=False,
    )
    if fmt_name == "kdd":
        profile = pd.read_csv(folder / "userid_profile.txt", sep="\t", header=None, dtype=str)
        lookup = dict(zip(profile[0], zip(profile[1], profile[2], strict=True), strict=True))
        known = [lookup.get(u, ("0", "0")) for u in raw["UserID"]]
        raw["Gender"] = [g for g, _ in known]
        raw["Age"] = [a for _, a in known]
    tokens = np.stack(
        [
            raw[name].map({tok: i for i, tok in enumerate(teacher.vocab[f])}).fillna(-1).to_numpy(int)
            for f, name in enumerate(teacher.features)
        ],
        axis=1,
    )
    x = np.zeros((len(raw), len(teacher.dense_features)))
    for d, name in enumerate(teacher.dense_features):
        x[:, d] = pd.to_numeric(raw[name].replace("", np.nan)).to_numpy(float)
    label = (raw[fmt.label_column].astype(int) > 0).to_numpy()
    p = expit(teacher.logit(x, tokens))
    loss = -np.mean(label * np.log(p) + (1 - label) * np.log1p(-p))
    return float(loss), float(label.mean()), len(raw), p


@pytest.mark.parametrize("fmt_name", ["criteo", "avazu", "kdd"])
def test_bayes_logloss_matches_recomputation(tmp_path, fmt_name):
    fmt = get_format(fmt_name)
    folder = tmp_path / "raw"
    generate(fmt, synthetic_spec(rows=6000, seed=3, max_vocab=300, chunk_rows=2500), folder / fmt.file_name)
    meta = prepare(
        fmt,
        folder / fmt.file_name,
        tmp_path / "out",
        prepare_settings(seed=1),
        profile_path=folder / "userid_profile.txt" if fmt_name == "kdd" else None,
        teacher_prob_path=folder / "teacher_prob.npy",
    )
    loss, rate, rows, p = teacher_logloss_from_files(fmt_name, folder)
    assert rows == 6000 == sum(meta["rows"].values())
    np.testing.assert_allclose(np.load(folder / "teacher_prob.npy"), p, rtol=1e-5)  # float32 on disk
    assert meta["bad_rows"] == 0
    recorded = sum(meta["bayes_logloss"][s] * meta["rows"][s] for s in meta["rows"]) / rows
    assert recorded == pytest.approx(loss, rel=1e-5)
    assert rate == pytest.approx(0.25, abs=0.03)
    base_rate_loss = -(rate * np.log(rate) + (1 - rate) * np.log(1 - rate))
    assert 0.3 < loss < base_rate_loss - 0.05  # informative, but far from trivial


def test_criteo_synthetic_has_missing_values_and_zipf_tokens(tmp_path):
    fmt = get_format("criteo")
    generate(fmt, synthetic_spec(rows=5000, seed=1, max_vocab=1000), tmp_path / "train.txt")
    raw = pd.read_csv(tmp_path / "train.txt", sep="\t", header=None, dtype=str, keep_default_na=False)
    assert raw.shape == (5000, 40)
    missing = (raw == "").mean()
    assert missing.max() > 0.05 and missing.min() == 0.0
    counts = raw[14].value_counts()
    assert counts.iloc[0] > 10 * counts.iloc[len(counts) // 2]  # heavy head, long tail
    assert raw[14].str.fullmatch("[0-9a-f]{8}|").all()


def test_generation_is_seeded(tmp_path):
    fmt = get_format("criteo")
    for name, seed in (("a", 4), ("b", 4), ("c", 5)):
        generate(fmt, synthetic_spec(rows=500, seed=seed, max_vocab=50), tmp_path / name / "train.txt")
    a, b, c = ((tmp_path / n / "train.txt").read_bytes() for n in "abc")
    assert a == b and a != c


def test_signal_lives_in_few_small_informative_fields(tmp_path):
    spec = synthetic_spec(rows=20_000, seed=2, max_vocab=200, informative_fields=4, informative_vocab=12)
    folder = generate(get_format("criteo"), spec, tmp_path / "train.txt")
    teacher = Teacher.load(folder / "teacher.npz")
    informative = [f for f in range(26) if np.any(teacher.emb[f]) or np.any(teacher.bias[f])]
    assert len(informative) == 4
    assert all(len(teacher.vocab[f]) == 12 for f in informative)
    sizes = get_format("criteo").paper_table_sizes
    assert all(len(teacher.vocab[f]) == min(200, sizes[f] - 1) for f in range(26) if f not in informative)
    assert sorted({int(f) for pair in teacher.pairs for f in pair}) == informative and len(teacher.pairs) == 6
    assert set(teacher.cross[:, 1]) <= set(informative) and len(teacher.cross) == 4
    # the dense part reads what the parser gives a model: a missing count is a count of 0
    x = np.array([[np.nan] * 13, [0.0] * 13])
    tokens = np.full((2, 26), -1)
    assert teacher.logit(x, tokens)[0] == teacher.logit(x, tokens)[1]
    # calibrated: the generated labels' rate is the requested one, and the teacher beats the base rate
    prob = np.load(folder / "teacher_prob.npy").astype(np.float64)
    assert prob.mean() == pytest.approx(0.25, abs=0.01)
    labels = pd.read_csv(folder / "train.txt", sep="\t", header=None, usecols=[0])[0].to_numpy()
    bayes = -np.mean(labels * np.log(prob) + (1 - labels) * np.log1p(-prob))
    rate = labels.mean()
    assert bayes < -(rate * np.log(rate) + (1 - rate) * np.log(1 - rate)) - 0.08


@pytest.mark.parametrize(("fmt_name", "cap"), [("criteo", None), ("criteo", 30), ("avazu", 40), ("kdd", None)])
def test_informative_tokens_keep_their_own_embedding_rows(tmp_path, fmt_name, cap):
    """Two informative tokens hashed onto one row would reach a student as one id, so the teacher's
    log loss could not be reached from the prepared data; the generator keeps them apart."""
    fmt = get_format(fmt_name)
    spec = synthetic_spec(rows=200, seed=2, max_vocab=50, informative_fields=26, informative_vocab=20)
    folder = generate(fmt, spec, tmp_path / fmt.file_name, max_table_size=cap)
    teacher = Teacher.load(folder / "teacher.npz")
    tables = dict(zip(fmt.sparse_features, fmt.table_sizes(cap), strict=True))
    checked = 0
    for f, name in enumerate(teacher.features):
        if name in ("Gender", "Age") or not np.any(teacher.bias[f]):
            continue
        rows = fmt.row_ids(pa.array(teacher.vocab[f]), name, tables[name])
        assert len(np.unique(rows)) == len(rows) == min(20, fmt.paper_table_sizes[fmt.sparse_features.index(name)] - 1)
        checked += 1
    assert checked == len(teacher.features) - (2 if fmt_name == "kdd" else 0)


def test_informative_vocabulary_larger_than_its_table_is_refused(tmp_path):
    spec = synthetic_spec(rows=100, seed=2, max_vocab=50, informative_fields=26, informative_vocab=20)
    with pytest.raises(ValueError, match="do not fit a table of 10 rows; lower informative_vocab"):
        generate(get_format("criteo"), spec, tmp_path / "train.txt", max_table_size=10)
