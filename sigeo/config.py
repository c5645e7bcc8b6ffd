"""Loading and validating the pipeline configuration, and the typed settings the jobs compute with.

``config/schema.yaml`` is the single source of defaults: Snakemake validates the config with it at
start, and Python callers (tests, benchmarks) go through :func:`load_config`, which uses the same
validator, so both see identical values. :func:`check_config` holds every check that spans keys
(or reads the proxy registry), run once at start-up by both. :func:`load_settings` then turns the
validated config into one tree of frozen dataclasses (:class:`Settings`): each data set's effective
settings, its ``overrides`` applied (:class:`DatasetSettings`), and the studies'. A rule's params
are the part of that tree its stage computes with (:class:`WarmupJob` and the other ``*Job``), so a
job reruns exactly when one of those values changes, and its script reads them typed.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar
from urllib.parse import urlparse

import yaml

from .data.formats import KDD_PROFILE_FILE, RawFormat, get_format
from .errors import ConfigError, DataError

if TYPE_CHECKING:
    from jsonschema import ValidationError

    from .data.prepare import PrepareSettings
    from .data.synthetic import SyntheticSpec
    from .data.tabular import TabularFormat
    from .devices import DeviceSettings
    from .final import FinalSettings
    from .proxies import ProbeSettings
    from .search import ProbeData, SearchSettings
    from .study.correlation import CorrelationSettings
    from .study.theory import TheorySettings
    from .warmup import WarmupSettings

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT / "config" / "schema.yaml"
#: The NASRecNet architectures the paper's authors published (docs/reference.md §10), one per format and space.
NASREC_DIR = ROOT / "config" / "nasrec"


def validate_config(config: dict) -> dict:
    """Validate ``config`` in place against the schema (filling defaults), then across keys
    (:func:`check_config`); raise ConfigError naming the key."""
    from jsonschema import ValidationError
    from snakemake.exceptions import WorkflowError
    from snakemake.utils import validate

    try:
        validate(config, str(SCHEMA))
    except WorkflowError as exc:
        error = exc.__context__  # Snakemake raises its WorkflowError while handling jsonschema's error
        raise ConfigError(_describe(error) if isinstance(error, ValidationError) else str(exc)) from exc
    check_overrides(config)
    check_config(config)
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
    sections = config["datasets"][name].get("overrides") or {}
    return {**config, **{section: {**config[section], **_overrides(config, name, section)} for section in sections}}


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


def check_config(config: dict) -> None:
    """Every check of a schema-valid config that spans keys or reads the proxy registry, in one place;
    raise ConfigError naming the key. Each data set's settings are checked as its jobs will see them
    (its overrides applied), so no job fails later on a value the start could have refused."""
    _check_proxies(config)
    _check_search_levels(config)
    for name, entry in config["datasets"].items():
        _check_dataset(name, entry)
        _check_search(name, config)


def _check_proxies(config: dict) -> None:
    """Proxy names (only pattern-checked by the schema) against the registry."""
    from .proxies import get_proxy

    named = [(["proxies", i], name) for i, name in enumerate(config["proxies"])]
    named += [(["correlation", "proxies", i], name) for i, name in enumerate(config["correlation"]["proxies"] or [])]
    for path, name in named:
        try:
            get_proxy(name)
        except ConfigError as exc:
            raise ConfigError(f"config key {config_key(path)}: {exc}") from None


def _check_search_levels(config: dict) -> None:
    """``search.levels_by_proxy`` names configured proxies, and every search level is warmed up."""
    warmup = {level_name(level) for level in config["warmup_levels"]}
    by_proxy = config["search"]["levels_by_proxy"]
    unknown = sorted(set(by_proxy) - set(config["proxies"]))
    if unknown:
        key = config_key(["search", "levels_by_proxy", unknown[0]])
        raise ConfigError(f"config key {key}: {unknown[0]} is not one of the proxies {config['proxies']}")
    for proxy in config["proxies"]:
        path, levels = _search_levels(config, proxy)
        for i, level in enumerate(levels):
            if level_name(level) not in warmup:
                key = config_key([*path, i])
                raise ConfigError(f"config key {key}: search level {level} is not in warmup_levels {sorted(warmup)}")


def _check_search(name: str, config: dict) -> None:
    """Regularized evolution draws each tournament from the population: sample_size <= init_population,
    in data set ``name``'s settings (named by its override where one sets either key)."""
    search = dataset_config(config, name)["search"]
    sample, population = search["sample_size"], search["init_population"]
    if search["method"] == "regularized-ea" and sample > population:
        overridden = [key for key in ("sample_size", "init_population") if key in _overrides(config, name, "search")]
        path = ["datasets", name, "overrides", "search", overridden[0]] if overridden else ["search", "sample_size"]
        raise ConfigError(
            f"config key {config_key(path)}: sample_size {sample} exceeds init_population {population} "
            "(regularized evolution draws each tournament from the population)"
        )


def _overrides(config: dict, name: str, section: str) -> dict:
    """The keys of ``section`` that data set ``name`` overrides."""
    return (config["datasets"][name].get("overrides") or {}).get(section) or {}


def _check_dataset(name: str, entry: dict) -> None:
    """What the schema cannot say of a data set: tabular keys only for format tabular, each tabular
    column declared once, given table sizes only for categoricals, an informative vocabulary of the
    synthetic data within its vocabulary and its tables."""
    prefix = ["datasets", name]
    tabular_only = [key for key in TABULAR_KEYS if key in entry]
    if entry["format"] != "tabular" and tabular_only:
        raise ConfigError(f"config key {config_key([*prefix, tabular_only[0]])}: only for format tabular")
    synthetic = entry.get("synthetic")
    if synthetic and synthetic["informative_vocab"] > synthetic["max_vocab"]:
        raise ConfigError(
            f"config key {config_key([*prefix, 'synthetic', 'informative_vocab'])}: {synthetic['informative_vocab']} "
            f"exceeds max_vocab ({synthetic['max_vocab']})"
        )
    cap = entry.get("max_table_size")
    if synthetic and cap is not None and synthetic["informative_vocab"] > cap - 1:
        raise ConfigError(
            f"config key {config_key([*prefix, 'synthetic', 'informative_vocab'])}: {synthetic['informative_vocab']} "
            f"tokens do not fit tables capped at max_table_size {cap} (row 0 is the missing value), and two "
            "informative tokens on one row would make the teacher's log loss unreachable"
        )
    if entry["format"] != "tabular":
        return
    label = entry["label"]["column"] if isinstance(entry["label"], dict) else entry["label"]
    roles = [("label", label)] + [(key, column) for key in ("dense", "categorical") for column in entry[key]]
    seen: dict[str, str] = {}
    for key, column in roles:
        if column in seen:
            raise ConfigError(
                f"config key {config_key([*prefix, key])}: column {column!r} is already declared in {seen[column]}"
            )
        seen[column] = key
    for column in entry.get("table_sizes") or {}:
        if column not in entry["categorical"]:
            raise ConfigError(
                f"config key {config_key([*prefix, 'table_sizes', column])}: not one of the categorical columns"
            )


def dataset_default(key: str) -> Any:
    """The schema's default of a data set entry's ``key``: what a file written before the value was
    recorded beside it had."""
    return yaml.safe_load(SCHEMA.read_text())["$defs"]["dataset"]["properties"][key]["default"]


def load_config(source: str | os.PathLike | dict[str, Any]) -> dict:
    """Read (if a path) and validate a configuration."""
    config = yaml.safe_load(Path(source).read_text()) if not isinstance(source, dict) else source
    return validate_config(config)


@dataclass(frozen=True)
class DatasetSpec:
    """One entry of ``datasets:``: where its raw files come from and how to parse them (the tabular
    keys None, or empty, for the other formats)."""

    name: str
    format: str
    source: str
    sha256: str | None
    profile: str | None
    profile_sha256: str | None
    keep_id: bool
    max_table_size: int | None
    max_bad_rows: int
    synthetic: SyntheticSpec | None
    label: str | dict | None
    dense: tuple[str, ...]
    categorical: tuple[str, ...]
    dense_transform: str | None
    order_by: str | None
    table_sizes: dict | None

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


def _is_url(location: str) -> bool:
    return location.startswith(("http://", "https://"))


def level_name(level: float) -> str:
    """A warm-up level as it appears in paths (``w`` + this): Python's ``str(float(level))``."""
    return str(float(level))


def search_plan(config: dict) -> list[tuple[str, str]]:
    """(level name, proxy) pairs to search: ``search.levels`` (default: every warm-up level) for each
    proxy, unless ``search.levels_by_proxy`` gives that proxy its own levels."""
    return [(level_name(level), proxy) for proxy in config["proxies"] for level in _search_levels(config, proxy)[1]]


def _search_levels(config: dict, proxy: str) -> tuple[list[str], list[float]]:
    """The key that sets ``proxy``'s search levels, and the levels."""
    if proxy in config["search"]["levels_by_proxy"]:
        return ["search", "levels_by_proxy", proxy], config["search"]["levels_by_proxy"][proxy]
    return ["search", "levels"], config["search"]["levels"] or config["warmup_levels"]


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


def gpu_conda_env(config: dict, workflow_dir: str | os.PathLike = ROOT) -> Path:
    """The conda environment file of the rules that train or score networks (``devices.conda_env_gpu``,
    relative to the workflow's folder), as an absolute path; a missing file is a configuration error."""
    value = config["devices"]["conda_env_gpu"]
    path = Path(workflow_dir) / value
    if not path.is_file():
        raise ConfigError(f"config key devices.conda_env_gpu: {value} is not a file in {workflow_dir}")
    return path.resolve()


# --- the typed settings ----------------------------------------------------------------------------
@dataclass(frozen=True)
class DatasetSettings:
    """One data set's settings as its jobs compute with them: each section typed, with the data set's
    ``overrides`` applied. ``truth`` is the correlation study's ground-truth training (``final`` with
    the study's ``epochs``, ``max_train_rows`` and ``embedding_l2``); ``retrain_on_trainval`` adds a
    job to each search and changes no training, so no job's settings hold it."""

    spec: DatasetSpec
    prepare: PrepareSettings
    warmup: WarmupSettings
    proxy: ProbeSettings
    probe_data: ProbeData
    search: SearchSettings
    final: FinalSettings
    truth: FinalSettings
    devices: DeviceSettings
    correlation: CorrelationSettings
    retrain_on_trainval: bool

    def with_seed(self, seed: int) -> DatasetSettings:
        """The settings of a search repeat: ``seed`` for its search and for the final trainings of its
        top architectures (and for the warm-up and proxy settings the search reads)."""
        seeded = ("warmup", "proxy", "search", "final")
        return replace(self, **{name: replace(getattr(self, name), seed=seed) for name in seeded})

    @property
    def num_blocks(self) -> int:
        return self.warmup.num_blocks

    @property
    def space_widths(self) -> dict[str, list[int]] | None:
        return self.warmup.space_widths

    @property
    def subnet_seed(self) -> int:
        """The seed the correlation study draws its subnets from."""
        return self.correlation.seed

    @property
    def num_subnets(self) -> int:
        return self.correlation.num_subnets


@dataclass(frozen=True)
class Settings:
    """The run's settings, built once at start-up by :func:`load_settings`. ``theory_probe`` is the
    theory study's probe: the ``proxy`` section's coefficients with the study's seed (its probes draw
    nothing at random; ``theory.seed`` stands for the whole study) and SiGeo's fixed mode, since
    ``theory.mode``, not ``proxy.sigeo_mode``, decides which of the notebook's traits the probe copies."""

    seed: int
    datasets: dict[str, DatasetSettings]
    correlation: CorrelationSettings
    theory: TheorySettings
    theory_probe: ProbeSettings

    def dataset(self, name: str, repeat: int = 0) -> DatasetSettings:
        """Data set ``name``'s settings, with search repeat ``repeat``'s seed (:func:`repeat_seed`)."""
        settings = self.datasets[name]
        return settings.with_seed(repeat_seed(self.seed, repeat)) if repeat else settings


def load_settings(source: str | os.PathLike | dict[str, Any]) -> Settings:
    """The typed settings of a configuration: a path, or a dict that is validated in place
    (:func:`load_config`), so that Snakemake's ``config`` holds every default too."""
    from .proxies import ProbeSettings
    from .study.theory import TheorySettings

    config = load_config(source)
    correlation = _correlation(config)
    theory = _typed(
        TheorySettings,
        config["theory"],
        widths=tuple(config["theory"]["widths"]),
        levels=tuple(config["theory"]["levels"]),
    )
    return Settings(
        seed=config["seed"],
        datasets={name: _dataset_settings(config, name, correlation) for name in config["datasets"]},
        correlation=correlation,
        theory=theory,
        theory_probe=_typed(ProbeSettings, config["proxy"], seed=theory.seed, sigeo_mode="fixed"),
    )


def _typed(cls: type, section: Mapping[str, Any], **given: Any) -> Any:
    """``cls`` built from a config section: each field the section's key of that name unless ``given``.

    A settings class thus reads every key it declares, with no list of keys to keep beside it, and
    leaves out the section's keys it does not declare (those that decide how a job starts or which
    jobs exist). A field that is no config key keeps its class default.
    """
    names = [f.name for f in fields(cls) if f.name in section and f.name not in given]
    return cls(**{name: section[name] for name in names}, **given)


def _dataset_settings(config: dict, name: str, correlation: CorrelationSettings) -> DatasetSettings:
    """Data set ``name``'s settings, from its sections as its jobs see them (:func:`dataset_config`)."""
    from .data.prepare import PrepareSettings
    from .devices import DeviceSettings
    from .final import FinalSettings
    from .proxies import ProbeSettings
    from .search import ProbeData, SearchSettings
    from .study.correlation import truth_settings
    from .warmup import WarmupSettings

    seen = dataset_config(config, name)
    seed, entry, study = seen["seed"], seen["datasets"][name], seen["correlation"]
    shared = {"mixed_precision": seen["devices"]["mixed_precision"], "shards": seen["data"]["shards"]}
    final = _typed(FinalSettings, seen["final"], seed=seed, **shared)
    return DatasetSettings(
        spec=_spec(name, entry),
        prepare=PrepareSettings(seed=seed, max_bad_rows=entry["max_bad_rows"], max_table_size=entry["max_table_size"]),
        warmup=_typed(
            WarmupSettings,
            seen["warmup"],
            seed=seed,
            num_blocks=seen["num_blocks"],
            space_widths=seen["space_widths"],
            **shared,
        ),
        proxy=_typed(ProbeSettings, seen["proxy"], seed=seed),
        probe_data=_typed(ProbeData, seen["proxy"], shards=seen["data"]["shards"]),
        search=_typed(SearchSettings, seen["search"], seed=seed),
        final=final,
        truth=truth_settings(final, study["epochs"], study["max_train_rows"], study["embedding_l2"]),
        devices=_typed(DeviceSettings, seen["devices"]),
        correlation=correlation,
        retrain_on_trainval=seen["final"]["retrain_on_trainval"],
    )


def _spec(name: str, entry: dict) -> DatasetSpec:
    from .data.synthetic import SyntheticSpec

    synthetic = entry.get("synthetic")
    return DatasetSpec(
        name=name,
        format=entry["format"],
        source=entry["source"],
        sha256=entry.get("sha256"),
        profile=entry.get("profile"),
        profile_sha256=entry.get("profile_sha256"),
        keep_id=entry["keep_id"],
        max_table_size=entry["max_table_size"],
        max_bad_rows=entry["max_bad_rows"],
        synthetic=_typed(SyntheticSpec, synthetic) if synthetic else None,
        label=entry.get("label"),
        dense=tuple(entry.get("dense", ())),
        categorical=tuple(entry.get("categorical", ())),
        dense_transform=entry.get("dense_transform"),
        order_by=entry.get("order_by"),
        table_sizes=entry.get("table_sizes"),
    )


def _correlation(config: dict) -> CorrelationSettings:
    """The study's settings, its nulls resolved against the rest of the config: the proxies (null: the
    searched ones and the zero-cost baselines), the seed (null: the run's), and ``repeat_subnets`` as a
    count (0 without extra seeds)."""
    from .study.correlation import BASELINES, CorrelationSettings, ordered_proxies

    study = config["correlation"]
    repeated = (
        study["num_subnets"] if study["repeat_subnets"] == "all" else min(study["repeat_subnets"], study["num_subnets"])
    )
    return _typed(
        CorrelationSettings,
        study,
        proxies=tuple(ordered_proxies(study["proxies"] or [*config["proxies"], *BASELINES])),
        seed=config["seed"] if study["seed"] is None else study["seed"],
        repeat_subnets=repeated if study["seed_repeats"] else 0,
    )


# --- each stage's settings, a rule's params --------------------------------------------------------
# Snakemake records a job's params, and reruns the job when they change, only for values of builtin
# types (it compares their reprs): a dataclass param would be left out, its job never rerun. So what
# a rule passes is a NamedTuple (a tuple) of the frozen dataclasses its stage computes with, whose
# repr holds every value, each field its data set's setting of that name (:func:`job_settings`).


class SynthesizeJob(NamedTuple):
    """Rule synthesize."""

    spec: DatasetSpec


class PrepareJob(NamedTuple):
    """Rule prepare."""

    spec: DatasetSpec
    prepare: PrepareSettings


class WarmupJob(NamedTuple):
    """Rule warmup."""

    warmup: WarmupSettings
    devices: DeviceSettings


class SearchJob(NamedTuple):
    """Rule search: the supernet's settings, the proxies', the scoring data's and the search's."""

    warmup: WarmupSettings
    proxy: ProbeSettings
    probe_data: ProbeData
    search: SearchSettings
    devices: DeviceSettings


class TrainJob(NamedTuple):
    """Rules train_final, retrain_best and train_baseline."""

    final: FinalSettings
    devices: DeviceSettings


class SubnetJob(NamedTuple):
    """Rules train_subnet and train_subnet_seed: the ground-truth training (seed 0) of subnet i, drawn
    from the seed (``subnet_seed``, i) in a space of ``num_blocks`` blocks of ``space_widths``. Not the
    study's number of subnets, so that raising it leaves the trained ones up to date."""

    truth: FinalSettings
    devices: DeviceSettings
    num_blocks: int
    space_widths: dict[str, list[int]] | None
    subnet_seed: int


class ScoreJob(NamedTuple):
    """Rule score_subnets: the supernet's, proxies' and scoring data's settings, and the study's first
    ``num_subnets`` subnets (drawn as :class:`SubnetJob` says, in the supernet's space)."""

    warmup: WarmupSettings
    proxy: ProbeSettings
    probe_data: ProbeData
    devices: DeviceSettings
    subnet_seed: int
    num_subnets: int


class TheoryJob(NamedTuple):
    """Rule theory_width: the study's settings (with the job's width alone) and its probe's."""

    theory: TheorySettings
    probe: ProbeSettings


Job = TypeVar("Job", SynthesizeJob, PrepareJob, WarmupJob, SearchJob, TrainJob, SubnetJob, ScoreJob)


def job_settings(job: type[Job], settings: DatasetSettings) -> Job:
    """``job``'s settings for a data set: each field the setting of that name in ``settings``."""
    return job._make(getattr(settings, name) for name in job._fields)
