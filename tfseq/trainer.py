"""The trainer: fits a task's model with Keras `fit`, checkpoints every epoch, resumes, and writes the run folder."""
from __future__ import annotations

import math
import sys
import tempfile
import time

import keras
import numpy as np

from tfseq.config import RunConfig, TrainConfig
from tfseq.data.text import save_vocab
from tfseq.distribute import build_before_fit, is_chief, make_strategy, shard_by_data
from tfseq.errors import UserError
from tfseq.files import atomic_save, write_json
from tfseq.modeling import build_model, cudnn_warnings
from tfseq.runs import RunFolder, choose_run_dir


def make_task(cfg: RunConfig):
    """Returns the task object (data, loss, metrics) for a config's task."""
    if cfg.task == "charlm":
        from tfseq.charlm import CharLMTask

        return CharLMTask(cfg)
    from tfseq.sentiment import SentimentTask

    return SentimentTask(cfg)


def make_optimizer(t: TrainConfig, total_steps: int) -> keras.optimizers.Optimizer:
    """Adam with the configured peak rate, warm-up, schedule and gradient clipping.

    Args:
        t: the train section of the config.
        total_steps: batches in the whole run (epochs * steps per epoch), the length of a cosine schedule.
    """
    rate = t.learning_rate
    if t.lr_schedule == "cosine" or t.warmup_steps:
        rate = keras.optimizers.schedules.CosineDecay(
            initial_learning_rate=0.0 if t.warmup_steps else t.learning_rate,
            decay_steps=max(1, total_steps - t.warmup_steps),
            alpha=t.lr_min_ratio if t.lr_schedule == "cosine" else 1.0,
            warmup_target=t.learning_rate if t.warmup_steps else None,
            warmup_steps=t.warmup_steps,
        )
    if t.weight_decay:
        return keras.optimizers.AdamW(rate, weight_decay=t.weight_decay, global_clipnorm=t.clipnorm or None)
    return keras.optimizers.Adam(rate, global_clipnorm=t.clipnorm or None)


class RunCheckpoint(keras.callbacks.Callback):
    """Keeps the run folder current at the end of every epoch, in an order that survives `kill -9`.

    Writes the checkpoint (weights + optimizer) under a new name, then history.csv, then state.json (which names
    the checkpoint), then deletes the previous checkpoint; every file goes through a temporary name. It also stops
    training on a NaN loss (keeping the last good checkpoint), on early stopping, and on the time budget, and seeds
    every dropout random generator from (seed, epoch) so that a resumed epoch draws the same masks.

    Args:
        run: the run folder.
        cfg: the run's config.
        state: state.json as read at the start (epoch 0 for a new run).
        history: history rows of the finished epochs.
    """

    def __init__(self, run: RunFolder, cfg: RunConfig, state: dict, history: list[dict]):
        super().__init__()
        self.run, self.cfg, self.state, self.history = run, cfg, dict(state), list(history)
        self.failure = ""
        self.stop_reason = ""
        self._started = 0.0

    def on_train_begin(self, logs=None):
        self._started = time.perf_counter() - self.state["train_seconds"]

    def on_epoch_begin(self, epoch, logs=None):
        generators = [v for v in self.model.variables if "seed_generator_state" in v.path]
        for i, var in enumerate(generators):
            var.assign(np.array([self.cfg.train.seed * 1000 + i, epoch], dtype=var.dtype))

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            self.failure = (
                f"the training loss became {float(loss)} in epoch {self.state['epoch'] + 1}, batch {batch + 1}; "
                f"kept the last good checkpoint (epoch {self.state['epoch']}) in {self.run.path}; "
                "lower train.learning_rate or set train.clipnorm (e.g. 1.0) and run again"
            )
            self.model.stop_training = True

    def on_epoch_end(self, epoch, logs=None):
        if self.failure:
            return
        t = self.cfg.train
        seconds = time.perf_counter() - self._started
        row = {"epoch": epoch + 1, **{k: float(v) for k, v in (logs or {}).items()},
               "lr": float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate)),
               "minutes": seconds / 60}
        # Seconds the epoch just finished took: the estimate for the next one, which the time budget must fit.
        last_epoch = seconds - self.state["train_seconds"]
        previous = self.state.get("checkpoint")
        checkpoint = self.run.checkpoint(epoch + 1)
        atomic_save(checkpoint, self.model.save_weights, suffix=".weights.h5")
        # Compared as "lower is better": accuracy enters negated.
        value = row.get(t.monitor, row["loss"]) * (-1 if t.monitor == "val_accuracy" else 1)
        best = self.state.get("best_value")
        if t.early_stopping and (best is None or value < best):
            self.state.update(best_value=value, best_epoch=epoch + 1)
            atomic_save(self.run.path / "best.weights.h5", self.model.save_weights, suffix=".weights.h5")
        self.history = [r for r in self.history if r["epoch"] <= epoch] + [row]
        self.run.write_history(self.history)
        self.state.update(epoch=epoch + 1, train_seconds=seconds, checkpoint=checkpoint.name)
        self.run.write_state(self.state)
        if previous and previous != checkpoint.name:
            (self.run.checkpoints / previous).unlink(missing_ok=True)
        if t.early_stopping and epoch + 1 - self.state["best_epoch"] >= t.early_stopping:
            self.stop_reason = (f"early stopping: no better {t.monitor} for {t.early_stopping} epochs "
                                f"(best: epoch {self.state['best_epoch']})")
        elif t.max_minutes and seconds + last_epoch > t.max_minutes * 60:
            self.stop_reason = (f"time budget: {seconds / 60:.1f} of {t.max_minutes:g} minutes used, "
                                f"another epoch takes {last_epoch / 60:.1f}")
        self.model.stop_training = bool(self.stop_reason)

    def on_train_end(self, logs=None):
        # Printed here, after Keras has printed the last epoch's line.
        if self.stop_reason:
            print(self.stop_reason + "; stopped", flush=True)


def train(cfg: RunConfig, run_dir: str | None = None) -> RunFolder:
    """Trains (or resumes) a run and writes its folder.

    Args:
        cfg: the resolved, checked config.
        run_dir: the folder to write; None = a new folder under models/ (or the interrupted run of this config).

    Returns:
        The run folder, holding config, vocabulary, weights, history, metrics and plot.
    """
    # A multi-worker strategy must exist before TensorFlow runs its first op in this process.
    strategy = make_strategy(cfg.train.strategy)
    if is_chief(strategy):
        run, resume = choose_run_dir(cfg, run_dir)
    else:  # other workers keep their (identical) copy of the run out of the chief's folder
        run, resume = RunFolder(tempfile.mkdtemp(prefix="tfseq-worker-")), False
    task = make_task(cfg)
    state = run.read_state() if resume else {"epoch": 0, "train_seconds": 0.0, "finished": False}
    history = [r for r in run.read_history() if r["epoch"] <= state["epoch"]] if resume else []
    print(("resuming " if resume else "training into ") + f"{run.path} (epoch {state['epoch']} of "
          f"{cfg.train.epochs} done)" + "\n" + task.describe(), flush=True)
    run.path.mkdir(parents=True, exist_ok=True)
    run.write_config(cfg)
    save_vocab(task.vocab, run.vocab)

    keras.utils.set_random_seed(cfg.train.seed)
    policy = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("mixed_float16" if cfg.train.mixed_precision else "float32")
    try:
        with strategy.scope():
            model = build_model(cfg.model, task.vocab.size)
            model.compile(optimizer=make_optimizer(cfg.train, cfg.train.epochs * task.steps_per_epoch),
                          loss=task.loss(), metrics=task.metrics(), jit_compile=cfg.train.jit_compile)
    finally:
        keras.mixed_precision.set_global_policy(policy)
    for warning in cudnn_warnings(model):
        print(f"warning: {warning}", file=sys.stderr, flush=True)
    if state.get("checkpoint"):
        model.optimizer.build(model.trainable_variables)
        model.load_weights(run.checkpoints / state["checkpoint"])
    checkpoint = RunCheckpoint(run, cfg, state, history)
    callbacks = [checkpoint, keras.callbacks.TensorBoard(str(run.logs), write_graph=False, profile_batch=0)]
    if state["epoch"] < cfg.train.epochs:
        train_data, val_data = task.train_data(state["epoch"]), task.val_data()
        if cfg.train.strategy == "multiworker":
            # Every worker builds the same batches; each takes its share of every global batch.
            train_data, val_data = shard_by_data(train_data), shard_by_data(val_data)
            build_before_fit(model, strategy, next(iter(task.val_data())))
        model.fit(train_data, epochs=cfg.train.epochs, initial_epoch=state["epoch"],
                  steps_per_epoch=task.steps_per_epoch, validation_data=val_data, callbacks=callbacks,
                  shuffle=False, verbose=1 if sys.stdout.isatty() else 2)
    if checkpoint.failure:
        raise UserError(checkpoint.failure)
    state = checkpoint.state
    if cfg.train.early_stopping and state.get("best_epoch"):
        model.load_weights(run.path / "best.weights.h5")
    atomic_save(run.weights, model.save_weights, suffix=".weights.h5")
    metrics = {**task.final_metrics(model), "epochs": state["epoch"], "train_minutes": state["train_seconds"] / 60}
    if state.get("best_epoch"):
        metrics["best_epoch"] = state["best_epoch"]
    write_json(run.metrics, metrics)
    plot_history(checkpoint.history, run)
    run.write_state({**state, "finished": True})
    print("held-out: " + ", ".join(f"{k} {v:.4g}" for k, v in metrics.items() if isinstance(v, float)), flush=True)
    print(f"run folder: {run.path}", flush=True)
    return run


def plot_history(rows: list[dict], run: RunFolder) -> None:
    """Draws loss (and accuracy, when logged) per epoch into learning_curve.png."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    panels = [("loss", "loss (nats)")] + ([("accuracy", "accuracy")] if any("accuracy" in r for r in rows) else [])
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 3.5), squeeze=False)
    epochs = [r["epoch"] for r in rows]
    for ax, (key, label) in zip(axes[0], panels):
        for prefix, name in (("", "train"), ("val_", "validation")):
            values = [r.get(prefix + key, float("nan")) for r in rows]
            ax.plot(epochs, values, marker="o", label=name)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(run.path.name)
    fig.tight_layout()
    atomic_save(run.plot, lambda tmp: fig.savefig(tmp, format="png", dpi=100), suffix=".png")
    plt.close(fig)
