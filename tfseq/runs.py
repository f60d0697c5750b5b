"""Run folders: where each file of a run lives, picking or resuming a folder, and loading a finished run.

A run folder holds everything needed to sample, evaluate, resume or export (see models/README.md):

    config.toml          the resolved config
    vocab.json           the vocabulary
    classes.json         a classifier's class names or a tagger's tags, in the order of its outputs
    model.weights.h5     the final weights (the best epoch's when early stopping is on)
    checkpoints/         epoch-NNNN.weights.h5: weights + optimizer state of the last finished epoch
    state.json           the last finished epoch, training time, best epoch, the data fingerprint, a decision to
                         stop (early stopping, time budget, NaN loss); "finished" once training ended
    .lock                held (flock) by the process training the run; names it
    history.csv          one row per epoch (epoch, loss, val_loss, ..., lr, minutes)
    metrics.json         held-out metrics of the final weights
    members.json         an ensemble's member runs instead of weights (python -m tfseq.ensemble)
    confusion.json/.png  a classifier's test confusion matrix (rows: true class, columns: predicted)
    learning_curve.png   loss (and accuracy) per epoch
    logs/                TensorBoard event files
"""
from __future__ import annotations

import csv
import fcntl
import io
import math
import os
import socket
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

from tfseq.config import INT32_MAX, RunConfig, config_from_dict, dumps_toml, read_toml
from tfseq.errors import UserError, first_line
from tfseq.data.text import load_vocab, save_vocab
from tfseq.files import atomic_write, read_json, write_json

MODELS_DIR = Path("models")
# What a new run writes before config.toml (which it writes last): a folder holding only these can start a run anew.
NEWBORN = frozenset({".lock", "vocab.json", "classes.json", "state.json"})


@dataclass
class RunFolder:
    """Paths of one run's files.

    Args:
        path: the run folder.
    """

    path: Path

    def __post_init__(self):
        self.path = Path(self.path)

    config = property(lambda self: self.path / "config.toml")
    vocab = property(lambda self: self.path / "vocab.json")
    classes = property(lambda self: self.path / "classes.json")
    confusion = property(lambda self: self.path / "confusion.json")
    confusion_plot = property(lambda self: self.path / "confusion.png")
    weights = property(lambda self: self.path / "model.weights.h5")
    best = property(lambda self: self.path / "best.weights.h5")
    checkpoints = property(lambda self: self.path / "checkpoints")
    state = property(lambda self: self.path / "state.json")
    history = property(lambda self: self.path / "history.csv")
    metrics = property(lambda self: self.path / "metrics.json")
    plot = property(lambda self: self.path / "learning_curve.png")
    logs = property(lambda self: self.path / "logs")
    members = property(lambda self: self.path / "members.json")

    def checkpoint(self, epoch: int) -> Path:
        return self.checkpoints / f"epoch-{epoch:04d}.weights.h5"

    def read_state(self) -> dict:
        """Returns state.json, or a fresh state when the run has not started training yet."""
        if not self.state.exists():
            return {"epoch": 0, "train_seconds": 0.0, "finished": False}
        state = read_json(self.state, "run state")
        kinds = {"epoch": int, "train_seconds": (int, float), "checkpoint": str, "best_value": (int, float),
                 "best_epoch": int, "stop_reason": str, "failure": str, "data_fingerprint": str, "finished": bool}
        wrong = [key for key, kind in kinds.items() if isinstance(state, dict) and key in state and
                 (not isinstance(state[key], kind) or isinstance(state[key], bool) and kind is not bool)]
        if isinstance(state, dict) and not wrong and isinstance(state.get("epoch"), int):
            epoch, checkpoint = state["epoch"], state.get("checkpoint")
            checks = {
                "epoch": 0 <= epoch <= INT32_MAX,
                "train_seconds": "train_seconds" in state and math.isfinite(state["train_seconds"]) and
                state["train_seconds"] >= 0,
                # After an epoch, the name this folder gives that epoch's checkpoint: never a path out of the run.
                "checkpoint": checkpoint == self.checkpoint(epoch).name if epoch else checkpoint is None,
                "best_epoch": 1 <= state.get("best_epoch", 1) <= max(epoch, 1),
                "data_fingerprint": len(state.get("data_fingerprint", "0" * 64)) == 64,
            }
            wrong = [key for key, ok in checks.items() if not ok]
        if not isinstance(state, dict) or "epoch" not in state or wrong:
            raise UserError(f"run state {self.state} is corrupt ({', '.join(wrong) or 'epoch'}); restore it, or "
                            "train into a new --run-dir")
        return state

    def write_state(self, state: dict) -> None:
        write_json(self.state, state)

    def read_config(self) -> RunConfig:
        if not self.config.exists():
            raise UserError(f"{self.path} is not a tfseq run folder: {self.config.name} is missing")
        table = read_toml(self.config)
        model = table.get("model")
        if isinstance(model, dict) and model.get("ngram_buckets") and "ngram_hash" not in model:
            model["ngram_hash"] = "fnv"  # saved before the mixed hash existed: its weights are of the old buckets
        return config_from_dict(table, str(self.config))

    def write_config(self, cfg: RunConfig) -> None:
        atomic_write(self.config, dumps_toml(cfg))

    def write_vocab(self, vocab) -> None:
        save_vocab(vocab, self.vocab)

    def read_vocab(self):
        return load_vocab(self.vocab)

    def write_classes(self, classes: list[str]) -> None:
        write_json(self.classes, {"classes": list(classes)})

    def read_classes(self) -> list[str] | None:
        """The class names, or None when the run stores none (not a classifier, or from before class lists)."""
        if not self.classes.exists():
            return None
        table = read_json(self.classes, "class list")
        classes = table.get("classes") if isinstance(table, dict) else None
        if not isinstance(classes, list) or len(classes) < 2 or not all(isinstance(c, str) for c in classes) or \
                len(set(classes)) != len(classes):
            raise UserError(f"class list {self.classes} is corrupt: 'classes' must be a list of two or more distinct "
                            "names; restore it from the run's training data")
        return classes

    def write_confusion(self, classes: list[str], matrix: list[list[int]]) -> None:
        write_json(self.confusion, {"classes": list(classes), "rows": "true class", "columns": "predicted class",
                                    "matrix": matrix})

    def read_history(self) -> list[dict]:
        """Returns history.csv as a list of rows with float values (epoch as int); [] when absent."""
        if not self.history.exists():
            return []
        rows = []
        try:
            with open(self.history, newline="", encoding="utf-8") as fh:
                for row in csv.DictReader(fh):
                    rows.append({k: (int(v) if k == "epoch" else float(v)) for k, v in row.items() if v != ""})
                    if "epoch" not in rows[-1]:
                        raise ValueError(f"line {len(rows) + 1} has no epoch")
        except (ValueError, TypeError, AttributeError, UnicodeDecodeError, csv.Error, OSError) as err:
            raise UserError(f"history {self.history} is corrupt ({first_line(err, 120)}); restore it or delete it (the "
                            "run then resumes with the history of the epochs still to come only)") from None
        return rows

    def write_history(self, rows: list[dict]) -> None:
        columns = ["epoch"] + sorted({k for row in rows for k in row} - {"epoch"})
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        atomic_write(self.history, out.getvalue())


class RunLock:
    """An exclusive lock on a run folder for one training process: `flock` on `<run>/.lock`.

    The kernel releases it when the process ends, however it ends (`kill -9` included), so it never stays stuck.
    The file names the holder (pid, host, command), for the message a second process gets.

    Args:
        run: the run folder (it must exist).
    """

    def __init__(self, run: RunFolder):
        self.path = run.path / ".lock"
        while True:
            try:
                self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as err:
                raise UserError(f"cannot lock run folder {run.path}: {err.strerror} ({self.path}); train into a "
                                "folder you can write") from None
            try:
                fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                holder = os.pread(self.fd, 4096, 0).decode("utf-8", "replace").strip() or "another process"
                os.close(self.fd)
                raise UserError(f"{run.path} is in use by another training process ({holder}); wait for it to end, "
                                "or train into another --run-dir") from None
            # The file may have been removed (by a holder that released it) between our open and our lock: then
            # the lock is on an orphan, and the path must be opened again.
            try:
                same = os.fstat(self.fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(self.fd)
        command = " ".join(["python -m tfseq.train", *sys.argv[1:]])[:300]
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, f"pid {os.getpid()} on {socket.gethostname()}, started {time.strftime('%Y-%m-%d %H:%M:%S')}"
                           f": {command}\n".encode("utf-8", "replace"), 0)

    def release(self, remove: bool = False) -> None:
        """Lets another process train the run.

        Args:
            remove: also delete the lock file (for a folder left as it was found).
        """
        if self.fd is not None:
            if remove:
                self.path.unlink(missing_ok=True)  # a process that opened it meanwhile sees the unlink and retries
            os.close(self.fd)  # closing the only descriptor releases the flock
            self.fd = None


def config_differences(a: RunConfig, b: RunConfig) -> list[str]:
    """Returns the `section.key` names whose values differ between two configs ([] when they agree)."""
    da, db = a.to_dict(), b.to_dict()
    diffs = [k for k in ("task",) if da[k] != db[k]]
    for section in ("data", "model", "train"):
        diffs += [f"{section}.{k}" for k in da[section] if da[section][k] != db[section].get(k)]
    return diffs


def choose_run_dir(cfg: RunConfig, run_dir: str | None) -> tuple[RunFolder, bool]:
    """Picks the folder a training command writes to, and whether it resumes a run there. Writes nothing.

    With `run_dir` given: a new or empty folder starts a run; an unfinished run with the same config resumes;
    a finished run or a different config is refused. Without it: the newest unfinished run with the same config
    among all `models/<pipeline>-*` folders is resumed (so re-running an interrupted command resumes it, whatever
    ran in between); otherwise a new timestamped folder is chosen.

    Returns:
        (run folder, resume?).
    """
    if run_dir:
        run = RunFolder(Path(run_dir))
        if run.path.exists() and not run.path.is_dir():
            raise UserError(f"--run-dir {run.path} is a file, not a folder; choose a folder path")
        if not run.config.exists():
            # A run writes its config last: a folder holding only what comes before it is a run killed at birth.
            if run.path.exists() and any(p.name not in NEWBORN for p in run.path.iterdir()):
                raise UserError(f"--run-dir {run.path} is not empty and holds no tfseq run; choose another folder")
            return run, False
        if run.members.exists():
            raise UserError(f"{run.path} holds an ensemble of runs, which is not trained; choose a new --run-dir")
        old = run.read_config()
        diffs = config_differences(old, cfg)
        if diffs:
            raise UserError(
                f"{run.path} holds a run with a different config ({', '.join(diffs[:5])}); "
                "use another --run-dir, or the same settings to resume it"
            )
        if run.read_state().get("finished"):
            raise UserError(f"{run.path} holds a finished run; choose a new --run-dir to train again")
        return run, True
    prefix = cfg.pipeline or cfg.task
    if MODELS_DIR.exists() and not MODELS_DIR.is_dir():
        raise UserError(f"{MODELS_DIR} is a file; run from a folder whose models/ is a folder, or pass --run-dir")
    for path in sorted((p for p in MODELS_DIR.glob(f"{prefix}-*") if (p / "config.toml").exists()), reverse=True):
        run = RunFolder(path)
        if run.members.exists():
            continue  # an ensemble: nothing to resume
        try:
            if not run.read_state().get("finished") and not config_differences(run.read_config(), cfg):
                return run, True
        except UserError:
            continue  # a damaged folder is not this command's run
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = MODELS_DIR / f"{prefix}-{stamp}"
    suffix = 1
    while path.exists():
        suffix += 1
        path = MODELS_DIR / f"{prefix}-{stamp}-{suffix}"
    return RunFolder(path), False


@dataclass
class Trained:
    """A trained run, loaded for inference.

    Args:
        cfg: its config.
        vocab: its vocabulary.
        model: the model with the final weights.
        classes: a classifier's class names, a tagger's tags (None for other tasks).
    """

    cfg: RunConfig
    vocab: object
    model: object
    classes: list[str] | None


def load_trained(path: str | Path, tool: str | None = None) -> Trained:
    """Loads a run folder for inference: its config, vocabulary, class list and model with the final weights.

    An unfinished run loads the weights of its last finished epoch; an ensemble folder (members.json) loads its
    members' models under one that averages their outputs (tfseq.ensembling).

    Args:
        path: the run folder.
        tool: when given, the command asking ("sample" or "predict"); a run of a task used with another command is
            refused, naming that command.
    """
    from tfseq.config import task_spec
    from tfseq.models.factory import build_model
    from tfseq.models.heads import get_head

    run = RunFolder(Path(path))
    if run.path.exists() and not run.path.is_dir():
        raise UserError(f"{run.path} is a file, not a run folder; give a run folder (models/<run>)")
    if not run.path.is_dir():
        raise UserError(f"run folder {run.path} does not exist")
    cfg = run.read_config()
    task = task_spec(cfg.task).task
    if tool and task.tool != tool:
        raise UserError(f"{run.path} is a {cfg.task} run, which python -m tfseq.{tool} cannot use; use python -m "
                        f"tfseq.{task.tool} with it")
    vocab = run.read_vocab()
    classes = run.read_classes() or task.default_classes
    if get_head(cfg.model.head).has_classes and not classes:
        raise UserError(f"{run.classes} is missing: the run's class names are lost; restore the file, or train again")
    if run.members.exists():
        from tfseq.ensembling import ensemble_model, load_members

        return Trained(cfg, vocab, ensemble_model(load_members(run)), classes)
    weights = run.weights
    if not weights.exists():
        state = run.read_state()
        if not state.get("checkpoint"):
            raise UserError(f"{run.path} has no weights yet: training has not finished an epoch")
        weights = run.checkpoints / state["checkpoint"]
    model = build_model(cfg.model, vocab.size, len(classes) if classes else 0)
    try:
        with warnings.catch_warnings():  # Keras warns before it raises on a mismatch: the error says it all
            warnings.simplefilter("ignore")
            model.load_weights(weights)
    except Exception as err:  # h5py and Keras raise many types for a truncated or mismatched file
        files = ", ".join(p.name for p in (run.config, run.vocab, run.classes) if p.exists())
        raise UserError(f"cannot load weights {weights} ({first_line(err)}); the file is corrupt or does not match "
                        f"{files}") from None
    return Trained(cfg, vocab, model, classes)
