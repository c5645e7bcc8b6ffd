"""Loading and validating the pipeline configuration; typed views of its sections.

``config/schema.yaml`` is the single source of defaults: Snakemake validates the config with it
at start, and Python callers (tests, benchmarks) go through :func:`load_config`, which uses the
same validator, so both see identical values.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

import yaml

from .data.formats import KDD_PROFILE_FILE, RawFormat, get_format
from .errors import ConfigError, DataError

if TYPE_CHECKING:
    from jsonschema import ValidationError

    from .data.tabular import TabularFormat

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT / "config" / "schema.yaml"
#: The NASRecNet architectures the paper's authors published (docs/reference.md §10), one per format and space.
NASREC_DIR = ROOT / "config" / "nasrec"


def validate_config(config: dict) -> dict:
    """Validate ``config`` in place against the schema (filling defaults); raise ConfigError naming the key."""
    from jsonschema import ValidationError
    from snakemake.exceptions import WorkflowError
    from snakemake.utils import validate

    try:
        validate(config, str(SCHEMA))
    except WorkflowError as exc:
        error = exc.__context__  # Snakemake raises its WorkflowError while handling jsonschema's error
        raise ConfigError(_describe(error) if isinstance(error, ValidationError) else str(exc)) from exc
    check_overrides(config)
    return config


#: Keys that decide which jobs exist (and so every data set's paths) or how data sets are compared:
#: one value for the whole run, never overridden.
RUN_WIDE = {"search": ("levels", "levels_by_proxy", "top_k", "repeats", "baselines", "claim_margin")}


def check_overrides(config: dict) -> None:
    """Check every data set's overrides against the schema of the section they override.

    The schema itself only says which sections an override may name: were it to reference the
    sections' own schemas, validation would fill every default into each override, and an override
    would then reset every key it does not set. Here each override is checked, without defaults,
    against its section's schema (unknown keys, types, ranges), so errors read as any other key's.
    """
    from jsonschema import Draft202012Validator

    sections = yaml.safe_load(SCHEMA.read_text())["properties"]
    for name, entry in config["datasets"].items():
        for section, values in (entry.get("overrides") or {}).items():
            prefix = ["datasets", name, "overrides", section]
            error = next(Draft202012Validator(sections[section]).iter_errors(values), None)
            if error is not None:
                raise ConfigError(_describe(error, prefix))
            for key in values:
                if key in RUN_WIDE.get(section, ()):
                    raise ConfigError(
                        f"config key {config_key([*prefix, key])}: decides which jobs run (or how data sets are "
                        f"compared), so it is one value for the whole run: set {section}.{key} instead"
                    )


def dataset_config(config: dict, name: str) -> dict:
    """``config`` as data set ``name``'s jobs see it: its overrides replace their sections' keys."""
    overrides = config["datasets"][name].get("overrides") or {}
    return {**config, **{section: {**config[section], **values} for section, values in overrides.items()}}


def _describe(error: ValidationError, prefix: Sequence[str] = ()) -> str:
    """A schema violation as one line that starts with the offending key (``warmup.lr``, ``spaces[0]``);
    ``prefix`` is where the validated part sits in the config."""
    path = [*prefix, *error.absolute_path]
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        unknown = sorted(set(error.instance) - set(error.schema.get("properties", {})))
        allowed = ", ".join(error.schema.get("properties", {}))
        return f"config key {config_key([*path, unknown[0]])}: unknown key (allowed here: {allowed})"
    if error.validator == "required" and isinstance(error.instance, dict):
        missing = [key for key in error.validator_value if key not in error.instance]
        return f"config key {config_key([*path, missing[0]])}: {error.message}"
    if "propertyNames" in error.schema_path:
        return f"config key {config_key([*path, error.instance])}: bad name, {error.message}"
    return f"config key {config_key(path)}: {error.message}"


def config_key(path: Sequence[str | int]) -> str:
    """``["datasets", "demo", "source"]`` -> ``datasets.demo.source``; list indices as ``[i]``."""
    key = ""
    for part in path:
        key += f"[{part}]" if isinstance(part, int) else f".{part}" if key else str(part)
    return key or "(top level)"


def check_proxies(config: dict) -> None:
    """Proxy names (only pattern-checked by the schema) against the registry; raise ConfigError naming the key."""
    from .proxies import get_proxy

    named = [(["proxies", i], name) for i, name in enumerate(config["proxies"])]
    named += [(["correlation", "proxies", i], name) for i, name in enumerate(config["correlation"]["proxies"] or [])]
    for path, name in named:
        try:
            get_proxy(name)
        except ConfigError as exc:
            raise ConfigError(f"config key {config_key(path)}: {exc}") from None


def load_config(source: str | os.PathLike | dict[str, Any]) -> dict:
    """Read (if a path) and validate a configuration."""
    config = yaml.safe_load(Path(source).read_text()) if not isinstance(source, dict) else source
    return validate_config(config)


@dataclass(frozen=True)
class DatasetSpec:
    """One entry of ``datasets:``: where its raw files come from and how to parse them."""

    name: str
    format: str
    source: str
    sha256: str | None
    profile: str | None
    profile_sha256: str | None
    keep_id: bool
    max_table_size: int | None
    max_bad_rows: int
    synthetic: dict | None
    label: str | dict | None = None
    dense: tuple[str, ...] = ()
    categorical: tuple[str, ...] = ()
    dense_transform: str = "log"
    order_by: str | None = None
    table_sizes: dict | None = None

    @classmethod
    def from_config(cls, name: str, entry: dict) -> DatasetSpec:
        tabular_only = [key for key in TABULAR_KEYS if key in entry]
        if entry["format"] != "tabular" and tabular_only:
            raise ConfigError(f"config key datasets.{name}.{tabular_only[0]}: only for format tabular")
        if entry["format"] == "tabular":
            _check_tabular(name, entry)
        return cls(
            name=name,
            format=entry["format"],
            source=entry["source"],
            sha256=entry.get("sha256"),
            profile=entry.get("profile"),
            profile_sha256=entry.get("profile_sha256"),
            keep_id=entry.get("keep_id", False),
            max_table_size=entry.get("max_table_size"),
            max_bad_rows=entry.get("max_bad_rows", 1000),
            synthetic=entry.get("synthetic"),
            label=entry.get("label"),
            dense=tuple(entry.get("dense", ())),
            categorical=tuple(entry.get("categorical", ())),
            dense_transform=entry.get("dense_transform", "log"),
            order_by=entry.get("order_by"),
            table_sizes=entry.get("table_sizes"),
        )

    @property
    def raw_format(self) -> RawFormat | TabularFormat:
        if self.format == "tabular":
            from .data.tabular import TabularFormat

            threshold = self.label if isinstance(self.label, dict) else None
            return TabularFormat(
                label=threshold["column"] if threshold else self.label,
                at_least=threshold["at_least"] if threshold else None,
                dense_columns=tuple(self.dense),
                sparse_features=tuple(self.categorical),
                transform=self.dense_transform,
                order_by=self.order_by,
                given_sizes=tuple(sorted((self.table_sizes or {}).items())),
            )
        return get_format(self.format, self.keep_id)

    def raw_files(self) -> list[str]:
        """Every raw file the prepare step reads: the tabular format's files in order, else the main one."""
        if self.format == "tabular":
            from .data.tabular import source_files

            return [str(path) for path in source_files(self.source)]
        return [self.raw_path()]

    @property
    def is_synthetic(self) -> bool:
        return self.source == "synthetic"

    @property
    def synthetic_dir(self) -> str:
        return f"results/raw/{self.name}/synthetic"

    def downloads(self) -> dict[str, tuple[str, str]]:
        """File name under ``results/raw/{name}/download/`` -> (URL, sha256), for URL sources."""
        out = {}
        for url, sha in ((self.source, self.sha256), (self.profile, self.profile_sha256)):
            if url and _is_url(url):
                if not sha:
                    raise ConfigError(f"datasets.{self.name}: URL {url} needs a sha256")
                out[Path(urlparse(url).path).name] = (url, sha)
        return out

    def check_local_files(self) -> None:
        """Raise ConfigError naming the key when a local raw file (not a URL or synthetic) does not exist."""
        if self.is_synthetic:
            return
        if self.format == "tabular":
            from .data.tabular import source_files

            try:
                source_files(self.source)
            except DataError as exc:
                raise ConfigError(f"config key datasets.{self.name}.source: {exc}") from None
            return
        files = {"source": self.source}
        if self.format == "kdd":
            files["profile"] = self.profile or self.profile_path()
        for key, location in files.items():
            if not _is_url(location) and not Path(location).exists():
                default = " (the default: next to source)" if key == "profile" and not self.profile else ""
                raise ConfigError(f"config key datasets.{self.name}.{key}: {location} does not exist{default}")

    def raw_path(self) -> str:
        """The main raw file the prepare step reads."""
        if self.is_synthetic:
            return f"{self.synthetic_dir}/{self.raw_format.file_name}"
        return self._local(self.source)

    def profile_path(self) -> str | None:
        """KDD's userid_profile.txt (default: next to the main raw file); None for other formats."""
        if self.format != "kdd":
            return None
        if self.is_synthetic:
            return f"{self.synthetic_dir}/{KDD_PROFILE_FILE}"
        return self._local(self.profile) if self.profile else str(Path(self.raw_path()).parent / KDD_PROFILE_FILE)

    def _local(self, location: str) -> str:
        if _is_url(location):
            return f"results/raw/{self.name}/download/{Path(urlparse(location).path).name}"
        return location


#: Keys of a dataset entry that only the tabular format has.
TABULAR_KEYS = ("label", "dense", "categorical", "dense_transform", "order_by", "table_sizes")


def _check_tabular(name: str, entry: dict) -> None:
    """What the schema cannot say: each column declared once, and given table sizes only for categoricals."""
    label = entry["label"]["column"] if isinstance(entry["label"], dict) else entry["label"]
    roles = [("label", label)] + [(key, column) for key in ("dense", "categorical") for column in entry.get(key, ())]
    seen: dict[str, str] = {}
    for key, column in roles:
        if column in seen:
            raise ConfigError(
                f"config key datasets.{name}.{key}: column {column!r} is already declared in {seen[column]}"
            )
        seen[column] = key
    for column in entry.get("table_sizes") or {}:
        if column not in entry["categorical"]:
            raise ConfigError(f"config key datasets.{name}.table_sizes.{column}: not one of the categorical columns")


def _is_url(location: str) -> bool:
    return location.startswith(("http://", "https://"))


def level_name(level: float) -> str:
    """A warm-up level as it appears in paths (``w`` + this): Python's ``str(float(level))``."""
    return str(float(level))


def search_plan(config: dict) -> list[tuple[str, str]]:
    """(level name, proxy) pairs to search: ``search.levels`` (default: every warm-up level) for each
    proxy, unless ``search.levels_by_proxy`` gives that proxy its own levels."""
    warmup = {level_name(level) for level in config["warmup_levels"]}
    by_proxy = config["search"]["levels_by_proxy"]
    unknown = sorted(set(by_proxy) - set(config["proxies"]))
    if unknown:
        key = config_key(["search", "levels_by_proxy", unknown[0]])
        raise ConfigError(f"config key {key}: {unknown[0]} is not one of the proxies {config['proxies']}")
    plan = []
    for proxy in config["proxies"]:
        if proxy in by_proxy:
            path, levels = ["search", "levels_by_proxy", proxy], by_proxy[proxy]
        else:
            path, levels = ["search", "levels"], config["search"]["levels"] or config["warmup_levels"]
        for i, level in enumerate(levels):
            if level_name(level) not in warmup:
                key = config_key([*path, i])
                raise ConfigError(f"config key {key}: search level {level} is not in warmup_levels {sorted(warmup)}")
            plan.append((level_name(level), proxy))
    return plan


def repeat_segment(repeat: int) -> str:
    """The path segment of a search repeat: none for the first, so a single search keeps its paths,
    ``/r{repeat}`` after it (``results/search/.../sigeo/r1/records.csv``)."""
    return f"/r{repeat}" if repeat else ""


def repeat_index(segment: str) -> int:
    """The inverse of :func:`repeat_segment`."""
    return int(segment.removeprefix("/r")) if segment else 0


def repeat_seed(seed: int, repeat: int) -> int:
    """The seed of one repeat of a search and of its final trainings.

    The first repeat keeps the run's ``seed``; repeat ``r`` > 0 takes a number drawn from numpy's
    ``SeedSequence((seed, r))``, so repeats differ from each other and from every run's seed, and a
    repeat's results depend only on the config.
    """
    if repeat == 0:
        return seed
    import numpy as np

    return int(np.random.SeedSequence((seed, repeat)).generate_state(1)[0])


def baseline_names(config: dict) -> list[str]:
    """Baselines to train (``search.baselines``): ``logreg``, and ``nasrec_{space}`` per configured space."""
    names = []
    for name in config["search"]["baselines"]:
        names += [f"nasrec_{space}" for space in config["spaces"]] if name == "nasrec" else [name]
    return names


PUBLISHED_FORMATS = ("criteo", "avazu", "kdd")


def published_architecture(fmt: str, space: str) -> Path:
    """The NASRecNet the paper published for a data set format and a space.

    The paper searched Criteo, Avazu and KDD; a data set of one of those formats gets the architecture
    of its format. Any other format (``tabular``) gets Criteo's: the paper's main benchmark, and an
    architecture builds on any number of dense and categorical fields.
    """
    from .space.choice import get_space

    fmt = fmt if fmt in PUBLISHED_FORMATS else "criteo"
    return NASREC_DIR / f"ea_{fmt}_kaggle_{get_space(space).reference_name}_best_1shot.json"


def datasets(config: dict) -> dict[str, DatasetSpec]:
    return {name: DatasetSpec.from_config(name, entry) for name, entry in config["datasets"].items()}


def gpu_conda_env(config: dict, workflow_dir: str | os.PathLike = ROOT) -> Path:
    """The conda environment file of the rules that train or score networks (``devices.conda_env_gpu``,
    relative to the workflow's folder), as an absolute path; a missing file is a configuration error."""
    value = config["devices"]["conda_env_gpu"]
    path = Path(workflow_dir) / value
    if not path.is_file():
        raise ConfigError(f"config key devices.conda_env_gpu: {value} is not a file in {workflow_dir}")
    return path.resolve()
