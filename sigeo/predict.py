"""Click probabilities from a found model, for the rows of a raw file or of a prepared split.

A raw file is read by the code ``prepare`` reads with (:class:`sigeo.data.prepare.ParsedFile`, or
for a ``tabular`` data set :class:`sigeo.data.tabular.TabularFile` with the declared columns),
with the format, features, table sizes and ``max_bad_rows`` recorded in the data set's
``meta.json``, so each row gets exactly the ids and dense values it would have had in training, and
a bad row is counted and reported by its line number as ``prepare`` reports it. It is read in blocks
and predicted in batches, so memory stays flat whatever the file's size; the CSV appears only when
complete.

A model is named by a ``best.json`` (select_best's choice: its found model, the retraining on train +
val when there is one), a ``model.pt`` (the state dict of a
:class:`~sigeo.space.subnet.StandaloneNet`, with its ``metrics.json`` beside it and its
architecture JSON), or a ``model.pt2`` (the exported program, :mod:`sigeo.export`). Anything that
does not fit — a missing file, an architecture or table sizes that differ from the weights, a
``meta.json`` of another data set — stops with one line naming the file.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import numpy as np
import torch
from torch import nn

from .config import dataset_default
from .data.formats import get_format
from .data.prepare import BadRows, ParsedFile, PrepareSettings, load_profiles
from .data.store import Dataset
from .data.tabular import TabularFile, TabularFormat
from .errors import DataError
from .export import DATA_KEYS, ClickProbability, data_info, export_program, load_program, save_program
from .io import ARCH_FILE, META_FILE, METRICS_FILE, MODEL_FILE, atomic_path, read_json
from .space.choice import Architecture
from .space.subnet import StandaloneNet

CSV_FLOAT = "%.9g"  # enough digits to give back the float32 exactly


@dataclass(frozen=True)
class PredictSettings:
    """How ``predict_raw`` reads: rows per forward pass, bad rows tolerated (None: the data set's own)."""

    batch_size: int = 4096
    max_bad_rows: int | None = None
    block_size: int = PrepareSettings.block_size


def _read_json(path: Path, what: str) -> dict:
    if not path.is_file():
        raise DataError(f"{path}: file not found ({what})")
    try:
        return read_json(path)
    except ValueError as exc:
        raise DataError(f"{path}: not valid JSON ({what}): {exc}") from exc


def _read_meta(path: Path) -> dict:
    meta = _read_json(path, "the prepared data set's meta.json")
    missing = [key for key in DATA_KEYS if key not in meta]
    if missing:
        raise DataError(f"{path}: not a prepared data set's meta.json (no {missing[0]!r})")
    return meta


def _workflow_layout(path: Path) -> tuple[tuple[str, ...], int]:
    """Parts of ``path`` and the index of its ``final`` folder, where it lies under ``results/final/<dataset>/``."""
    parts = path.absolute().parts
    finals = [i for i, part in enumerate(parts[:-2]) if part == "final"]
    if not finals:
        raise DataError(f"{path}: not under the workflow's results/final/<dataset>/, so give --meta (and --arch)")
    return parts, finals[-1]


def default_meta(model_path: str | os.PathLike) -> Path:
    """``results/data/<dataset>/meta.json`` for a model under ``results/final/<dataset>/``."""
    parts, final = _workflow_layout(Path(model_path))
    return Path(*parts[:final], "data", parts[final + 1], META_FILE)


def default_arch(weights: str | os.PathLike) -> Path:
    """The architecture JSON of a ``model.pt``: an ``arch.json`` beside it (a retraining on train + val
    keeps one), else the one final training read for ``results/final/<d>/<s>/w<l>/<p>/<rank>/model.pt``:
    ``results/search/<d>/<s>/w<l>/<p>/top/<rank>.json``."""
    beside = Path(weights).with_name(ARCH_FILE)
    if beside.is_file():
        return beside
    parts, final = _workflow_layout(Path(weights))
    return Path(*parts[:final], "search", *parts[final + 1 : -2], "top", f"{parts[-2]}.json")


def selected_model(best_path: str | os.PathLike, best: dict) -> Path:
    """The ``model.pt`` a ``best.json`` selected.

    ``best["model"]`` is relative to the folder select_best ran in; where that path does not resolve
    from here, its own folder (``<rank>`` or ``trainval``) beside ``best.json``; where best.json
    predates the key, the layout's ``<folder of best.json>/<rank>/model.pt``.
    """
    named = best.get("model")
    if named is None:
        return Path(best_path).parent / str(best["rank"]) / MODEL_FILE
    named = Path(named)
    return named if named.is_file() else Path(best_path).parent / named.parent.name / named.name


def load_standalone(weights: Path, arch: Architecture, net_kwargs: dict, meta: dict, meta_path: Path) -> nn.Module:
    """``StandaloneNet(arch, ...)`` for ``meta``'s data set with the weights of ``weights``, as probabilities."""
    if not weights.is_file():
        raise DataError(f"{weights}: file not found (the trained weights)")
    try:
        state = torch.load(weights, map_location="cpu", weights_only=True)
    except Exception as exc:  # whatever the file holds instead (torch raises several types): one line naming it
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"{weights}: not a state dict saved by torch.save: {first}") from exc
    if not isinstance(state, dict) or "stem.embedding.weight" not in state:
        raise DataError(f"{weights}: not the state dict of a StandaloneNet (no stem.embedding.weight)")
    rows, sizes = state["stem.embedding.weight"].shape[0], meta["table_sizes"]
    if rows != sum(sizes):
        raise DataError(
            f"{weights}: its embedding tables have {rows} rows, {meta_path}'s table sizes sum to {sum(sizes)}: "
            "the model was trained on another data set (or another max_table_size)"
        )
    net = StandaloneNet(arch, len(meta["dense_features"]), sizes, **net_kwargs)
    try:
        net.load_state_dict(state)
    except RuntimeError as exc:
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        raise DataError(f"{weights}: does not fit its architecture and {meta_path}: {lines[-1]}") from exc
    return ClickProbability(net).eval()


def _rebuild(weights: Path, arch: Architecture, arch_source: Path, meta: dict, meta_path: Path) -> nn.Module:
    """The trained network of ``weights``, rebuilt from ``arch`` and the ``net`` settings of its metrics.json."""
    metrics_path = weights.parent / METRICS_FILE
    metrics = _read_json(metrics_path, f"the metrics of {weights}")
    if arch.hash() != metrics.get("arch_hash"):
        raise DataError(f"{arch_source}: not the architecture {metrics_path} was trained with (arch_hash differs)")
    if not isinstance(metrics.get("net"), dict):
        raise DataError(f"{metrics_path}: has no 'net' (the network's settings), so {weights} cannot be rebuilt")
    return load_standalone(weights, arch, metrics["net"], meta, meta_path)


def load_model(
    model_path: str | os.PathLike, meta_path: str | os.PathLike, arch_path: str | os.PathLike | None = None
) -> nn.Module:
    """The model ``model_path`` names (best.json, model.pt or model.pt2), checked against ``meta_path``.

    Returns a module mapping ``(dense float32 [N, D], sparse int64 [N, C])`` to click probabilities.
    ``arch_path`` is for a ``model.pt`` only (default: where the workflow keeps its architecture).
    """
    model_path, meta_path = Path(model_path), Path(meta_path)
    meta = _read_meta(meta_path)
    if model_path.suffix == ".pt2":
        program, info = load_program(model_path)
        for key, value in data_info(meta).items():
            if info.get(key) != value:
                raise DataError(f"{model_path}: exported for another data set than {meta_path} (its {key} differ)")
        return program
    if model_path.suffix == ".json":
        best = _read_json(model_path, "select_best's choice")
        try:
            arch = Architecture.from_dict(best["arch"])
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise DataError(f"{model_path}: not a best.json with a valid 'arch': {exc}") from exc
        return _rebuild(selected_model(model_path, best), arch, model_path, meta, meta_path)
    arch_path = Path(arch_path) if arch_path else default_arch(model_path)
    if not arch_path.is_file():
        raise DataError(f"{arch_path}: file not found (the architecture of {model_path}; give --arch)")
    try:
        arch = Architecture.load(arch_path)
    except ValueError as exc:
        raise DataError(str(exc)) from exc
    return _rebuild(model_path, arch, arch_path, meta, meta_path)


def export_model(
    model_path: str | os.PathLike,
    meta_path: str | os.PathLike,
    out_path: str | os.PathLike,
    arch_path: str | os.PathLike | None = None,
) -> None:
    """Export the model of a best.json or model.pt as a self-contained program (see :mod:`sigeo.export`)."""
    model = load_model(model_path, meta_path, arch_path)
    if not isinstance(model, ClickProbability):
        raise DataError(f"{model_path}: already an exported program")
    meta = read_json(meta_path)
    save_program(export_program(model, meta), meta, out_path)


def _batches(n: int, batch_size: int) -> Iterator[slice]:
    return (slice(start, min(start + batch_size, n)) for start in range(0, n, batch_size))


@torch.no_grad()
def _probabilities(model: nn.Module, dense: np.ndarray, sparse: np.ndarray, batch_size: int) -> np.ndarray:
    out = []
    for rows in _batches(len(dense), batch_size):
        x = torch.from_numpy(np.ascontiguousarray(dense[rows], dtype=np.float32))
        ids = torch.from_numpy(np.ascontiguousarray(sparse[rows], dtype=np.int64))
        out.append(model(x, ids).numpy())
    return np.concatenate(out) if out else np.empty(0, np.float32)


def _write(fh: TextIO, index: np.ndarray, label: np.ndarray, prob: np.ndarray) -> None:
    rows = np.empty(len(index), dtype=[("index", np.int64), ("label", np.int64), ("prob", np.float64)])
    rows["index"], rows["label"], rows["prob"] = index, label, prob
    np.savetxt(fh, rows, fmt=("%d", "%d", CSV_FLOAT), delimiter=",")


def _raw_rows(
    meta: dict, meta_path: Path, raw_path: Path, bad: BadRows, block_size: int, profile_path: str | os.PathLike | None
) -> ParsedFile | TabularFile:
    """The reader of ``raw_path`` for ``meta``'s format, its features checked against ``meta``."""
    if meta["format"] == "tabular":
        tabular = TabularFormat.from_meta(meta, meta_path)
        return TabularFile(tabular, raw_path, list(meta["table_sizes"]), bad, block_size)
    fmt = get_format(meta["format"], keep_id="id" in meta["sparse_features"])
    if list(fmt.sparse_features) != meta["sparse_features"] or list(fmt.dense_features) != meta["dense_features"]:
        raise DataError(f"{meta_path}: its features are not those of the {fmt.name} format")
    profile = None
    if fmt.name == "kdd":
        profile_path = profile_path or meta.get("profile")
        if not profile_path:
            raise DataError(f"{raw_path}: KDD rows need a userid_profile.txt (--profile)")
        profile = load_profiles(Path(profile_path), block_size)
    return ParsedFile(fmt, raw_path, list(meta["table_sizes"]), profile, bad, block_size)


def predict_raw(
    model: nn.Module,
    meta_path: str | os.PathLike,
    raw_path: str | os.PathLike,
    out_path: str | os.PathLike,
    settings: PredictSettings,
    profile_path: str | os.PathLike | None = None,
) -> dict:
    """Write ``line,label,probability`` for every good row of ``raw_path`` (a file in the data set's format).

    ``line`` is the row's 1-based line number in the file (a header is line 1); a tabular data set's
    file may be CSV, TSV or Parquet, and a Parquet file's rows, having no lines, are numbered from 1.
    KDD rows are joined with ``profile_path`` (default: the profile file the data set was prepared
    with). Returns the row count and the bad rows as ``prepare`` reports them in ``meta.json``.
    """
    meta_path, raw_path = Path(meta_path), Path(raw_path)
    meta = _read_meta(meta_path)
    limit = settings.max_bad_rows
    if limit is None:  # a meta.json written before prepare recorded it had prepare's default
        limit = meta.get("max_bad_rows", dataset_default("max_bad_rows"))
    bad = BadRows(raw_path, limit)
    parsed = _raw_rows(meta, meta_path, raw_path, bad, settings.block_size, profile_path)
    rows = 0
    with atomic_path(out_path, ".csv") as tmp, open(tmp, "w") as fh:
        fh.write("line,label,probability\n")
        for lines, chunk in parsed:
            kept = np.flatnonzero(chunk.valid)
            prob = _probabilities(model, chunk.dense[kept], chunk.sparse[kept], settings.batch_size)
            _write(fh, lines[kept], chunk.label[kept], prob)
            rows += len(kept)
        if rows == 0:
            raise bad.no_usable_rows(parsed.last_line)
    return {"rows": rows, "bad_rows": bad.count, "bad_lines": bad.lines, "bad_examples": bad.examples}


def predict_split(
    model: nn.Module, dataset_dir: str | os.PathLike, split: str, out_path: str | os.PathLike, batch_size: int
) -> int:
    """Write ``row,label,probability`` for every row of a prepared split (``row``: its 0-based index there)."""
    data = Dataset.open(dataset_dir).split(split)
    with atomic_path(out_path, ".csv") as tmp, open(tmp, "w") as fh:
        fh.write("row,label,probability\n")
        for start in range(0, len(data), batch_size):
            dense, sparse, label = data.batch(start, start + batch_size)
            prob = _probabilities(model, dense, sparse, batch_size)
            _write(fh, np.arange(start, start + len(label)), label, prob)
    return len(data)
