"""Using a found model: `sigeo predict` on raw files of each format, reloaded weights, the exported program
without the package, the test split's predictions, and one-line errors for every mismatch.

The oracle for raw-file predictions is `prepare` itself: the same file prepared into a data set, its rows
matched to their lines through the prepared split, and evaluated through the same network.
"""

from __future__ import annotations

import dataclasses
import gzip
import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from conftest import ROOT, prepare_settings

from sigeo.__main__ import main
from sigeo.data.formats import get_format
from sigeo.data.prepare import StratifiedSplitter, prepare
from sigeo.data.store import SPLITS, Dataset
from sigeo.data.tabular import TabularFormat, prepare_tabular
from sigeo.export import ClickProbability
from sigeo.io import write_json
from sigeo.predict import PredictSettings, export_model, load_model, predict_raw, predict_split
from sigeo.space.choice import FULL, sample_architecture
from sigeo.space.subnet import StandaloneNet

SEED = 4
ROWS = 120
RUN = Path("results/final/toy/full/w0.1/sigeo")


def raw_lines(fmt, rng: np.random.Generator) -> list[str]:
    """ROWS good rows of ``fmt`` (header excluded): 0/1 labels, small dense integers, hex or decimal tokens."""
    lines = []
    for _ in range(ROWS):
        tokens = []
        for column in fmt.columns:
            if column == fmt.label_column:
                tokens.append(str(rng.integers(0, 2)))
            elif column in fmt.dense_features:
                tokens.append(str(rng.integers(0, 60)))
            elif fmt.name == "criteo":
                tokens.append(f"{rng.integers(0, 2**32):08x}")
            else:
                tokens.append(str(rng.integers(0, 40)))  # KDD UserIDs 0..39 meet the profile's users
        lines.append(fmt.delimiter.join(tokens) + "\n")
    return lines


#: Bad rows planted at these 0-based data-row positions: a wrong field count, a bad label, an empty line.
BAD_AT = (3, 7, 12)


def write_raw(path: Path, fmt, rng: np.random.Generator) -> list[int]:
    """A raw file of ``fmt`` with bad rows at ``BAD_AT``; returns their 1-based line numbers."""
    lines = raw_lines(fmt, rng)
    lines[BAD_AT[0]] = "1" + fmt.delimiter + "2\n"
    tokens = lines[BAD_AT[1]].split(fmt.delimiter)
    tokens[fmt.columns.index(fmt.label_column)] = "x"
    lines[BAD_AT[1]] = fmt.delimiter.join(tokens)
    lines[BAD_AT[2]] = "\n"
    header = fmt.delimiter.join(fmt.columns) + "\n" if fmt.header else ""
    text = header + "".join(lines)
    if path.suffix == ".gz":
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    return [i + 1 + fmt.header for i in BAD_AT]


def make_run(root: Path, fmt_name: str, raw_name: str) -> dict:
    """A prepared data set and a 'trained' model (random weights) laid out as the workflow lays them out."""
    fmt = get_format(fmt_name)
    rng = np.random.default_rng(SEED)
    raw = root / raw_name
    bad_lines = write_raw(raw, fmt, rng)
    profile = None
    if fmt_name == "kdd":
        profile = root / "userid_profile.txt"
        profile.write_text("".join(f"{u}\t{u % 3}\t{u % 7}\n" for u in range(0, 40, 2)))
    meta = prepare(fmt, raw, root / "results/data/toy", prepare_settings(seed=SEED, max_table_size=50), profile)
    net, run = save_model(root, meta)
    return {
        "raw": raw,
        "bad_lines": bad_lines,
        "good_lines": [i + 1 + fmt.header for i in range(ROWS) if i not in BAD_AT],
        "meta": meta,
        "net": net,
        "run": run,
        "root": root,
    }


def save_model(root: Path, meta: dict) -> tuple[StandaloneNet, Path]:
    """A 'trained' model (random weights) for the data set prepared into ``root``, saved as the workflow saves it;
    returns it and its run folder."""
    arch = sample_architecture(np.random.default_rng(SEED), FULL, 3)
    torch.manual_seed(SEED)
    net = StandaloneNet(arch, len(meta["dense_features"]), meta["table_sizes"]).eval()
    with torch.no_grad():  # random weights give logits in the tens; scale them to about ±1, as a trained model's
        train = Dataset.open(root / "results/data/toy").split("train")
        logits = net(*(torch.from_numpy(a) for a in train.batch(0, len(train))[:2]))
        net.head.weight /= logits.std()
        net.head.bias -= logits.mean() / logits.std()
    run = root / RUN
    (run / "2").mkdir(parents=True)
    torch.save(net.state_dict(), run / "2" / "model.pt")
    write_json(run / "2" / "metrics.json", {"arch_hash": arch.hash(), "net": {}})
    top = root / "results/search/toy/full/w0.1/sigeo/top"
    top.mkdir(parents=True)
    write_json(top / "2.json", arch.to_dict())
    write_json(run / "best.json", {"rank": 2, "arch": arch.to_dict(), "model": str(run / "2" / "model.pt")})
    return net, run


@pytest.fixture
def criteo(tmp_path, one_thread):
    return make_run(tmp_path, "criteo", "day.txt")


def prepared_probabilities(root: Path, net: StandaloneNet, shift_first_id: bool = False) -> dict[str, np.ndarray]:
    """The model's probabilities for each prepared split; ``shift_first_id`` replaces each row's first
    categorical id by the next one of its table (what a hashing slip would do)."""
    model = ClickProbability(net)
    ds = Dataset.open(root / "results/data/toy")
    out = {}
    with torch.no_grad():
        for split in SPLITS:
            dense, sparse, _ = ds.split(split).batch(0, len(ds.split(split)))
            if shift_first_id:
                sparse[:, 0] = sparse[:, 0] % (ds.table_sizes[0] - 1) + 1
            out[split] = model(torch.from_numpy(dense), torch.from_numpy(sparse)).numpy()
    return out


def assert_matches_prepare(csv: pd.DataFrame, run: dict) -> None:
    """Each good line's probability equals that of its prepared row: the k-th good line dealt to a split is
    that split's row k (prepare keeps file order inside a split and deals by label with its seed)."""
    assert csv["line"].tolist() == run["good_lines"]
    split_of = StratifiedSplitter(SEED).assign(csv["label"].to_numpy())
    expected = prepared_probabilities(run["root"], run["net"])
    ds = Dataset.open(run["root"] / "results/data/toy")
    for s, split in enumerate(SPLITS):
        rows = csv[split_of == s]
        np.testing.assert_array_equal(rows["label"].to_numpy(), ds.split(split).label)
        np.testing.assert_allclose(rows["probability"].to_numpy(), expected[split], rtol=1e-5)
    # the tolerance (float32 sums in another order) is far below what one id hashed differently changes
    slipped = prepared_probabilities(run["root"], run["net"], shift_first_id=True)["train"]
    assert np.median(np.abs(slipped / expected["train"] - 1)) > 1e-3


@pytest.mark.parametrize(("fmt_name", "raw_name"), [("criteo", "day.txt"), ("avazu", "train.csv.gz"), ("kdd", "t.txt")])
def test_predict_raw_lines_and_probabilities_match_prepare(tmp_path, one_thread, capsys, fmt_name, raw_name):
    run = make_run(tmp_path, fmt_name, raw_name)
    assert run["meta"]["bad_lines"] == run["bad_lines"]
    out = tmp_path / "pred.csv"
    assert main(["predict", str(run["run"] / "best.json"), str(run["raw"]), "-o", str(out)]) == 0
    message = capsys.readouterr().err
    lines = ", ".join(map(str, run["bad_lines"]))
    assert message.startswith(f"wrote {ROWS - 3} predictions to {out}; 3 bad rows (lines {lines}; first: line ")
    assert_matches_prepare(pd.read_csv(out), run)


def test_small_blocks_and_batches_give_the_same_file(criteo):
    """Blocks of about eight rows and batches of 7 write what one block and one batch write."""
    meta = criteo["root"] / "results/data/toy/meta.json"
    model = load_model(criteo["run"] / "best.json", meta)
    one, many = criteo["root"] / "one.csv", criteo["root"] / "many.csv"
    predict_raw(model, meta, criteo["raw"], one, PredictSettings())
    report = predict_raw(model, meta, criteo["raw"], many, PredictSettings(batch_size=7, block_size=2048))
    assert report == {"rows": ROWS - 3, "bad_rows": 3, "bad_lines": criteo["bad_lines"],
                      "bad_examples": criteo["meta"]["bad_examples"]}  # fmt: skip
    a, b = pd.read_csv(one), pd.read_csv(many)
    assert a[["line", "label"]].equals(b[["line", "label"]])
    np.testing.assert_allclose(a["probability"], b["probability"], rtol=1e-5)  # float32 sums over other batches


def test_python_dash_m_and_console_script(criteo):
    out = criteo["root"] / "pred.csv"
    argv = ["predict", str(criteo["run"] / "best.json"), str(criteo["raw"]), "-o", str(out)]
    proc = subprocess.run(
        [sys.executable, "-m", "sigeo", *argv],
        capture_output=True, text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert_matches_prepare(pd.read_csv(out), criteo)
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts == {"sigeo": "sigeo.__main__:main"}


def test_reloaded_weights_give_identical_predictions(criteo):
    meta = criteo["root"] / "results/data/toy/meta.json"
    expected = prepared_probabilities(criteo["root"], criteo["net"])["test"]
    for source in (criteo["run"] / "best.json", criteo["run"] / "2" / "model.pt"):
        out = criteo["root"] / f"{source.stem}.csv"
        assert predict_split(load_model(source, meta), meta.parent, "test", out, batch_size=4096) == len(expected)
        csv = pd.read_csv(out)
        assert csv["row"].tolist() == list(range(len(expected)))
        assert csv["label"].tolist() == Dataset.open(meta.parent).split("test").label.tolist()
        np.testing.assert_array_equal(csv["probability"].to_numpy(np.float32), expected)


def test_best_json_without_model_key_uses_the_layout(criteo):
    """A best.json from before the "model" key (or read from another folder) finds <its folder>/<rank>/model.pt."""
    best = json.loads((criteo["run"] / "best.json").read_text())
    del best["model"]
    write_json(criteo["run"] / "best.json", best)
    meta = criteo["root"] / "results/data/toy/meta.json"
    model = load_model(criteo["run"] / "best.json", meta)
    assert torch.equal(model.net.stem.embedding.weight, criteo["net"].stem.embedding.weight)


CHILD = """
import importlib.util, sys
sys.path.append(sys.argv[1])  # torch's site-packages, without running its .pth files (the editable sigeo)
assert importlib.util.find_spec("sigeo") is None, "sigeo is importable"
import numpy as np, torch
predict = torch.export.load(sys.argv[2]).module()
dense, sparse = np.load(sys.argv[3]), np.load(sys.argv[4]).astype(np.int64)
with torch.no_grad():
    all_rows = predict(torch.from_numpy(dense), torch.from_numpy(sparse))
    one_row = predict(torch.from_numpy(dense[:1]), torch.from_numpy(sparse[:1]))
np.save(sys.argv[5], np.concatenate([all_rows.numpy(), one_row.numpy()]))
"""


def test_exported_program_runs_without_the_package(criteo, tmp_path):
    meta = criteo["root"] / "results/data/toy/meta.json"
    program = criteo["run"] / "model.pt2"
    export_model(criteo["run"] / "best.json", meta, program)
    away = tmp_path / "elsewhere"
    away.mkdir()
    test = meta.parent / "test"
    site = str(Path(torch.__file__).parents[1])
    args = [site, str(program), str(test / "dense.npy"), str(test / "sparse.npy"), str(away / "p.npy")]
    proc = subprocess.run([sys.executable, "-I", "-S", "-c", CHILD, *args], capture_output=True, text=True, cwd=away,
                          env={"OMP_NUM_THREADS": "1"})  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    expected = prepared_probabilities(criteo["root"], criteo["net"])["test"]
    got = np.load(away / "p.npy")
    assert got.dtype == np.float32 and len(got) == len(expected) + 1
    np.testing.assert_allclose(got, np.append(expected, expected[0]), rtol=1e-5, atol=1e-6)
    # and `sigeo predict --model model.pt2` reads it
    out = tmp_path / "pred.csv"
    assert main(["predict", str(program), str(criteo["raw"]), "-o", str(out), "--meta", str(meta)]) == 0
    csv, by_pt = pd.read_csv(out), tmp_path / "by_pt.csv"
    assert main(["predict", str(criteo["run"] / "best.json"), str(criteo["raw"]), "-o", str(by_pt)]) == 0
    np.testing.assert_allclose(csv["probability"], pd.read_csv(by_pt)["probability"], rtol=1e-5, atol=1e-6)
    assert csv["line"].tolist() == pd.read_csv(by_pt)["line"].tolist()


def one_line_error(capsys, argv: list[str], out: Path) -> str:
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"sigeo {argv[0]}: error: "), err
    assert not out.exists()
    return err


def test_mismatches_fail_with_one_line(criteo, tmp_path, capsys):
    root, run = criteo["root"], criteo["run"]
    best, meta, out = str(run / "best.json"), root / "results/data/toy/meta.json", tmp_path / "p.csv"
    predict = ["predict", best, str(criteo["raw"]), "-o", str(out)]

    avazu = tmp_path / "train.csv"
    write_raw(avazu, get_format("avazu"), np.random.default_rng(0))
    err = one_line_error(capsys, ["predict", best, str(avazu), "-o", str(out)], out)
    assert f"{avazu}: no usable rows up to line {ROWS + 1} ({ROWS + 1} bad; first: line 1: 1 fields, expected 40" in err

    err = one_line_error(capsys, [*predict, "--max-bad-rows", "2"], out)
    assert "more than max_bad_rows=2 bad rows; first: line 4: 2 fields, expected 40; line 8: field label" in err
    strict = tmp_path / "strict" / "meta.json"  # the data set's own limit is the default
    write_json(strict, {**criteo["meta"], "max_bad_rows": 1})
    err = one_line_error(capsys, [*predict, "--meta", str(strict)], out)
    assert "more than max_bad_rows=1 bad rows; first: line 4: 2 fields, expected 40; line 8: field label" in err

    err = one_line_error(capsys, ["predict", best, str(tmp_path / "nope.txt"), "-o", str(out)], out)
    assert f"{tmp_path / 'nope.txt'}: file not found" in err

    other = root / "other"
    prepare(get_format("criteo"), criteo["raw"], other, prepare_settings(seed=SEED, max_table_size=60))
    err = one_line_error(capsys, [*predict, "--meta", str(other / "meta.json")], out)
    assert f"its embedding tables have {sum(criteo['meta']['table_sizes'])} rows, {other / 'meta.json'}'s" in err

    program = run / "model.pt2"
    export_model(best, meta, program)
    err = one_line_error(capsys, ["predict", str(program), str(criteo["raw"]), "-o", str(out), "--meta",
                                  str(other / "meta.json")], out)  # fmt: skip
    assert "exported for another data set than" in err and "(its table_sizes differ)" in err

    outside = tmp_path / "model.pt2"
    outside.write_bytes(program.read_bytes())
    err = one_line_error(capsys, ["predict", str(outside), str(criteo["raw"]), "-o", str(out)], out)
    assert "not under the workflow's results/final/<dataset>/, so give --meta" in err

    wrong_arch = sample_architecture(np.random.default_rng(SEED + 1), FULL, 3)
    write_json(tmp_path / "arch.json", wrong_arch.to_dict())
    err = one_line_error(capsys, ["predict", str(run / "2" / "model.pt"), str(criteo["raw"]), "-o", str(out),
                                  "--arch", str(tmp_path / "arch.json")], out)  # fmt: skip
    assert "arch.json: not the architecture" in err and "(arch_hash differs)" in err

    write_json(tmp_path / "bad" / "meta.json", {"rows": {"train": 1}})
    err = one_line_error(capsys, [*predict, "--meta", str(tmp_path / "bad" / "meta.json")], out)
    assert "meta.json: not a prepared data set's meta.json (no 'format')" in err

    metrics = json.loads((run / "2" / "metrics.json").read_text())
    write_json(run / "2" / "metrics.json", {"arch_hash": metrics["arch_hash"]})
    err = one_line_error(capsys, predict, out)
    assert "metrics.json: has no 'net' (the network's settings)" in err
    write_json(run / "2" / "metrics.json", metrics)

    (run / "2" / "model.pt").write_bytes(b"not a zip")
    err = one_line_error(capsys, predict, out)
    assert f"{run / '2' / 'model.pt'}: not a state dict saved by torch.save" in err

    (run / "2" / "model.pt").unlink()
    err = one_line_error(capsys, predict, out)
    assert f"{run / '2' / 'model.pt'}: file not found (the trained weights)" in err


# ------------------------------------------------------------------------------------------------
# Tabular data sets

TABULAR = TabularFormat(
    label="clicked", at_least=None, dense_columns=("price", "age"), sparse_features=("user", "city")
)

#: The bad rows write_tabular plants at BAD_AT, as predict reports them (by line: the header is line 1).
TEXT_BAD = ["line 5: 7 fields, expected 6", "line 9: column clicked: not a number",
            "line 14: column price: not a finite number"]  # fmt: skip
PARQUET_BAD = ["line 4: column clicked: label is not 0 or 1", "line 8: column price: not a finite number",
               "line 13: column price: not a finite number"]  # fmt: skip


def tabular_frame(rng: np.random.Generator) -> pd.DataFrame:
    """ROWS good rows: the declared columns in another order than declared, UTF-8 and empty categoricals,
    negative dense values (log-transformed as 0), and a column nobody declared."""
    return pd.DataFrame(
        {
            "user": rng.integers(0, 60, ROWS),
            "clicked": rng.integers(0, 2, ROWS),
            "note": rng.random(ROWS),
            "price": rng.exponential(10, ROWS).round(3),
            "city": rng.choice(["Zürich", "Paris", "", "NYC", "-1"], ROWS),
            "age": rng.integers(-3, 90, ROWS),
        }
    )


def write_tabular(path: Path, df: pd.DataFrame) -> None:
    """``df`` with bad rows at ``BAD_AT`` as Parquet (row groups of 40 rows, so a file is several blocks) or as
    CSV/TSV text (plain or .gz)."""
    if path.suffix == ".parquet":
        bad = df.copy()
        bad.loc[BAD_AT[0], "clicked"] = 2
        bad.loc[list(BAD_AT[1:]), "price"] = [np.inf, -np.inf]
        pq.write_table(pa.Table.from_pandas(bad, preserve_index=False), path, row_group_size=40)
        return
    text = df.astype(str)
    text.loc[BAD_AT[1], "clicked"] = "x"
    text.loc[BAD_AT[2], "price"] = "cheap"
    sep = "\t" if ".tsv" in path.name else ","
    lines = text.to_csv(index=False, sep=sep).splitlines(keepends=True)
    lines[1 + BAD_AT[0]] = lines[1 + BAD_AT[0]].rstrip("\n") + sep + "extra\n"
    data = "".join(lines).encode()
    path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)


def make_tabular_run(root: Path, suffix: str) -> dict:
    """A tabular data set prepared from a generated file and a model for it, as ``make_run`` lays them out."""
    raw = root / f"logs{suffix}"
    write_tabular(raw, tabular_frame(np.random.default_rng(SEED)))
    meta = prepare_tabular(TABULAR, [raw], root / "results/data/toy", prepare_settings(seed=SEED, max_table_size=50))
    net, run = save_model(root, meta)
    first = 1 if suffix == ".parquet" else 2  # the number of the first data row
    return {
        "raw": raw,
        "bad_lines": [i + first for i in BAD_AT],
        "good_lines": [i + first for i in range(ROWS) if i not in BAD_AT],
        "meta": meta,
        "net": net,
        "run": run,
        "root": root,
    }


@pytest.mark.parametrize("suffix", [".csv", ".tsv.gz", ".parquet"])
def test_predict_tabular_lines_and_probabilities_match_prepare(tmp_path, one_thread, capsys, suffix):
    run = make_tabular_run(tmp_path, suffix)
    meta = run["root"] / "results/data/toy/meta.json"
    # prepare numbers data rows from 1; predict numbers a text file's lines (its header is line 1)
    assert [row + (suffix != ".parquet") for _, row in run["meta"]["bad_rows_at"]] == run["bad_lines"]
    assert run["meta"]["table_sizes"] == [50, 5] and run["meta"]["max_bad_rows"] == 1000
    out = tmp_path / "pred.csv"
    assert main(["predict", str(run["run"] / "best.json"), str(run["raw"]), "-o", str(out)]) == 0
    examples = PARQUET_BAD if suffix == ".parquet" else TEXT_BAD
    lines = ", ".join(map(str, run["bad_lines"]))
    assert capsys.readouterr().err == (
        f"wrote {ROWS - 3} predictions to {out}; 3 bad rows (lines {lines}; first: {'; '.join(examples)})\n"
    )
    assert_matches_prepare(pd.read_csv(out), run)
    # blocks of about 1 KiB (Parquet: its row groups of 40 rows) and batches of 7 write the same file
    small = tmp_path / "small.csv"
    report = predict_raw(load_model(run["run"] / "best.json", meta), meta, run["raw"], small,
                         PredictSettings(batch_size=7, block_size=1024))  # fmt: skip
    assert report == {"rows": ROWS - 3, "bad_rows": 3, "bad_lines": run["bad_lines"], "bad_examples": examples}
    a, b = pd.read_csv(out), pd.read_csv(small)
    assert a[["line", "label"]].equals(b[["line", "label"]])
    np.testing.assert_allclose(a["probability"], b["probability"], rtol=1e-5)


def test_tabular_columns_and_bad_rows_fail_with_one_line(tmp_path, one_thread, capsys):
    run = make_tabular_run(tmp_path, ".csv")
    best, out = str(run["run"] / "best.json"), tmp_path / "p.csv"
    df = tabular_frame(np.random.default_rng(0))

    no_city = tmp_path / "no_city.parquet"
    pq.write_table(pa.Table.from_pandas(df.drop(columns="city"), preserve_index=False), no_city)
    err = one_line_error(capsys, ["predict", best, str(no_city), "-o", str(out)], out)
    assert err.endswith(f"error: {no_city}: declared column 'city' not found; the file's columns: "
                        "user, clicked, note, price, age\n")  # fmt: skip

    no_label = tmp_path / "no_label.csv"
    df.drop(columns="clicked").to_csv(no_label, index=False)
    err = one_line_error(capsys, ["predict", best, str(no_label), "-o", str(out)], out)
    assert err.endswith(f"error: {no_label}: label column 'clicked' not found (predict needs it: write 0 where it is "
                        "unknown); the file's columns: user, note, price, city, age\n")  # fmt: skip

    strict = tmp_path / "strict" / "meta.json"  # the data set's own max_bad_rows is the default
    write_json(strict, {**run["meta"], "max_bad_rows": 1})
    err = one_line_error(capsys, ["predict", best, str(run["raw"]), "-o", str(out), "--meta", str(strict)], out)
    assert err.endswith(f"{run['raw']}: more than max_bad_rows=1 bad rows; first: {TEXT_BAD[0]}; {TEXT_BAD[1]}\n")

    header_only = tmp_path / "header.csv"
    header_only.write_text("user,clicked,note,price,city,age\n")
    err = one_line_error(capsys, ["predict", best, str(header_only), "-o", str(out)], out)
    assert err.endswith(f"{header_only}: no usable rows up to line 1 (0 bad)\n")


def test_tabular_meta_of_an_earlier_prepare_and_order_by(tmp_path, one_thread):
    """A meta.json written before prepare recorded ``dense_columns`` and ``max_bad_rows`` reads new files the
    same; a data set ordered by a column does not need it in new files (it only ordered the split)."""
    run = make_tabular_run(tmp_path, ".csv")
    meta = run["root"] / "results/data/toy/meta.json"
    model = load_model(run["run"] / "best.json", meta)
    fresh = tmp_path / "fresh.csv"
    tabular_frame(np.random.default_rng(1)).drop(columns="note").to_csv(fresh, index=False)
    predict_raw(model, meta, fresh, tmp_path / "now.csv", PredictSettings())

    earlier = {key: value for key, value in run["meta"].items() if key not in ("dense_columns", "max_bad_rows")}
    write_json(tmp_path / "earlier" / "meta.json", earlier)
    predict_raw(model, tmp_path / "earlier" / "meta.json", fresh, tmp_path / "earlier.csv", PredictSettings())
    assert (tmp_path / "earlier.csv").read_text() == (tmp_path / "now.csv").read_text()
    padded = {**earlier, "dense_features": ["dense_pad"]}  # a data set without dense columns
    assert TabularFormat.from_meta(padded, meta).dense_columns == ()

    ordered = dataclasses.replace(TABULAR, order_by="note")
    settings = prepare_settings(seed=SEED, max_table_size=50)
    assert prepare_tabular(ordered, [run["raw"]], tmp_path / "ordered", settings)["order_by"] == "note"
    predict_raw(model, tmp_path / "ordered" / "meta.json", fresh, tmp_path / "ordered.csv", PredictSettings())
    assert (tmp_path / "ordered.csv").read_text() == (tmp_path / "now.csv").read_text()
    assert len(pd.read_csv(tmp_path / "now.csv")) == ROWS
