"""The search's records (``records.csv``) and the export of its best architectures.

Each evaluated candidate becomes one row, appended as soon as it is scored, so a killed search
resumes by replaying its seeded choices and taking the scores it already has from the file.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigError
from ..io import atomic_path, write_json
from ..proxies import get_proxy
from ..space.choice import Architecture


@dataclass
class Record:
    index: int
    generation: int
    arch: Architecture
    scores: dict[str, float]


class RecordLog:
    """Append-only ``records.partial.csv``; renamed to ``records.csv`` when the search ends.

    One line per evaluated candidate, written, flushed and fsynced as soon as it is scored. A line
    cut by a kill (the file then does not end in a newline) is dropped on restart and its candidate
    scored again; no wall-clock times are stored, so equal settings give byte-identical files.
    """

    META = ("index", "generation", "hash", "arch")

    def __init__(self, path: Path) -> None:
        self.path, self.partial = path, path.with_name(path.stem + ".partial.csv")
        path.parent.mkdir(parents=True, exist_ok=True)
        self.done: list[dict] = []
        if self.partial.exists():
            text = self.partial.read_text()
            self.done = list(csv.DictReader(io.StringIO(text[: text.rfind("\n") + 1], newline="")))
        self._fh = None
        self._writer = None

    def replay(self, index: int, arch: Architecture) -> Record | None:
        """The record of evaluation ``index`` if it was made before a restart (same choice, by hash)."""
        if index >= len(self.done):
            return None
        row = self.done[index]
        if row["hash"] != arch.hash():
            raise RuntimeError(f"{self.partial}: row {index} holds another candidate; the search settings changed")
        scores = {k: float(v) for k, v in row.items() if k not in self.META}
        return Record(index, int(row["generation"]), arch, scores)

    def append(self, record: Record) -> None:
        row = {
            "index": record.index,
            "generation": record.generation,
            "hash": record.arch.hash(),
            "arch": record.arch.to_json(),
            **record.scores,
        }
        if self._writer is None:
            self._fh = open(self.partial, "w", newline="")  # noqa: SIM115 - closed in finish()
            self._writer = csv.DictWriter(self._fh, fieldnames=list(row), restval="nan", extrasaction="ignore")
            self._writer.writeheader()
            self._writer.writerows(self.done)
        self._writer.writerow(row)
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def finish(self) -> None:
        if self._fh is not None:
            self._fh.close()
        with atomic_path(self.path, ".csv") as tmp:
            os.replace(self.partial, tmp)


EXPORT_FROM = ("history", "all")


def history_rows(rows: list[dict], key: Callable[[dict], float], per_generation: int) -> list[dict]:
    """The reference's history: of each generation's children, the ``per_generation`` best (ties in
    record order). The initial population (generation 0) is not in it; without children (a random
    search, no generations) the history is every record."""
    generations: dict[int, list[dict]] = {}
    for row in rows:
        if int(row["generation"]) > 0:
            generations.setdefault(int(row["generation"]), []).append(row)
    if not generations:
        return rows
    return [
        row
        for g in sorted(generations)
        for row in sorted(generations[g], key=lambda r: (-key(r), int(r["index"])))[:per_generation]
    ]


def export_top(
    records_csv: str | os.PathLike,
    proxy: str,
    top_k: int,
    out_dir: str | os.PathLike,
    export_from: str = "all",
    history_top_k: int = 2,
) -> list[dict]:
    """The ``top_k`` best distinct architectures as reference-format JSON files ``{rank}.json``.

    ``export_from``: ``all`` ranks every scored record (the initial population included);
    ``history`` ranks only the reference's history (:func:`history_rows`, ``history_top_k`` per
    generation), as its export did. Distinct by hash: the reference kept a record only when its
    score differed from the previous one, which drops different architectures that happen to tie
    and keeps duplicates whose scores differ by noise. NaN scores rank last. ``test_loss`` holds the
    minimised criterion, as in the reference's files; ``score`` the proxy's own value.
    """
    if export_from not in EXPORT_FROM:
        raise ConfigError(f"search.export_from must be one of {', '.join(EXPORT_FROM)}, got {export_from!r}")
    higher = get_proxy(proxy).higher_is_better

    def goodness(row: dict) -> float:
        value = float(row[proxy])
        return -math.inf if not math.isfinite(value) else (value if higher else -value)

    with open(records_csv, newline="") as fh:
        rows = list(csv.DictReader(fh))
    if export_from == "history":
        rows = history_rows(rows, goodness, history_top_k)
    best: dict[str, dict] = {}
    for row in rows:
        key = goodness(row)
        if row["hash"] not in best or key > best[row["hash"]]["key"]:
            best[row["hash"]] = {"key": key, "row": row, "value": float(row[proxy])}
    ranked = sorted(best.values(), key=lambda r: (-r["key"], int(r["row"]["index"])))[:top_k]
    if len(ranked) < top_k:
        raise ValueError(f"{records_csv}: only {len(ranked)} distinct architectures for top_k={top_k}")
    exported = []
    for rank, entry in enumerate(ranked):
        arch = Architecture.from_dict(json.loads(entry["row"]["arch"]))
        value = entry["value"] if math.isfinite(entry["value"]) else None  # JSON has no NaN
        minimised = None if value is None else (value if not higher else -value)
        doc = {**arch.to_dict(minimised), "proxy": proxy, "score": value, "hash": entry["row"]["hash"]}
        write_json(Path(out_dir) / f"{rank}.json", doc)
        exported.append(doc)
    return exported
