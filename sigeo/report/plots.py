"""Figures with readable defaults, saved atomically as PNG and PDF (or whatever the paths' suffixes say)."""

from __future__ import annotations

import os

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import seaborn as sns
from matplotlib.figure import Figure

from ..io import atomic_path

DPI = 150


def subplots(nrows: int = 1, ncols: int = 1, *, panel: tuple[float, float] = (4.0, 3.0), **kwargs):
    """``plt.subplots`` in the project's style: a white grid, constrained layout, ``panel`` inches per axes."""
    sns.set_theme(style="whitegrid", context="paper", font_scale=1.1)
    kwargs.setdefault("figsize", (panel[0] * ncols, panel[1] * nrows))
    kwargs.setdefault("layout", "constrained")
    kwargs.setdefault("squeeze", False)
    return plt.subplots(nrows, ncols, **kwargs)


def save_figure(fig: Figure, *paths: str | os.PathLike, dpi: int = DPI) -> None:
    """Save ``fig`` to every path (format from the suffix), atomically, then close it.

    The layout is the figure's own (constrained for :func:`subplots`), and the pixel size of a raster
    file is exactly figsize × dpi (no bbox cropping), so reports can rely on it.
    """
    for path in paths:
        suffix = os.fspath(path).rsplit(".", 1)[-1]
        with atomic_path(path, f".{suffix}") as tmp:
            fig.savefig(tmp, format=suffix, dpi=dpi)
    plt.close(fig)
