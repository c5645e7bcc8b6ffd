"""Synthetic CTR data in the exact raw format of Criteo, Avazu or KDD 2012, from a known teacher.

Rows are drawn from a random *teacher* model whose signal lives in a few *informative*
categorical fields of small vocabulary and in the dense features; the other fields are written with
realistic vocabularies but carry no signal, as most columns of a real log carry little. The logit
has four parts, each a structure only some operators of the search space capture:

- token biases of the informative fields (any model with embeddings and a linear head),
- dot products between the informative fields' embeddings (FM-style; a dot-product operator or the
  DeepFM merger, not a linear model),
- a deep nonlinearity of the dense features (a random two-layer tanh network; stacked FC layers),
- dense × sparse crosses (a dense value scaling an embedding direction; the dot-product operator,
  which dots the dense vector with embedding rows).

So architectures differ in what they can learn, a student can learn the informative embeddings
from ~100k rows, and the best achievable log loss (the teacher's own, "Bayes") is known. The
generator writes the raw file (then the same parser runs as on real data), the teacher's
parameters (``teacher.npz``, with the token vocabularies so anyone can recompute the
probabilities from the file) and the teacher's probability of every data line (``teacher_prob.npy``).
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
from scipy.optimize import brentq
from scipy.special import expit

from ..io import atomic_path
from .formats import KDD_PROFILE_FILE, RawFormat
from .store import NpyAppender

EMBED_DIM = 4
_DECIMAL_SPAN = 1_000_000  # decimal ids of feature f lie in [f * span, (f + 1) * span)
_HEX_FEATURES_AVAZU = {
    "site_id", "site_domain", "site_category", "app_id", "app_domain", "app_category",
    "device_id", "device_ip", "device_model",
}  # fmt: skip


@dataclass(frozen=True)
class SyntheticSpec:
    """What to generate; ``informative_fields`` fields of at most ``informative_vocab`` tokens carry the signal."""

    rows: int
    seed: int
    positive_rate: float
    max_vocab: int
    informative_fields: int
    informative_vocab: int
    chunk_rows: int = 100_000


@dataclass
class Teacher:
    """The label model: ``P(y=1) = sigmoid(logit)`` over raw tokens and transformed dense values.

    Uninformative fields have all-zero biases and embeddings; ``pairs`` and ``cross`` name only
    informative fields. The dense part is ``tanh(tanh(z W0 + b0) W1 + b1) @ dense_weight`` on the
    standardised log-counts ``z`` (0 where missing).
    """

    features: list[str]
    dense_features: list[str]
    vocab: list[np.ndarray]
    bias: list[np.ndarray]
    emb: list[np.ndarray]
    pairs: np.ndarray
    pair_weight: np.ndarray
    hidden_weight: list[np.ndarray]
    hidden_bias: list[np.ndarray]
    dense_weight: np.ndarray
    dense_mu: np.ndarray
    dense_sigma: np.ndarray
    cross: np.ndarray
    cross_weight: np.ndarray
    intercept: float

    def logit(self, x: np.ndarray, tokens: np.ndarray) -> np.ndarray:
        """``x``: [N, D] raw dense values (NaN: missing); ``tokens``: [N, C] vocabulary indices (-1: missing)."""
        return self.intercept + sum(self.terms(x, tokens).values())

    def terms(self, x: np.ndarray, tokens: np.ndarray) -> dict[str, np.ndarray]:
        """The logit's parts without the intercept: token biases, pairwise, dense and cross terms."""
        n = tokens.shape[0]
        # what the parser hands a model: log(max(x, 0) + 1), a missing value read as 0
        z = (np.log1p(np.maximum(np.nan_to_num(x, nan=0.0), 0)) - self.dense_mu) / self.dense_sigma
        bias = np.zeros(n)
        embs = np.zeros((len(self.features), n, EMBED_DIM))
        for f in range(len(self.features)):
            present = tokens[:, f] >= 0
            idx = np.where(present, tokens[:, f], 0)
            bias += np.where(present, self.bias[f][idx], 0.0)
            embs[f] = np.where(present[:, None], self.emb[f][idx], 0.0)
        pair = np.zeros(n)
        for (f, g), w in zip(self.pairs, self.pair_weight, strict=True):
            pair += w * np.einsum("nk,nk->n", embs[f], embs[g])
        h = z
        for w, b in zip(self.hidden_weight, self.hidden_bias, strict=True):
            h = np.tanh(h @ w + b)
        dense = h @ self.dense_weight if z.shape[1] else np.zeros(n)
        cross = np.zeros(n)
        for (d, f), w in zip(self.cross, self.cross_weight, strict=True):
            cross += z[:, d] * (embs[f] @ w)
        return {"bias": bias, "pair": pair, "dense": dense, "cross": cross}

    def save(self, path: str | os.PathLike) -> None:
        arrays = {
            "features": np.array(self.features),
            "dense_features": np.array(self.dense_features),
            "pairs": self.pairs,
            "pair_weight": self.pair_weight,
            "dense_weight": self.dense_weight,
            "dense_mu": self.dense_mu,
            "dense_sigma": self.dense_sigma,
            "cross": self.cross,
            "cross_weight": self.cross_weight,
            "intercept": np.array(self.intercept),
        }
        for f in range(len(self.features)):
            arrays[f"vocab_{f}"] = self.vocab[f]
            arrays[f"bias_{f}"] = self.bias[f]
            arrays[f"emb_{f}"] = self.emb[f]
        for i, (w, b) in enumerate(zip(self.hidden_weight, self.hidden_bias, strict=True)):
            arrays[f"hidden_weight_{i}"] = w
            arrays[f"hidden_bias_{i}"] = b
        with atomic_path(path, ".npz") as tmp, open(tmp, "wb") as fh:
            np.savez(fh, **arrays)

    @classmethod
    def load(cls, path: str | os.PathLike) -> Teacher:
        with np.load(path, allow_pickle=False) as z:
            features = [str(f) for f in z["features"]]
            layers = sum(1 for k in z.files if k.startswith("hidden_weight_"))
            return cls(
                features=features,
                dense_features=[str(f) for f in z["dense_features"]],
                vocab=[z[f"vocab_{f}"] for f in range(len(features))],
                bias=[z[f"bias_{f}"] for f in range(len(features))],
                emb=[z[f"emb_{f}"] for f in range(len(features))],
                pairs=z["pairs"],
                pair_weight=z["pair_weight"],
                hidden_weight=[z[f"hidden_weight_{i}"] for i in range(layers)],
                hidden_bias=[z[f"hidden_bias_{i}"] for i in range(layers)],
                dense_weight=z["dense_weight"],
                dense_mu=z["dense_mu"],
                dense_sigma=z["dense_sigma"],
                cross=z["cross"],
                cross_weight=z["cross_weight"],
                intercept=float(z["intercept"]),
            )


def _zipf_probs(rng: np.random.Generator, size: int) -> np.ndarray:
    exponent = rng.uniform(0.9, 1.4)
    p = 1.0 / np.arange(1, size + 1) ** exponent
    return p / p.sum()


def _vocab(name: str, fmt: RawFormat, f: int, size: int) -> np.ndarray:
    """Distinct raw tokens (index -> token is a bijection), written hex or decimal as the format has them."""
    index = np.arange(size, dtype=np.uint64)
    if name in ("Gender", "Age"):  # KDD profile codes; 0 = unknown
        return index.astype(str)
    if fmt.name == "criteo" or (fmt.name == "avazu" and name in _HEX_FEATURES_AVAZU):
        codes = (index * np.uint64(2654435761) + np.uint64(977 * (f + 1))) % np.uint64(2**32)
        return np.array([f"{int(c):08x}" for c in codes])
    if name == "hour":
        days, hours = np.divmod(np.arange(size), 24)
        return np.array([f"1410{21 + d:02d}{h:02d}" for d, h in zip(days, hours, strict=True)])
    return (np.uint64(f * _DECIMAL_SPAN) + index * np.uint64(7919) % np.uint64(_DECIMAL_SPAN)).astype(str)


def _distinct_row_vocab(name: str, fmt: RawFormat, f: int, size: int, table_size: int) -> np.ndarray:
    """``size`` tokens that the parser hashes to distinct rows of the feature's ``table_size``-row table.

    The teacher gives each token its own bias and embedding; two of them hashed onto one row would
    reach a student as one id, whose best prediction mixes theirs, and the teacher's log loss would
    then be a floor no model of the prepared data can reach. So the tokens are the first ones of a
    larger candidate list (``_vocab``'s own order) that land on rows not taken yet.
    """
    if size > table_size - 1:  # rows 1 .. table_size - 1 hold tokens, row 0 the missing value
        raise ValueError(
            f"{name}: {size} informative tokens do not fit a table of {table_size} rows; lower informative_vocab"
        )
    pool = _vocab(name, fmt, f, 8 * size + 64)
    _, first = np.unique(fmt.row_ids(pa.array(pool), name, table_size), return_index=True)
    if len(first) < size:
        raise ValueError(f"{name}: only {len(first)} distinct table rows among {len(pool)} candidate tokens")
    return pool[np.sort(first)[:size]]


def _teacher_features(fmt: RawFormat) -> list[str]:
    """Features the teacher reads: the format's categorical columns, without Avazu's noise ``id``."""
    return [f for f in fmt.sparse_features if f != "id"]


@dataclass(frozen=True)
class _DenseModel:
    """Heavy-tailed counts, with per-column missing rates, like Criteo's integer features."""

    mu: np.ndarray
    sigma: np.ndarray
    missing: np.ndarray
    offset: int
    negative_rate: float

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """Integer counts as float64, NaN where missing."""
        x = np.floor(np.exp(rng.normal(self.mu, self.sigma, (n, len(self.mu))))) - self.offset
        if len(self.mu) > 1:  # like Criteo's I2, one column has a few small negatives
            negative = rng.random(n) < self.negative_rate
            x[negative, 1] = -rng.integers(1, 4, int(negative.sum()))
        x[rng.random((n, len(self.mu))) < self.missing] = np.nan
        return x


def _dense_model(fmt: RawFormat, spec: SyntheticSpec) -> _DenseModel:
    rng = np.random.default_rng([spec.seed, 2])
    d = len(fmt.dense_features) if fmt.name != "avazu" else 0
    if fmt.name == "kdd":  # Impression, Depth, Position: small counts >= 1, never missing
        return _DenseModel(np.array([0.4, 0.8, 0.5]), np.array([0.6, 0.3, 0.4]), np.zeros(3), 0, 0.0)
    missing = np.where(rng.random(d) < 0.5, rng.uniform(0.0, 0.45, d), 0.0)
    return _DenseModel(rng.uniform(0.5, 3.0, d), rng.uniform(0.5, 1.5, d), missing, 1, 0.02)


#: Width and depth of the teacher's dense network; how many dense features cross an informative field.
DENSE_HIDDEN, DENSE_LAYERS, CROSSES = 16, 2, 4
#: Scale of the dense network's weights: above 1 its tanh units leave their linear range.
DENSE_GAIN = 1.5


def make_teacher(
    fmt: RawFormat, spec: SyntheticSpec, dense: _DenseModel, table_sizes: Sequence[int]
) -> tuple[Teacher, list[np.ndarray], np.ndarray]:
    """Draw a teacher; also returns token frequencies and per-feature missing rates.

    ``table_sizes``: the embedding tables the data set will be prepared into, one per sparse
    feature; the informative fields' tokens land on distinct rows of them.
    """
    rng = np.random.default_rng([spec.seed, 1])
    features = _teacher_features(fmt)
    n_feat = len(features)
    informative = np.sort(rng.choice(n_feat, size=min(n_feat, spec.informative_fields), replace=False))
    sizes = dict(zip(fmt.sparse_features, fmt.paper_table_sizes, strict=True))
    tables = dict(zip(fmt.sparse_features, table_sizes, strict=True))
    vocab, bias, emb, freqs = [], [], [], []
    for f, name in enumerate(features):
        # KDD's Gender/Age keep their own (tiny) code sets: the user profile draws every code
        signal_tokens = f in informative and name not in ("Gender", "Age")
        size = max(2, min(sizes[name] - 1, spec.informative_vocab if signal_tokens else spec.max_vocab))
        vocab.append(
            _distinct_row_vocab(name, fmt, f, size, tables[name]) if signal_tokens else _vocab(name, fmt, f, size)
        )
        signal = 1.0 if f in informative else 0.0
        bias.append(signal * rng.normal(0.0, 1.0, size))
        emb.append(signal * rng.normal(0.0, 1.0, (size, EMBED_DIM)))
        freqs.append(_zipf_probs(rng, size))
    pairs = np.array([(f, g) for i, f in enumerate(informative) for g in informative[i + 1 :]], dtype=np.int64)
    n_dense = len(fmt.dense_features) if fmt.name != "avazu" else 0
    widths = [n_dense] + [DENSE_HIDDEN] * DENSE_LAYERS
    hidden_weight = [rng.normal(0.0, DENSE_GAIN / np.sqrt(max(1, a)), (a, b)) for a, b in itertools.pairwise(widths)]
    hidden_bias = [rng.normal(0.0, 0.5, b) for b in widths[1:]]
    crossed = np.sort(rng.choice(n_dense, size=min(n_dense, CROSSES), replace=False))
    cross = np.array([(d, int(rng.choice(informative))) for d in crossed], dtype=np.int64).reshape(-1, 2)
    missing = np.where(rng.random(n_feat) < 0.25, rng.uniform(0.05, 0.45, n_feat), 0.0)
    if fmt.name != "criteo":
        missing[:] = 0.0  # Avazu and KDD have no missing categorical values
    teacher = Teacher(
        features=features,
        dense_features=list(fmt.dense_features[:n_dense]),
        vocab=vocab,
        bias=bias,
        emb=emb,
        pairs=pairs,
        pair_weight=rng.normal(0.0, 1.0, len(pairs)),
        hidden_weight=hidden_weight,
        hidden_bias=hidden_bias,
        dense_weight=rng.normal(0.0, 1.0, DENSE_HIDDEN),
        dense_mu=dense.mu,
        dense_sigma=dense.sigma,
        cross=cross,
        cross_weight=rng.normal(0.0, 1.0, (len(cross), EMBED_DIM)),
        intercept=0.0,
    )
    return teacher, freqs, missing


@dataclass(frozen=True)
class _Sampler:
    """Draws raw feature values; KDD's Gender/Age follow the drawn user's profile."""

    teacher: Teacher
    freqs: list[np.ndarray]
    missing: np.ndarray
    dense: _DenseModel
    profile: tuple[np.ndarray, np.ndarray] | None

    def draw(self, rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
        tokens = np.stack([rng.choice(len(p), size=n, p=p) for p in self.freqs], axis=1)
        tokens[rng.random(tokens.shape) < self.missing] = -1
        if self.profile is not None:
            users = tokens[:, self.teacher.features.index("UserID")]
            for name, codes in zip(("Gender", "Age"), self.profile, strict=True):
                tokens[:, self.teacher.features.index(name)] = codes[users]
        return tokens, self.dense.sample(rng, n)


#: Standard deviation of each logit part after calibration. The parts a linear model cannot fit
#: (pairs, the dense network, crosses) outweigh the biases, so architecture matters.
TERM_SCALE = {"bias": 0.6, "pair": 1.2, "dense": 0.8, "cross": 0.5}


def _calibrate(teacher: Teacher, sampler: _Sampler, rate: float, seed: int) -> None:
    """Rescale each logit part to ``TERM_SCALE`` and set the intercept for the positive rate.

    Done on a 20,000-row sample; the teacher keeps plain weights, so it stays self-contained.
    """
    rng = np.random.default_rng([seed, 3])
    tokens, x = sampler.draw(rng, 20_000)
    sd = {name: float(part.std()) for name, part in teacher.terms(x, tokens).items()}
    factor = {name: TERM_SCALE[name] / v if v > 0 else 0.0 for name, v in sd.items()}
    teacher.bias = [b * factor["bias"] for b in teacher.bias]
    teacher.pair_weight = teacher.pair_weight * factor["pair"]
    teacher.dense_weight = teacher.dense_weight * factor["dense"]
    teacher.cross_weight = teacher.cross_weight * factor["cross"]
    base = sum(teacher.terms(x, tokens).values())
    teacher.intercept = brentq(lambda b: expit(base + b).mean() - rate, -30.0, 30.0)


def _columns(
    fmt: RawFormat,
    teacher: Teacher,
    vocab: list[pa.Array],
    tokens: np.ndarray,
    x: np.ndarray,
    label: np.ndarray,
    rng: np.random.Generator,
    first_row: int,
) -> dict[str, pa.Array]:
    cols: dict[str, pa.Array] = {}
    n = len(label)
    for f, name in enumerate(teacher.features):
        if name in ("Gender", "Age"):
            continue
        cols[name] = vocab[f].take(pa.array(tokens[:, f], mask=tokens[:, f] < 0))
    for d, name in enumerate(teacher.dense_features):
        missing = np.isnan(x[:, d])
        cols[name] = pa.array(np.where(missing, 0, x[:, d]).astype(np.int64), mask=missing)
    if fmt.name == "criteo":
        cols["label"] = pa.array(label)
    elif fmt.name == "avazu":
        cols["click"] = pa.array(label)
        ids = (np.arange(first_row, first_row + n, dtype=np.uint64) * np.uint64(11400714819323198485)) >> np.uint64(1)
        cols["id"] = pa.array([str(int(i)) for i in ids])
    else:  # KDD: Click is a count; a row is positive when it is > 0
        cols["Click"] = pa.array(label * (1 + rng.poisson(0.2, n)))
    return cols


def _kdd_users(teacher: Teacher) -> tuple[np.ndarray, np.ndarray]:
    """UserID -> (Gender, Age) with teacher indices: one in ten users has no profile (0/0)."""
    users = teacher.vocab[teacher.features.index("UserID")]
    rng = np.random.default_rng(len(users))
    gender = rng.integers(1, 3, len(users))
    age = rng.integers(1, 7, len(users))
    unknown = rng.random(len(users)) < 0.1
    gender[unknown] = 0
    age[unknown] = 0
    return gender, age


def generate(
    fmt: RawFormat, spec: SyntheticSpec, raw_path: str | os.PathLike, max_table_size: int | None = None
) -> Path:
    """Write ``rows`` raw rows to ``raw_path`` (gzip if it ends in .gz) plus the teacher files.

    ``max_table_size``: the cap the data set is prepared with (its ``max_table_size``), so that the
    informative tokens stay apart after hashing and the teacher's log loss stays reachable.

    Returns the folder holding ``teacher.npz`` and ``teacher_prob.npy`` (the raw file's folder).
    """
    raw_path = Path(raw_path)
    folder = raw_path.parent
    folder.mkdir(parents=True, exist_ok=True)
    dense = _dense_model(fmt, spec)
    teacher, freqs, missing = make_teacher(fmt, spec, dense, fmt.table_sizes(max_table_size))
    kdd_profile = _kdd_users(teacher) if fmt.name == "kdd" else None
    sampler = _Sampler(teacher, freqs, missing, dense, kdd_profile)
    _calibrate(teacher, sampler, spec.positive_rate, spec.seed)
    rng = np.random.default_rng([spec.seed, 4])
    vocab = [pa.array(v) for v in teacher.vocab]
    write_opts = pacsv.WriteOptions(include_header=False, delimiter=fmt.delimiter, quoting_style="none")
    with (
        atomic_path(raw_path) as tmp_raw,
        atomic_path(folder / "teacher_prob.npy", ".npy") as tmp_prob,
    ):
        prob_out = NpyAppender(tmp_prob, np.float32, ())
        sink = (
            pa.CompressedOutputStream(str(tmp_raw), "gzip")
            if raw_path.suffix == ".gz"
            else pa.OSFile(str(tmp_raw), "wb")
        )
        with sink:
            if fmt.header:  # written by hand: Arrow's writer always quotes header names
                sink.write((fmt.delimiter.join(fmt.columns) + "\n").encode())
            for first in range(0, spec.rows, spec.chunk_rows):
                n = min(spec.chunk_rows, spec.rows - first)
                tokens, x = sampler.draw(rng, n)
                prob = expit(teacher.logit(x, tokens))
                label = (rng.random(n) < prob).astype(np.int64)
                cols = _columns(fmt, teacher, vocab, tokens, x, label, rng, first)
                table = pa.table([cols[c] for c in fmt.columns], names=list(fmt.columns))
                pacsv.write_csv(table, sink, write_options=write_opts)
                prob_out.append(prob.astype(np.float32))
        prob_out.close()
    if kdd_profile is not None:
        users = teacher.vocab[teacher.features.index("UserID")]
        known = kdd_profile[0] > 0
        profile = pa.table(
            {
                "UserID": pa.array(users[known]),
                "Gender": pa.array(kdd_profile[0][known]),
                "Age": pa.array(kdd_profile[1][known]),
            }
        )
        with atomic_path(folder / KDD_PROFILE_FILE) as tmp:
            opts = pacsv.WriteOptions(include_header=False, delimiter="\t", quoting_style="none")
            pacsv.write_csv(profile, str(tmp), write_options=opts)
    teacher.save(folder / "teacher.npz")
    return folder
