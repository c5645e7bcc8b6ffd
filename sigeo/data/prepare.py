"""Streaming preprocessing: raw file -> parsed chunks -> stratified 8:1:1 split -> ``.npy`` store.

One pass over the raw file in fixed-size blocks (Arrow's streaming CSV reader), so memory does
not grow with the file. The split is decided online: each class's rows are cut into consecutive
groups of ten, and each group is dealt 8 train / 1 val / 1 test slots in a seeded random order.
That gives the reference's stratified 8:1:1 (exact when a class count is a multiple of ten, off by
at most one group remainder otherwise) without its first pass, its header off-by-one, or its
rounding-made ninth shard (docs/reference.md §1.1). Rows keep their raw order inside each split.

Lines end at ``\n``, ``\r\n`` or a lone ``\r`` (Arrow's rule, and Python's universal newlines as the
reference's tools read the files); bad rows are reported by their 1-based line number.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import math
import os
import queue
import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from ..errors import DataError
from ..io import META_FILE, write_json
from .formats import Chunk, RawFormat, UserProfiles
from .parse import AVAZU_KDD_MODULUS, decimal_or_hex_residues, signed_integers
from .store import PARTS, SPLITS, NpyAppender, array_path

log = logging.getLogger(__name__)

SPLIT_RATIOS = (8, 1, 1)
#: Why a quoted file's row was skipped when its text runs past its line: a quote left open swallows
#: the lines after it, so the rows that follow can no longer be numbered.
UNCLOSED_QUOTE = "a quoted value runs past the end of its line (a quote not closed?)"
MAX_REPORTED_BAD_LINES = 100


@dataclass(frozen=True)
class PrepareSettings:
    """A data set's ``max_bad_rows`` and ``max_table_size`` and the run's seed (built by
    :func:`sigeo.config.load_settings`); ``block_size``: bytes of raw file parsed at a time."""

    seed: int
    max_bad_rows: int
    max_table_size: int | None
    block_size: int = 1 << 22


class _HashingReader:
    """File wrapper that feeds every byte read into a SHA-256, so checksumming costs no extra pass."""

    def __init__(self, path: Path) -> None:
        self._fh = open(path, "rb")  # noqa: SIM115 - closed in close()
        self.sha256 = hashlib.sha256()
        self.closed = False

    def read(self, n: int = -1) -> bytes:
        data = self._fh.read(n)
        self.sha256.update(data)
        return data

    def readable(self) -> bool:
        return True

    def drain(self) -> str:
        while self.read(1 << 22):
            pass
        return self.sha256.hexdigest()

    def close(self) -> None:
        self._fh.close()
        self.closed = True


_UTF8_BOM = b"\xef\xbb\xbf"
_ASCII_ONLY = bytes(range(128)) + b"?" * 128


class _AsciiOnly:
    """Readable that replaces every byte >= 0x80 by '?' (a leading UTF-8 BOM, which Arrow skips, excepted).

    No field of any format may hold a non-ASCII byte, so this changes no row's fate, field count or
    line number. It is needed because pyarrow decodes an invalid row's text as strict UTF-8 before
    calling the invalid-row handler and fails the whole read when it cannot: one Latin-1 or UTF-16
    line with a wrong field count would stop the job instead of being counted as a bad row.
    """

    def __init__(self, source: pa.NativeFile) -> None:
        self._source = source
        self._start = True
        self.closed = False

    def read(self, n: int = -1) -> bytes:
        data = self._source.read(n)
        if self._start:
            self._start = False
            if data.startswith(_UTF8_BOM):
                return _UTF8_BOM + self._masked(data[len(_UTF8_BOM) :])
        return self._masked(data)

    @staticmethod
    def _masked(data: bytes) -> bytes:
        return data if data.isascii() else data.translate(_ASCII_ONLY)  # isascii: a fast scan, no copy

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        self.closed = True


class StratifiedSplitter:
    """Online stratified 8:1:1 assignment, independent of how the stream is chunked."""

    def __init__(self, seed: int) -> None:
        self.pattern = np.repeat(np.arange(len(SPLIT_RATIOS), dtype=np.int8), SPLIT_RATIOS)
        self.group = len(self.pattern)
        self.rngs = [np.random.default_rng([seed, label]) for label in (0, 1)]
        self.pending = [np.empty(0, np.int8), np.empty(0, np.int8)]

    def assign(self, labels: np.ndarray) -> np.ndarray:
        out = np.empty(len(labels), dtype=np.int8)
        for label in (0, 1):
            rows = np.flatnonzero(labels == label)
            slots = self.pending[label]
            missing = len(rows) - len(slots)
            if missing > 0:
                groups = -(-missing // self.group)
                keys = self.rngs[label].random((groups, self.group))
                slots = np.concatenate([slots, self.pattern[np.argsort(keys, axis=1)].ravel()])
            out[rows] = slots[: len(rows)]
            self.pending[label] = slots[len(rows) :]
        return out


@dataclass
class _SplitWriter:
    dense: NpyAppender
    sparse: NpyAppender
    label: NpyAppender
    positives: int = 0
    bayes_loss_sum: float = 0.0

    def close(self) -> None:
        for part in (self.dense, self.sparse, self.label):
            part.close()


@dataclass
class BadRows:
    """Bad rows of one raw file: counted, the first line numbers and reasons kept, fatal past ``limit``."""

    path: Path
    limit: int
    count: int = 0
    lines: list[int] = field(default_factory=list)
    examples: list[str] = field(default_factory=list)

    def add(self, line: int, why: str) -> None:
        self.count += 1
        if len(self.lines) < MAX_REPORTED_BAD_LINES:
            self.lines.append(line)
        if len(self.examples) < 5:
            self.examples.append(f"line {line}: {why}")
        if self.count > self.limit:
            raise DataError(
                f"{self.path}: more than max_bad_rows={self.limit} bad rows; first: " + "; ".join(self.examples)
            )

    def no_usable_rows(self, last_line: int) -> DataError:
        """The error for a file none of whose ``last_line`` lines could be used."""
        first = "; first: " + "; ".join(self.examples) if self.examples else ""
        return DataError(f"{self.path}: no usable rows up to line {last_line} ({self.count} bad{first})")


def _open_stream(path: Path, ascii_only: bool = True) -> tuple[pa.NativeFile, _HashingReader]:
    """The file's text (gunzipped for ``.gz``, non-ASCII bytes masked unless ``ascii_only`` is False: the
    tabular format's values may be any UTF-8 text) and the reader that hashes its bytes."""
    if not path.exists():
        raise DataError(f"{path}: file not found")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: file is empty")
    raw = _HashingReader(path)
    stream = pa.PythonFile(raw, mode="r")
    if path.suffix == ".gz":
        stream = pa.CompressedInputStream(stream, "gzip")
    return (pa.PythonFile(_AsciiOnly(stream), mode="r") if ascii_only else stream), raw


@dataclass
class _Block:
    """Rows Arrow parsed from one block (every column binary), their 1-based line numbers, and the
    (line, why) of the rows it skipped for a wrong number of fields."""

    table: pa.Table
    lines: np.ndarray
    skipped: list[tuple[int, str]]


class _CsvBlocks:
    """Stream a delimited file in blocks of binary columns, numbering its lines.

    A context manager: leaving it stops the reading thread (before the caller closes the file).
    Read errors become a DataError naming the first line that could not be read.
    """

    def __init__(
        self,
        path: Path,
        stream: pa.NativeFile,
        columns: tuple[str, ...],
        delimiter: str,
        header: bool,
        block_size: int,
        quoted: bool = False,
        only_columns: bool = False,
    ) -> None:
        """``quoted``: fields may be quoted with ``"``; ``only_columns``: read just ``columns`` of a file with a
        header (which may hold others)."""
        self.path = path
        self.next_line = 1
        skipped: list[tuple[int, str]] = []

        def on_invalid(row: pacsv.InvalidRow) -> str:
            if quoted and ("\n" in row.text or "\r" in row.text):
                skipped.append((row.number, UNCLOSED_QUOTE))
            else:
                skipped.append((row.number, f"{row.actual_columns} fields, expected {row.expected_columns}"))
            return "skip"

        with self._reading():
            self.reader = pacsv.open_csv(
                stream,
                read_options=pacsv.ReadOptions(
                    use_threads=False, block_size=block_size, column_names=None if header else list(columns)
                ),
                parse_options=pacsv.ParseOptions(
                    delimiter=delimiter,
                    quote_char='"' if quoted else False,
                    ignore_empty_lines=False,
                    invalid_row_handler=on_invalid,
                ),
                convert_options=pacsv.ConvertOptions(
                    column_types=dict.fromkeys(columns, pa.binary()),
                    include_columns=list(columns) if only_columns else None,
                    strings_can_be_null=False,
                    quoted_strings_can_be_null=False,
                ),
            )
        self.next_line += header  # opening read the header line
        self._batches = _batches(self.reader, skipped)

    def __enter__(self) -> _CsvBlocks:
        return self

    def __exit__(self, *exc: object) -> None:
        self._batches.close()

    @contextlib.contextmanager
    def _reading(self) -> Iterator[None]:
        try:
            yield
        except (pa.ArrowInvalid, OSError, EOFError) as exc:
            raise DataError(f"{self.path}: unreadable from line {self.next_line}: {exc}") from exc

    def __iter__(self) -> Iterator[_Block]:
        """Blocks in file order. Arrow parses ahead, so it may report a skipped row before the batch
        that precedes it: skipped rows wait in ``pending`` until a batch reaches past them."""
        pending: list[tuple[int, str]] = []
        while True:
            with self._reading():
                batch, skipped = next(self._batches)
            pending = sorted(pending + skipped)
            if batch is None:
                if pending:
                    self.next_line = pending[-1][0] + 1
                    yield _Block(self.reader.schema.empty_table(), np.empty(0, np.int64), pending)
                return
            n = batch.num_rows
            if n == 0:
                continue
            numbers = np.array([line for line, _ in pending], dtype=np.int64)
            candidates = np.arange(self.next_line, self.next_line + n + len(numbers), dtype=np.int64)
            lines = np.setdiff1d(candidates, numbers, assume_unique=True)[:n]
            done = sum(line < lines[-1] for line, _ in pending)
            self.next_line = int(lines[-1]) + 1
            yield _Block(pa.Table.from_batches([batch]), lines, pending[:done])
            pending = pending[done:]


def _batches(
    reader: pacsv.CSVStreamingReader, skipped: list[tuple[int, str]]
) -> Iterator[tuple[pa.RecordBatch | None, list[tuple[int, str]]]]:
    """Read batches on a background thread so parsing text and converting numbers overlap.

    ``skipped`` is filled by the reader's invalid-row handler on that thread; each batch is handed
    over with the rows skipped since the previous one (which may include rows of later batches:
    the reader parses ahead), and a final ``None`` batch carries the rest. Closing the generator
    (the consumer stops early, e.g. on too many bad rows) stops the thread before the file is closed.
    """
    out: queue.Queue = queue.Queue(maxsize=2)
    stop = threading.Event()

    def take() -> list[tuple[int, str]]:
        taken = list(skipped)
        skipped.clear()
        return taken

    def produce() -> None:
        try:
            for batch in reader:
                if stop.is_set():
                    return
                out.put((batch, take()))
            out.put((None, take()))
        except BaseException as exc:  # handed to the consumer, which re-raises it
            out.put(exc)

    thread = threading.Thread(target=produce, daemon=True)
    thread.start()
    try:
        while True:
            item = out.get()
            if isinstance(item, BaseException):
                raise item
            yield item
            if item[0] is None:
                return
    finally:
        stop.set()
        while thread.is_alive():  # unblock a pending put until the thread sees ``stop``
            with contextlib.suppress(queue.Empty):
                out.get_nowait()
            thread.join(0.01)


class ParsedFile:
    """The rows of one raw file, parsed and hashed block by block as ``prepare`` stores them.

    Iterating yields each block's ``(lines, chunk)``: the 1-based line number of every parsed row and
    the parsed rows (use only those with ``chunk.valid``). Every bad row, including those Arrow skips
    for a wrong number of fields, goes to ``bad`` in line order. After a complete iteration ``sha256``
    is the file's checksum and ``last_line`` the number of lines read.
    """

    def __init__(
        self,
        fmt: RawFormat,
        path: Path,
        table_sizes: list[int],
        profile: UserProfiles | None,
        bad: BadRows,
        block_size: int,
    ) -> None:
        self.fmt, self.path, self.table_sizes, self.profile = fmt, path, table_sizes, profile
        self.bad, self.block_size = bad, block_size
        self.sha256: str | None = None
        self.last_line = 0

    def __iter__(self) -> Iterator[tuple[np.ndarray, Chunk]]:
        fmt = self.fmt
        stream, raw = _open_stream(self.path)
        try:
            with _CsvBlocks(self.path, stream, fmt.columns, fmt.delimiter, fmt.header, self.block_size) as blocks:
                names = blocks.reader.schema.names
                if fmt.header and tuple(names) != fmt.columns:
                    raise DataError(f"{self.path}: line 1: header {names} does not match the {fmt.name} format")
                for block in blocks:
                    chunk = fmt.parse(block.table, self.table_sizes, self.profile)
                    rejected = [
                        (int(block.lines[i]), f"field {chunk.reason(i).field}: {chunk.reason(i).reason}")
                        for i in np.flatnonzero(~chunk.valid)
                    ]
                    for line, why in sorted(block.skipped + rejected):
                        self.bad.add(line, why)
                    yield block.lines, chunk
                self.last_line = blocks.next_line - 1
            self.sha256 = raw.drain()
        finally:
            raw.close()


def load_profiles(path: Path, block_size: int = 1 << 22) -> UserProfiles:
    """Read KDD ``userid_profile.txt`` (UserID, Gender, Age; tab separated, no header).

    It is a lookup table, so a bad line is fatal, naming the first one. UserIDs are non-negative
    decimals; Gender and Age are decimal or hex tokens, hashed like every other KDD token.
    """
    stream, raw = _open_stream(path)
    parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    try:
        with _CsvBlocks(path, stream, ("UserID", "Gender", "Age"), "\t", False, block_size) as blocks:
            for block in blocks:
                bad = [line for line, _ in block.skipped]
                if block.table.num_rows:
                    user = signed_integers(block.table.column("UserID"))
                    codes = [
                        decimal_or_hex_residues(block.table.column(c), AVAZU_KDD_MODULUS) for c in ("Gender", "Age")
                    ]
                    wrong = ~user.valid | user.empty | (user.values < 0)
                    for code in codes:
                        wrong |= ~code.valid | code.empty
                    bad += block.lines[wrong].tolist()
                    parts.append((user.values, *(code.values.astype(np.int64) for code in codes)))
                if bad:
                    raise DataError(
                        f"{path}: line {min(bad)}: not a user profile line (a non-negative integer UserID, then "
                        "Gender and Age as decimal or hex tokens, tab separated)"
                    )
    finally:
        raw.close()
    if not parts:
        raise DataError(f"{path}: no user profiles up to line {blocks.next_line - 1}")
    return UserProfiles(*(np.concatenate(column) for column in zip(*parts, strict=True)))


def prepare(
    fmt: RawFormat,
    raw_path: str | os.PathLike,
    out_dir: str | os.PathLike,
    settings: PrepareSettings,
    profile_path: str | os.PathLike | None = None,
    teacher_prob_path: str | os.PathLike | None = None,
) -> dict:
    """Parse, hash, split and store ``raw_path``; returns (and writes) ``meta.json``.

    Everything is written under a temporary folder and moved into ``out_dir`` at the end, with
    ``meta.json`` last, so a failed run leaves nothing that looks complete.
    """
    raw_path, out_dir = Path(raw_path), Path(out_dir)
    table_sizes = fmt.table_sizes(settings.max_table_size)
    if fmt.name == "kdd" and profile_path is None:
        raise DataError(f"{raw_path}: KDD data needs its userid_profile.txt (the dataset's 'profile')")
    profile = load_profiles(Path(profile_path), settings.block_size) if fmt.name == "kdd" else None
    teacher_prob = np.load(teacher_prob_path, mmap_mode="r") if teacher_prob_path else None
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = out_dir / f".tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        meta = _stream(fmt, raw_path, tmp, settings, table_sizes, profile, teacher_prob)
        if profile is not None:  # `sigeo predict` joins new rows with the same profiles by default
            meta["profile"] = str(profile_path)
        for split in SPLITS:
            (out_dir / split).mkdir(exist_ok=True)
            for part in PARTS:
                os.replace(array_path(tmp, split, part), array_path(out_dir, split, part))
        write_json(out_dir / META_FILE, meta)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return meta


def _stream(
    fmt: RawFormat,
    raw_path: Path,
    tmp: Path,
    settings: PrepareSettings,
    table_sizes: list[int],
    profile: UserProfiles | None,
    teacher_prob: np.ndarray | None,
) -> dict:
    """One pass over the file: parse each block, report its bad rows in line order, deal the rest."""
    writers = {}
    for split in SPLITS:
        (tmp / split).mkdir(parents=True)
        writers[split] = _SplitWriter(
            NpyAppender(array_path(tmp, split, "dense"), np.float32, (len(fmt.dense_features),)),
            NpyAppender(array_path(tmp, split, "sparse"), np.int32, (len(fmt.sparse_features),)),
            NpyAppender(array_path(tmp, split, "label"), np.uint8, ()),
        )
    bad = BadRows(raw_path, settings.max_bad_rows)
    parsed = ParsedFile(fmt, raw_path, table_sizes, profile, bad, settings.block_size)
    splitter = StratifiedSplitter(settings.seed)
    first_data_line = 2 if fmt.header else 1
    try:
        for lines, chunk in parsed:
            kept = np.flatnonzero(chunk.valid)
            split_of = splitter.assign(chunk.label[kept])
            for s, split in enumerate(SPLITS):
                rows = kept[split_of == s]
                w = writers[split]
                label = chunk.label[rows]
                w.dense.append(chunk.dense[rows])
                w.sparse.append(chunk.sparse[rows])
                w.label.append(label)
                w.positives += int(label.sum())
                if teacher_prob is not None:
                    p = np.clip(teacher_prob[lines[rows] - first_data_line].astype(np.float64), 1e-12, 1 - 1e-12)
                    w.bayes_loss_sum -= float(np.sum(label * np.log(p) + (1 - label) * np.log1p(-p)))
    finally:
        for w in writers.values():
            w.close()
    rows = {split: writers[split].label.rows for split in SPLITS}
    if sum(rows.values()) == 0:
        raise bad.no_usable_rows(parsed.last_line)
    meta = {
        "format": fmt.name,
        "source": str(raw_path),
        "source_sha256": parsed.sha256,
        "seed": settings.seed,
        "rows": rows,
        "max_bad_rows": settings.max_bad_rows,
        "bad_rows": bad.count,
        "bad_lines": bad.lines,
        "bad_examples": bad.examples,
        "table_sizes": table_sizes,
        "dense_features": list(fmt.dense_features),
        "sparse_features": list(fmt.sparse_features),
        "positive_rate": {s: writers[s].positives / rows[s] if rows[s] else math.nan for s in SPLITS},
    }
    if teacher_prob is not None:
        meta["bayes_logloss"] = {s: writers[s].bayes_loss_sum / rows[s] if rows[s] else math.nan for s in SPLITS}
    log.info("prepared %s: %s rows, %d bad", raw_path, rows, bad.count)
    return meta
