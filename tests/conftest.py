"""Shared fixtures: paths, a Snakemake runner, small raw files written by hand."""

from __future__ import annotations

import functools
import gzip
import os
import struct
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest
import yaml

if TYPE_CHECKING:
    from sigeo.config import DatasetSettings
    from sigeo.data.prepare import PrepareSettings
    from sigeo.data.synthetic import SyntheticSpec

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake"]


@functools.cache
def default_settings() -> DatasetSettings:
    """What the pipeline's one builder (``sigeo.config.load_settings``) makes of the schema's defaults
    for a synthetic data set: the base that unit tests change with ``dataclasses.replace``."""
    from sigeo.config import load_settings

    config = {"datasets": {"tiny": {"format": "criteo", "source": "synthetic", "synthetic": {"rows": 1000}}}}
    return load_settings(config).datasets["tiny"]


def prepare_settings(**changes: object) -> PrepareSettings:
    """The prepare step's settings: the schema's defaults, ``changes`` applied."""
    return replace(default_settings().prepare, **changes)


def synthetic_spec(**changes: object) -> SyntheticSpec:
    """A synthetic data set's spec: the schema's defaults, ``changes`` applied."""
    return replace(default_settings().spec.synthetic, **changes)


def synthetic_dataset(root: Path, rows: int, seed: int = 5) -> Path:
    """A prepared synthetic Criteo-format data set of ``rows`` rows (20 tokens a field, tables of at most
    50 rows) under ``root``; returns its folder."""
    from sigeo.data.formats import get_format
    from sigeo.data.prepare import prepare
    from sigeo.data.synthetic import generate

    fmt = get_format("criteo")
    generate(fmt, synthetic_spec(rows=rows, seed=seed, max_vocab=20), root / "raw" / "train.txt", max_table_size=50)
    prepare(fmt, root / "raw" / "train.txt", root / "data", prepare_settings(seed=1, max_table_size=50))
    return root / "data"


def run_snakemake(
    workdir: Path, *args: str, check: bool = True, timeout: float | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """Run the project's Snakefile in ``workdir`` (a fresh folder with its own config); ``env`` adds variables."""
    cmd = [*SNAKEMAKE, "-s", str(ROOT / "Snakefile"), "-d", str(workdir), *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})})
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def write_config(workdir: Path, config: dict) -> Path:
    path = workdir / "config" / "config.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


@pytest.fixture
def one_thread():
    """For tests of tiny models: a second thread only adds synchronisation (and stalls on a busy machine)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def demo_config() -> dict:
    return yaml.safe_load((ROOT / "config" / "config.yaml").read_text())


def tiny_config(demo_config: dict) -> dict:
    """The demo config shrunk to seconds per job: 2 blocks, 3,000 rows, warm-up levels 0 and 50 %, SiGeo only
    (a random search of 2 candidates at 50 %, top-1), one epoch of final training, 3 correlation subnets,
    a 3-width theory grid.

    Widths of 16 and up, not the demo's: a training here is 2 Adagrad steps with no warm-up (a 2-step
    epoch has none), which can leave a subnet above the divergence limit, and the 3 subnets the demo's
    widths draw include two that it does, which would leave the study one usable subnet.
    """
    return {
        **demo_config,
        "datasets": {"tiny": {**demo_config["datasets"]["demo"], "synthetic": {"rows": 3000, "seed": 1,
                                                                                "max_vocab": 30}}},
        "num_blocks": 2,
        "space_widths": {"dense": [16, 32, 64, 128], "sparse": [16, 32]},
        "warmup_levels": [0.0, 0.5],
        "warmup": {**demo_config["warmup"], "batch_size": 256, "eval_rows": 256, "full_path_steps": 4, "epochs": 3},
        "final": {"lr": 0.01, "batch_size": 256, "epochs": 1, "max_epochs": 1, "max_train_rows": 512,
                  "eval_batch_size": 4096},
        "proxy": {**demo_config["proxy"], "probe_batch_size": 64, "probe_batches": 2},
        "proxies": ["sigeo"],
        "search": {"method": "random", "random_budget": 2, "top_k": 1, "levels": [0.5]},
        "correlation": {"num_subnets": 3, "proxies": ["sigeo", "zico", "params", "random"], "bootstrap": 50},
        "theory": {"widths": [2, 4, 8], "repeats": 3, "epochs": 1, "batch_size": 32},
    }  # fmt: skip


def write_tiny_mnist(folder: Path, rng: np.random.Generator) -> None:
    """IDX files of 4×4 uint8 images whose brightness pattern depends on the label (gzip for test)."""
    from sigeo.study.mnist import MNIST_FILES

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
