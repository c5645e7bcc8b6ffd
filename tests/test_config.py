"""Schema validation: defaults filled, every violation named."""

from __future__ import annotations

import copy
import re

import pytest
import yaml

from sigeo.config import ROOT, dataset_config, load_config, load_settings
from sigeo.errors import ConfigError


def base() -> dict:
    return {"datasets": {"demo": {"format": "criteo", "source": "synthetic", "synthetic": {"rows": 100}}}}


def test_defaults_are_filled():
    config = load_config(base())
    assert config["seed"] == 2023
    demo = config["datasets"]["demo"]
    assert demo["max_bad_rows"] == 1000 and demo["keep_id"] is False
    assert demo["synthetic"]["positive_rate"] == 0.25


def test_shipped_config_is_valid():
    settings = load_settings(ROOT / "config" / "config.yaml")
    assert settings.datasets["demo"].spec.synthetic.rows == 100000


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        (lambda c: c.update(bogus=1), "bogus"),
        (lambda c: c["datasets"].update({"Bad-Name": c["datasets"]["demo"]}), "Bad-Name"),
        (lambda c: c["datasets"]["demo"].update(format="parquet"), "parquet"),
        (lambda c: c["datasets"]["demo"].update(source="https://x.org/train.txt"), "sha256"),
        (lambda c: c["datasets"]["demo"]["synthetic"].update(rows="many"), "many"),
        (lambda c: c["datasets"]["demo"].pop("synthetic"), "synthetic"),
        (lambda c: c["datasets"]["demo"].update(format="kdd", source="http://h/t.txt", sha256="a" * 64), "profile"),
    ],
)
def test_violations_name_the_key(change, needle):
    config = copy.deepcopy(base())
    change(config)
    with pytest.raises(ConfigError, match=needle):
        load_config(config)


def test_the_papers_per_data_set_settings_reach_only_their_data_set():
    """The reference's scripts: warm-up batch 512 / 512 / 1024 rows, full-path mixing over 15,000 /
    12,500 / 20,000 steps, one-shot fine-tuning in batches of 512 / 512 / 1024 and scored on 150 /
    125 / 175 validation batches (Criteo / Avazu / KDD); everything else shared."""
    config = load_config(ROOT / "config" / "paper.yaml")
    seen = {name: dataset_config(config, name) for name in ("criteo", "avazu", "kdd")}
    expected = {"criteo": (512, 15000, 512, 150), "avazu": (512, 12500, 512, 125), "kdd": (1024, 20000, 1024, 175)}
    for name, (batch, mixing, probe_batch, eval_batches) in expected.items():
        warmup, proxy = seen[name]["warmup"], seen[name]["proxy"]
        assert (warmup["batch_size"], warmup["full_path_steps"]) == (batch, mixing), name
        assert (proxy["probe_batch_size"], proxy["eval_batches"]) == (probe_batch, eval_batches), name
    for section in ("search", "final", "data", "devices"):
        assert seen["kdd"][section] == seen["criteo"][section] == config[section], section
    assert {k: v for k, v in seen["kdd"]["warmup"].items() if k not in ("batch_size", "full_path_steps")} == {
        k: v for k, v in config["warmup"].items() if k not in ("batch_size", "full_path_steps")
    }
    assert config["warmup"]["batch_size"] == 512  # the section itself is left as it is


def test_an_override_changes_only_its_keys_and_no_default_is_filled_into_it():
    config = base()
    config["datasets"]["demo"]["overrides"] = {"final": {"lr": 0.5}}
    config = load_config(config)
    assert config["datasets"]["demo"]["overrides"] == {"final": {"lr": 0.5}}
    final = dataset_config(config, "demo")["final"]
    assert final == {**config["final"], "lr": 0.5} and config["final"]["lr"] == 0.12


def test_dataset_paths():
    url, profile = "https://example.org/data/train.txt.gz", "https://example.org/data/users.txt"
    entry = {"format": "kdd", "source": url, "sha256": "a" * 64, "profile": profile, "profile_sha256": "b" * 64}
    local = {"format": "criteo", "source": "/data/criteo/train.txt"}
    specs = {name: s.spec for name, s in load_settings({"datasets": {"k": entry, "c": local}}).datasets.items()}
    spec = specs["k"]
    assert spec.raw_path() == "results/raw/k/download/train.txt.gz"
    assert spec.profile_path() == "results/raw/k/download/users.txt"
    assert spec.downloads() == {"train.txt.gz": (url, "a" * 64), "users.txt": (profile, "b" * 64)}
    local = specs["c"]
    assert local.raw_path() == "/data/criteo/train.txt" and local.profile_path() is None


def schema_keys(node: dict, prefix: str) -> dict[str, str | None]:
    """Every key under ``node``'s properties, dotted (``warmup.lr``), following the schema's nesting,
    with its description (None where it has none)."""
    keys = {}
    for name, sub in node.get("properties", {}).items():
        dotted = f"{prefix}{name}"
        keys[dotted] = sub.get("description")
        keys |= schema_keys(sub, f"{dotted}.")
    return keys


def readme_rows() -> dict[str, str]:
    """config/README.md's key rows: key -> its meaning cell (the first row of a key that is listed twice)."""
    rows: dict[str, str] = {}
    for line in (ROOT / "config" / "README.md").read_text().splitlines():
        match = re.fullmatch(r"\| `([^`]+)` \| .*? \| .*? \| (.*) \|", line)
        if match:
            rows.setdefault(match.group(1), match.group(2))
    return rows


def test_config_readme_documents_every_schema_key():
    """config/README.md is the users' list of keys: each key of config/schema.yaml has a description
    there, and its row (a section its heading) says exactly that description."""
    schema = yaml.safe_load((ROOT / "config" / "schema.yaml").read_text())
    keys = schema_keys(schema, "") | schema_keys(schema["$defs"]["dataset"], "datasets.<name>.")
    readme = (ROOT / "config" / "README.md").read_text()
    rows = readme_rows()
    missing = [key for key in keys if key not in rows and f"### `{key}`" not in readme]
    undescribed = [key for key, text in keys.items() if not text]
    differing = [key for key in rows if key in keys and " ".join(keys[key].split()) != " ".join(rows[key].split())]
    assert len(keys) > 100 and not missing and not undescribed and not differing
