"""Report helpers: tables parse back, figures are real images of the expected size."""

from __future__ import annotations

import matplotlib.image as mpimg
import numpy as np
import pandas as pd

from sigeo.report.plots import save_figure, subplots
from sigeo.report.tables import write_table


def frame() -> pd.DataFrame:
    return pd.DataFrame(
        {"level": [0.0, 0.1], "proxy": ["loss", "mean |grad|"], "spearman": [0.123456789, np.nan], "n": [625, 7]}
    )


def test_write_table_all_formats(tmp_path):
    df = frame()
    out = {ext: tmp_path / f"t.{ext}" for ext in ("csv", "md", "tex", "html")}
    write_table(df, out["csv"], out["md"], out["tex"], out["html"])
    pd.testing.assert_frame_equal(pd.read_csv(out["csv"]), df)
    md = out["md"].read_text().splitlines()
    assert [cell.strip() for cell in md[0].split("|")[1:-1]] == ["level", "proxy", "spearman", "n"]
    assert md[2].split() == ["|", "0.000", "|", "loss", "|", "0.123", "|", "625", "|"]
    assert md[3].split() == ["|", "0.100", "|", "mean", "\\|grad\\|", "|", "–", "|", "7", "|"]
    tex = out["tex"].read_text()
    assert "\\begin{tabular}" in tex and "0.123" in tex and "--" in tex
    assert "<table" in out["html"].read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.csv", "t.html", "t.md", "t.tex"]  # no temp files


def test_save_figure_png_and_pdf(tmp_path):
    fig, axes = subplots(1, 2, panel=(2.0, 1.5))
    axes[0, 0].plot([0, 1], [1, 0], label="a")
    axes[0, 0].set(xlabel="x", ylabel="y")
    axes[0, 0].legend()
    save_figure(fig, tmp_path / "f.png", tmp_path / "f.pdf", dpi=100)
    image = mpimg.imread(tmp_path / "f.png")
    assert image.shape[:2] == (150, 400)  # (2 × 1.5 in, 2 × 2 in) at 100 dpi
    assert image[..., :3].std() > 0
    pdf = (tmp_path / "f.pdf").read_bytes()
    assert pdf.startswith(b"%PDF") and len(pdf) > 1000
