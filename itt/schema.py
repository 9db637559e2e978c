"""The schema of every config key: its type, its range and its default, once.

The dataclasses below are registered in Hydra's ConfigStore as ``itt_schema``, the first
entry of ``conf/config.yaml``'s defaults list. Hydra merges every YAML file of a run (the
experiment, the model card, the task cards, the trainer and logger files) and every
command-line override into these typed nodes, so an unknown key or a value of the wrong
type fails while the config is composed, before any work. :func:`check_ranges` then checks
what a type cannot say (positive learning rates, known batching modes, a card named like
its file) and :mod:`itt.cli_errors` turns each failure into one line naming the file, the
key and the nearest valid key.

Defaults live here and only here; ``conf/`` sets what differs from them. Code reads the
composed config with ``cfg[section][key]``, never with a fallback default of its own.
"""
from __future__ import annotations

import dataclasses
import difflib
from dataclasses import dataclass
from dataclasses import field as dc_field
from typing import Any, Dict, List, Optional

from omegaconf import MISSING

from itt.errors import ConfigError

BATCHING_MODES = ("length_grouped", "random", "sorted")
LOGGER_TYPES = ("wandb", "csv", "none")
WANDB_MODES = ("offline", "online", "disabled", "dryrun", "run")  # wandb's aliases: dryrun=offline, run=online
SOURCE_KINDS = ("hub", "local", "offline", "generated")
SPLIT_PROTOCOLS = ("ratio", "given")
POOLING_MODES = ("first", "last", "mean")


# ----------------------------------------------------------------------------- stages
@dataclass
class StageConfig:
    """One training stage: ``stage1`` (intermediate task) and ``stage2`` (target task)."""

    epochs: int = 3
    max_steps: int = -1              # > 0 caps optimisation steps (overrides epochs)
    lr: float = 5.0e-5
    batch_size: int = 32
    eval_batch_size: int = 128
    max_length: int = 128
    warmup_ratio: float = 0.1
    weight_decay: float = 0.01
    grad_accum: int = 1
    grad_clip: float = 1.0           # 0 turns clipping off
    freeze_embeddings: bool = False  # all weights are updated by default, as in the paper
    freeze_layers: int = 0           # freeze the lowest N transformer layers
    early_stopping: bool = False
    patience: int = 3
    max_train_examples: Optional[int] = None  # seeded subsample of the training split
    max_eval_examples: Optional[int] = None   # seeded subsample of validation and of each test language
    max_val_examples: Optional[int] = None    # a smaller cap for the validation split alone
    val_check_interval: float = 1.0


@dataclass
class DataConfig:
    split_seed: int = 1234           # the 70/30 split is fixed across training seeds
    batching: str = "random"         # random | length_grouped | sorted; random keeps accuracy (BENCHMARKS.md, 3b)
    mega_batch_factor: int = 50      # length_grouped: length grouping happens inside shuffled mega-batches
    num_workers: int = 0
    pin_memory: Any = "auto"         # auto: on when a GPU is used; or true / false
    cache: bool = True               # tokenized splits are cached under paths.cache_dir
    translate_train: bool = False    # train on the target card's translated training sets


@dataclass
class HeadConfig:
    dropout: float = 0.1


@dataclass
class EvalConfig:
    majority_baseline: bool = True
    zero_shot: bool = True           # score the stage-1 model on the target without target training
    export_predictions: bool = False  # per-language prediction files (XTREME layout)


@dataclass
class RunConfig:
    skip_existing: bool = True       # a cell whose result.json matches this config is not rerun
    keep_checkpoints: bool = False   # keep the best target weights (checkpoints/best.safetensors)
    checkpoint_minutes: float = 0    # resume checkpoints: 0 every validation, N at most every N minutes, -1 none
    dry_run: bool = False            # print the cell and exit (use with -m to list a sweep)
    card_overrides: bool = False     # apply the cards' train_overrides (per-task hyper-parameters)


@dataclass
class TrainerConfig:
    """Lightning Trainer settings (conf/trainer/)."""

    accelerator: str = "auto"
    devices: Any = 1
    num_nodes: int = 1
    strategy: str = "auto"
    precision: str = "32-true"
    deterministic: bool = False
    log_every_n_steps: int = 10
    enable_progress_bar: bool = True
    progress_bar_refresh_rate: int = 10  # steps between progress-bar updates
    compile: bool = False            # torch.compile the encoder


@dataclass
class LoggerConfig:
    """conf/logger/: W&B (offline unless mode=online), CSV, or none."""

    type: str = "wandb"
    project: str = "itt"
    entity: Optional[str] = None
    mode: str = "offline"
    group: Optional[str] = None
    tags: List[str] = dc_field(default_factory=list)


@dataclass
class PathsConfig:
    root_dir: str = MISSING
    output_dir: str = MISSING
    cache_dir: str = MISSING
    data_dir: str = MISSING
    assets_dir: str = MISSING


# ----------------------------------------------------------------------------- model cards
@dataclass
class TinyModelConfig:
    hidden_size: int = 64
    num_layers: int = 2
    num_heads: int = 2
    intermediate_size: int = 128
    vocab_size: int = 2000
    max_position_embeddings: int = 512
    corpus: Any = "smoke"
    seed: int = 0


@dataclass
class PretrainConfig:
    """Masked-LM pretraining of a tiny encoder (python -m itt.pretrain)."""

    corpus: str = MISSING
    tokens: int = MISSING
    held_out_tokens: int = 0
    epochs: int = 1
    batch_size: int = 32
    max_length: int = 128
    lr: float = 5.0e-4
    warmup_ratio: float = 0.06
    weight_decay: float = 0.01
    mask_prob: float = 0.15
    grad_clip: float = 1.0
    seed: int = 0
    model: Dict[str, Any] = dc_field(default_factory=dict)
    tokenizer: Dict[str, Any] = dc_field(default_factory=dict)
    piece_lines: int = 0
    code_dir: Optional[str] = None
    text_files: List[str] = dc_field(default_factory=list)
    text_exclude: List[str] = dc_field(default_factory=list)


@dataclass
class ResourcesConfig:
    """What one cell of this encoder asks a cluster for (hydra/launcher=slurm)."""

    cpus: int = 1
    mem_gb: int = 4
    gpus: int = 0
    time_min: int = 60


@dataclass
class ModelCard:
    """conf/model/<name>.yaml: an encoder, by hub name or local path."""

    name: str = MISSING
    pretrained: Optional[str] = None
    asset: Optional[str] = None          # built by python -m itt.assets fetch
    architecture: str = MISSING
    pretraining: str = "text"            # text | code | ... (the report groups gains by it)
    languages: List[str] = dc_field(default_factory=lambda: ["en"])
    pooling: str = "first"               # first | last | mean
    trust_remote_code: bool = False
    revision: Optional[str] = None
    tiny: Optional[TinyModelConfig] = None
    pretrain: Optional[PretrainConfig] = None
    train_overrides: Optional[Dict[str, Any]] = None
    resources: ResourcesConfig = dc_field(default_factory=ResourcesConfig)


# ----------------------------------------------------------------------------- task cards
@dataclass
class SplitConfig:
    protocol: str = "ratio"              # ratio: a seeded re-split; given: the dataset's own splits
    train_fraction: float = 0.7
    validation_fraction: float = 0.1
    test_fraction: Optional[float] = None
    validation_from: Optional[str] = None
    splits: Optional[Dict[str, Any]] = None


@dataclass
class SourceConfig:
    kind: str = MISSING                  # hub | local | offline | generated
    path: Optional[str] = None
    config: Optional[str] = None
    revision: Optional[str] = None
    trust_remote_code: bool = False
    data_files: Optional[Dict[str, Any]] = None
    format: Optional[str] = None
    read_options: Optional[Dict[str, Any]] = None
    splits: Optional[Any] = None         # a list of hub splits to pool, or a mapping
    lang_codes: Optional[Dict[str, Any]] = None
    generator: Optional[Any] = None
    split: Optional[SplitConfig] = None  # train_source: its split protocol
    drop_labels: Optional[List[Any]] = None


@dataclass
class ColumnsConfig:
    text: Optional[Any] = None
    label: Optional[str] = None
    query: Optional[Any] = None
    candidate: Optional[Any] = None
    premise: Optional[Any] = None
    question: Optional[Any] = None
    choices: Optional[Any] = None
    tokens: Optional[str] = None
    tags: Optional[str] = None
    id: Optional[str] = None
    query_id: Optional[str] = None
    candidate_id: Optional[str] = None
    context: Optional[str] = None
    answers: Optional[str] = None


@dataclass
class TranslateTrainConfig:
    enabled: bool = False
    source: Optional[Dict[str, Any]] = None
    note: Optional[str] = None
    languages: Optional[List[str]] = None


@dataclass
class TaskCardConfig:
    """conf/task/<name>.yaml (used as intermediate=<name> and target=<name>)."""

    name: str = MISSING
    type: str = MISSING
    description: str = ""
    field: str = "unknown"
    domain: str = "unknown"
    setting: str = "domain"
    benchmark: Optional[str] = None
    source: Optional[SourceConfig] = None
    train_source: Optional[SourceConfig] = None
    columns: Optional[ColumnsConfig] = None
    labels: Optional[List[Any]] = None
    label_map: Optional[Dict[Any, Any]] = None
    label_range: Optional[List[float]] = None
    drop_labels: Optional[List[Any]] = None
    languages: List[str] = dc_field(default_factory=lambda: ["en"])
    train_language: Optional[Any] = None
    eval_languages: Optional[List[str]] = None
    unavailable_languages: Optional[List[str]] = None
    split: Optional[SplitConfig] = None
    max_examples: Optional[int] = None
    metrics: Optional[List[str]] = None
    main_metric: Optional[str] = None
    train_overrides: Optional[Dict[str, Any]] = None
    translate_train: Optional[TranslateTrainConfig] = None
    xtreme_task: Optional[str] = None
    # task-type settings
    retrieval_layer: Optional[Any] = None  # a layer index or "middle"
    doc_stride: Optional[int] = None
    max_query_length: Optional[int] = None
    max_answer_length: Optional[int] = None
    n_best: Optional[int] = None
    question_map: Optional[Dict[str, str]] = None
    qa_normalisation: Optional[str] = None
    choices_field: Optional[str] = None
    default_tag: Optional[str] = None
    bucc_threshold: Optional[float] = None
    license: Optional[str] = None
    citation: Optional[str] = None
    url: Optional[str] = None


# ----------------------------------------------------------------------------- the app
@dataclass
class ITTConfig:
    """One cell: model x intermediate task x target task x seed, and how to train it."""

    experiment_name: str = "default"
    seed: int = 0
    paths: PathsConfig = dc_field(default_factory=PathsConfig)
    model: ModelCard = dc_field(default_factory=ModelCard)
    intermediate: TaskCardConfig = dc_field(default_factory=TaskCardConfig)
    target: TaskCardConfig = dc_field(default_factory=TaskCardConfig)
    stage1: StageConfig = dc_field(default_factory=StageConfig)
    stage2: StageConfig = dc_field(default_factory=StageConfig)
    data: DataConfig = dc_field(default_factory=DataConfig)
    head: HeadConfig = dc_field(default_factory=HeadConfig)
    eval: EvalConfig = dc_field(default_factory=EvalConfig)
    run: RunConfig = dc_field(default_factory=RunConfig)
    trainer: TrainerConfig = dc_field(default_factory=TrainerConfig)
    logger: LoggerConfig = dc_field(default_factory=LoggerConfig)


def register() -> None:
    """Store the schema in Hydra's ConfigStore (``- itt_schema`` in conf/config.yaml)."""
    from hydra.core.config_store import ConfigStore

    ConfigStore.instance().store(name="itt_schema", node=ITTConfig)


# ----------------------------------------------------------------------------- checks
# Names users bring from other libraries, for the hint of a mistyped key.
ALIASES = {"learning_rate": "lr", "num_epochs": "epochs", "num_train_epochs": "epochs",
           "train_batch_size": "batch_size", "per_device_train_batch_size": "batch_size",
           "max_seq_length": "max_length", "warmup": "warmup_ratio", "max_grad_norm": "grad_clip",
           "gradient_accumulation_steps": "grad_accum"}


def nearest(key: str, options: list[str]) -> str | None:
    """The closest valid name to a mistyped one (difflib, then common aliases), or None."""
    got = difflib.get_close_matches(key, options, n=1, cutoff=0.6)
    if got:
        return got[0]
    alias = difflib.get_close_matches(key, [a for a, v in ALIASES.items() if v in options], n=1, cutoff=0.75)
    if alias:
        return ALIASES[alias[0]]
    got = difflib.get_close_matches(key, options, n=1, cutoff=0.5)
    return got[0] if got else None


def _dataclass_in(cls: type, name: str) -> type | None:
    """The dataclass a field of ``cls`` holds (unwrapping Optional), or None."""
    import typing

    hint = typing.get_type_hints(cls).get(name)
    for candidate in (hint, *typing.get_args(hint)):
        if dataclasses.is_dataclass(candidate):
            return candidate
    return None


def schema_of(dotted: str) -> type | None:
    """The dataclass that holds the node at a dotted path (``stage1`` -> StageConfig)."""
    node: type | None = ITTConfig
    for part in [p for p in dotted.split(".") if p]:
        if node is None or part not in {f.name for f in dataclasses.fields(node)}:
            return None
        node = _dataclass_in(node, part)
    return node


def valid_keys(dotted_parent: str) -> list[str]:
    cls = schema_of(dotted_parent)
    return [f.name for f in dataclasses.fields(cls)] if cls else []


def _positive(path: str, value: Any, *, allow_zero: bool = False) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not (value > 0 or (allow_zero and value == 0)):
        need = "zero or more" if allow_zero else "positive"
        raise ConfigError(f"{path} must be {need}, got {value!r}.")


def _one_of(path: str, value: Any, options: tuple[str, ...]) -> None:
    if value not in options:
        hint = nearest(str(value), list(options))
        raise ConfigError(f"{path}={value!r} is not one of {', '.join(options)}"
                          + (f" (did you mean '{hint}'?)" if hint else "") + ".")


def check_keys(cfg: dict[str, Any], cls: type = None, prefix: str = "") -> None:  # type: ignore[assignment]
    """Every key of a composed config is in the schema (``+key=`` can add one Hydra lets in)."""
    cls = cls or ITTConfig
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key, value in cfg.items():
        if key == "hydra" and cls is ITTConfig:
            continue
        path = f"{prefix}{key}"
        if key not in fields:
            hint = nearest(str(key), list(fields))
            raise ConfigError(f"unknown key '{path}'" + (f" (did you mean '{prefix}{hint}'?)" if hint else
                                                         f"; valid keys: {', '.join(fields)}") + ".")
        sub = _dataclass_in(cls, key)
        if sub is not None and isinstance(value, dict):
            check_keys(value, sub, path + ".")


def check_ranges(cfg: dict[str, Any], choices: dict[str, Any] | None = None) -> None:
    """What types cannot say. ``choices`` are Hydra's group choices (``model: minilm``,
    ``target: vader_amazon``): a card's ``name`` must equal its file's name."""
    check_keys(cfg)
    if isinstance(cfg.get("seed"), bool) or not isinstance(cfg.get("seed"), int) or cfg["seed"] < 0:
        raise ConfigError(f"seed must be a whole number >= 0, got {cfg.get('seed')!r}.")
    for stage in ("stage1", "stage2"):
        s = cfg[stage]
        for key in ("epochs", "batch_size", "eval_batch_size", "max_length", "grad_accum", "patience"):
            _positive(f"{stage}.{key}", s[key])
        _positive(f"{stage}.lr", s["lr"])
        for key in ("max_train_examples", "max_eval_examples", "max_val_examples"):
            _positive(f"{stage}.{key}", s[key])
        for key in ("warmup_ratio",):
            if not 0 <= s[key] < 1:
                raise ConfigError(f"{stage}.{key} must be in [0, 1), got {s[key]!r}.")
        for key in ("weight_decay", "grad_clip", "freeze_layers"):
            _positive(f"{stage}.{key}", s[key], allow_zero=True)
        if not 0 < s["val_check_interval"]:
            raise ConfigError(f"{stage}.val_check_interval must be positive, got {s['val_check_interval']!r}.")
    d = cfg["data"]
    _one_of("data.batching", d["batching"], BATCHING_MODES)
    _positive("data.mega_batch_factor", d["mega_batch_factor"])
    _positive("data.num_workers", d["num_workers"], allow_zero=True)
    if d["pin_memory"] not in ("auto", True, False):
        raise ConfigError(f"data.pin_memory must be auto, true or false, got {d['pin_memory']!r}.")
    if not 0 <= cfg["head"]["dropout"] < 1:
        raise ConfigError(f"head.dropout must be in [0, 1), got {cfg['head']['dropout']!r}.")
    _one_of("logger.type", cfg["logger"]["type"], LOGGER_TYPES)
    _one_of("logger.mode", cfg["logger"]["mode"], WANDB_MODES)
    _positive("trainer.progress_bar_refresh_rate", cfg["trainer"]["progress_bar_refresh_rate"])
    _positive("trainer.log_every_n_steps", cfg["trainer"]["log_every_n_steps"])
    _one_of(f"model.pooling (conf/model/{cfg['model']['name']}.yaml)", cfg["model"]["pooling"], POOLING_MODES)
    for role in ("intermediate", "target"):
        card = cfg[role]
        if card.get("type") == "none":
            continue
        src = card.get("source") or {}
        if src.get("kind") not in SOURCE_KINDS:
            _one_of(f"{role}.source.kind (conf/task/{card.get('name')}.yaml)", src.get("kind"), SOURCE_KINDS)
        split = card.get("split") or {}
        if split and split.get("protocol") not in SPLIT_PROTOCOLS:
            _one_of(f"{role}.split.protocol (conf/task/{card.get('name')}.yaml)", split.get("protocol"),
                    SPLIT_PROTOCOLS)
    for group, file_dir in (("model", "model"), ("intermediate", "task"), ("target", "task")):
        chosen = (choices or {}).get(group)
        name = cfg[group].get("name")
        if chosen and "/" not in str(chosen) and name != chosen:
            raise ConfigError(f"conf/{file_dir}/{chosen}.yaml: name is '{name}', but a card's name must be its "
                              f"file name: set name: {chosen} (or rename the file to {name}.yaml).")
