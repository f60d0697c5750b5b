"""The trainer: fits a task's model with Keras `fit`, checkpoints every epoch, resumes, and writes the run folder."""
from __future__ import annotations

import hashlib
import math
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from tfseq.averaging import WarmedAverage, averaged, restore, swap_in
from tfseq.config import RunConfig, TrainConfig, task_spec
from tfseq.distribute import build_before_fit, is_chief, make_strategy, shard_by_data, worker_index, worker_sum
from tfseq.errors import UserError, first_line
from tfseq.files import atomic_save, write_json
from tfseq.models.factory import build_model, cudnn_warnings, parameter_count
from tfseq.models.memory import ADAM_BYTES_PER_WEIGHT, AVERAGE_BYTES_PER_WEIGHT, FLOAT32
from tfseq.models.transfer import init_from_run
from tfseq.runs import RunFolder, RunLock, choose_run_dir
from tfseq.schedule import BudgetCosine, replan


def make_task(cfg: RunConfig):
    """Returns the task object (data, head, metrics) of a config's task; it reads the data."""
    return task_spec(cfg.task).task(cfg)


def make_optimizer(t: TrainConfig, total_steps: int) -> keras.optimizers.Optimizer:
    """Adam with the configured peak rate, warm-up, schedule, gradient clipping and, with train.ema, an average of
    the weights (tfseq.averaging), logging the gradient norm (GradientNormLog: history.csv's grad_norm and clipped
    columns).

    Args:
        t: the train section of the config.
        total_steps: batches in the whole run (epochs * steps per epoch), the length of a cosine schedule (with
            train.max_minutes, the budget can shorten it: tfseq.schedule).
    """
    rate = t.learning_rate
    if t.lr_schedule == "cosine" or t.warmup_steps:
        rate = BudgetCosine(t.learning_rate, t.lr_min_ratio if t.lr_schedule == "cosine" else 1.0, t.warmup_steps,
                            total_steps)
    common = dict(global_clipnorm=t.clipnorm or None, use_ema=t.ema > 0, ema_momentum=t.ema or 0.99)
    if t.weight_decay:
        return LoggedAdamW(rate, weight_decay=t.weight_decay, **common)
    return LoggedAdam(rate, **common)


class GradientNormLog:
    """Mixin for a Keras optimizer: adds up, step by step, the global gradient norm before clipping and whether
    global_clipnorm clipped the step; `take_gradient_log` reads the epoch's figures and starts the next at zero.

    The norm is of the unscaled gradients (a LossScaleOptimizer divides by its scale before it calls this one, and
    skips the steps whose gradients are not finite: they are not counted). An embedding's gradient comes as one row
    per id occurrence (tf.IndexedSlices); the logged norm adds up a repeated id's rows first, as the gradient is,
    whereas Keras' clipping takes the norm of the rows as they come: a step counts as clipped when that norm, the
    one Keras compares, exceeds global_clipnorm. Under a multi-replica strategy Keras clips each replica's gradient
    of its share of the loss, before the replicas are summed: both figures are then those of each replica's
    gradient, averaged over the replicas.
    The totals live outside `optimizer.variables`: checkpoints keep the variables they had before this log, and
    a resumed epoch starts from zero as every epoch does.
    """

    def build(self, variables):
        super().build(variables)
        if getattr(self, "gradient_totals", None) is None:
            # A plain object: Keras' tracker would add variables in a list or tuple to optimizer.variables.
            self.gradient_totals = _GradientTotals()

    def apply(self, grads, trainable_variables=None):
        super().apply(grads, trainable_variables)  # builds the optimizer on its first call
        present = [g for g in grads if g is not None]
        if not present:
            return
        scale = self.loss_scale_factor or 1.0
        true, as_clipped = zip(*[_squared_sums(g) for g in present])
        totals = self.gradient_totals
        totals.norm_sum.assign_add(tf.sqrt(tf.add_n(true)) / scale)
        totals.steps.assign_add(1.0)
        if self.global_clipnorm:
            clipped = tf.sqrt(tf.add_n(as_clipped)) / scale > self.global_clipnorm
            totals.clipped.assign_add(tf.cast(clipped, "float32"))

    def take_gradient_log(self) -> dict:
        """Returns {"grad_norm": the mean global norm over the steps since the last call, "clipped": the fraction of
        those steps that global_clipnorm clipped (0 without clipping)} ({} before any step), and resets."""
        totals = getattr(self, "gradient_totals", None)
        steps = float(keras.ops.convert_to_numpy(totals.steps)) if totals else 0.0
        if not steps:
            return {}
        log = {"grad_norm": float(keras.ops.convert_to_numpy(totals.norm_sum)) / steps,
               "clipped": float(keras.ops.convert_to_numpy(totals.clipped)) / steps}
        for var in (totals.norm_sum, totals.steps, totals.clipped):
            var.assign(0.0)
        return log


def _squared_sums(gradient) -> tuple:
    """(the sum of squares of a gradient, the same as Keras' clip_by_global_norm adds it up): equal for a dense
    gradient; for an embedding's IndexedSlices, a repeated id's rows are summed first for the first (the gradient
    as it is), and taken as they come for the second."""
    if isinstance(gradient, tf.IndexedSlices):
        values = tf.cast(gradient.values, "float32")
        # Summed into the embedding-sized dense gradient (Adam's update makes it too, every step) rather than over
        # tf.unique's ids or a sort: both give XLA a dynamic shape, and one makes its dynamic padder inline the
        # dropout masks' random-bit generators into element-wise fusions that recompute the key per element (a
        # stateful char-LM's step took twice as long).
        rows = tf.math.unsorted_segment_sum(values, gradient.indices, gradient.dense_shape[0])
        return tf.reduce_sum(tf.square(rows)), tf.reduce_sum(tf.square(values))
    total = tf.reduce_sum(tf.square(tf.cast(gradient, "float32")))
    return total, total


class _GradientTotals:
    """The running sums of a GradientNormLog (made in the optimizer's build, so in its distribution scope)."""

    def __init__(self):
        def total(name):
            return keras.Variable(0.0, dtype="float32", trainable=False, aggregation="mean", name=name)

        self.norm_sum, self.steps, self.clipped = total("grad_norm_sum"), total("grad_steps"), total("clipped_steps")


# Registered: a compiled model is cloned or saved with its optimizer's class name.
@keras.saving.register_keras_serializable(package="tfseq")
class LoggedAdam(GradientNormLog, WarmedAverage, keras.optimizers.Adam):
    """Adam that logs the gradient norm (GradientNormLog) and warms its weights' average up (WarmedAverage)."""


@keras.saving.register_keras_serializable(package="tfseq")
class LoggedAdamW(GradientNormLog, WarmedAverage, keras.optimizers.AdamW):
    """AdamW that logs the gradient norm (GradientNormLog) and warms its weights' average up (WarmedAverage)."""


def gradient_log(model: keras.Model) -> dict:
    """The model's optimizer's gradient log since the last call (GradientNormLog.take_gradient_log), or {}."""
    optimizer = getattr(model.optimizer, "inner_optimizer", model.optimizer)  # under a LossScaleOptimizer
    return optimizer.take_gradient_log() if isinstance(optimizer, GradientNormLog) else {}


def lr_schedule(model: keras.Model) -> BudgetCosine | None:
    """The model's optimizer's learning-rate schedule, when it is a BudgetCosine (else None)."""
    optimizer = getattr(model.optimizer, "inner_optimizer", model.optimizer)
    schedule = getattr(optimizer, "_learning_rate", None)
    return schedule if isinstance(schedule, BudgetCosine) else None


def seed_dropout(model: keras.Model, seed: int, epoch: int) -> None:
    """Sets every random generator of the model (dropout masks) to a state drawn from (seed, generator, epoch).

    A Keras SeedGenerator is a [key, counter] pair whose counter goes up by one per draw; each epoch gets its own
    key (the counter starts at 0), so no epoch repeats another's masks, and a resumed epoch draws the same masks
    as the uninterrupted one.
    """
    generators = [v for v in model.variables if "seed_generator_state" in v.path]
    for i, var in enumerate(generators):
        key = int(np.random.SeedSequence([seed, i, epoch]).generate_state(1)[0] >> 1)  # 31 bits: any seed dtype
        var.assign(np.array([key, 0], dtype=var.dtype))


class EpochValidation(keras.callbacks.Callback):
    """Validates the averaged weights when the run keeps an average (train.ema): swaps them in for Keras' validation
    pass, and adds the task's own epoch metrics (a language model's held-out stream) to the epoch's logs, read with
    them too. The trained weights are back in place before the checkpoint is written.

    Args:
        task: the run's task (its epoch_metrics).
    """

    def __init__(self, task):
        super().__init__()
        self.task = task
        self._trained = None

    def on_test_begin(self, logs=None):
        self._trained = swap_in(self.model)

    def on_test_end(self, logs=None):
        restore(self.model, self._trained)
        self._trained = None

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            with averaged(self.model):
                logs.update(self.task.epoch_metrics(self.model))


class RunCheckpoint(keras.callbacks.Callback):
    """Keeps the run folder current at the end of every epoch, in an order that survives `kill -9`.

    Writes the checkpoint (weights + optimizer) under a new name, then history.csv, then state.json (which names
    the checkpoint and records a decision to stop), then deletes the previous checkpoint; every file goes through a
    temporary name. It also stops training on a NaN loss (keeping the last good checkpoint), on early stopping, and
    on the time budget, and seeds the dropout generators from (seed, epoch).

    Args:
        run: the run folder.
        cfg: the run's config.
        state: state.json as read at the start (epoch 0 for a new run).
        history: history rows of the finished epochs.
        from_chief: gives every worker the chief's values (identity on one worker): the time budget is decided on
            the chief's clock, so that every worker stops after the same epoch.
    """

    def __init__(self, run: RunFolder, cfg: RunConfig, state: dict, history: list[dict], from_chief=None):
        super().__init__()
        self.run, self.cfg, self.state, self.history = run, cfg, dict(state), list(history)
        self.from_chief = from_chief or (lambda values: np.asarray(values, np.float64))
        self.failure = ""
        self._started = 0.0
        self._epoch_first_step = 0

    def on_train_begin(self, logs=None):
        self._started = time.perf_counter() - self.state["train_seconds"]

    def on_epoch_begin(self, epoch, logs=None):
        seed_dropout(self.model, self.cfg.train.seed, epoch)
        schedule = lr_schedule(self.model)
        if schedule and self.state.get("lr_plan"):
            schedule.set_plan(*self.state["lr_plan"])
        self._epoch_first_step = int(keras.ops.convert_to_numpy(self.model.optimizer.iterations))

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            self.failure = (
                f"the training loss became {float(loss)} in epoch {self.state['epoch'] + 1}, batch {batch + 1}; "
                f"kept the last good checkpoint (epoch {self.state['epoch']}) in {self.run.path}; "
                "lower train.learning_rate or set train.clipnorm (e.g. 1.0) and train again (a changed config "
                "starts a new run: without --run-dir, or with a new one)"
            )
            self.model.stop_training = True

    def on_epoch_end(self, epoch, logs=None):
        if self.failure:
            return
        t = self.cfg.train
        seconds = float(self.from_chief([time.perf_counter() - self._started])[0])
        logs = {} if logs is None else logs
        logs.update(gradient_log(self.model))  # the same dict reaches TensorBoard, which runs after this callback
        row = {"epoch": epoch + 1, **{k: float(v) for k, v in logs.items()},
               "lr": float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate)),
               "minutes": seconds / 60}
        # Seconds the epoch just finished took: the estimate for the next one, which the time budget must fit.
        last_epoch = seconds - self.state["train_seconds"]
        previous = self.state.get("checkpoint")
        checkpoint = self.run.checkpoint(epoch + 1)
        atomic_save(checkpoint, self.model.save_weights, suffix=".weights.h5")
        # Compared as "lower is better": a loss as it is, any other monitor (accuracy) negated.
        value = row.get(t.monitor, row["loss"]) * (1 if t.monitor.endswith("loss") else -1)
        best = self.state.get("best_value")
        if t.early_stopping and (best is None or value < best):
            self.state.update(best_value=value, best_epoch=epoch + 1)
            atomic_save(self.run.best, self.model.save_weights, suffix=".weights.h5")
        stop = ""
        if t.early_stopping and epoch + 1 - self.state["best_epoch"] >= t.early_stopping:
            stop = (f"early stopping: no better {t.monitor} for {t.early_stopping} epochs "
                    f"(best: epoch {self.state['best_epoch']})")
        elif t.max_minutes and seconds + last_epoch > t.max_minutes * 60:
            stop = (f"time budget: {seconds / 60:.1f} of {t.max_minutes:g} minutes used, another epoch takes "
                    f"{last_epoch / 60:.1f}")
        schedule = lr_schedule(self.model)
        if t.max_minutes and schedule:
            step = int(keras.ops.convert_to_numpy(self.model.optimizer.iterations))
            self.state["lr_plan"] = list(replan(schedule, step, seconds, last_epoch, step - self._epoch_first_step,
                                                t.max_minutes * 60))
        self.history = [r for r in self.history if r["epoch"] <= epoch] + [row]
        self.run.write_history(self.history)
        # The decision to stop is written with the epoch it follows: a resumed run then ends where this one would.
        self.state.update(epoch=epoch + 1, train_seconds=seconds, checkpoint=checkpoint.name, stop_reason=stop)
        self.run.write_state(self.state)
        if previous and previous != checkpoint.name:
            (self.run.checkpoints / previous).unlink(missing_ok=True)
        self.model.stop_training = bool(stop)

    def on_train_end(self, logs=None):
        # Printed here, after Keras has printed the last epoch's line.
        if self.state.get("stop_reason") and not self.failure:
            print(self.state["stop_reason"] + "; stopped", flush=True)


def train(cfg: RunConfig, run_dir: str | None = None) -> RunFolder:
    """Trains (or resumes) a run and writes its folder.

    Everything that can be refused (data, model size, a run folder in use, changed data, a damaged checkpoint or
    history) is checked before the run's files are written; a new run that is refused leaves nothing behind.

    Args:
        cfg: the resolved, checked config.
        run_dir: the folder to write; None = a new folder under models/ (or the interrupted run of this config).

    Returns:
        The run folder, holding config, vocabulary, weights, history, metrics and plot.
    """
    if cfg.train.strategy == "multiworker" and not run_dir:
        raise UserError("train.strategy = 'multiworker' needs --run-dir, the same on every worker: it names the run "
                        "that every worker trains and resumes")
    # A multi-worker strategy must exist before TensorFlow runs its first op in this process.
    strategy = make_strategy(cfg.train.strategy)
    chief = is_chief(strategy)
    total = worker_sum(strategy)
    lock, made, started, resume = None, None, False, False
    try:
        # What can be refused before any variable exists; then every worker learns whether all of them could
        # start. (Workers must make the same collective calls in the same order, and making a variable is one.)
        error = None
        try:
            run, resume, lock, made = _claim_run(cfg, run_dir, strategy, chief)
            task = make_task(cfg)
            state = _start_state(run, resume, task)
            history = [r for r in run.read_history() if r["epoch"] <= state["epoch"]] if resume else []
        except UserError as err:
            error = err
        _all_started(total, error)
        try:
            model = _compiled_model(cfg, task, strategy)
            restored = None
            if state.get("checkpoint") and cfg.train.strategy == "multiworker":
                restored = _chief_values(cfg, task, run.checkpoints / state["checkpoint"], run)
            elif state.get("checkpoint"):
                with strategy.scope():
                    _load_weights(model, run.checkpoints / state["checkpoint"], run)
            if not state.get("checkpoint"):
                with strategy.scope():
                    if cfg.model.init_from:
                        print(init_from_run(model, task.vocab, cfg.model.init_from), flush=True)
                    prepared = task.prepare_model(model)
                if prepared:
                    print(prepared, flush=True)
        except UserError as err:
            error = err
        # Every worker learns the chief's state, and the others then take the chief's weights.
        shared = _all_started(total, error, _state_vector(state if chief and not error else {}))
        if not chief:
            state = _state_from_vector(state, shared)
        if cfg.train.strategy == "multiworker" and state["epoch"]:
            _copy_from_chief(model, total, restored)
        if not resume:
            # The config last: it is what makes a folder a run, so a kill before it leaves a folder a new run reuses.
            task.save(run)
            run.write_state(state)
            run.write_config(cfg)
        started = True  # from here on, an interrupted run is resumed, not removed
        return _fit_and_finish(cfg, run, task, model, state, history, strategy, total)
    finally:
        if lock:
            # A new run refused before it started leaves nothing: not its folder, not its lock file.
            lock.release(remove=not started and not resume)
        if made and not started:
            shutil.rmtree(made, ignore_errors=True)
        if not chief:
            shutil.rmtree(worker_folder(run_dir, strategy), ignore_errors=True)


def _all_started(total, error: UserError | None, values=()) -> np.ndarray:
    """Raises this worker's error, or a note that another worker failed; else returns the sum of `values` over the
    workers. Every worker calls it at the same point (on one worker it only raises `error`)."""
    shared = total([float(error is not None), *values])
    if error:
        raise error
    if shared[0]:
        raise UserError("another worker could not start this run; see its message")
    return shared[1:]


def worker_folder(run_dir: str, strategy) -> Path:
    """Where a non-chief worker keeps its copy of the run while it trains (deleted at the end; the same path for
    the same --run-dir, so a folder left by a killed worker is cleared by the next run)."""
    name = hashlib.sha1(str(Path(run_dir).resolve()).encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"tfseq-worker-{name}-{worker_index(strategy)}"


def _claim_run(cfg: RunConfig, run_dir: str | None, strategy, chief: bool):
    """Picks the run folder and locks it before any data is read, so a second process is refused at once.

    Returns:
        (run folder, resume?, lock or None, the folder this call created or None). Other workers than the chief
        get a fresh private folder and no lock.
    """
    if not chief:
        folder = worker_folder(run_dir, strategy)
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        return RunFolder(folder), False, None, None
    while True:
        run, resume = choose_run_dir(cfg, run_dir)
        made = None
        if not run.path.exists():
            try:
                run.path.mkdir(parents=True)  # exclusive: of two processes choosing this name, one makes it
                made = run.path
            except FileExistsError:
                if not run_dir:
                    continue  # another run took the timestamped name this second: choose again
            except OSError as err:
                raise UserError(f"cannot create run folder {run.path}: {err.strerror}") from None
        break
    try:
        lock = RunLock(run)
    except UserError:
        if made:
            shutil.rmtree(made, ignore_errors=True)
        raise
    if not resume and run.config.exists():  # another process started a run there since the folder was chosen
        lock.release()
        raise UserError(f"{run.path} now holds a run started by another process; run the command again to resume "
                        "it, or choose another --run-dir")
    return run, resume, lock, made


def _start_state(run: RunFolder, resume: bool, task) -> dict:
    """The state training starts from: a new run's, or the resumed run's after checking it was made from the same
    data (its fingerprint; for runs from before fingerprints, its vocabulary)."""
    fingerprint = task.fingerprint()
    if not resume:
        return {"epoch": 0, "train_seconds": 0.0, "finished": False, "data_fingerprint": fingerprint}
    state = run.read_state()
    if state["epoch"] > task.cfg.train.epochs:
        raise UserError(f"run state {run.state} is corrupt: it records epoch {state['epoch']} of a "
                        f"{task.cfg.train.epochs}-epoch run; restore it, or train into a new --run-dir")
    stored = state.get("data_fingerprint")
    changed = stored != fingerprint if stored else run.read_vocab() != task.vocab
    if changed:
        raise UserError(f"{run.path} was trained on other data: {task.data_name()} has changed since the run "
                        "started; restore the data the run was trained on to resume it, or train into a new "
                        "--run-dir")
    if state.get("failure"):
        raise UserError(state["failure"])
    return {**state, "data_fingerprint": fingerprint}


def _compiled_model(cfg: RunConfig, task, strategy) -> keras.Model:
    """Builds and compiles the model inside the strategy's scope, refusing one that cannot fit in memory."""
    params = parameter_count(cfg.model, task.vocab.size, task.num_classes)
    # Weights, gradients, Adam's two moments (and the average of train.ema), in float32; activations come on top.
    needed = params * (FLOAT32 + ADAM_BYTES_PER_WEIGHT + (AVERAGE_BYTES_PER_WEIGHT if cfg.train.ema else 0))
    available = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    if needed > available:
        raise UserError(f"the model has {params:,} parameters: about {needed / 2**30:.1f} GiB to train (weights, "
                        f"gradients, optimizer state), more than this machine's {available / 2**30:.1f} GiB; lower "
                        "model.embedding_dim, model.units, model.layers, model.bigram_buckets, model.ngram_buckets or "
                        "data.max_tokens")
    keras.utils.set_random_seed(cfg.train.seed)
    policy = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("mixed_float16" if cfg.train.mixed_precision else "float32")
    try:
        with strategy.scope():
            model = build_model(cfg.model, task.vocab.size, task.num_classes, task.stateful_batch)
            model.compile(optimizer=make_optimizer(cfg.train, cfg.train.epochs * task.steps_per_epoch),
                          loss=task.loss(), metrics=task.metrics(), jit_compile=cfg.train.jit_compile)
            # Made now, by the strategy that trains them, and in the same order on every worker (a multi-worker
            # strategy broadcasts each new variable): a checkpoint can then restore them.
            model.optimizer.build(model.trainable_variables)
        if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
            build_before_fit(model, strategy, next(iter(task.val_data())))
    except (MemoryError, tf.errors.ResourceExhaustedError) as err:
        raise UserError(f"out of memory building the model ({type(err).__name__}); lower model.embedding_dim, "
                        "model.units, model.layers or model.bigram_buckets") from None
    finally:
        keras.mixed_precision.set_global_policy(policy)
    return model


def _load_weights(model: keras.Model, path: Path, run: RunFolder) -> keras.Model:
    """Loads a checkpoint's weights and optimizer state into `model`, and returns it."""
    try:
        model.load_weights(path)
    except Exception as err:  # h5py and Keras raise many types for a missing, truncated or mismatched file
        raise UserError(f"cannot resume {run.path}: checkpoint {path.name} is missing or damaged "
                        f"({first_line(err)}); train into a new --run-dir") from None
    return model


def _chief_values(cfg: RunConfig, task, path: Path, run: RunFolder) -> list[np.ndarray]:
    """The arrays of `weights + optimizer.variables` in a checkpoint, read into a model outside any strategy.

    Assigning a multi-worker variable is a collective that every worker must join: the chief reads its checkpoint
    this way, and every worker then takes the values through `_copy_from_chief`.
    """
    plain = _load_weights(_compiled_model(cfg, task, tf.distribute.get_strategy()), path, run)
    return [keras.ops.convert_to_numpy(v.value) for v in plain.weights + plain.optimizer.variables]


def _state_vector(state: dict) -> list[float]:
    """The part of the chief's state every worker must share, as numbers (no NaN: the others add zeros, the vector of
    an empty state)."""
    has_best = state.get("best_value") is not None
    return [float(state.get("epoch", 0)), float(state.get("train_seconds", 0.0)), float(has_best),
            float(state["best_value"]) if has_best else 0.0, float(state.get("best_epoch", 0)),
            float(bool(state.get("stop_reason"))), float("lr_plan" in state),
            *state.get("lr_plan", [0.0, 0.0, 0.0])]


def _state_from_vector(state: dict, values) -> dict:
    epoch, seconds, has_best, best, best_epoch, stopped, has_plan, *plan = (float(v) for v in values)
    state = {**state, "epoch": int(epoch), "train_seconds": seconds,
             "stop_reason": "stopped by the chief" if stopped else ""}
    if has_best:
        state.update(best_value=best, best_epoch=int(best_epoch))
    if has_plan:
        state["lr_plan"] = plan
    return state


def _copy_from_chief(model: keras.Model, total, values: list | None) -> None:
    """Gives every worker the chief's weights and optimizer state.

    Args:
        model: this worker's model.
        total: the sum over workers (see worker_sum).
        values: on the chief, the arrays of `model.weights + model.optimizer.variables` read from its checkpoint;
            None on the other workers.
    """
    variables = list(model.weights) + list(model.optimizer.variables)
    sizes = [int(np.prod(v.shape)) for v in variables]
    mine = np.concatenate([np.asarray(a, np.float64).ravel() for a in values]) if values else np.zeros(sum(sizes))
    flat = total(mine)
    offset = 0
    for var, size in zip(variables, sizes):
        var.assign(flat[offset:offset + size].reshape(var.shape).astype(var.dtype))
        offset += size


def _fit_and_finish(cfg: RunConfig, run: RunFolder, task, model: keras.Model, state: dict, history: list[dict],
                    strategy, total) -> RunFolder:
    print(("resuming " if history or state["epoch"] else "training into ") + f"{run.path} (epoch {state['epoch']} of "
          f"{cfg.train.epochs} done)" + "\n" + task.describe(), flush=True)
    for warning in cudnn_warnings(model):
        print(f"warning: {warning}", file=sys.stderr, flush=True)
    chief = is_chief(strategy)
    from_chief = lambda values: total(np.asarray(values, np.float64) * float(chief))
    checkpoint = RunCheckpoint(run, cfg, state, history, from_chief)
    callbacks = [*task.callbacks(), EpochValidation(task), checkpoint,
                 keras.callbacks.TensorBoard(str(run.logs), write_graph=False, profile_batch=0)]
    if state.get("stop_reason"):
        print(f"training had already stopped ({state['stop_reason']})", flush=True)
    elif state["epoch"] < cfg.train.epochs:
        train_data, val_data = task.train_data(state["epoch"]), task.val_data()
        if cfg.train.strategy == "multiworker":
            # Every worker builds the same batches; each takes its share of every global batch.
            train_data, val_data = shard_by_data(train_data), shard_by_data(val_data)
        model.fit(train_data, epochs=cfg.train.epochs, initial_epoch=state["epoch"],
                  steps_per_epoch=task.steps_per_epoch, validation_data=val_data, callbacks=callbacks,
                  shuffle=False, verbose=1 if sys.stdout.isatty() else 2)
    state = checkpoint.state
    if checkpoint.failure:
        run.write_state({**state, "failure": checkpoint.failure})
        raise UserError(checkpoint.failure)
    if cfg.train.early_stopping and state.get("best_epoch"):
        if cfg.train.strategy == "multiworker":
            _copy_from_chief(model, total, _chief_values(cfg, task, run.best, run) if chief else None)
        else:
            with strategy.scope():
                _load_weights(model, run.best, run)
    with strategy.scope():
        # The average (train.ema) becomes the weights: a checkpoint or best.weights.h5 holds both, and a run that
        # did not fit again (resumed after its last epoch) has not had Keras' end of fit do it.
        model.optimizer.finalize_variable_values(model.trainable_variables)
    atomic_save(run.weights, model.save_weights, suffix=".weights.h5")
    metrics = {**task.final_metrics(model, run), "epochs": state["epoch"], "train_minutes": state["train_seconds"] / 60,
               "weights_sha256": weights_digest(model)}
    if state.get("best_epoch"):
        metrics["best_epoch"] = state["best_epoch"]
    write_json(run.metrics, metrics)
    plot_history(checkpoint.history, run, task.val_label)
    run.write_state({**state, "finished": True})
    print("held-out: " + ", ".join(f"{k} {v:.4g}" for k, v in metrics.items() if isinstance(v, float)), flush=True)
    print(f"weights sha256: {metrics['weights_sha256']}", flush=True)
    print(f"run folder: {run.path}", flush=True)
    return run


def weights_digest(model: keras.Model) -> str:
    """SHA-256 of the model's weights in order: equal digests mean bit-identical models (resumed vs uninterrupted,
    one worker vs another)."""
    digest = hashlib.sha256()
    for weight in model.weights:
        digest.update(np.ascontiguousarray(keras.ops.convert_to_numpy(weight.value)).tobytes())
    return digest.hexdigest()


def plot_history(rows: list[dict], run: RunFolder, val_label: str) -> None:
    """Draws loss (and accuracy, when logged) per epoch into learning_curve.png.

    Args:
        rows: history.csv's rows, one per epoch.
        run: the run folder the plot goes into.
        val_label: the legend of the validation scores (a folded run's are of training texts).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    panels = [("loss", "loss (nats)")] + ([("accuracy", "accuracy")] if any("accuracy" in r for r in rows) else [])
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 3.5), squeeze=False)
    epochs = [r["epoch"] for r in rows]
    for ax, (key, label) in zip(axes[0], panels):
        for prefix, name in (("", "train"), ("val_", val_label)):
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
