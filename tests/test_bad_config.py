"""Every kind of bad configuration stops the workflow at start with one line naming the key.

Each case edits a valid tiny config and expects ``config key <key>: ...`` with the offending value.
Every case goes through what ``rules/common.smk`` runs at start (``load_settings``: the schema, then
every check across keys, then the typed settings) and the input check of ``prepare``; one case per
kind of check also goes through a real ``snakemake -n`` in its own folder (non-zero exit, the line in
its output): a dry run costs two to five CPU seconds of start-up, so not all of them do.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml
from conftest import ROOT, run_snakemake, write_config

from sigeo.config import load_settings
from sigeo.errors import ConfigError

Change = Callable[[dict, Path], None]


def setting(*path: str, value: object) -> Change:
    """Set the key at ``path`` (creating sections on the way) to ``value``."""

    def change(config: dict, _: Path) -> None:
        section = config
        for part in path[:-1]:
            section = section.setdefault(part, {})
        section[path[-1]] = value

    return change


def kdd_without_profile(config: dict, workdir: Path) -> None:
    (workdir / "kdd").mkdir()
    (workdir / "kdd" / "training.txt").write_text("0\t1\t1\t1\t1\t1\t1\t1\t1\t1\t1\t1\n")
    config["datasets"]["tiny"] = {"format": "kdd", "source": "kdd/training.txt"}


def renamed_dataset(config: dict, _: Path) -> None:
    config["datasets"]["Tiny-1"] = config["datasets"].pop("tiny")


MISSING_SOURCE = {"format": "criteo", "source": "nowhere/train.txt"}
URL_SOURCE = {"format": "criteo", "source": "https://example.org/train.txt"}
URL_PROFILE = {"format": "kdd", "source": "https://example.org/training.txt", "sha256": "a" * 64,
               "profile": "https://example.org/userid_profile.txt"}  # fmt: skip

# id -> (change, the key the output must name, further text its line must contain)
CASES: dict[str, tuple[Change, str, str]] = {
    "unknown-top-level": (setting("bogus", value=1), "bogus", "unknown key"),
    "unknown-dataset-key": (setting("datasets", "tiny", "bogus", value=1), "datasets.tiny.bogus", "unknown key"),
    "unknown-synthetic-key": (
        setting("datasets", "tiny", "synthetic", "bogus", value=1),
        "datasets.tiny.synthetic.bogus",
        "unknown",
    ),
    "unknown-warmup-key": (setting("warmup", "bogus", value=1), "warmup.bogus", "unknown key"),
    "unknown-final-key": (setting("final", "bogus", value=1), "final.bogus", "unknown key"),
    "unknown-devices-key": (setting("devices", "bogus", value=1), "devices.bogus", "unknown key"),
    "unknown-proxy-key": (setting("proxy", "bogus", value=1), "proxy.bogus", "unknown key"),
    "unknown-search-key": (setting("search", "bogus", value=1), "search.bogus", "unknown key"),
    "unknown-theory-key": (setting("theory", "bogus", value=1), "theory.bogus", "unknown key"),
    "unknown-override-key": (
        setting("datasets", "tiny", "overrides", "warmup", "bogus", value=1),
        "datasets.tiny.overrides.warmup.bogus",
        "unknown key (allowed here: batch_size, lr,",
    ),
    "unknown-override-section": (
        setting("datasets", "tiny", "overrides", "devices", value={}),
        "datasets.tiny.overrides.devices",
        "unknown key (allowed here: warmup, proxy, search, final)",
    ),
    "override-out-of-range": (
        setting("datasets", "tiny", "overrides", "proxy", "eval_batches", value=0),
        "datasets.tiny.overrides.proxy.eval_batches",
        "0 is less than the minimum of 1",
    ),
    "override-of-a-run-wide-key": (
        setting("datasets", "tiny", "overrides", "search", "top_k", value=3),
        "datasets.tiny.overrides.search.top_k",
        "one value for the whole run: set search.top_k instead",
    ),
    "wrong-type-seed": (setting("seed", value="seven"), "seed", "'seven' is not of type 'integer'"),
    "wrong-type-nested": (setting("warmup", "lr", value="fast"), "warmup.lr", "'fast' is not of type 'number'"),
    "wrong-type-section": (setting("search", value=[1]), "search", "is not of type 'object'"),
    "wrong-type-dataset": (setting("datasets", "tiny", "keep_id", value="yes"), "datasets.tiny.keep_id", "'yes'"),
    "level-above-one": (setting("warmup_levels", value=[0.0, 1.5]), "warmup_levels[1]", "1.5 is greater than"),
    "level-below-zero": (setting("warmup_levels", value=[-0.1, 1.0]), "warmup_levels[0]", "-0.1 is less than"),
    "search-level-above-one": (setting("search", "levels", value=[2]), "search.levels[0]", "2 is greater than"),
    "dataset-name": (renamed_dataset, "datasets.Tiny-1", "does not match"),
    "unknown-space": (setting("spaces", value=["small", "huge"]), "spaces[1]", "'huge' is not one of"),
    "unknown-matmul-precision": (
        setting("devices", "matmul_precision", value="low"),
        "devices.matmul_precision",
        "'low' is not one of",
    ),
    "missing-source": (setting("datasets", "tiny", value=MISSING_SOURCE), "datasets.tiny.source", "nowhere/train.txt"),
    "missing-profile": (kdd_without_profile, "datasets.tiny.profile", "kdd/userid_profile.txt does not exist"),
    "url-without-sha256": (setting("datasets", "tiny", value=URL_SOURCE), "datasets.tiny.sha256", "required"),
    "profile-url-without-sha256": (
        setting("datasets", "tiny", value=URL_PROFILE),
        "datasets.tiny.profile_sha256",
        "required",
    ),
    "unknown-proxy": (setting("proxies", value=["sigeo", "fancy"]), "proxies[1]", "unknown proxy 'fancy'; known"),
    "unknown-correlation-proxy": (
        setting("correlation", "proxies", value=["zico", "zeco"]),
        "correlation.proxies[1]",
        "unknown proxy 'zeco'; known",
    ),
    "proxy-name-pattern": (setting("proxies", value=["SiGeo"]), "proxies[0]", "'SiGeo' does not match"),
    "search-level-not-warmed-up": (
        setting("search", "levels_by_proxy", value={"sigeo": [0.5]}),
        "search.levels_by_proxy.sigeo[0]",
        "0.5 is not in warmup_levels",
    ),
    "levels-for-unused-proxy": (
        setting("search", "levels_by_proxy", value={"zico": [0.0]}),
        "search.levels_by_proxy.zico",
        "not one of the proxies",
    ),
    "unknown-sigeo-mode": (setting("proxy", "sigeo_mode", value="exact"), "proxy.sigeo_mode", "'exact' is not one of"),
    "unknown-theory-mode": (setting("theory", "mode", value="exact"), "theory.mode", "'exact' is not one of"),
    "sample-size-above-population": (
        setting("search", "sample_size", value=17),
        "search.sample_size",
        "sample_size 17 exceeds init_population 16",
    ),
    "overridden-population-below-sample-size": (
        setting("datasets", "tiny", "overrides", "search", "init_population", value=4),
        "datasets.tiny.overrides.search.init_population",
        "sample_size 8 exceeds init_population 4",
    ),
    "informative-vocab-above-max-vocab": (
        setting("datasets", "tiny", "synthetic", value={"rows": 1000, "max_vocab": 20, "informative_vocab": 40}),
        "datasets.tiny.synthetic.informative_vocab",
        "40 exceeds max_vocab (20)",
    ),
    "informative-vocab-above-table": (
        setting("datasets", "tiny", "max_table_size", value=16),
        "datasets.tiny.synthetic.informative_vocab",
        "20 tokens do not fit tables capped at max_table_size 16",
    ),
    "one-informative-field": (
        setting("datasets", "tiny", "synthetic", "informative_fields", value=1),
        "datasets.tiny.synthetic.informative_fields",
        "1 is less than the minimum of 2",
    ),
}


def base_config() -> dict:
    """The shipped demo config on a tiny synthetic dataset, searching with SiGeo only."""
    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    config["datasets"] = {"tiny": {**config["datasets"]["demo"], "synthetic": {"rows": 1000, "seed": 1}}}
    config["proxies"] = ["sigeo"]
    config["search"]["levels_by_proxy"] = {}
    return config


DRY_RUNS = [  # one per kind of message: the schema's four, overrides, the registry, the search plan, the checks
    # across keys, the input check
    "unknown-synthetic-key",
    "unknown-override-key",
    "level-above-one",
    "dataset-name",
    "url-without-sha256",
    "unknown-proxy",
    "search-level-not-warmed-up",
    "sample-size-above-population",
    "missing-source",
]


def start_up(config: dict) -> None:
    """What ``rules/common.smk`` runs at start, then the ``prepare`` rule's input check."""
    for settings in load_settings(config).datasets.values():
        settings.spec.check_local_files()


@pytest.mark.parametrize("name", CASES)
def test_start_up_checks_name_the_key(name, tmp_path, monkeypatch):
    change, key, text = CASES[name]
    config = base_config()
    change(config, tmp_path)
    monkeypatch.chdir(tmp_path)  # local paths are relative to Snakemake's working directory
    with pytest.raises(ConfigError) as info:
        start_up(config)
    message = str(info.value)
    assert message.startswith(f"config key {key}: ") and "\n" not in message, message
    assert text in message, message


@pytest.fixture(scope="module")
def dry_runs(tmp_path_factory) -> dict[str, subprocess.CompletedProcess]:
    """The dry runs, two at a time."""

    def dry_run(name: str) -> subprocess.CompletedProcess:
        workdir = tmp_path_factory.mktemp(name)
        config = base_config()
        CASES[name][0](config, workdir)
        write_config(workdir, config)
        return run_snakemake(workdir, "-n", check=False, timeout=300)

    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(zip(DRY_RUNS, pool.map(dry_run, DRY_RUNS), strict=True))


@pytest.mark.parametrize("name", DRY_RUNS)
def test_dry_run_fails_at_start_naming_the_key(dry_runs, name):
    _, key, text = CASES[name]
    proc = dry_runs[name]
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out
    line = next((line for line in out.splitlines() if line.lstrip().startswith(f"ConfigError: config key {key}:")
                 or line.startswith(f"config key {key}:")), None)  # fmt: skip
    assert line is not None, out
    assert text in line, line


def test_the_base_config_passes(tmp_path, monkeypatch):
    """The cases fail because of their edit, not because of the config they edit."""
    monkeypatch.chdir(tmp_path)
    start_up(base_config())
