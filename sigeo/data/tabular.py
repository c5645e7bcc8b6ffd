"""The ``tabular`` format: the user's own CSV, TSV or Parquet files with declared columns.

Columns are named, not positional: a label (a 0/1 column, or a numeric column turned into 0/1 by
a threshold), dense columns and categorical columns. Each is checked against the file when it is
opened (a missing column fails at once, naming the columns that exist) and value by value while
reading (a value of the wrong type makes its row bad, counted with its file and row number).

Values become numbers the same way whatever the file type, so a CSV and a Parquet file with the
same rows give the same arrays:

- a number is read from an integer, float, boolean or decimal Parquet column as is, and from text
  matching ``[+-]?(digits[.digits] | .digits)[e[+-]digits]``; NaN and infinities are bad values;
- a categorical value is its text: a string as it is, an integer in decimal (``-12``), a boolean
  as ``true``/``false``. Its 64-bit code ``v`` is ``pandas.util.hash_array`` of the text with its
  fixed default key: SipHash-2-4 of the UTF-8 bytes under the key ``b"0123456789123456"``, then
  pandas' mixing step (``x ^= x >> 30; x *= 0xBF58476D1CE4E5B9; x ^= x >> 27;
  x *= 0x94D049BB133111EB; x ^= x >> 31``, modulo 2^64). It is the same in every process and on
  every machine (Python's ``hash()`` is salted per process), and the tests pin it. The stored id is
  ``v mod (N_f - 1) + 1`` as for the other formats; an empty or null value is missing (id 0).

The table size ``N_f`` of a categorical column is given (``table_sizes``) or the number of distinct
values seen plus one (row 0, missing), capped by ``max_table_size``. That needs the whole data
before any id is known, so preparing is two passes: the files are read once into temporary arrays
of codes (``prepare_tabular``), then the codes are reduced, dealt into the 8:1:1 split and written.

To turn new rows into a trained model's inputs (``sigeo predict``): ``TabularFormat.from_meta``
rebuilds the declaration from ``meta.json``, and ``TabularFile`` runs ``read_schema`` and
``TabularFormat.check_schema`` on the file, then ``TabularFormat.parse`` on each block of
``read_blocks`` with ``meta.json``'s ``table_sizes``; it gives the same ``Chunk`` as
``RawFormat.parse`` does for the other formats, and its bad rows as ``ParsedFile`` gives theirs.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import glob
import gzip
import hashlib
import itertools
import logging
import math
import os
import shutil
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ..errors import DataError
from ..io import META_FILE, write_json
from .formats import BadRow, Chunk, dense_transform, first_failures
from .parse import _buffers
from .prepare import (
    MAX_REPORTED_BAD_LINES,
    UNCLOSED_QUOTE,
    BadRows,
    PrepareSettings,
    StratifiedSplitter,
    _CsvBlocks,
    _open_stream,
)
from .store import PARTS, SPLITS, NpyAppender, array_path

log = logging.getLogger(__name__)

#: File name endings the format reads, and what they are.
TEXT_SUFFIXES = {".csv": ",", ".tsv": "\t"}
PARQUET_SUFFIXES = (".parquet", ".pq")
#: Rows per Parquet record batch (CSV is read in blocks of ``PrepareSettings.block_size`` bytes).
PARQUET_BATCH_ROWS = 1 << 16
#: A number written as text (RE2 syntax); leading and trailing spaces are not part of a number.
NUMBER_PATTERN = r"^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$"
#: The text forms of a timestamp an ``order_by`` column may hold besides plain numbers.
TIME_FORMATS = ("%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d")
#: The pseudo dense column of zeros a dataset without dense columns gets (as Avazu does).
DENSE_PAD = "dense_pad"


@dataclass(frozen=True)
class TabularFormat:
    """How the declared columns of a tabular dataset become ``dense``, ``sparse`` and ``label``.

    ``table_sizes(cap)`` gives the sizes' upper bounds (given sizes, else the cap) for resource
    estimates before the data is read; the sizes used are the ones ``prepare`` writes to ``meta.json``.
    """

    label: str
    at_least: float | None
    dense_columns: tuple[str, ...]
    sparse_features: tuple[str, ...]
    transform: str = "log"
    order_by: str | None = None
    given_sizes: tuple[tuple[str, int], ...] = ()

    name = "tabular"

    @property
    def dense_features(self) -> tuple[str, ...]:
        return self.dense_columns or (DENSE_PAD,)

    @property
    def columns(self) -> tuple[str, ...]:
        """Every column read, each once, in declaration order."""
        names = (self.label, *self.dense_columns, *self.sparse_features, *((self.order_by,) if self.order_by else ()))
        return tuple(dict.fromkeys(names))

    @classmethod
    def from_meta(cls, meta: dict, meta_path: Path) -> TabularFormat:
        """The declaration ``prepare_tabular`` recorded in ``meta`` (read from ``meta_path``), to read new
        rows as the data set's were read.

        ``order_by`` is left out: it only orders the rows before the split, so new rows need not hold it.
        A ``meta.json`` written before ``dense_columns`` was recorded gives them as ``dense_features``
        less the padding column (which makes a dense column named ``dense_pad`` padding: prepare again).
        """
        missing = [key for key in ("label", "dense_features", "sparse_features", "dense_transform") if key not in meta]
        if missing:
            raise DataError(f"{meta_path}: not a tabular data set's meta.json (no {missing[0]!r})")
        dense = meta.get("dense_columns")
        if dense is None:
            dense = [] if meta["dense_features"] == [DENSE_PAD] else meta["dense_features"]
        return cls(
            label=meta["label"]["column"],
            at_least=meta["label"]["at_least"],
            dense_columns=tuple(dense),
            sparse_features=tuple(meta["sparse_features"]),
            transform=meta["dense_transform"],
        )

    def table_sizes(self, cap: int | None) -> list[int]:
        given = dict(self.given_sizes)
        return [given.get(name, cap) for name in self.sparse_features]

    def check_schema(self, path: Path, schema: pa.Schema) -> None:
        """Fail at start on a missing column or one whose type cannot hold what it is declared as."""
        missing = [name for name in self.columns if name not in schema.names]
        if missing:
            raise DataError(
                f"{path}: declared column {missing[0]!r} not found; the file's columns: {', '.join(schema.names)}"
            )
        for name in self.columns:
            kind = schema.field(name).type
            if isinstance(kind, pa.DictionaryType):
                kind = kind.value_type
            text = _is_text(kind)
            if name in self.sparse_features:
                ok = text or pa.types.is_integer(kind) or pa.types.is_boolean(kind)
                want = "text, integers or booleans"
            elif name == self.order_by and name not in self.dense_columns:
                ok = text or _is_number(kind) or pa.types.is_timestamp(kind) or pa.types.is_date(kind)
                want = "numbers, timestamps or dates"
            else:
                ok = text or _is_number(kind)
                want = "numbers"
            if not ok:
                raise DataError(f"{path}: column {name!r} is {kind}; declared as one that holds {want}")

    def codes(self, table: pa.Table) -> Codes:
        """Hash and convert one chunk of the declared columns (as read from any file type)."""
        n = table.num_rows
        label = _numbers(table.column(self.label))
        failures = [(label.bad, self.label, "not a number"), (label.missing, self.label, "missing label")]
        if self.at_least is None:
            failures.append(((label.values != 0) & (label.values != 1), self.label, "label is not 0 or 1"))
            label_values = label.values == 1
        else:
            label_values = label.values >= self.at_least
        dense = []
        for name in self.dense_columns:
            parsed = _numbers(table.column(name))
            x = np.where(parsed.missing | parsed.bad, 0.0, parsed.values)
            values = dense_transform(x) if self.transform == "log" else x.astype(np.float32)
            failures.append((parsed.bad, name, "not a finite number"))
            failures.append((~np.isfinite(values), name, "beyond the float32 range"))
            dense.append(values)
        key = None
        if self.order_by:
            parsed = _order_keys(table.column(self.order_by))
            failures.append((parsed.bad, self.order_by, "neither a number nor a timestamp"))
            failures.append((parsed.missing, self.order_by, "missing order_by value"))
            key = parsed.values
        hashed = [hash_text(table.column(name)) for name in self.sparse_features]
        valid, reason_index, kinds = first_failures(n, failures)
        return Codes(
            dense=np.stack(dense, axis=1) if dense else np.zeros((n, 1), np.float32),
            codes=np.stack([h[0] for h in hashed], axis=1) if n else np.zeros((0, len(hashed)), np.uint64),
            present=np.stack([h[1] for h in hashed], axis=1) if n else np.zeros((0, len(hashed)), bool),
            dictionaries=[(h[2], h[3]) for h in hashed],
            label=label_values.astype(np.uint8),
            key=key,
            valid=valid,
            reason_index=reason_index,
            reason_kinds=kinds,
        )

    def parse(self, table: pa.Table, table_sizes: Sequence[int], profile: object = None) -> Chunk:
        """Rows of one chunk as the other formats give them (the interface ``RawFormat.parse`` has);
        ``profile`` is unused (only KDD has one)."""
        c = self.codes(table)
        return Chunk(c.dense, ids(c.codes, c.present, table_sizes), c.label, c.valid, c.reason_index, c.reason_kinds)


@dataclass
class Codes:
    """One chunk before the table sizes are known: 64-bit codes and whether each value is present."""

    dense: np.ndarray
    codes: np.ndarray
    present: np.ndarray
    label: np.ndarray
    key: np.ndarray | None
    valid: np.ndarray
    reason_index: np.ndarray
    reason_kinds: list[BadRow]
    dictionaries: list[tuple[np.ndarray, np.ndarray]]

    def reason(self, row: int) -> BadRow:
        return self.reason_kinds[self.reason_index[row]]

    def distinct(self, column: int, rows: np.ndarray) -> np.ndarray:
        """The codes of the distinct values column ``column`` holds in the ``rows`` (a mask) where it is present."""
        codes, index = self.dictionaries[column]
        used = np.bincount(index[rows & self.present[:, column]], minlength=len(codes)) > 0
        return codes[used]


def ids(codes: np.ndarray, present: np.ndarray, table_sizes: Sequence[int]) -> np.ndarray:
    """``v mod (N_f - 1) + 1`` per column, 0 where the value is missing, as int32."""
    moduli = np.asarray(table_sizes, dtype=np.uint64) - np.uint64(1)
    return np.where(present, codes % moduli + np.uint64(1), 0).astype(np.int32)


@dataclass(frozen=True)
class _Parsed:
    values: np.ndarray
    missing: np.ndarray
    bad: np.ndarray


def _is_text(kind: pa.DataType) -> bool:
    kinds = (pa.types.is_string, pa.types.is_large_string, pa.types.is_binary, pa.types.is_large_binary)
    return any(is_kind(kind) for is_kind in kinds)


def _is_number(kind: pa.DataType) -> bool:
    kinds = (pa.types.is_integer, pa.types.is_floating, pa.types.is_boolean, pa.types.is_decimal)
    return any(is_kind(kind) for is_kind in kinds)


def _plain(col: pa.ChunkedArray | pa.Array) -> pa.Array:
    """One array, dictionary-decoded, text with 32-bit offsets (a chunk is far below 2 GiB)."""
    arr = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    arr = arr.dictionary_decode() if isinstance(arr.type, pa.DictionaryType) else arr
    if pa.types.is_large_string(arr.type) or pa.types.is_large_binary(arr.type):
        arr = arr.cast(pa.string() if pa.types.is_large_string(arr.type) else pa.binary())
    return arr


def _empty(arr: pa.Array) -> np.ndarray:
    """Null values, and empty text (an empty CSV field), are missing."""
    empty = pc.is_null(arr)
    if _is_text(arr.type):
        empty = pc.or_(empty, pc.fill_null(pc.equal(pc.binary_length(arr), 0), False))
    return empty.to_numpy(zero_copy_only=False)


def _numbers(col: pa.ChunkedArray | pa.Array) -> _Parsed:
    """Float64 values; text is parsed value by value, so one bad value spoils only its own row.

    Text made only of the characters a number may hold is first cast by Arrow in one go; Arrow
    rejects every such text that ``NUMBER_PATTERN`` rejects (``tests/test_tabular.py`` checks it),
    and when it rejects any, the block is parsed by the pattern, which finds the bad values.
    """
    arr = _plain(col)
    missing = _empty(arr)
    shape_bad = np.zeros(len(arr), bool)
    if _is_text(arr.type):
        as_text = pc.if_else(pa.array(missing), pa.scalar(None, arr.type), arr)
        _, data = _buffers(as_text)
        try:
            if not _NUMBER_BYTE[data].all():
                raise pa.ArrowInvalid("a character no number holds")
            arr = as_text.cast(pa.string()).cast(pa.float64())
        except pa.ArrowInvalid:
            return _numbers_by_pattern(arr, missing)
    values = arr.cast(pa.float64()).fill_null(0.0).to_numpy(zero_copy_only=False)
    return _Parsed(values, missing, shape_bad | ~np.isfinite(values))


def _numbers_by_pattern(arr: pa.Array, missing: np.ndarray) -> _Parsed:
    """Text values matching ``NUMBER_PATTERN`` as float64; the others are bad (the empty ones missing)."""
    ok = pc.fill_null(pc.match_substring_regex(arr, NUMBER_PATTERN), False)
    values = pc.if_else(ok, arr, pa.scalar(None, arr.type)).cast(pa.string()).cast(pa.float64())
    values = values.fill_null(0.0).to_numpy(zero_copy_only=False)
    return _Parsed(values, missing, (~missing & ~ok.to_numpy(zero_copy_only=False)) | ~np.isfinite(values))


#: Bytes a number written as text may hold.
_NUMBER_BYTE = np.zeros(256, bool)
_NUMBER_BYTE[list(b"0123456789+-.eE")] = True


def _order_keys(col: pa.ChunkedArray | pa.Array) -> _Parsed:
    """Sort keys as float64: numbers as they are, timestamps and dates in seconds since 1970."""
    arr = _plain(col)
    if pa.types.is_timestamp(arr.type) or pa.types.is_date(arr.type):
        seconds = arr.cast(pa.timestamp("us")).cast(pa.int64()).cast(pa.float64())
        values = pc.divide(seconds, 1e6).fill_null(0.0).to_numpy(zero_copy_only=False)
        missing = _empty(arr)
        return _Parsed(values, missing, np.zeros(len(arr), bool))
    parsed = _numbers(arr)
    if not _is_text(arr.type) or not parsed.bad.any():
        return parsed
    values, bad = parsed.values.copy(), parsed.bad.copy()
    text = arr.cast(pa.string())
    for fmt in TIME_FORMATS:
        times = pc.strptime(text, format=fmt, unit="s", error_is_null=True)
        hit = bad & ~pc.is_null(times).to_numpy(zero_copy_only=False)
        values[hit] = times.cast(pa.int64()).fill_null(0).to_numpy(zero_copy_only=False)[hit]
        bad &= ~hit
    return _Parsed(values, parsed.missing, bad)


def hash_text(col: pa.ChunkedArray | pa.Array) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The hash of each value's text (see the module doc): (code ``v`` as uint64, present) per value,
    and the codes of the chunk's distinct texts with each value's index among them.

    Each distinct value of the chunk is hashed once (Arrow's dictionary encoding finds them).
    """
    arr = _plain(col)
    if not _is_text(arr.type):
        arr = arr.cast(pa.string())  # integers in decimal, booleans as true/false
    encoded = pc.dictionary_encode(arr)
    uniques = encoded.dictionary.to_numpy(zero_copy_only=False)
    distinct = pd.util.hash_array(uniques, categorize=False) if len(uniques) else np.zeros(1, np.uint64)
    index = encoded.indices.fill_null(0).to_numpy(zero_copy_only=False)
    return distinct[index], ~_empty(arr), distinct, index


# ------------------------------------------------------------------------------------------------
# Files


def source_files(source: str) -> list[Path]:
    """The files of ``source`` (a file, a glob, or a folder of readable files), in sorted order."""
    path = Path(source)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith(".") and _readable(p))
    elif any(ch in source for ch in "*?["):
        files = sorted(Path(p) for p in _glob(source))
    elif path.exists():
        files = [path]
    else:
        raise DataError(f"{source}: file not found")
    if not files:
        raise DataError(f"{source}: no .csv, .tsv or .parquet file (plain or .csv.gz/.tsv.gz) matches")
    for file in files:
        if not _readable(file):
            raise DataError(f"{file}: not a .csv, .tsv or .parquet file (plain or .csv.gz/.tsv.gz)")
    return files


def _glob(pattern: str) -> list[str]:
    return [p for p in glob.glob(pattern) if Path(p).is_file()]


def _kind(path: Path) -> str | None:
    """``parquet``, a delimiter, or None for a file the format does not read."""
    name = path.name.lower().removesuffix(".gz")
    if name.endswith(PARQUET_SUFFIXES) and not path.name.lower().endswith(".gz"):
        return "parquet"
    return next((d for suffix, d in TEXT_SUFFIXES.items() if name.endswith(suffix)), None)


def _readable(path: Path) -> bool:
    return _kind(path) is not None


@dataclass
class Block:
    """Rows of one chunk of a file, their 1-based row numbers, and rows that could not be read."""

    table: pa.Table
    rows: np.ndarray
    skipped: list[tuple[int, str]]


def read_schema(path: Path) -> pa.Schema:
    """The column names (and Parquet types; text files' columns are all text) of one file."""
    if not path.exists():
        raise DataError(f"{path}: file not found")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: file is empty")
    kind = _kind(path)
    if kind == "parquet":
        try:
            return pq.ParquetFile(path).schema_arrow
        except (pa.ArrowInvalid, OSError) as exc:
            raise DataError(f"{path}: not a readable Parquet file: {exc}") from exc
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as fh:
            first = fh.readline()
    except OSError as exc:
        raise DataError(f"{path}: unreadable: {exc}") from exc
    try:
        line = first.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: line 1: the header is not UTF-8 text") from exc
    names = next(csv.reader([line], delimiter=kind), [])
    if not names:
        raise DataError(f"{path}: line 1: no header (the first line must name the columns)")
    return pa.schema([(name, pa.binary()) for name in names])


@contextlib.contextmanager
def read_blocks(path: Path, fmt: TabularFormat, block_size: int) -> Iterator[Iterator[Block]]:
    """Stream the declared columns of ``path`` in file order; row 1 is the first data row.

    Text files: values may be quoted with ``"`` but may not hold a line break (rows are numbered
    by lines; a quote left open is a DataError naming its line). Rows with a wrong number of fields
    or bytes that are not UTF-8 come back in ``skipped``. Read errors become a DataError naming the
    file (and, for text, the first line that could not be read).
    """
    kind = _kind(path)
    if kind == "parquet":
        yield _parquet_blocks(path, fmt)
        return
    stream, raw = _open_stream(path, ascii_only=False)
    try:
        with _CsvBlocks(
            path, pa.PythonFile(_Utf8Repaired(stream), mode="r"), fmt.columns, kind, True, block_size,
            quoted=True, only_columns=True,
        ) as blocks:  # fmt: skip
            yield (_text_block(path, b.table, b.lines, b.skipped) for b in blocks)
    finally:
        raw.close()


def _text_block(path: Path, table: pa.Table, lines: np.ndarray, skipped: list[tuple[int, str]]) -> Block:
    """Rows of a text file's block numbered from the first data row (line 2), rows not UTF-8 moved to skipped."""
    for line, why in skipped:
        if why == UNCLOSED_QUOTE:
            raise DataError(f"{path}: line {line}: {why}")
    not_utf8 = np.zeros(table.num_rows, bool)
    for column in table.columns:
        text = _plain(column)
        _, data = _buffers(text)
        if data.size and _LINE_BREAK[data].any():  # a byte-level scan first: most blocks hold none
            breaks = pc.fill_null(pc.match_substring_regex(text, "[\r\n]"), False).to_numpy(zero_copy_only=False)
            raise DataError(f"{path}: line {int(lines[np.argmax(breaks)])}: a quoted value holds a line break")
        if data.size and (data >= 0x80).any():
            not_utf8 |= pc.fill_null(pc.match_substring(text, REPLACEMENT), False).to_numpy(zero_copy_only=False)
    if not_utf8.any():
        skipped = sorted(skipped + [(int(line), "not UTF-8 text") for line in lines[not_utf8]])
        table, lines = table.filter(pa.array(~not_utf8)), lines[~not_utf8]
    return Block(table, lines - 1, [(line - 1, why) for line, why in skipped])


#: What an invalid UTF-8 byte sequence of a text file is read as.
REPLACEMENT = "\ufffd"
_LINE_BREAK = np.zeros(256, bool)
_LINE_BREAK[list(b"\r\n")] = True


class _Utf8Repaired:
    """Readable that replaces each invalid UTF-8 sequence by U+FFFD (no line break or delimiter added).

    Arrow decodes the text of a row with a wrong number of fields as strict UTF-8 before calling
    the invalid-row handler, and fails the whole read when it cannot; repaired, such a row is counted
    like any other, and a row holding a repaired value is a bad row (``_text_block``), never hashed.
    """

    def __init__(self, source: pa.NativeFile) -> None:
        self._source = source
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self._buffer = b""
        self._eof = False
        self.closed = False

    def read(self, n: int = -1) -> bytes:
        while not self._eof and (n < 0 or len(self._buffer) < n):
            data = self._source.read(max(n, 1 << 20))
            self._eof = not data
            self._buffer += self._decoder.decode(data, final=self._eof).encode()
        take = len(self._buffer) if n < 0 else n
        out, self._buffer = self._buffer[:take], self._buffer[take:]
        return out

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        self.closed = True


def _parquet_blocks(path: Path, fmt: TabularFormat) -> Iterator[Block]:
    """Record batches row group by row group: one ``iter_batches`` over the whole file keeps memory that
    grows with the file, one per row group does not."""
    start = 1
    try:
        reader = pq.ParquetFile(path, pre_buffer=False)
        groups = (
            reader.iter_batches(
                batch_size=PARQUET_BATCH_ROWS, row_groups=[i], columns=list(fmt.columns), use_threads=False
            )
            for i in range(reader.num_row_groups)
        )
        for batch in itertools.chain.from_iterable(groups):
            n = batch.num_rows
            yield Block(pa.Table.from_batches([batch]), np.arange(start, start + n, dtype=np.int64), [])
            start += n
    except (pa.ArrowInvalid, OSError) as exc:
        raise DataError(f"{path}: unreadable from row {start}: {exc}") from exc


class TabularFile:
    """The rows of one new file for a prepared data set, as ``ParsedFile`` gives a raw file's rows.

    Iterating yields each block's ``(lines, chunk)``: the number of every parsed row and the rows with
    ``meta.json``'s table sizes (use only those with ``chunk.valid``); every bad row goes to ``bad`` in
    order, and ``last_line`` is the last number read. A text file's rows are numbered by their line in
    the file, the header being line 1 (the first data row is line 2), so a number can be looked up in an
    editor; a Parquet file has no lines, so its rows are numbered from 1. The file may be of any type
    the format reads, whatever type the data set was prepared from: values are read alike from all.
    The columns are checked when it is made, so a missing one fails before any row is read.
    """

    def __init__(self, fmt: TabularFormat, path: Path, table_sizes: list[int], bad: BadRows, block_size: int) -> None:
        schema = read_schema(path)
        if fmt.label not in schema.names:
            raise DataError(
                f"{path}: label column {fmt.label!r} not found (predict needs it: write 0 where it is unknown); "
                f"the file's columns: {', '.join(schema.names)}"
            )
        fmt.check_schema(path, schema)
        self.fmt, self.path, self.table_sizes, self.bad, self.block_size = fmt, path, table_sizes, bad, block_size
        self.shift = 0 if _kind(path) == "parquet" else 1  # read_blocks numbers data rows from 1: add the header
        self.last_line = self.shift

    def __iter__(self) -> Iterator[tuple[np.ndarray, Chunk]]:
        shift = self.shift
        with read_blocks(self.path, self.fmt, self.block_size) as blocks:
            for block in blocks:
                chunk = self.fmt.parse(block.table, self.table_sizes)
                lines = block.rows + shift
                rejected = [(int(lines[i]), f"column {chunk.reason(i).field}: {chunk.reason(i).reason}")
                            for i in np.flatnonzero(~chunk.valid)]  # fmt: skip
                skipped = [(row + shift, why) for row, why in block.skipped]
                for line, why in sorted(skipped + rejected):
                    self.bad.add(line, why)
                self.last_line = max([self.last_line, *lines[-1:].tolist(), *(line for line, _ in skipped)])
                yield lines, chunk


# ------------------------------------------------------------------------------------------------
# Preparing


class _Distinct:
    """How many distinct codes a column holds, counted up to ``limit`` (beyond it only "more" matters).

    Codes are kept as one sorted unique array, merged with each chunk's uniques once the pending
    ones outnumber it, so the work stays proportional to the data and the memory to ``limit``.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.seen = np.empty(0, np.uint64)
        self.pending: list[np.ndarray] = []
        self.pending_size = 0

    def add(self, codes: np.ndarray) -> None:
        """Add a chunk's distinct codes."""
        if len(self.seen) >= self.limit:
            return
        self.pending.append(codes)
        self.pending_size += len(self.pending[-1])
        if self.pending_size > max(len(self.seen), PARQUET_BATCH_ROWS):
            self._merge()

    def _merge(self) -> None:
        self.seen = np.unique(np.concatenate([self.seen, *self.pending]))
        self.pending, self.pending_size = [], 0
        if len(self.seen) >= self.limit:
            self.seen = self.seen[: self.limit]

    def count(self) -> int:
        self._merge()
        return len(self.seen)


class _BadRows:
    """Bad rows of all files: the count, the first (file index, row) pairs and a few examples."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.count = 0
        self.at: list[list[int]] = []
        self.examples: list[str] = []

    def add(self, files: Sequence[Path], file: int, row: int, why: str) -> None:
        self.count += 1
        if len(self.at) < MAX_REPORTED_BAD_LINES:
            self.at.append([file, row])
        if len(self.examples) < 5:
            self.examples.append(f"{files[file]} row {row}: {why}")
        if self.count > self.limit:
            raise DataError(f"more than max_bad_rows={self.limit} bad rows; first: " + "; ".join(self.examples))


def prepare_tabular(
    fmt: TabularFormat,
    files: Sequence[str | os.PathLike],
    out_dir: str | os.PathLike,
    settings: PrepareSettings,
) -> dict:
    """Read, hash, split and store ``files`` (in this order); returns (and writes) ``meta.json``.

    Every file's columns are checked before any is read. Pass one streams the files into temporary
    arrays of codes (flat memory: one chunk at a time, plus the distinct codes counted, at most
    ``max_table_size`` per column); with ``order_by`` it also keeps each row's sort key and the sort
    order (16 bytes a row). Pass two reads those arrays in chunks, in file or key order, turns codes
    into ids with the table sizes now known, deals the rows into the stratified 8:1:1 split and
    writes the store. As for the other formats, ``meta.json`` is written last.
    """
    files = [Path(f) for f in files]
    if not files:
        raise DataError("no input files")
    for path in files:
        fmt.check_schema(path, read_schema(path))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = out_dir / f".tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        meta = _prepare(fmt, files, tmp, settings)
        for split in SPLITS:
            (out_dir / split).mkdir(exist_ok=True)
            for part in PARTS:
                os.replace(array_path(tmp, split, part), array_path(out_dir, split, part))
        write_json(out_dir / META_FILE, meta)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return meta


def _prepare(fmt: TabularFormat, files: list[Path], tmp: Path, settings: PrepareSettings) -> dict:
    scan = tmp / "scan"
    scan.mkdir(parents=True)
    given = dict(fmt.given_sizes)
    cap = settings.max_table_size or math.inf
    counters = {
        name: _Distinct(int(min(cap, 2**62)) - 1) for name in fmt.sparse_features if name not in given
    }  # N_f = distinct + 1 reaches the cap at cap - 1 distinct values
    parts = {
        "dense": NpyAppender(scan / "dense.npy", np.float32, (len(fmt.dense_features),)),
        "codes": NpyAppender(scan / "codes.npy", np.uint64, (len(fmt.sparse_features),)),
        "present": NpyAppender(scan / "present.npy", np.bool_, (len(fmt.sparse_features),)),
        "label": NpyAppender(scan / "label.npy", np.uint8, ()),
    }
    if fmt.order_by:
        parts["key"] = NpyAppender(scan / "key.npy", np.float64, ())
    bad = _BadRows(settings.max_bad_rows)
    described = []
    digests = []
    try:
        for f, path in enumerate(files):
            rows_read, bad_before = 0, bad.count
            with read_blocks(path, fmt, settings.block_size) as blocks:
                for block in blocks:
                    c = fmt.codes(block.table)
                    rejected = [(int(block.rows[i]), f"column {c.reason(i).field}: {c.reason(i).reason}")
                                for i in np.flatnonzero(~c.valid)]  # fmt: skip
                    for row, why in sorted(block.skipped + rejected):
                        bad.add(files, f, row, why)
                    rows_read += block.table.num_rows + len(block.skipped)
                    keep = c.valid
                    parts["dense"].append(c.dense[keep])
                    parts["codes"].append(c.codes[keep])
                    parts["present"].append(c.present[keep])
                    parts["label"].append(c.label[keep])
                    if c.key is not None:
                        parts["key"].append(c.key[keep])
                    for j, name in enumerate(fmt.sparse_features):
                        if name in counters:
                            counters[name].add(c.distinct(j, keep))
            digests.append(_sha256(path))
            described.append({"path": str(path), "sha256": digests[-1], "rows": rows_read,
                              "bad_rows": bad.count - bad_before})  # fmt: skip
    finally:
        for part in parts.values():
            part.close()
    total = parts["label"].rows
    if total == 0:
        first = "; first: " + "; ".join(bad.examples) if bad.examples else ""
        raise DataError(f"{files[0]}{' ...' if len(files) > 1 else ''}: no usable rows ({bad.count} bad{first})")
    table_sizes = [given.get(name) or min(max(counters[name].count() + 1, 2), cap) for name in fmt.sparse_features]
    table_sizes = [int(n) for n in table_sizes]
    rows, positives = _deal(fmt, scan, tmp, settings, table_sizes, total)
    meta = {
        "format": fmt.name,
        "source": [d["path"] for d in described] if len(files) > 1 else described[0]["path"],
        "source_sha256": digests[0] if len(digests) == 1 else hashlib.sha256("".join(digests).encode()).hexdigest(),
        "files": described,
        "seed": settings.seed,
        "rows": rows,
        "bad_rows": bad.count,
        "bad_rows_at": bad.at,
        "bad_examples": bad.examples,
        "max_bad_rows": settings.max_bad_rows,
        "table_sizes": table_sizes,
        "dense_features": list(fmt.dense_features),
        "dense_columns": list(fmt.dense_columns),  # dense_features alone cannot tell a column named dense_pad
        "sparse_features": list(fmt.sparse_features),
        "label": {"column": fmt.label, "at_least": fmt.at_least},
        "dense_transform": fmt.transform,
        "order_by": fmt.order_by,
        "positive_rate": {s: positives[s] / rows[s] if rows[s] else math.nan for s in SPLITS},
    }
    log.info("prepared %d file(s) from %s: %s rows, %d bad", len(files), files[0], rows, bad.count)
    return meta


def _deal(
    fmt: TabularFormat, scan: Path, tmp: Path, settings: PrepareSettings, table_sizes: list[int], total: int
) -> tuple[dict[str, int], dict[str, int]]:
    """Pass two: the scanned rows, in file order or sorted by key (ties in file order), into the splits."""
    names = ("dense", "codes", "present", "label")
    order = np.argsort(np.load(scan / "key.npy"), kind="stable") if fmt.order_by else None
    # Without order_by the rows are read in sequence with plain reads: a memory map would count every page
    # read towards the process's memory. With it, rows are gathered through a memory map.
    arrays = {name: (_NpyRows if order is None else _mapped)(scan / f"{name}.npy") for name in names}
    writers = {}
    for split in SPLITS:
        (tmp / split).mkdir()
        writers[split] = (
            NpyAppender(array_path(tmp, split, "dense"), np.float32, (len(fmt.dense_features),)),
            NpyAppender(array_path(tmp, split, "sparse"), np.int32, (len(fmt.sparse_features),)),
            NpyAppender(array_path(tmp, split, "label"), np.uint8, ()),
        )
    splitter = StratifiedSplitter(settings.seed)
    positives = dict.fromkeys(SPLITS, 0)
    step = PARQUET_BATCH_ROWS
    try:
        for start in range(0, total, step):
            take = slice(start, min(start + step, total)) if order is None else np.sort(order[start : start + step])
            rank = None if order is None else np.argsort(np.argsort(order[start : start + step], kind="stable"))
            chunk = {name: np.asarray(a[take]) for name, a in arrays.items()}
            if rank is not None:  # read in file order (sequential on disk), then put back into key order
                chunk = {name: a[rank] for name, a in chunk.items()}
            sparse = ids(chunk["codes"], chunk["present"], table_sizes)
            split_of = splitter.assign(chunk["label"])
            for s, split in enumerate(SPLITS):
                rows = split_of == s
                dense, sparse_out, label = writers[split]
                dense.append(chunk["dense"][rows])
                sparse_out.append(sparse[rows])
                label.append(chunk["label"][rows])
                positives[split] += int(chunk["label"][rows].sum())
    finally:
        for parts in writers.values():
            for part in parts:
                part.close()
    return {split: writers[split][2].rows for split in SPLITS}, positives


class _NpyRows:
    """Row ranges of a ``.npy`` file read with ``os.pread`` (``rows[a:b]``), leaving no pages mapped."""

    def __init__(self, path: Path) -> None:
        with open(path, "rb") as fh:
            np.lib.format.read_magic(fh)  # NpyAppender writes format 1.0
            shape, _, self.dtype = np.lib.format.read_array_header_1_0(fh)
            self.offset = fh.tell()
        self.path = path
        self.row_shape = shape[1:]
        self.row_bytes = self.dtype.itemsize * math.prod(self.row_shape)

    def __getitem__(self, rows: slice) -> np.ndarray:
        fd = os.open(self.path, os.O_RDONLY)
        try:
            data = os.pread(fd, (rows.stop - rows.start) * self.row_bytes, self.offset + rows.start * self.row_bytes)
        finally:
            os.close(fd)
        return np.frombuffer(data, dtype=self.dtype).reshape(-1, *self.row_shape)


def _mapped(path: Path) -> np.ndarray:
    return np.load(path, mmap_mode="r")


def _sha256(path: Path) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()
