"""What a task is: a TaskSpec (its name, [data] section, defaults, heads, monitors), and the Task interface that
the trainer, the run folder and the exporter call.

A task module defines one TaskSpec (naming its Task subclass) and the Task subclass and is registered in tfseq/tasks/registry.py. Task modules
import TensorFlow and Keras inside their methods only: the registry is read (for --help, and to refuse a bad config)
before TensorFlow is loaded.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field

from tfseq.errors import UserError
from tfseq.models.heads import get_head


@dataclass(frozen=True)
class TaskSpec:
    """A task as the command line and the config see it.

    Args:
        name: the name on the command line (`python -m tfseq.train NAME`) and in config.toml.
        summary: one line for --help.
        data: the dataclass of the task's [data] section.
        task: the Task subclass that trains, evaluates and exports it.
        default_pipeline: the pipeline file used without --config.
        heads: the `model.head` values the task can train.
        model_defaults: ModelConfig fields whose task default differs from the generic one.
        monitors: the `train.monitor` values that make sense for it.
        data_help: what --data takes, for --help.
        stateful: the task can train statefully (train.stateful: the state carried across batches).
        accepts_pipelines: other tasks whose pipeline files this task also reads (their [data] is a subset of
            this task's).
    """

    name: str
    summary: str
    data: type
    task: type
    default_pipeline: str
    heads: tuple[str, ...]
    model_defaults: dict = field(default_factory=dict)
    monitors: tuple[str, ...] = ("val_loss",)
    data_help: str = ""
    stateful: bool = False
    accepts_pipelines: tuple[str, ...] = ()

    def check(self, cfg) -> None:
        """Raises UserError when a RunConfig asks this task for something it cannot do."""
        if not isinstance(cfg.data, self.data):
            raise UserError(f"the [data] section of a {self.name} run must be {self.data.__name__}")
        if cfg.model.head not in self.heads:
            raise UserError(f"task {self.name} trains model.head = {' or '.join(map(repr, self.heads))}, got "
                            f"{cfg.model.head!r}; remove the model.head setting or choose another task")
        if cfg.train.monitor not in self.monitors:
            raise UserError(f"train.monitor = {cfg.train.monitor!r} is not measured by task {self.name}; choose one "
                            f"of: {', '.join(self.monitors)}")
        head = get_head(cfg.model.head)
        head.check(cfg.model)
        if cfg.train.stateful and not self.stateful:
            raise UserError(f"train.stateful = true is for language models; task {self.name} reads independent "
                            "sequences")
        if cfg.train.stateful and cfg.train.strategy != "default":
            raise UserError(f"train.stateful = true trains on one device; set train.strategy = 'default' (got "
                            f"{cfg.train.strategy!r})")
        if getattr(cfg.data, "fold_val", False) and cfg.train.early_stopping:
            raise UserError("data.fold_val = true trains on the validation texts, so they cannot choose the epoch: "
                            "set train.early_stopping = 0 and train.epochs to the best epoch of the same run without "
                            "fold_val (best_epoch in its metrics.json)")
        if not head.classifier and cfg.train.class_weight != "none":
            raise UserError(f"train.class_weight = {cfg.train.class_weight!r} is for classifiers; task {self.name} "
                            "has no classes")


class Task(ABC):
    """One run's data and everything task-specific the trainer needs. Subclasses read their data in __init__.

    Attributes:
        tool: the command that uses a finished run ("sample" or "predict"), for messages.
        cfg: the run's config.
        head: the model's head (tfseq.models.heads).
        vocab: the vocabulary.
        classes: the class names of a classifier, else None.
        steps_per_epoch: training batches per epoch.
        stateful_batch: > 0: the model is stateful, with this fixed batch size.
        val_label: what the learning curve calls the validation scores.
    """

    tool = ""
    default_classes: list[str] | None = None  # the class names of a run folder that stores none

    def __init__(self, cfg):
        self.cfg = cfg
        self.head = get_head(cfg.model.head)
        self.vocab = None
        self.classes: list[str] | None = None
        self.steps_per_epoch = 0
        self.stateful_batch = 0
        self.val_label = "validation"

    @property
    def num_classes(self) -> int:
        return len(self.classes) if self.classes else 0

    def loss(self):
        return self.head.loss()

    def metrics(self) -> list:
        return self.head.metrics()

    def callbacks(self) -> list:
        """Keras callbacks the task adds to training (they run before the checkpoint, which logs what they add)."""
        return []

    def epoch_metrics(self, model) -> dict:
        """Held-out metrics the task computes itself at the end of every epoch, beside Keras' validation (the trainer
        adds them to the epoch's logs, with the averaged weights under train.ema); none by default."""
        return {}

    def prepare_model(self, model) -> str:
        """Sets the weights a new run's model takes from its training data, before the first step (a resumed run
        reads them from its checkpoint). Nothing by default.

        Returns:
            A line for the log, or "".
        """
        return ""

    def save(self, run) -> None:
        """Writes what a new run needs besides weights and config: the vocabulary, and the class list if any."""
        run.write_vocab(self.vocab)
        if self.classes:
            run.write_classes(self.classes)

    # What the trainer and the exporter call; each task implements them.
    @abstractmethod
    def describe(self) -> str:
        """Two lines about the data, printed when training starts."""

    @abstractmethod
    def data_name(self) -> str:
        """The data source, as the user named it."""

    @abstractmethod
    def fingerprint(self) -> str:
        """SHA-256 of everything training depends on in the data: a resume against other data is refused."""

    @abstractmethod
    def train_data(self, first_epoch: int):
        """The training batches for epochs first_epoch .. train.epochs - 1, one after the other."""

    @abstractmethod
    def val_data(self):
        """The validation batches (per-epoch val_loss, early stopping)."""

    @abstractmethod
    def final_metrics(self, model, run) -> dict:
        """Held-out metrics of the final model (written to metrics.json); may write files into `run` too."""

    @classmethod
    @abstractmethod
    def add_endpoints(cls, archive, trained) -> None:
        """Adds the task's raw-string signatures to a keras.export.ExportArchive.

        Args:
            archive: the archive, already tracking the model.
            trained: tfseq.runs.Trained (config, vocabulary, model, classes).
        """

