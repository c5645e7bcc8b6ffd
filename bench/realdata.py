"""A real CTR-like data set in Criteo's raw format: MovieLens 100K as shipped inside RecBole's wheel.

No download happens at run time: RecBole (``pip install --no-deps recbole==1.2.1``; only its data
files are read, nothing is imported) carries ``dataset_example/ml-100k``: 100,000 ratings of
1,682 films by 943 users with the users' and films' attributes. A rating of 4 or 5 is a "click"
(label 1), the usual implicit-feedback cut. Each rating becomes one Criteo line: the label, 13
integer columns, 26 categorical columns of 8 hex digits (a CRC-32 of the field and value), empty
where a value is missing or a column is unused, tab-separated — so the project's own parser,
hashing and stratified split run on it exactly as on Criteo.

    python bench/realdata.py OUT.txt
"""

from __future__ import annotations

import argparse
import zlib
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd

LABEL_MIN_RATING = 4
NUM_INT, NUM_CAT = 13, 26


def recbole_file(name: str) -> Path:
    """A file of RecBole's bundled MovieLens 100K; a clear error when RecBole is not installed."""
    try:
        dist = metadata.distribution("recbole")
    except metadata.PackageNotFoundError as exc:
        raise SystemExit(
            "bench/realdata.py: needs RecBole's bundled data: pip install --no-deps recbole==1.2.1"
        ) from exc
    path = Path(dist.locate_file(f"recbole/dataset_example/ml-100k/{name}"))
    if not path.is_file():
        raise SystemExit(f"bench/realdata.py: {path} missing from the installed RecBole {dist.version}")
    return path


def read_atomic(path: Path) -> pd.DataFrame:
    """RecBole's atomic file: tab-separated, header ``name:type``; every column read as text."""
    frame = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    frame.columns = [c.split(":")[0] for c in frame.columns]
    return frame


def hex_token(field: str, values: pd.Series) -> pd.Series:
    """Criteo-style categorical: 8 hex digits of a CRC-32 of ``field=value``; empty stays empty."""
    return values.map(lambda v: f"{zlib.crc32(f'{field}={v}'.encode()):08x}" if v else "")


def criteo_frame() -> pd.DataFrame:
    """One row per rating: label, I1..I13, C1..C26 as Criteo's raw text fields."""
    inter = read_atomic(recbole_file("ml-100k.inter"))
    users = read_atomic(recbole_file("ml-100k.user"))
    items = read_atomic(recbole_file("ml-100k.item"))
    rows = inter.merge(users, on="user_id", how="left").merge(items, on="item_id", how="left")
    if len(rows) != len(inter):
        raise ValueError("ml-100k: user or item attributes are not unique per id")
    year = rows["release_year"].where(rows["release_year"].str.isdigit(), "")  # one film's is "unkonwn"
    when = pd.to_datetime(rows["timestamp"].astype(float).astype("int64"), unit="s")
    genres = rows["class"].str.split(" ", expand=True).reindex(columns=range(3)).fillna("")
    out = pd.DataFrame({"label": (rows["rating"].astype(float) >= LABEL_MIN_RATING).astype(int).astype(str)})
    ints = {
        "I1": rows["age"],
        "I2": year,
        "I3": when.dt.hour.astype(str),
        "I4": when.dt.day_of_week.astype(str),
        "I5": rows["class"].str.split(" ").str.len().fillna(0).astype(int).astype(str),
    }
    for i in range(1, NUM_INT + 1):
        out[f"I{i}"] = ints.get(f"I{i}", "")
    cats = {
        "C1": rows["user_id"],
        "C2": rows["item_id"],
        "C3": rows["gender"],
        "C4": rows["occupation"],
        "C5": rows["zip_code"],
        "C6": rows["zip_code"].str[:3],
        "C7": (rows["age"].astype(int) // 10).astype(str),
        "C8": year,
        "C9": genres[0],
        "C10": genres[1],
        "C11": genres[2],
    }
    for i in range(1, NUM_CAT + 1):
        name = f"C{i}"
        out[name] = hex_token(name, cats[name]) if name in cats else ""
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="the Criteo-format text file to write")
    args = parser.parse_args()
    frame = criteo_frame()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savetxt(args.out, frame.to_numpy(dtype=str), fmt="%s", delimiter="\t")
    print(f"{args.out}: {len(frame)} rows, positive rate {frame['label'].astype(int).mean():.4f}")


if __name__ == "__main__":
    main()
