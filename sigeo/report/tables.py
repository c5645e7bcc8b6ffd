"""One table, several formats: CSV for machines (full precision), Markdown/LaTeX/HTML for people."""

from __future__ import annotations

import os

import pandas as pd

from ..io import atomic_path, write_text

PathLike = str | os.PathLike


def write_table(
    df: pd.DataFrame,
    csv: PathLike | None = None,
    md: PathLike | None = None,
    tex: PathLike | None = None,
    html: PathLike | None = None,
    *,
    digits: int = 3,
    index: bool = False,
) -> None:
    """Write ``df`` to each given path; floats keep full precision in CSV and ``digits`` decimals elsewhere."""
    fmt = f"{{:.{digits}f}}"
    if csv is not None:
        with atomic_path(csv, ".csv") as tmp:
            df.to_csv(tmp, index=index)
    if md is not None:
        write_text(md, markdown(df, digits, index) + "\n")
    if tex is not None:
        write_text(tex, df.to_latex(index=index, float_format=fmt.format, na_rep="--"))
    if html is not None:
        write_text(html, df.to_html(index=index, float_format=fmt.format, na_rep="–", border=0) + "\n")


def formatted(df: pd.DataFrame, digits: int = 3) -> pd.DataFrame:
    """Float columns as strings with ``digits`` decimals (NaN as "–"); other columns untouched.

    Markdown is written from these strings verbatim: tabulate would re-parse numbers and print an
    integer column as floats once a frame mixes both.
    """
    fmt = f"{{:.{digits}f}}"
    return df.apply(
        lambda col: col.map(lambda v: "–" if pd.isna(v) else fmt.format(v)) if col.dtype.kind == "f" else col
    )


def markdown(df: pd.DataFrame, digits: int = 3, index: bool = False) -> str:
    """A Markdown table: floats with ``digits`` decimals, "|" in names and cells escaped."""

    def escape(value: object) -> object:
        return value.replace("|", "\\|") if isinstance(value, str) else value

    cells = formatted(df, digits).map(escape).rename(columns=escape)
    return cells.to_markdown(index=index, disable_numparse=True, stralign="right")
