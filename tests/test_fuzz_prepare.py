"""Bad-data fuzzing of ``prepare``: malformed raw files in each format against a plain-Python oracle.

For every generated file, ``prepare`` must either raise a :class:`DataError` whose message names the
file and a line, or skip and report exactly the rows the oracle rejects (``bad_rows``, ``bad_lines``)
and store exactly the rows it accepts, with exactly its values. Nothing else may happen: no other
exception type, no row silently dropped, no value silently different.

The oracle reads the file's bytes on its own (docs/reference.md §1.2–1.5): lines end at ``\\n``, ``\\r\\n``
or a lone ``\\r`` (Python's universal newlines, as the reference's tools read them), a leading UTF-8
BOM is not data, and a token is read with ``int(t)`` / ``int(t, 16)`` restricted to plain ASCII
(``-?[0-9]+`` / ``[0-9A-Fa-f]+``; no spaces, ``+``, ``_`` or ``0x``), so a token the reference would
reinterpret is rejected rather than guessed. Label and dense values must be below 10^18 in
magnitude; an empty dense value or categorical is missing. Criteo categoricals are hex; Avazu and
KDD tokens are decimal if they parse so, else hex, then Python's ``% (2^31 - 1)`` (non-negative for
negative tokens). Ids are ``v % (N - 1) + 1`` (0 = missing), dense ``log(max(x, 0) + 1)``. KDD rows
get (Gender, Age) of their UserID (by integer value; unknown: 0, 0); a bad profile line is fatal.

Rows are dealt over train/val/test, so the stored rows are compared with the oracle's as a
multiset, and each split must also list its rows in file order.
"""

from __future__ import annotations

import gzip
import math
import random
import re
import tempfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sigeo.data.formats import (
    AVAZU_COLUMNS,
    AVAZU_TABLE_SIZES,
    CRITEO_TABLE_SIZES,
    KDD_COLUMNS,
    KDD_SPARSE,
    KDD_TABLE_SIZES,
    get_format,
)
from sigeo.data.prepare import PrepareSettings, prepare
from sigeo.errors import DataError

EXAMPLES = 150  # per format; see the Reliability table in tests/README.md
TOOL_MODULUS = 2**31 - 1
LIMIT = 10**18
BOM = b"\xef\xbb\xbf"

# ------------------------------------------------------------------------------------------------
# The oracle


class Bad(Exception):
    """The oracle rejects this token or row."""


def decimal(token: bytes) -> int | None:
    return int(token) if re.fullmatch(rb"-?[0-9]+", token) else None


def hexadecimal(token: bytes) -> int | None:
    return int(token, 16) if re.fullmatch(rb"[0-9A-Fa-f]+", token) else None


def integer(token: bytes) -> int:
    value = decimal(token)
    if value is None or abs(value) >= LIMIT:
        raise Bad
    return value


def dense(token: bytes) -> float:
    value = 0 if token == b"" else integer(token)
    return float(np.float32(math.log(max(value, 0) + 1)))


def label(token: bytes, click_count: bool) -> int:
    value = integer(token)
    if value < 0 or (value > 1 and not click_count):
        raise Bad
    return int(value > 0)


def criteo_id(token: bytes, n: int) -> int:
    if token == b"":
        return 0
    value = hexadecimal(token)
    if value is None:
        raise Bad
    return value % (n - 1) + 1


def tool_residue(token: bytes) -> int:
    """The Avazu/KDD split tool: ``int(v)``, else ``int(v, 16)``, then ``% (2^31 - 1)``."""
    value = decimal(token)
    if value is None:
        value = hexadecimal(token)
    if value is None:
        raise Bad
    return value % TOOL_MODULUS


def tool_id(token: bytes, n: int) -> int:
    return 0 if token == b"" else tool_residue(token) % (n - 1) + 1


def split_lines(data: bytes) -> list[bytes]:
    data = data.removeprefix(BOM)
    lines = re.split(rb"\r\n|\r|\n", data)
    if lines[-1] == b"":
        lines.pop()
    return lines


@dataclass(frozen=True)
class Layout:
    """One raw format as the oracle sees it (column names and table sizes from docs/reference.md §1)."""

    name: str
    columns: tuple[str, ...]
    delimiter: bytes
    header: bool
    label: str
    dense: tuple[str, ...]
    sparse: tuple[tuple[str, int], ...]  # (column, table size); Gender/Age come from the profile

    def row(self, fields: list[bytes], cap: int | None, users: dict[int, tuple[int, int]]) -> tuple:
        if len(fields) != len(self.columns):
            raise Bad
        value = dict(zip(self.columns, fields, strict=True))
        y = label(value[self.label], click_count=self.name == "kdd")
        x = tuple(dense(value[c]) for c in self.dense) or (0.0,)
        ids = []
        for column, size in self.sparse:
            n = min(size, cap) if cap else size
            if column in ("Gender", "Age"):
                try:
                    user = integer(value["UserID"])
                except Bad:
                    user = None
                gender, age = users.get(user, (0, 0))
                ids.append((gender if column == "Gender" else age) % (n - 1) + 1)
            elif self.name == "criteo":
                ids.append(criteo_id(value[column], n))
            else:
                ids.append(tool_id(value[column], n))
        return (y, x, tuple(ids))


CRITEO = Layout(
    "criteo",
    ("label", *(f"I{i}" for i in range(1, 14)), *(f"C{i}" for i in range(1, 27))),
    b"\t",
    False,
    "label",
    tuple(f"I{i}" for i in range(1, 14)),
    tuple(zip((f"C{i}" for i in range(1, 27)), CRITEO_TABLE_SIZES, strict=True)),
)


def avazu_layout(keep_id: bool) -> Layout:
    sparse = tuple(zip(("id", *AVAZU_COLUMNS[2:]), AVAZU_TABLE_SIZES, strict=True))
    return Layout("avazu", AVAZU_COLUMNS, b",", True, "click", (), sparse if keep_id else sparse[1:])


KDD = Layout(
    "kdd",
    KDD_COLUMNS,
    b"\t",
    False,
    "Click",
    ("Impression", "Depth", "Position"),
    tuple(zip(KDD_SPARSE, KDD_TABLE_SIZES, strict=True)),
)


@dataclass
class Case:
    """One generated input: the raw bytes as written, and the settings prepare runs with."""

    layout: str  # a key of LAYOUTS
    data: bytes
    gzipped: bool
    truncated: bool
    max_bad_rows: int
    cap: int | None
    seed: int
    block_size: int
    profile: bytes | None = None


@dataclass
class Expected:
    error: str | None = None  # regex the DataError must also match; None: prepare must succeed
    file: str = ""  # "raw" or "profile": which file the error must name
    rows: list[tuple] = field(default_factory=list)
    bad_lines: list[int] = field(default_factory=list)


def profile_users(data: bytes) -> dict[int, tuple[int, int]] | int:
    """UserID -> (Gender, Age) residues (a later line wins), or the first bad line's number."""
    users = {}
    for number, line in enumerate(split_lines(data), 1):
        fields = line.split(b"\t")
        try:
            if len(fields) != 3:
                raise Bad
            user = integer(fields[0])
            if user < 0:
                raise Bad
            users[user] = (tool_residue(fields[1]), tool_residue(fields[2]))
        except Bad:
            return number
    return users


def oracle(case: Case, plain: bytes) -> Expected:
    users: dict[int, tuple[int, int]] = {}
    if case.profile is not None:
        parsed = profile_users(case.profile)
        if isinstance(parsed, int):
            return Expected(rf"line {parsed}\b", "profile")
        users = parsed
    if case.truncated:
        return Expected("", "raw")
    layout, lines = LAYOUTS[case.layout], split_lines(plain)
    if not lines:  # e.g. a gzipped empty file, or only a BOM
        return Expected(r"no usable rows|Empty CSV file", "raw")
    first = 1
    if layout.header:
        if lines[0] != b",".join(c.encode() for c in layout.columns):
            return Expected(r"line 1\b", "raw")
        first = 2
    expected = Expected()
    for number, line in enumerate(lines[first - 1 :], first):
        try:
            expected.rows.append(layout.row(line.split(layout.delimiter), case.cap, users))
        except Bad:
            expected.bad_lines.append(number)
            if len(expected.bad_lines) > case.max_bad_rows:
                first_bad = expected.bad_lines[0]
                return Expected(rf"max_bad_rows={case.max_bad_rows} bad rows; first: line {first_bad}:", "raw")
    if not expected.rows:
        return Expected(r"no usable rows.*line \d+", "raw")
    return expected


# ------------------------------------------------------------------------------------------------
# Generation: mostly plausible rows, a quarter of them damaged, and damaged files


def enc(value: int) -> bytes:
    return str(value).encode()


INTEGER_EDGES = [
    b"0", b"1", b"-0", b"-1", b"007", b"", b"9" * 18, b"-" + b"9" * 18, b"1" + b"0" * 18,
    b"9223372036854775807", b"-9223372036854775808", b"9223372036854775808", b"18446744073709551616",
    b"0" * 30 + b"42", b"+5", b" 5", b"5 ", b"0x1f", b"0X1F", b"1e3", b"1.5", b"-", b"--1", b"1-",
    b"\x005", b"5\x00", b"\xff", b"\xe9", "١٢".encode(), "12".encode("utf-16-le"),
]  # fmt: skip
TOKEN_EDGES = [
    b"FFFFFFFF", b"ffffffffffffffffffffffffffff", b"g0000000", b"0000000\xff", b"\x00" * 8, b"abc",
    b"-1f", b"0x1f", b"12 3", b"\xe9t\xe9", "été".encode("latin-1"), "12".encode("utf-16-le"), b"1_0",
    b"-" + b"9" * 25, b"9" * 25, b"-0",
]  # fmt: skip
garbage = st.one_of(
    st.sampled_from(INTEGER_EDGES + TOKEN_EDGES),
    st.binary(max_size=10),
    st.binary(min_size=8, max_size=8),
    st.integers(-(10**25), 10**25).map(enc),
)


def plausible_row(rng: random.Random, layout: Layout, users: list[int]) -> list[bytes]:
    """A row a clean file of this format holds. Drawn from a seeded generator rather than field by
    field from Hypothesis: that keeps an example cheap; the damage below is Hypothesis's."""
    row = []
    for column in layout.columns:
        if column == layout.label:
            row.append(rng.choice([b"0", b"1", b"2"] if layout.name == "kdd" else [b"0", b"1"]))
        elif column in layout.dense:
            row.append(b"" if rng.random() < 0.1 else enc(rng.randint(-5, 10**6)))
        elif layout.name == "criteo":
            row.append(b"" if rng.random() < 0.1 else b"%08x" % rng.getrandbits(32))
        elif column == "UserID":
            row.append(enc(rng.choice(users) if rng.random() < 0.8 else rng.randint(0, 10**12)))
        else:
            kind = rng.randrange(3)
            value = rng.randint(-1, 10**8) if kind == 0 else rng.getrandbits(32 if kind == 1 else 70)
            row.append(b"%08x" % value if kind == 1 else enc(value))
    return row


def damage(draw: Callable, fields: list[bytes], delimiter: bytes) -> bytes:
    """One kind of damage to a row, as the bytes of its line."""
    kind = draw(st.sampled_from(["field", "field", "truncate", "cut", "extra", "empty", "utf16", "latin1"]))
    if kind == "field":
        fields[draw(st.integers(0, len(fields) - 1))] = draw(garbage)
    elif kind == "truncate":
        del fields[draw(st.integers(1, len(fields) - 1)) :]
    elif kind == "extra":
        fields.append(draw(garbage))
    line = delimiter.join(fields)
    if kind == "cut":
        return line[: draw(st.integers(0, len(line)))]
    if kind == "empty":
        return b""
    if kind == "utf16":
        return line.decode("latin-1").encode("utf-16-le")
    if kind == "latin1":
        return line.replace(b"0", "é".encode("latin-1"), 1)
    return line


def join_lines(draw: Callable, lines: list[bytes]) -> bytes:
    """Lines with \\n, \\r\\n or lone \\r ends (one style per file, some lines mixed), maybe no final end."""
    style = draw(st.sampled_from([b"\n", b"\r\n", b"\r"]))
    out = b""
    for i, line in enumerate(lines):
        end = style if draw(st.integers(0, 9)) else draw(st.sampled_from([b"\n", b"\r\n", b"\r"]))
        out += line + (end if i < len(lines) - 1 or draw(st.booleans()) else b"")
    return out


@st.composite
def profiles(draw: Callable, users: list[int]) -> bytes:
    """userid_profile.txt: lines with unusual but valid values (huge ids, negative, large or hex
    Gender/Age, a repeated user), and in one file out of eight a line that must be fatal."""
    lines = []
    for user in users:
        fields = [enc(user), draw(st.sampled_from([b"0", b"1", b"2"])), draw(st.integers(1, 6).map(enc))]
        unusual = draw(st.integers(0, 5))
        if unusual == 0:
            fields[draw(st.integers(1, 2))] = draw(st.sampled_from([b"70000", b"-1", b"a", b"FF", b"9" * 25, b"65537"]))
        elif unusual == 1:
            fields[0] = draw(st.sampled_from([enc(10**14), enc(10**17 + 3), b"00" + fields[0]]))
        lines.append(b"\t".join(fields))
    if draw(st.integers(0, 4)) == 0:
        lines.append(draw(st.sampled_from(lines)))  # a repeated user: the later line wins
    if draw(st.integers(0, 7)) == 0:
        fatal = draw(st.sampled_from([enc(LIMIT), enc(2**64), b"-3", b"", b"x"])) + b"\t1\t1"
        fatal = draw(st.sampled_from([fatal, b"7\t1", b"7\t1\t", b"7\t\xff\t1", b"", draw(garbage)]))
        lines.insert(draw(st.integers(0, len(lines))), fatal)
    return join_lines(draw, lines)


@st.composite
def cases(draw: Callable, name: str) -> Case:
    layout = LAYOUTS[name]
    users = draw(st.lists(st.integers(0, 30), min_size=1, max_size=6, unique=True))
    rng = random.Random(draw(st.integers(0, 2**32)))
    lines = []
    if layout.header:
        header = ",".join(layout.columns).encode()
        if draw(st.integers(0, 19)) == 0:
            header = draw(st.sampled_from([header.replace(b"click", b"clicks"), header.decode().encode("utf-16"),
                                           header.replace(b"hour", "hôur".encode("latin-1")), b""]))  # fmt: skip
        lines.append(header)
    for _ in range(draw(st.integers(1, 12))):
        fields = plausible_row(rng, layout, users)
        damaged = draw(st.integers(0, 3)) == 0
        lines.append(damage(draw, fields, layout.delimiter) if damaged else layout.delimiter.join(fields))
    plain = join_lines(draw, lines)
    if draw(st.integers(0, 9)) == 0:
        plain = BOM + plain
    if draw(st.integers(0, 29)) == 0:
        plain = plain.decode("latin-1").encode("utf-16")  # a whole file in the wrong encoding
    gzipped = draw(st.integers(0, 3)) == 0
    data = gzip.compress(plain, mtime=0) if gzipped else plain
    truncated = gzipped and draw(st.booleans())
    if truncated:
        data = data[: draw(st.integers(1, len(data) - 1))]
    longest = max(map(len, re.split(rb"\r\n|\r|\n", plain)))
    return Case(
        layout=name,
        data=data,
        gzipped=gzipped,
        truncated=truncated,
        max_bad_rows=draw(st.sampled_from([0, 2, 1000])),
        cap=draw(st.sampled_from([None, 2, 3, 50])),
        seed=draw(st.integers(0, 2**16)),
        block_size=max(draw(st.sampled_from([256, 1024, 1 << 22])), 4 * longest + 64),
        profile=draw(profiles(users)) if name == "kdd" else None,
    )


# ------------------------------------------------------------------------------------------------
# Running prepare against the oracle


def stored_rows(out: Path, split: str) -> list[tuple]:
    label_, dense_, sparse_ = (np.load(out / split / f"{part}.npy") for part in ("label", "dense", "sparse"))
    return [
        (int(y), tuple(float(v) for v in x), tuple(int(v) for v in ids))
        for y, x, ids in zip(label_, dense_, sparse_, strict=True)
    ]


def is_subsequence(part: list[tuple], whole: list[tuple]) -> bool:
    rest = iter(whole)
    return all(any(row == other for other in rest) for row in part)


def check(case: Case) -> str:
    """Run prepare on ``case`` and compare with the oracle; returns the outcome kind for coverage."""
    plain = gzip.decompress(case.data) if case.gzipped and not case.truncated else case.data
    expected = oracle(case, plain)
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / ("raw.txt.gz" if case.gzipped else "raw.txt")
        raw.write_bytes(case.data)
        profile = None
        if case.profile is not None:
            profile = Path(tmp) / "userid_profile.txt"
            profile.write_bytes(case.profile)
        layout = LAYOUTS[case.layout]
        fmt = get_format(layout.name, keep_id=len(layout.sparse) == len(AVAZU_TABLE_SIZES))
        settings = PrepareSettings(
            seed=case.seed, max_bad_rows=case.max_bad_rows, max_table_size=case.cap, block_size=case.block_size
        )
        out = Path(tmp) / "out"
        if expected.error is not None:
            with pytest.raises(DataError) as info:
                prepare(fmt, raw, out, settings, profile_path=profile)
            message = str(info.value)
            named = str(profile if expected.file == "profile" else raw)
            assert message.startswith(f"{named}: "), message
            assert re.search(r"\bline \d+", message), message
            assert re.search(expected.error, message), (expected.error, message)
            assert not (out / "meta.json").exists()
            return "error"
        meta = prepare(fmt, raw, out, settings, profile_path=profile)
        splits = {split: stored_rows(out, split) for split in ("train", "val", "test")}
    assert meta["bad_rows"] == len(expected.bad_lines)
    assert meta["bad_lines"] == expected.bad_lines[:100]
    assert Counter(row for rows in splits.values() for row in rows) == Counter(expected.rows)
    for rows in splits.values():
        assert is_subsequence(rows, expected.rows)
    return "skipped" if expected.bad_lines else "clean"


LAYOUTS = {
    "criteo": CRITEO,
    "avazu": avazu_layout(keep_id=False),
    "avazu_keep_id": avazu_layout(keep_id=True),
    "kdd": KDD,
}


@pytest.mark.parametrize("name", LAYOUTS)
def test_prepare_never_mis_parses(name):
    """EXAMPLES generated files per format; each outcome kind must have been exercised."""
    seen: Counter[str] = Counter()

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(case=cases(name))
    def run(case: Case) -> None:
        seen[check(case)] += 1

    run()
    assert min(seen["error"], seen["skipped"], seen["clean"]) >= 5, seen
