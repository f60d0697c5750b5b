"""Typed experiment configuration.

A run is described by a `RunConfig`: a task, and the `data`, `model` and `train` sections. Every field has a default
and a comment. Experiments are small TOML files in `pipelines/` that override some fields; the command line overrides
them again with `--set section.key=value`. The resolved config is written into the run folder as `config.toml` and
read back from there by sampling, prediction and export.
"""
from __future__ import annotations

import dataclasses
import json
import math
import tomllib
import typing
from dataclasses import dataclass, field
from pathlib import Path

from tfseq.errors import UserError

PROJECT_ROOT = Path(__file__).resolve().parent.parent
INT32_MAX = 2**31 - 1  # TensorFlow sizes, counts and steps are int32 in places: larger integers cannot be represented
INT64_MAX = 2**63 - 1
SEED_MAX = 2**32 - 1  # NumPy's and Keras' global seeds are unsigned 32-bit
PIPELINES_DIR = PROJECT_ROOT / "pipelines"


@dataclass
class TextEncoding:
    """How word-level texts are tokenized, encoded and batched (the [data] section of classifier tasks)."""

    limit: int = 0  # keep only this many texts of each split, a stratified sample (tiny runs); 0 = all
    tokenizer: str = "book"  # book: tfds Tokenizer's tokens | lower: lowercased, "<br />" removed, same splitting |
    # words / words_lower: the word LM's tokens (punctuation marks and "n't" / "'s" kept), case kept / lowercased
    max_tokens: int = 0  # vocabulary cap, most frequent tokens first; 0 = every token of the training split
    min_count: int = 1  # leave out tokens seen fewer times than this in the training split
    max_length: int = 0  # tokens kept per text; 0 = all
    truncate: str = "last"  # which tokens a long text keeps: last (the textbook) | first
    bucket: bool = False  # batch texts of similar length together (fewer padded steps per batch)
    pad_multiple: int = 16  # pad each batch's length up to a multiple of this (1-1024): few shapes, few retraces
    fold_val: bool = False  # the final fit: train on the training and validation texts together for exactly
    # train.epochs epochs (take the best epoch of a run without it; train.early_stopping = 0): validation then
    # scores texts seen in training and chooses nothing

    def check(self) -> None:
        check_choice("data.tokenizer", self.tokenizer, ("book", "lower", "words", "words_lower"))
        check_choice("data.truncate", self.truncate, ("last", "first"))
        for key in ("limit", "max_tokens", "max_length"):
            check_range(f"data.{key}", getattr(self, key), 0, math.inf)
        check_positive("data.min_count", self.min_count)
        check_range("data.pad_multiple", self.pad_multiple, 1, 1024)


@dataclass
class ModelConfig:
    """The network: Embedding -> N recurrent layers -> (pooling -> Dense) -> head."""

    cell: str = "lstm"  # lstm | gru | simplernn
    units: int = 512  # units of each recurrent layer (per direction)
    layers: int = 1  # number of stacked recurrent layers (1-64)
    bidirectional: bool = False  # read the sequence both ways (classifiers only: it would see the next token)
    embedding_dim: int = 256  # size of the token embedding
    embedding_dropout: float = 0.0  # drops whole embedding channels (SpatialDropout1D) while training
    token_dropout: float = 0.0  # classifiers: replaces this fraction of tokens by the OOV id while training
    dropout: float = 0.0  # dropout on each recurrent layer's outputs (keeps LSTM/GRU on the cuDNN path)
    recurrent_dropout: float = 0.0  # dropout on the recurrent state; takes LSTM/GRU off the fast cuDNN kernel
    fast_gru: bool = False  # GRU off the GPU: multiply the window's input by the input kernel before the time loop
    # and drop the recurrent state with one mask for all three gates (tfseq.models.fast_gru); same weights as Keras'
    # GRU; about 15% less time per step on a CPU with recurrent dropout; never the cuDNN kernel
    mask_zero: bool = False  # id 0 is padding: masked steps do not change the state
    pooling: str = "last"  # classifiers: last state | mean | max | max_mean (both, concatenated) over time
    hidden_units: int = 0  # classifiers: a Dense(relu) layer of this size before the head; 0 = none
    bigram_buckets: int = 0  # classifiers: add a hashed embedding of each (previous, current) token pair; 0 = off
    ngram_buckets: int = 0  # classifiers: hash buckets of a linear model of each text's distinct word n-grams, added
    # to the head's logits and learnt with the RNN (NBSVM's binarised features); 0 = off
    ngram_order: int = 3  # the longest n-gram of that linear model (1-8)
    ngram_scale: float = 1.0  # multiplies that linear model's logits; its table starts at zero, so under Adam this is
    # its learning rate over the rest of the model's (rare n-grams move further per step, as in NBSVM)
    ngram_prior: str = "none"  # nb = scale each n-gram's weight by its naive-Bayes log-count ratio in the training
    # texts (NBSVM's features; computed when a new run starts, saved with the weights); none = unscaled
    ngram_min_count: int = 1  # with ngram_prior = "nb": buckets fewer training texts than this contain get weight 0
    # (NBSVM's min_df: an n-gram of one review only lets the model memorise that review)
    ngram_dropout: float = 0.0  # while training, leaves out this fraction of each text's distinct n-grams
    ngram_hash: str = "mixed"  # mixed = n-gram hashes scrambled before bucketing (spread evenly); fnv = without
    # (run folders saved before the option read as fnv)
    init_from: str = ""  # classifiers: a word LM's run folder; its embedding rows (by token) and recurrent layers
    # start the model (pretraining); "" = fresh weights
    tie_embeddings: bool = False  # language models: logits = Dense(embedding_dim)(last layer) @ embedding^T (tied output)
    char_features: int = 0  # taggers: filters of a character CNN over each word, added to its embedding; 0 = off
    head: str = "next_token"  # next_token (logits over the vocabulary) | binary (sigmoid) | multiclass (softmax) |
    # per_token (a softmax over the tags at every token: taggers)
    num_classes: int = 2  # multiclass head: classes; 0 = as many as the data has (classify's default); else must agree

    def check(self) -> None:
        check_choice("model.cell", self.cell, ("lstm", "gru", "simplernn"))
        if self.fast_gru and self.cell != "gru":
            raise UserError(f"model.fast_gru = true needs model.cell = \"gru\", not {self.cell!r}: set model.cell = "
                            "\"gru\" or remove model.fast_gru")
        for key in ("units", "layers", "embedding_dim"):
            check_positive(f"model.{key}", getattr(self, key))
        check_range("model.num_classes", self.num_classes, 0, 100_000)
        check_range("model.layers", self.layers, 1, 64)  # deeper stacks exceed Python's recursion limit in Keras
        for key in ("embedding_dropout", "token_dropout", "dropout", "recurrent_dropout"):
            check_range(f"model.{key}", getattr(self, key), 0.0, 1.0, high_open=True)
        check_choice("model.pooling", self.pooling, ("last", "mean", "max", "max_mean"))
        check_range("model.hidden_units", self.hidden_units, 0, math.inf)
        check_range("model.bigram_buckets", self.bigram_buckets, 0, math.inf)
        check_range("model.ngram_buckets", self.ngram_buckets, 0, math.inf)
        check_range("model.ngram_order", self.ngram_order, 1, 8)
        check_range("model.ngram_scale", self.ngram_scale, 0.0, math.inf, low_open=True)
        check_choice("model.ngram_prior", self.ngram_prior, ("none", "nb"))
        check_choice("model.ngram_hash", self.ngram_hash, ("mixed", "fnv"))
        check_range("model.ngram_dropout", self.ngram_dropout, 0.0, 1.0, high_open=True)
        check_range("model.ngram_min_count", self.ngram_min_count, 1, math.inf)
        if self.ngram_min_count > 1 and self.ngram_prior != "nb":
            raise UserError(f"model.ngram_min_count = {self.ngram_min_count} zeroes rare n-grams through the "
                            "naive-Bayes ratios: set model.ngram_prior = \"nb\" too, or remove model.ngram_min_count")
        if self.ngram_prior != "none" and not self.ngram_buckets:
            raise UserError(f"model.ngram_prior = {self.ngram_prior!r} scales the n-gram linear model, which is off: "
                            "set model.ngram_buckets (e.g. 2097152) or remove model.ngram_prior")
        check_range("model.char_features", self.char_features, 0, 4096)
        # The head's own rules are checked with the task (tfseq.tasks.base.TaskSpec.check).


@dataclass
class TrainConfig:
    """Optimisation, schedule, stopping and seeds."""

    epochs: int = 10  # passes over the training data (or steps_per_epoch batches each)
    batch_size: int = 64  # sequences per batch (global, across all devices)
    steps_per_epoch: int = 0  # batches per epoch; 0 = one full pass over the training data
    learning_rate: float = 1e-3  # peak learning rate of Adam
    lr_schedule: str = "constant"  # constant | cosine (decays to lr_min_ratio * peak over the run)
    lr_min_ratio: float = 0.0  # cosine: final learning rate as a fraction of the peak
    warmup_steps: int = 0  # linear warm-up from 0 to the peak over this many batches
    clipnorm: float = 0.0  # clip the global gradient norm to this; 0 = no clipping
    weight_decay: float = 0.0  # decoupled weight decay (AdamW); 0 = plain Adam
    ema: float = 0.0  # average the weights as they train (exponential, this decay per step: 0.999 averages about the
    # last 1,000 steps); validation, the best epoch and the saved weights use the average; 0 = off
    early_stopping: int = 0  # stop after this many epochs without a better `monitor`, keep the best; 0 = never
    monitor: str = "val_loss"  # what early stopping and the best epoch go by: val_loss | val_accuracy (classifiers)
    class_weight: str = "none"  # classifiers: none | balanced (weights each class by n / (k * its count) in training)
    max_minutes: float = 0.0  # stop when another epoch (timed as the last) would cross this training budget, and pace
    # the cosine by it: it reaches its floor when the budget or the epochs run out, whichever comes first; 0 = none
    jit_compile: bool = False  # compile the training step with XLA (pays off for fixed-shape batches on a CPU)
    mixed_precision: bool = False  # float16 compute, float32 weights, output layer and sampling (for GPUs)
    strategy: str = "default"  # default (one device) | mirrored (all local GPUs) | multiworker (TF_CONFIG)
    stateful: bool = False  # language models: contiguous lanes, the state carried from batch to batch (truncated BPTT)
    seed: int = 1  # seeds weights, dropout, shuffling and window offsets

    def check(self) -> None:
        for key in ("epochs", "batch_size", "learning_rate"):
            check_positive(f"train.{key}", getattr(self, key))
        check_choice("train.class_weight", self.class_weight, ("none", "balanced"))
        for key in ("steps_per_epoch", "warmup_steps", "clipnorm", "weight_decay", "early_stopping", "max_minutes"):
            check_range(f"train.{key}", getattr(self, key), 0, math.inf)
        check_choice("train.lr_schedule", self.lr_schedule, ("constant", "cosine"))
        check_choice("train.strategy", self.strategy, ("default", "mirrored", "multiworker"))
        check_range("train.lr_min_ratio", self.lr_min_ratio, 0.0, 1.0)
        check_range("train.ema", self.ema, 0.0, 1.0, high_open=True)


@dataclass
class SampleConfig:
    """How a language model draws each next token (character or word)."""

    temperature: float = 1.0  # divides the logits (the textbook's scale_factor is 1/temperature); 0 = greedy
    top_k: int = 0  # draw only among the k most likely tokens; 0 = no limit
    top_p: float = 1.0  # draw only among the most likely tokens whose probabilities reach p; 1 = no limit
    seed: int = 0  # the same seed, prompt and options give the same text

    def check(self) -> None:
        for name, allowed, rule in SAMPLING_RULES:
            value = getattr(self, name)
            if not allowed(value):
                raise UserError(f"{name} = {value} {rule}")


# The one definition of what each sampling option allows, as (option, test, the rule in words). The tests use only
# comparisons and `&`, so the same test checks a Python value (SampleConfig.check) and a tensor in the exported
# `generate` graph. Comparisons with NaN are false: a NaN fails every test.
SAMPLING_RULES = (
    ("temperature", lambda v: v >= 0, "must be >= 0 (0 means greedy: the most likely token every time)"),
    ("top_k", lambda v: (v >= 0) & (v <= INT32_MAX), f"must be >= 0 and at most {INT32_MAX} (0 means no top-k limit)"),
    ("top_p", lambda v: (v > 0) & (v <= 1), "must be in (0, 1] (1 means no top-p limit)"),
    ("seed", lambda v: (v >= 0) & (v <= INT64_MAX), f"is out of range; allowed: 0 to {INT64_MAX}"),
)


SECTIONS = ("data", "model", "train")


@dataclass
class RunConfig:
    """Everything that defines a run; written to `<run>/config.toml`."""

    task: str = ""  # the task's name (tfseq.tasks.registry lists them)
    pipeline: str = ""  # the pipeline file this config started from (names default run folders)
    data: typing.Any = None  # the task's [data] dataclass
    model: ModelConfig = field(default_factory=ModelConfig)  # the network: backbone and head
    train: TrainConfig = field(default_factory=TrainConfig)  # optimisation, schedule, stopping and seeds

    def check(self) -> None:
        """Raises UserError naming the first field whose value is out of range, or that the task cannot use."""
        for section in SECTIONS:
            _check_representable(section, getattr(self, section))
            getattr(self, section).check()
        task_spec(self.task).check(self)

    def to_dict(self) -> dict:
        """Returns the config as nested plain values, in field order."""
        return dataclasses.asdict(self)


def task_spec(name: str):
    """The registered task of this name (its TaskSpec); UserError naming the tasks for an unknown one."""
    # Imported here: the registry imports the task modules, which import this module for its sections.
    from tfseq.tasks.registry import get_task

    return get_task(name)


def default_config(task: str) -> RunConfig:
    """Returns the built-in defaults for a task, before any pipeline file.

    Args:
        task: a registered task's name.
    """
    spec = task_spec(task)
    return RunConfig(task=task, data=spec.data(), model=ModelConfig(**spec.model_defaults))


def pipeline_path(name_or_path: str) -> Path:
    """Finds a pipeline file given as a path or as a name in `pipelines/` (with or without `.toml`)."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    for candidate in (PIPELINES_DIR / name_or_path, PIPELINES_DIR / f"{name_or_path}.toml"):
        if candidate.is_file():
            return candidate
    known = ", ".join(sorted(p.stem for p in PIPELINES_DIR.glob("*.toml"))) or "none"
    raise UserError(f"config file {name_or_path!r} not found (as a path or in {PIPELINES_DIR}); known pipelines: {known}")


def load_config(task: str, config: str | None = None, overrides: typing.Sequence[str] = ()) -> RunConfig:
    """Resolves a run's config: task defaults, then a pipeline file, then `section.key=value` overrides.

    Args:
        task: a registered task's name.
        config: pipeline path or name; None = the task's default pipeline.
        overrides: strings "section.key=value", applied in order.

    Returns:
        A checked RunConfig.
    """
    cfg = default_config(task)
    path = pipeline_path(config or task_spec(task).default_pipeline)
    table = read_toml(path)
    file_task = table.pop("task", task)
    if file_task != task and file_task not in task_spec(task).accepts_pipelines:
        raise UserError(f"{path} is a {file_task!r} pipeline; use it with `python -m tfseq.train {file_task}`")
    table.pop("pipeline", None)
    cfg.pipeline = path.stem
    apply_table(cfg, table, source=str(path))
    for item in overrides:
        apply_override(cfg, item)
    cfg.check()
    return cfg


def load_pipeline(config: str, overrides: typing.Sequence[str] = ()) -> RunConfig:
    """Resolves a pipeline file on its own (for tools that take --config without a task): the task is the one its
    `task = ...` line names.

    Args:
        config: pipeline path or name in pipelines/.
        overrides: strings "section.key=value", applied in order.

    Returns:
        A checked RunConfig; UserError for a file that names no task.
    """
    path = pipeline_path(config)
    task = read_toml(path).get("task")
    if not isinstance(task, str):
        raise UserError(f"{path} names no task; add a line such as task = \"charlm\" at its top")
    return load_config(task, str(path), overrides)


def read_toml(path: Path) -> dict:
    """Reads a TOML file, turning syntax errors into a UserError that names the file and line."""
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as err:
        raise UserError(f"{path} is not valid TOML: {err}") from None
    except UnicodeDecodeError as err:
        raise UserError(f"{path} is not UTF-8 (byte offset {err.start}); TOML files are UTF-8 text") from None
    except OSError as err:
        raise UserError(f"cannot read config {path}: {err.strerror}") from None


def config_from_dict(table: dict, source: str) -> RunConfig:
    """Rebuilds a RunConfig from a resolved-config table (as written to a run folder).

    Args:
        table: the parsed `config.toml`.
        source: where it came from, for error messages.
    """
    table = dict(table)
    if not isinstance(table.get("task"), str):
        raise UserError(f"{source} names no task (a line such as task = \"classify\"); restore the run's config")
    cfg = default_config(table.pop("task"))
    cfg.pipeline = table.pop("pipeline", "")
    apply_table(cfg, table, source)
    cfg.check()
    return cfg


def apply_table(cfg: RunConfig, table: dict, source: str) -> None:
    """Applies a nested `{section: {key: value}}` table onto cfg, rejecting unknown keys and wrong types."""
    for section, values in table.items():
        if section not in SECTIONS or not isinstance(values, dict):
            raise UserError(
                f"unknown config section {section!r} in {source}; allowed: task, pipeline, "
                + ", ".join(f"[{s}]" for s in SECTIONS)
            )
        for key, value in values.items():
            _set_field(cfg, section, key, value, source, from_text=False)


def apply_override(cfg: RunConfig, item: str) -> None:
    """Applies one `section.key=value` override from the command line."""
    name, sep, value = item.partition("=")
    section, dot, key = name.strip().partition(".")
    if not sep or not dot:
        raise UserError(f"override {item!r} must look like section.key=value, e.g. model.units=256")
    if section not in SECTIONS:
        raise UserError(f"unknown config section {section!r} in override {item!r}; allowed: {', '.join(SECTIONS)}")
    _set_field(cfg, section, key.strip(), value.strip(), "--set", from_text=True)


def _set_field(cfg: RunConfig, section: str, key: str, value, source: str, from_text: bool) -> None:
    obj = getattr(cfg, section)
    hints = typing.get_type_hints(type(obj))
    if key not in hints:
        allowed = ", ".join(f.name for f in dataclasses.fields(obj))
        raise UserError(f"unknown config key '{section}.{key}' in {source}; [{section}] allows: {allowed}")
    kind = hints[key]
    setattr(obj, key, _parse_text(value, kind, f"{section}.{key}", source) if from_text else
            _coerce(value, kind, f"{section}.{key}", source))


_TYPE_NAMES = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}


def _coerce(value, kind: type, name: str, source: str):
    ok = (
        isinstance(value, bool) if kind is bool else
        isinstance(value, int) and not isinstance(value, bool) if kind is int else
        isinstance(value, (int, float)) and not isinstance(value, bool) if kind is float else
        isinstance(value, str)
    )
    if not ok:
        raise UserError(f"config key {name} in {source} must be {_TYPE_NAMES[kind]}, got {value!r}")
    return float(value) if kind is float else value


def _parse_text(text: str, kind: type, name: str, source: str):
    try:
        if kind is bool:
            lowered = text.lower()
            if lowered in ("true", "1", "yes", "on"):
                return True
            if lowered in ("false", "0", "no", "off"):
                return False
            raise ValueError(text)
        if kind is int:
            return int(text)
        if kind is float:
            return float(text)
    except ValueError:
        raise UserError(f"config key {name} in {source} must be {_TYPE_NAMES[kind]}, got {text!r}") from None
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    return text


def _check_representable(section: str, obj) -> None:
    """Refuses integers and floats that the code cannot represent: seeds beyond 32 bits, other integers beyond
    int32, NaN anywhere, and infinity except for a budget (train.max_minutes = inf means none)."""
    for f in dataclasses.fields(obj):
        value, name = getattr(obj, f.name), f"{section}.{f.name}"
        if isinstance(value, bool):
            continue
        if isinstance(value, int):
            low, high = (0, SEED_MAX) if f.name.endswith("seed") else (-INT32_MAX - 1, INT32_MAX)
            if not low <= value <= high:
                raise UserError(f"{name} = {value} is out of range; allowed: {low} to {high}")
        elif isinstance(value, float) and (math.isnan(value) or (math.isinf(value) and f.name != "max_minutes")):
            raise UserError(f"{name} = {value} must be a finite number")
        elif isinstance(value, str) and not is_utf8(value):
            raise UserError(f"{name} = {value!r} is not valid UTF-8 text; give it in UTF-8")


def is_utf8(text: str) -> bool:
    """Whether a str (from argv, a file name, the environment) holds only characters UTF-8 can encode (bytes
    that were not UTF-8 arrive as lone surrogates)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def check_choice(name: str, value, choices: tuple) -> None:
    if value not in choices:
        raise UserError(f"{name} = {value!r} is not allowed; choose one of: {', '.join(map(str, choices))}")


def check_positive(name: str, value) -> None:
    if not value > 0:
        raise UserError(f"{name} = {value!r} must be greater than 0")


def check_range(name: str, value, low, high, low_open: bool = False, high_open: bool = False) -> None:
    too_low = value <= low if low_open else value < low
    too_high = value >= high if high_open else value > high
    if too_low or too_high or (isinstance(value, float) and math.isnan(value)):
        interval = f"{'(' if low_open else '['}{low}, {high}{')' if high_open or high == math.inf else ']'}"
        raise UserError(f"{name} = {value!r} is out of range; allowed: {interval}")


def dumps_toml(cfg: RunConfig) -> str:
    """Renders a config as TOML: top-level task and pipeline, then one table per section."""
    table = cfg.to_dict()
    lines = [f"task = {_toml_value(table.pop('task'))}", f"pipeline = {_toml_value(table.pop('pipeline'))}"]
    for section in SECTIONS:
        lines += ["", f"[{section}]"]
        lines += [f"{key} = {_toml_value(value)}" for key, value in table[section].items()]
    return "\n".join(lines) + "\n"


def _toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else ("nan" if math.isnan(value) else
                                                         ("inf" if value > 0 else "-inf"))
    if isinstance(value, int):
        return str(value)
    # JSON string escapes are valid TOML basic-string escapes.
    return json.dumps(value, ensure_ascii=False)
