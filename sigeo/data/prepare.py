"""Streaming preprocessing: raw file -> parsed chunks -> stratified 8:1:1 split -> ``.npy`` store.

One pass over the raw file in fixed-size blocks (Arrow's streaming CSV reader), so memory does
not grow with the file. The split is decided online: each class's rows are cut into consecutive
groups of ten, and each group is dealt 8 train / 1 val / 1 test slots in a seeded random order.
That gives the reference's stratified 8:1:1 (exact when a class count is a multiple of ten, off by
at most one group remainder otherwise) without its first pass, its header off-by-one, or its
rounding-made ninth shard (REFERENCE §1.1). Rows keep their raw order inside each split.
"""

from __future__ import annotations

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
from ..io import write_json
from .formats import RawFormat, UserProfiles
from .store import SPLITS, NpyAppender

log = logging.getLogger(__name__)

SPLIT_RATIOS = (8, 1, 1)
MAX_REPORTED_BAD_LINES = 100


@dataclass(frozen=True)
class PrepareSettings:
    seed: int
    max_bad_rows: int = 1000
    max_table_size: int | None = None
    block_size: int = 1 << 22


class _UntypedRetry(Exception):
    """Arrow rejected a number in a typed column; the pass must be redone on raw bytes."""


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
class _BadRows:
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


def _open_stream(path: Path) -> tuple[pa.NativeFile, _HashingReader]:
    if not path.exists():
        raise DataError(f"{path}: file not found")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: file is empty")
    raw = _HashingReader(path)
    stream = pa.PythonFile(raw, mode="r")
    if path.suffix == ".gz":
        stream = pa.CompressedInputStream(stream, "gzip")
    return stream, raw


def _batches(
    reader: pacsv.CSVStreamingReader, skipped: list[tuple[int, str]]
) -> Iterator[tuple[pa.RecordBatch | None, list[tuple[int, str]]]]:
    """Read batches on a background thread so parsing text and converting numbers overlap.

    ``skipped`` is filled by the reader's invalid-row handler on that thread; each batch is handed
    over with the rows skipped while it was parsed (the reader is single-threaded, no read-ahead),
    and a final ``None`` batch carries any skipped after the last one.
    """
    out: queue.Queue = queue.Queue(maxsize=2)

    def take() -> list[tuple[int, str]]:
        taken = list(skipped)
        skipped.clear()
        return taken

    def produce() -> None:
        try:
            for batch in reader:
                out.put((batch, take()))
            out.put((None, take()))
        except BaseException as exc:  # handed to the consumer, which re-raises it
            out.put(exc)

    threading.Thread(target=produce, daemon=True).start()
    while True:
        item = out.get()
        if isinstance(item, BaseException):
            raise item
        yield item
        if item[0] is None:
            return


def load_profiles(path: Path) -> UserProfiles:
    """Read KDD ``userid_profile.txt`` (UserID, Gender, Age; tab separated, no header)."""
    if not path.exists():
        raise DataError(f"{path}: KDD user profile file not found")
    try:
        table = pacsv.read_csv(
            path,
            read_options=pacsv.ReadOptions(column_names=["UserID", "Gender", "Age"]),
            parse_options=pacsv.ParseOptions(delimiter="\t", quote_char=False),
            convert_options=pacsv.ConvertOptions(column_types=dict.fromkeys(("UserID", "Gender", "Age"), pa.int64())),
        )
    except (pa.ArrowInvalid, OSError) as exc:
        raise DataError(f"{path}: cannot parse the user profile table: {exc}") from exc
    cols = [table.column(c).to_numpy() for c in ("UserID", "Gender", "Age")]
    if len(cols[0]) and cols[0].min() < 0:
        raise DataError(f"{path}: negative UserID")
    return UserProfiles(*cols)


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
    profile = load_profiles(Path(profile_path)) if fmt.name == "kdd" else None
    teacher_prob = np.load(teacher_prob_path, mmap_mode="r") if teacher_prob_path else None
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = out_dir / f".tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        try:
            meta = _stream(fmt, raw_path, tmp, settings, table_sizes, profile, teacher_prob, typed=True)
        except _UntypedRetry:
            log.info("%s: a number failed Arrow's conversion; re-reading as text to find the bad rows", raw_path)
            shutil.rmtree(tmp)
            meta = _stream(fmt, raw_path, tmp, settings, table_sizes, profile, teacher_prob, typed=False)
        for split in SPLITS:
            (out_dir / split).mkdir(exist_ok=True)
            for part in ("dense", "sparse", "label"):
                os.replace(tmp / split / f"{part}.npy", out_dir / split / f"{part}.npy")
        write_json(out_dir / "meta.json", meta)
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
    typed: bool,
) -> dict:
    """One pass over the file. ``typed``: Arrow converts integer columns while reading (fast);
    any value it cannot convert aborts with ``_UntypedRetry`` so the caller re-reads everything as
    bytes, where each bad row is found and reported with its line number."""
    writers = {}
    for split in SPLITS:
        (tmp / split).mkdir(parents=True)
        writers[split] = _SplitWriter(
            NpyAppender(tmp / split / "dense.npy", np.float32, (len(fmt.dense_features),)),
            NpyAppender(tmp / split / "sparse.npy", np.int32, (len(fmt.sparse_features),)),
            NpyAppender(tmp / split / "label.npy", np.uint8, ()),
        )
    bad = _BadRows(raw_path, settings.max_bad_rows)
    skipped: list[tuple[int, str]] = []

    def on_invalid(row: pacsv.InvalidRow) -> str:
        skipped.append((row.number, f"{row.actual_columns} fields, expected {row.expected_columns}"))
        return "skip"

    stream, raw = _open_stream(raw_path)
    splitter = StratifiedSplitter(settings.seed)
    first_data_line = 2 if fmt.header else 1
    next_line = first_data_line
    try:
        reader = pacsv.open_csv(
            stream,
            read_options=pacsv.ReadOptions(
                use_threads=False,
                block_size=settings.block_size,
                column_names=None if fmt.header else list(fmt.columns),
            ),
            parse_options=pacsv.ParseOptions(
                delimiter=fmt.delimiter,
                quote_char=False,
                ignore_empty_lines=False,
                invalid_row_handler=on_invalid,
            ),
            convert_options=pacsv.ConvertOptions(
                column_types={
                    c: pa.int64() if typed and c in fmt.integer_columns else pa.binary() for c in fmt.columns
                },
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
        if fmt.header and tuple(reader.schema.names) != fmt.columns:
            raise DataError(f"{raw_path}: line 1: header {reader.schema.names} does not match the {fmt.name} format")
        for batch, skipped_rows in _batches(reader, skipped):
            for number, why in skipped_rows:
                bad.add(number, why)
            if batch is None:
                break
            n = batch.num_rows
            lines = np.setdiff1d(
                np.arange(next_line, next_line + n + len(skipped_rows), dtype=np.int64),
                np.array([number for number, _ in skipped_rows], dtype=np.int64),
                assume_unique=True,
            )[:n]
            next_line += n + len(skipped_rows)
            chunk = fmt.parse(pa.Table.from_batches([batch]), table_sizes, profile)
            for i in np.flatnonzero(~chunk.valid):
                reason = chunk.reason(i)
                bad.add(int(lines[i]), f"field {reason.field}: {reason.reason}")
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
        sha256 = raw.drain()
    except (pa.ArrowInvalid, OSError, EOFError) as exc:
        if typed and "conversion error" in str(exc):
            raise _UntypedRetry from exc
        raise DataError(f"{raw_path}: unreadable after line {next_line - 1}: {exc}") from exc
    finally:
        for w in writers.values():
            w.close()
        raw.close()
    rows = {split: writers[split].label.rows for split in SPLITS}
    if sum(rows.values()) == 0:
        raise DataError(f"{raw_path}: no usable rows ({bad.count} bad)")
    meta = {
        "format": fmt.name,
        "source": str(raw_path),
        "source_sha256": sha256,
        "seed": settings.seed,
        "rows": rows,
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
