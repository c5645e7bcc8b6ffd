"""Preprocessing of hand-written raw rows in each format, the split, and every bad-input case."""

from __future__ import annotations

import gzip
import json
import math
import threading

import numpy as np
import pytest
from conftest import prepare_settings

from sigeo.data.formats import get_format
from sigeo.data.prepare import StratifiedSplitter, prepare
from sigeo.data.store import Dataset
from sigeo.errors import DataError

CRITEO_ROWS = [
    # label, I1..I13, C1..C26
    ["1", "5", "-2", "", *["0"] * 10, "68fd1e64", "", *["0000000a"] * 24],
    ["0", "", "0", "100", *["1"] * 10, "ffffffff", "80e26c9b", *["00000001"] * 24],
]


def criteo_line(row: list[str]) -> str:
    return "\t".join(row) + "\n"


def all_rows(ds: Dataset) -> dict[str, np.ndarray]:
    parts = [ds.split(s) for s in ("train", "val", "test")]
    return {
        "dense": np.concatenate([p.dense for p in parts]),
        "sparse": np.concatenate([p.sparse for p in parts]),
        "label": np.concatenate([p.label for p in parts]),
    }


def test_criteo_hashing_and_dense_by_hand(tmp_path):
    raw = tmp_path / "train.txt"
    raw.write_text("".join(criteo_line(r) for r in CRITEO_ROWS))
    meta = prepare(get_format("criteo"), raw, tmp_path / "out", prepare_settings(seed=1))
    assert meta["rows"]["train"] + meta["rows"]["val"] + meta["rows"]["test"] == 2
    rows = all_rows(Dataset.open(tmp_path / "out"))
    order = np.argsort(-rows["label"].astype(int))  # row with label 1 first
    dense, sparse = rows["dense"][order], rows["sparse"][order]
    sizes = meta["table_sizes"]
    assert sizes[0] == 1461 and sizes[2] == 10131227
    # C1 of row 0: 0x68fd1e64 = 1761418852 = 1206451 * 1460 + 392 -> id 393
    assert sparse[0, 0] == 393
    assert sparse[0, 1] == 0  # missing
    assert sparse[0, 2] == 10 % (10131227 - 1) + 1
    assert sparse[1, 0] == 0xFFFFFFFF % 1460 + 1
    assert sparse[1, 1] == 0x80E26C9B % 583 + 1
    np.testing.assert_allclose(dense[0, :3], [math.log(6), 0.0, 0.0], rtol=1e-6)  # 5, max(-2,0), missing
    np.testing.assert_allclose(dense[1, :3], [0.0, 0.0, math.log(101)], rtol=1e-6)
    assert rows["label"].dtype == np.uint8 and sorted(rows["label"].tolist()) == [0, 1]


def test_gzip_input_gives_identical_arrays(tmp_path):
    text = "".join(criteo_line(r) for r in CRITEO_ROWS * 20)
    (tmp_path / "plain.txt").write_text(text)
    with gzip.open(tmp_path / "packed.txt.gz", "wt") as fh:
        fh.write(text)
    fmt, settings = get_format("criteo"), prepare_settings(seed=3)
    a = prepare(fmt, tmp_path / "plain.txt", tmp_path / "a", settings)
    b = prepare(fmt, tmp_path / "packed.txt.gz", tmp_path / "b", settings)
    assert a["rows"] == b["rows"]
    for split in ("train", "val", "test"):
        for part in ("dense", "sparse", "label"):
            np.testing.assert_array_equal(
                np.load(tmp_path / "a" / split / f"{part}.npy"),
                np.load(tmp_path / "b" / split / f"{part}.npy"),
            )


AVAZU_HEADER = (
    "id,click,hour,C1,banner_pos,site_id,site_domain,site_category,app_id,app_domain,app_category,"
    "device_id,device_ip,device_model,device_type,device_conn_type,C14,C15,C16,C17,C18,C19,C20,C21\n"
)
AVAZU_ROW = (
    "10000174058809263569,1,14102100,1005,0,1fbe01fe,f3845767,28905ebd,ecad2386,7801e8d9,07d7df22,"
    "a99f214a,ddd2926e,44956a24,1,2,15706,320,50,1722,0,35,-1,79\n"
)


@pytest.mark.parametrize("keep_id", [False, True])
def test_avazu_rows_and_id_switch(tmp_path, keep_id):
    raw = tmp_path / "train.csv"
    raw.write_text(AVAZU_HEADER + AVAZU_ROW)
    fmt = get_format("avazu", keep_id=keep_id)
    meta = prepare(fmt, raw, tmp_path / "out", prepare_settings(seed=1))
    rows = all_rows(Dataset.open(tmp_path / "out"))
    assert meta["dense_features"] == ["dense_pad"]
    assert rows["dense"].tolist() == [[0.0]]
    sparse = rows["sparse"][0].tolist()
    assert len(sparse) == (23 if keep_id else 22)
    features = meta["sparse_features"]
    assert ("id" in features) == keep_id
    expected_hour = 14102100 % 2147483647 % (241 - 1) + 1
    assert sparse[features.index("hour")] == expected_hour
    assert sparse[features.index("site_id")] == 0x1FBE01FE % 2147483647 % (4738 - 1) + 1
    # C20 holds "-1": Python's int("-1") % (2**31 - 1) = 2147483646, then mod (173 - 1) + 1
    assert sparse[features.index("C20")] == 2147483646 % 172 + 1
    assert meta["bad_rows"] == 0


def test_avazu_header_mismatch(tmp_path):
    raw = tmp_path / "train.csv"
    raw.write_text(AVAZU_HEADER.replace("click", "clicks") + AVAZU_ROW)
    with pytest.raises(DataError, match=r"train.csv: line 1: header"):
        prepare(get_format("avazu"), raw, tmp_path / "out", prepare_settings(seed=1))


def test_kdd_profile_join(tmp_path):
    # Click, Impression, DisplayURL, AdID, AdvertiserID, Depth, Position, QueryID, KeywordID, TitleID,
    # DescriptionID, UserID
    (tmp_path / "training.txt").write_text(
        "2\t3\t4298118681424644510\t7686695\t385\t3\t3\t1601\t5521\t7709\t576\t490234\n"
        "0\t1\t4860571499428580850\t21560664\t37484\t2\t2\t2255103\t317\t48989\t44771\t12345\n"
    )
    (tmp_path / "userid_profile.txt").write_text("490234\t1\t5\n7\t2\t3\n")
    fmt = get_format("kdd")
    meta = prepare(fmt, tmp_path / "training.txt", tmp_path / "out", prepare_settings(seed=1),
                   profile_path=tmp_path / "userid_profile.txt")  # fmt: skip
    rows = all_rows(Dataset.open(tmp_path / "out"))
    order = np.argsort(-rows["label"].astype(int))
    sparse, dense, label = rows["sparse"][order], rows["dense"][order], rows["label"][order]
    assert label.tolist() == [1, 0]  # Click 2 -> positive
    f = meta["sparse_features"]
    assert sparse[0, f.index("Gender")] == 1 % 3 + 1  # known user: gender 1, table size 4
    assert sparse[0, f.index("Age")] == 5 % 7 + 1
    assert sparse[1, f.index("Gender")] == 1  # unknown user -> "0" -> 0 mod 3 + 1
    assert sparse[1, f.index("Age")] == 1
    assert sparse[0, f.index("DisplayURL")] == 4298118681424644510 % 2147483647 % 26273 + 1
    assert sparse[0, f.index("UserID")] == 490234 % 20004010 + 1
    np.testing.assert_allclose(dense[0], np.log1p([3, 3, 3]), rtol=1e-6)


def test_kdd_needs_profile(tmp_path):
    (tmp_path / "training.txt").write_text("0\t1\t1\t1\t1\t1\t1\t1\t1\t1\t1\t1\n")
    with pytest.raises(DataError, match="userid_profile"):
        prepare(get_format("kdd"), tmp_path / "training.txt", tmp_path / "out", prepare_settings(seed=1))


def write_labels(path, labels, rng):
    lines = []
    for y in labels:
        dense = [str(int(v)) for v in rng.integers(0, 50, 13)]
        cats = [f"{int(v):08x}" for v in rng.integers(0, 2**32, 26)]
        lines.append("\t".join([str(y), *dense, *cats]) + "\n")
    path.write_text("".join(lines))


def test_split_sizes_rates_and_seed(tmp_path):
    rng = np.random.default_rng(0)
    labels = rng.permutation([1] * 250 + [0] * 750)
    write_labels(tmp_path / "train.txt", labels, rng)
    fmt = get_format("criteo")
    meta = prepare(fmt, tmp_path / "train.txt", tmp_path / "a", prepare_settings(seed=5, block_size=4096))
    assert meta["rows"] == {"train": 800, "val": 100, "test": 100}
    for split, n in meta["rows"].items():
        assert abs(meta["positive_rate"][split] * n - 0.25 * n) <= 1
    again = prepare(fmt, tmp_path / "train.txt", tmp_path / "b", prepare_settings(seed=5))
    prepare(fmt, tmp_path / "train.txt", tmp_path / "c", prepare_settings(seed=6))
    assert again["rows"] == meta["rows"]
    a, b, c = (np.load(tmp_path / d / "val" / "sparse.npy") for d in "abc")
    np.testing.assert_array_equal(a, b)  # same seed, different block size: same split
    assert not np.array_equal(a, c)


def test_splitter_does_not_depend_on_chunking():
    labels = np.random.default_rng(1).integers(0, 2, 997)
    whole = StratifiedSplitter(9).assign(labels)
    splitter = StratifiedSplitter(9)
    pieces = np.concatenate([splitter.assign(labels[i : i + 37]) for i in range(0, len(labels), 37)])
    np.testing.assert_array_equal(whole, pieces)
    assert np.bincount(whole).tolist() == pytest.approx([797.6, 99.7, 99.7], abs=10)


def test_bad_rows_counted_with_line_numbers(tmp_path):
    good = criteo_line(CRITEO_ROWS[0])
    lines = [good] * 5
    lines[1] = "1\t2\t3\n"  # wrong field count
    lines[3] = good.replace("1", "2", 1)  # label 2
    lines.append(good.replace("\t5\t", "\tfive\t", 1))  # unparsable integer, line 6
    lines.append("\n")  # empty line 7
    raw = tmp_path / "train.txt"
    raw.write_text("".join(lines) + good)
    meta = prepare(get_format("criteo"), raw, tmp_path / "out", prepare_settings(seed=1, block_size=1024))
    assert meta["bad_rows"] == 4
    assert meta["bad_lines"] == [2, 4, 6, 7]
    assert sum(meta["rows"].values()) == 4
    assert any("field I1" in e for e in meta["bad_examples"])
    assert any("label" in e for e in meta["bad_examples"])


def test_too_many_bad_rows_fail_without_output(tmp_path):
    raw = tmp_path / "train.txt"
    raw.write_text(criteo_line(CRITEO_ROWS[0]) + "x\ty\n" * 3)
    out = tmp_path / "out"
    with pytest.raises(DataError, match=r"train.txt: more than max_bad_rows=2 bad rows; first: line 2"):
        prepare(get_format("criteo"), raw, out, prepare_settings(seed=1, max_bad_rows=2))
    assert not (out / "meta.json").exists()
    assert not list(out.rglob("*.npy"))


def test_empty_missing_and_truncated_gzip(tmp_path):
    fmt = get_format("criteo")
    (tmp_path / "empty.txt").write_text("")
    with pytest.raises(DataError, match=r"empty\.txt: file is empty"):
        prepare(fmt, tmp_path / "empty.txt", tmp_path / "o1", prepare_settings(seed=1))
    with pytest.raises(DataError, match=r"nope\.txt: file not found"):
        prepare(fmt, tmp_path / "nope.txt", tmp_path / "o2", prepare_settings(seed=1))
    data = gzip.compress(("".join(criteo_line(r) for r in CRITEO_ROWS) * 2000).encode())
    (tmp_path / "cut.txt.gz").write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match=r"cut\.txt\.gz: unreadable from line"):
        prepare(fmt, tmp_path / "cut.txt.gz", tmp_path / "o3", prepare_settings(seed=1))
    assert not (tmp_path / "o3" / "meta.json").exists()


def test_unknown_format():
    with pytest.raises(ValueError, match="unknown format 'parquet'"):
        get_format("parquet")


def test_meta_is_json_with_the_promised_fields(tmp_path):
    raw = tmp_path / "train.txt"
    raw.write_text("".join(criteo_line(r) for r in CRITEO_ROWS * 10))
    prepare(get_format("criteo"), raw, tmp_path / "out", prepare_settings(seed=1, max_table_size=1000))
    meta = json.loads((tmp_path / "out" / "meta.json").read_text())
    for key in ("rows", "bad_rows", "bad_lines", "table_sizes", "dense_features", "sparse_features",
                "positive_rate", "source_sha256"):  # fmt: skip
        assert key in meta
    assert max(meta["table_sizes"]) == 1000
    import hashlib

    assert meta["source_sha256"] == hashlib.sha256(raw.read_bytes()).hexdigest()


def test_bad_lines_stay_exact_when_arrow_reads_ahead(tmp_path):
    """Arrow reports a skipped row while earlier batches are still being handed over; every bad row
    (field count or value) must keep its own line number, in order, wherever the blocks end."""
    good, bad_label = criteo_line(CRITEO_ROWS[0]), criteo_line(CRITEO_ROWS[0]).replace("1", "2", 1)
    for p in range(3, 21):
        lines = [good] * 40
        lines[p], lines[p - 1], lines[p + 2] = "1\t2\n", bad_label, bad_label
        (tmp_path / "train.txt").write_text("".join(lines))
        meta = prepare(
            get_format("criteo"), tmp_path / "train.txt", tmp_path / "out", prepare_settings(seed=1, block_size=700)
        )
        assert meta["bad_lines"] == [p, p + 1, p + 3], p


def test_non_ascii_rows_and_headers(tmp_path):
    """A Latin-1 line with a wrong field count is one bad row (pyarrow cannot show it to the handler
    as text), and a header that is not UTF-8 is a header mismatch on line 1."""
    good = criteo_line(CRITEO_ROWS[0]).encode()
    (tmp_path / "train.txt").write_bytes(good + "café\t2\n".encode("latin-1") + good)
    meta = prepare(get_format("criteo"), tmp_path / "train.txt", tmp_path / "a", prepare_settings(seed=1))
    assert meta["bad_lines"] == [2] and sum(meta["rows"].values()) == 2
    (tmp_path / "train.csv").write_bytes(AVAZU_HEADER.replace("hour", "hôur").encode("latin-1") + AVAZU_ROW.encode())
    with pytest.raises(DataError, match=r"train.csv: line 1: header"):
        prepare(get_format("avazu"), tmp_path / "train.csv", tmp_path / "b", prepare_settings(seed=1))


def test_no_usable_rows_names_the_lines(tmp_path):
    (tmp_path / "train.txt").write_text("1\t2\n\n")
    with pytest.raises(DataError, match=r"no usable rows up to line 2 \(2 bad; first: line 1: 2 fields"):
        prepare(get_format("criteo"), tmp_path / "train.txt", tmp_path / "out", prepare_settings(seed=1))


def test_kdd_profile_values_and_bad_lines(tmp_path):
    """Gender/Age are hashed like every KDD token (70000 stays 70000, -1 is Python's -1 % (2^31-1),
    'a' is hex); UserIDs may be huge; a later line for a user wins; a bad line is fatal, named."""
    row = "1\t3\t4\t7\t385\t3\t3\t1601\t5521\t7709\t576\t{user}\n"
    (tmp_path / "training.txt").write_text("".join(row.format(user=u) for u in (7, 100000000000000, 8, 9)))
    profile = tmp_path / "userid_profile.txt"
    profile.write_text("7\t70000\t-1\n100000000000000\ta\t5\n8\t1\t1\n8\t2\t3\n")
    fmt = get_format("kdd")
    meta = prepare(fmt, tmp_path / "training.txt", tmp_path / "out", prepare_settings(seed=1), profile_path=profile)
    sparse = all_rows(Dataset.open(tmp_path / "out"))["sparse"]
    f = meta["sparse_features"]
    got = {int(r[f.index("UserID")]): (int(r[f.index("Gender")]), int(r[f.index("Age")])) for r in sparse}
    user_id = {u: u % 2147483647 % 20004010 + 1 for u in (7, 100000000000000, 8, 9)}
    assert got[user_id[7]] == (70000 % 3 + 1, (-1 % 2147483647) % 7 + 1)
    assert got[user_id[100000000000000]] == (10 % 3 + 1, 5 % 7 + 1)
    assert got[user_id[8]] == (2 % 3 + 1, 3 % 7 + 1)  # the later line
    assert got[user_id[9]] == (1, 1)  # unknown user: Gender 0, Age 0
    profile.write_text("7\t1\t5\n8\t1\n")
    with pytest.raises(DataError, match=r"userid_profile.txt: line 2: not a user profile line"):
        prepare(fmt, tmp_path / "training.txt", tmp_path / "o2", prepare_settings(seed=1), profile_path=profile)


def test_failing_early_leaves_no_reader_thread(tmp_path):
    raw = tmp_path / "train.txt"
    raw.write_text(("x\ty\n" + criteo_line(CRITEO_ROWS[0])) * 3000)
    before = threading.active_count()
    for _ in range(3):
        with pytest.raises(DataError, match="max_bad_rows=2"):
            prepare(
                get_format("criteo"), raw, tmp_path / "out", prepare_settings(seed=1, max_bad_rows=2, block_size=4096)
            )
    assert threading.active_count() == before
