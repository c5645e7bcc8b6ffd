"""The theory rules end to end on a tiny MNIST written here: jobs per width, table, plots, report."""

from __future__ import annotations

import gzip
import struct

import matplotlib.image as mpimg
import numpy as np
import pandas as pd
import pytest
from conftest import run_snakemake, write_config

from sigeo.study.mnist import MNIST_FILES


def write_tiny_mnist(folder, rng) -> None:
    """IDX files of 4×4 uint8 images whose brightness pattern depends on the label (gzip for test)."""
    folder.mkdir()
    patterns = rng.integers(0, 256, size=(10, 16))
    for split, n in (("", 320), ("_test", 80)):
        labels = rng.integers(0, 10, n).astype(np.uint8)
        images = np.clip(patterns[labels] + rng.normal(0, 40, (n, 16)), 0, 255).astype(np.uint8).reshape(n, 4, 4)
        for key, array in ((f"x{split}", images), (f"y{split}", labels)):
            data = struct.pack(">BBBB", 0, 0, 8, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
            data += array.tobytes()
            name = MNIST_FILES[key]
            (folder / (f"{name}.gz" if split else name)).write_bytes(gzip.compress(data) if split else data)


@pytest.mark.slow
def test_theory_rules_run_in_parallel_and_report(tmp_path, demo_config):
    write_tiny_mnist(tmp_path / "mnist", np.random.default_rng(0))
    config = {
        **demo_config,
        "theory": {"mnist_dir": str(tmp_path / "mnist"), "widths": [2, 4, 8], "repeats": 3, "epochs": 1,
                   "batch_size": 32},
    }  # fmt: skip
    write_config(tmp_path, config)
    target = "results/tables/theory_correlation.csv"
    run_snakemake(tmp_path, "--cores", "2", target)
    table = pd.read_csv(tmp_path / target)
    assert list(table["level"]) == [0.0, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0] and (table["n"] == 9).all()
    assert table.filter(like="_spearman").notna().all().all()
    runs = pd.read_csv(tmp_path / "results/theory/runs.csv")
    assert sorted(runs["width"].unique()) == [2, 4, 8] and len(runs) == 3 * 3 * 7
    for width in (2, 4, 8):
        assert (tmp_path / f"benchmarks/theory/h{width}.tsv").exists()
    assert "fidelity check" in (tmp_path / "logs/theory/aggregate.log").read_text()
    html = (tmp_path / "results/tables/theory_vs_readme.html").read_text()
    assert "<table" in html and "Fidelity checks" in html and "0.71" in html
    assert "\\begin{tabular}" in (tmp_path / "results/tables/theory_correlation.tex").read_text()
    scatter = mpimg.imread(tmp_path / "results/plots/theory_scatter.png")
    assert scatter.shape[0] > 1000 and scatter.shape[1] > 1500
    assert (tmp_path / "results/plots/theory_correlation_vs_warmup.pdf").read_bytes().startswith(b"%PDF")
    run_snakemake(tmp_path, "--report", "report.html", target)
    report = (tmp_path / "report.html").read_text()
    assert "Theory study" in report and "fidelity" in report.lower()
