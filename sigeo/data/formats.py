"""The three raw CTR formats (docs/reference.md §1.2–1.4): columns, table sizes and token rules.

A format turns one chunk of raw columns (Arrow binary arrays, as the CSV reader gives them) into
``dense`` (float32, ``log(max(x,0)+1)``), ``sparse`` (hashed ids, 0 = missing) and ``label``, plus a
per-row validity mask with the first reason a row is bad. Hashing is the reference's
``id = v mod (N_f - 1) + 1``; Avazu and KDD tokens first go through ``v mod (2^31 - 1)`` as the
reference's split tool does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from .parse import AVAZU_KDD_MODULUS, ParsedColumn, decimal_or_hex_residues, residues, signed_integers

CRITEO_TABLE_SIZES = (
    1461, 584, 10131227, 2202609, 306, 25, 12518, 634, 4, 93146, 5684, 8351593, 3195,
    28, 14993, 5461307, 11, 5653, 2174, 5, 7046548, 19, 16, 286182, 106, 142573,
)  # fmt: skip
AVAZU_COLUMNS = (
    "id", "click", "hour", "C1", "banner_pos", "site_id", "site_domain", "site_category", "app_id",
    "app_domain", "app_category", "device_id", "device_ip", "device_model", "device_type",
    "device_conn_type", "C14", "C15", "C16", "C17", "C18", "C19", "C20", "C21",
)  # fmt: skip
AVAZU_TABLE_SIZES = (
    10000,
    241,
    8,
    8,
    4738,
    7746,
    27,
    8553,
    560,
    37,
    2686409,
    6729487,
    8252,
    6,
    5,
    2627,
    9,
    10,
    436,
    5,
    69,
    173,
    61,
)  # fmt: skip (order: id, hour, C1, ..., C21)
KDD_COLUMNS = (
    "Click", "Impression", "DisplayURL", "AdID", "AdvertiserID", "Depth", "Position", "QueryID",
    "KeywordID", "TitleID", "DescriptionID", "UserID",
)  # fmt: skip
KDD_SPARSE = (
    "DisplayURL", "AdID", "AdvertiserID", "QueryID", "KeywordID", "TitleID", "DescriptionID",
    "UserID", "Gender", "Age",
)  # fmt: skip
KDD_TABLE_SIZES = (26274, 641708, 14848, 22122011, 1188090, 3735797, 2934102, 20004011, 4, 8)
KDD_DENSE = ("Impression", "Depth", "Position")


@dataclass(frozen=True)
class BadRow:
    """Why a row was rejected: the field it failed on and a short reason."""

    field: str
    reason: str


@dataclass
class Chunk:
    """Parsed rows of one raw chunk; rows with ``valid == False`` must not be used."""

    dense: np.ndarray
    sparse: np.ndarray
    label: np.ndarray
    valid: np.ndarray
    reason_index: np.ndarray
    reason_kinds: list[BadRow]

    def reason(self, row: int) -> BadRow:
        return self.reason_kinds[self.reason_index[row]]


@dataclass
class _Column:
    """One parsed column: its output values and the checks its rows failed (mask, field, why)."""

    values: np.ndarray
    failures: list[tuple[np.ndarray, str, str]]


def first_failures(
    n: int, failures: Sequence[tuple[np.ndarray, str, str]]
) -> tuple[np.ndarray, np.ndarray, list[BadRow]]:
    """Validity of ``n`` rows and, for each invalid one, the index of the first (mask, field, why) it failed."""
    valid = np.ones(n, dtype=bool)
    reason_index = np.full(n, -1, dtype=np.int32)
    kinds: list[BadRow] = []
    for mask, field_name, why in failures:
        newly = mask & valid
        if newly.any():
            kinds.append(BadRow(field_name, why))
            reason_index[newly] = len(kinds) - 1
            valid &= ~mask
    return valid, reason_index, kinds


def dense_transform(values: np.ndarray) -> np.ndarray:
    """``log(max(x, 0) + 1)`` as float32 (docs/reference.md §1.5)."""
    return np.log1p(np.maximum(values, 0).astype(np.float64)).astype(np.float32)


def hash_ids(res: ParsedColumn) -> np.ndarray:
    """``v mod (N - 1) + 1`` from residues already reduced modulo ``N - 1``; missing -> 0."""
    return np.where(res.empty, 0, res.values.astype(np.int64) + 1)


@dataclass(frozen=True)
class RawFormat:
    """How one raw file is laid out and turned into arrays."""

    name: str
    columns: tuple[str, ...]
    delimiter: str
    header: bool
    label_column: str
    dense_features: tuple[str, ...]
    sparse_features: tuple[str, ...]
    paper_table_sizes: tuple[int, ...]
    file_name: str

    def table_sizes(self, cap: int | None) -> list[int]:
        return [min(n, cap) if cap else n for n in self.paper_table_sizes]

    def parse(
        self,
        table: pa.Table,
        table_sizes: Sequence[int],
        profile: UserProfiles | None,
    ) -> Chunk:
        """Parse every column; rows failing any check are marked invalid with their first reason."""
        cols = {name: table.column(name) for name in table.column_names}
        n = table.num_rows
        label = self._label(cols[self.label_column])
        dense = [] if self.name == "avazu" else [self._dense(cols[name], name) for name in self.dense_features]
        sparse = [
            self._profile(profile, name, cols["UserID"], size)
            if name in ("Gender", "Age")
            else self._sparse(cols[name], name, size)
            for name, size in zip(self.sparse_features, table_sizes, strict=True)
        ]
        valid, reason_index, kinds = first_failures(n, [f for c in (label, *dense, *sparse) for f in c.failures])
        dense_values = (
            np.stack([c.values for c in dense], axis=1) if dense else np.zeros((n, 1), np.float32)
        )  # Avazu: one pseudo dense column of zeros (the reference writes -1)
        sparse_values = np.stack([c.values for c in sparse], axis=1)
        return Chunk(dense_values, sparse_values, label.values, valid, reason_index, kinds)

    def _label(self, col: pa.Array) -> _Column:
        parsed = signed_integers(col)
        failures = [
            (~parsed.valid | parsed.empty, self.label_column, "label is not an integer"),
            (parsed.values < 0, self.label_column, "negative label"),
        ]
        if self.name != "kdd":  # KDD's label is a click count; the others must be 0/1
            failures.append((parsed.values > 1, self.label_column, "label is not 0 or 1"))
        return _Column((parsed.values > 0).astype(np.uint8), failures)

    @staticmethod
    def _dense(col: pa.Array, name: str) -> _Column:
        parsed = signed_integers(col)
        values = dense_transform(np.where(parsed.empty, 0, parsed.values))
        return _Column(values, [(~parsed.valid, name, "not an integer of at most 18 digits")])

    def row_ids(self, tokens: pa.Array, name: str, size: int) -> np.ndarray:
        """The embedding rows that feature ``name``'s ``tokens`` are hashed to in a table of ``size`` rows."""
        return self._sparse(tokens, name, size).values

    def _sparse(self, col: pa.Array, name: str, size: int) -> _Column:
        if self.name == "criteo":
            res = residues(col, 16, size - 1)
            why = "not a hexadecimal token"
        else:
            res = decimal_or_hex_residues(col, AVAZU_KDD_MODULUS)
            res = ParsedColumn(res.values % np.uint64(size - 1), res.valid, res.empty)
            why = "neither a decimal nor a hexadecimal token"
        return _Column(hash_ids(res).astype(np.int32), [(~res.valid, name, why)])

    @staticmethod
    def _profile(profile: UserProfiles | None, name: str, user_col: pa.Array, size: int) -> _Column:
        assert profile is not None, "KDD needs the user profile table"
        return _Column((profile.lookup(name, user_col) % (size - 1) + 1).astype(np.int32), [])


class UserProfiles:
    """KDD ``userid_profile.txt`` sorted by UserID; unknown users get Gender 0 and Age 0.

    Sorted arrays rather than a table indexed by UserID, whose size would be the largest id in
    the file (any integer below 10^18), not the number of users. Gender and Age are kept as
    the split tool's residues modulo 2^31 - 1; a later line for the same user wins.
    """

    def __init__(self, user_ids: np.ndarray, gender: np.ndarray, age: np.ndarray) -> None:
        order = np.argsort(user_ids, kind="stable")
        last = np.append(user_ids[order][1:] != user_ids[order][:-1], True)
        keep = order[last]
        self.ids = user_ids[keep]
        self.columns = {"Gender": gender[keep], "Age": age[keep]}

    def lookup(self, name: str, user_col: pa.Array) -> np.ndarray:
        parsed = signed_integers(user_col)
        ids = np.where(parsed.valid & ~parsed.empty, parsed.values, -1)
        if not len(self.ids):
            return np.zeros(len(ids), np.int64)
        pos = np.minimum(np.searchsorted(self.ids, ids), len(self.ids) - 1)
        known = self.ids[pos] == ids
        return np.where(known, self.columns[name][pos], 0).astype(np.int64)


CRITEO = RawFormat(
    name="criteo",
    columns=("label", *(f"I{i}" for i in range(1, 14)), *(f"C{i}" for i in range(1, 27))),
    delimiter="\t",
    header=False,
    label_column="label",
    dense_features=tuple(f"I{i}" for i in range(1, 14)),
    sparse_features=tuple(f"C{i}" for i in range(1, 27)),
    paper_table_sizes=CRITEO_TABLE_SIZES,
    file_name="train.txt",
)


def avazu(keep_id: bool) -> RawFormat:
    """Avazu; the per-impression ``id`` column is noise and is dropped unless ``keep_id``."""
    features = AVAZU_COLUMNS[2:] if not keep_id else ("id", *AVAZU_COLUMNS[2:])
    sizes = AVAZU_TABLE_SIZES[1:] if not keep_id else AVAZU_TABLE_SIZES
    return RawFormat(
        name="avazu",
        columns=AVAZU_COLUMNS,
        delimiter=",",
        header=True,
        label_column="click",
        dense_features=("dense_pad",),
        sparse_features=features,
        paper_table_sizes=sizes,
        file_name="train.csv",
    )


KDD = RawFormat(
    name="kdd",
    columns=KDD_COLUMNS,
    delimiter="\t",
    header=False,
    label_column="Click",
    dense_features=KDD_DENSE,
    sparse_features=KDD_SPARSE,
    paper_table_sizes=KDD_TABLE_SIZES,
    file_name="training.txt",
)
KDD_PROFILE_FILE = "userid_profile.txt"


def get_format(name: str, keep_id: bool = False) -> RawFormat:
    formats = {"criteo": CRITEO, "avazu": avazu(keep_id), "kdd": KDD}
    if name not in formats:
        raise ValueError(f"unknown format {name!r}; expected one of {sorted(formats)}")
    return formats[name]
