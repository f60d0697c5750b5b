"""Gradient flow over time: how much of the gradient of the last step's loss reaches the input k steps earlier.

For one batch of real training data, the gradient of the loss at the last step (a language model's or tagger's last
position, a classifier's text loss) with respect to the model's input at every earlier step (the embedding output:
ids are discrete) shows whether a recurrent layer can learn from far back: a SimpleRNN's fades geometrically, an
LSTM's cell path keeps more once it has learnt to, a recurrent matrix with large singular values makes it explode.
`diagnose_gradients` measures a run's (or a config's) model, and with `compare` SimpleRNN / LSTM / GRU of the same
size, and writes gradient_flow.png and gradient_flow.json; `python -m tfseq.diagnose gradients` calls it.

This module imports TensorFlow and Keras: load it after tfseq.cli.import_tensorflow.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from tfseq.config import RunConfig, apply_override, load_pipeline
from tfseq.errors import UserError
from tfseq.files import atomic_save, write_json
from tfseq.models.factory import build_model

CELL_NAMES = {"simplernn": "SimpleRNN", "lstm": "LSTM", "gru": "GRU"}
CELL_COLOURS = {"simplernn": "tab:red", "lstm": "tab:blue", "gru": "tab:green"}
TABLE_STEPS = (10, 25, 50, 100)  # the steps back the printed table shows (those the batch reaches)


@dataclass
class FlowCurve:
    """One model's gradient flow over a batch.

    Args:
        label: the legend's name for it.
        cell: its recurrent cell (lstm, gru, simplernn).
        state: "trained", "initial" or "after N steps".
        norms: norms[k] = the mean over the batch's texts that reach k steps back of the norm of the gradient of the
            last step's loss with respect to the input k steps before that last step (k = 0: the last step itself).
        texts: texts[k] = how many of the batch's texts reach k steps back (all, unless a padding mask shortens some).
    """

    label: str
    cell: str
    state: str
    norms: np.ndarray
    texts: np.ndarray

    @property
    def relative(self) -> np.ndarray:
        """The norms relative to the last step's (NaN where that is 0)."""
        first = self.norms[0] if len(self.norms) else 0.0
        return self.norms / first if first > 0 else np.full(len(self.norms), math.nan)


@dataclass
class GradientReport:
    """What `diagnose_gradients` measured and where it wrote it.

    Args:
        source: the run folder or config file measured.
        curves: one FlowCurve per model and state.
        batch_texts: texts in the batch.
        batch_steps: time steps of the batch (its padded length).
        plot: the PNG written.
        data: the JSON written.
        notes: what else than the recurrence shapes the curves (bidirectional layers, pooling), for the reader.
    """

    source: str
    curves: list[FlowCurve]
    batch_texts: int
    batch_steps: int
    plot: Path
    data: Path
    notes: list[str]

    def table(self) -> str:
        """The relative gradient norm of each curve at TABLE_STEPS steps back, as aligned text."""
        reach = min(len(c.norms) for c in self.curves)
        steps = [k for k in TABLE_STEPS if k < reach] or [reach - 1]
        width = max(len(c.label) for c in self.curves) + 2
        lines = [f"gradient norm k steps back / at the last step (batch of {self.batch_texts} texts, "
                 f"{self.batch_steps} steps)",
                 "model".ljust(width) + "".join(f"k={k}".rjust(10) for k in steps)]
        for c in self.curves:
            lines.append(c.label.ljust(width) + "".join(f"{c.relative[k]:10.2g}" for k in steps))
        return "\n".join(lines)


class _Tap(keras.layers.Layer):
    """Passes its input through unchanged, and lets a GradientTape watch it (the embedding output)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True
        self.tape = None
        self.seen = None

    def call(self, inputs):
        if self.tape is not None:
            self.tape.watch(inputs)
        self.seen = inputs
        return inputs


def _tapped(model: keras.Model) -> tuple[keras.Model, _Tap]:
    """The model with a _Tap after its embedding layer's forward call, sharing the model's layers (and weights)."""
    tap = _Tap(name="gradient_tap")

    def call(layer, *args, **kwargs):
        out = layer(*args, **kwargs)
        # A tied output (ReversibleEmbedding) calls the embedding again with reverse=True: that is not the input.
        return tap(out) if layer.name == "embedding" and not kwargs.get("reverse") else out

    return keras.models.clone_model(model, clone_function=lambda layer: layer, call_function=call), tap


def input_gradient_norms(model: keras.Model, inputs, targets, loss: keras.losses.Loss, per_step: bool,
                         mask_zero: bool) -> tuple[np.ndarray, np.ndarray]:
    """Measures how the gradient of each text's last-step loss spreads over the embedding outputs of its steps.

    Texts are right-padded: with a padding mask (mask_zero) a text's last step is its last non-zero id, and "k steps
    back" counts from there; without one, every text ends at the batch's last step, as the model reads it.

    Args:
        model: a tfseq model (its embedding layer is named "embedding"), called with training=False.
        inputs: the batch's int ids [texts, steps] (or a dict with "ids").
        targets: the labels the loss takes: [texts] for a classifier, [texts, steps] for a per-step head.
        loss: the task's loss; applied per text (a copy without reduction).
        per_step: the model gives an output per step (language model, tagger): the loss is that of the last step.
        mask_zero: id 0 is padding.

    Returns:
        (norms, texts): norms[k] = the mean norm, over the texts that reach k steps back, of the gradient of the
        text's last-step loss with respect to its input k steps before its last step; texts[k] = how many do.
    """
    ids = np.asarray(inputs["ids"] if isinstance(inputs, dict) else inputs)
    lengths = (ids != 0).sum(axis=1) if mask_zero else np.full(len(ids), ids.shape[1])
    unreduced = type(loss).from_config({**loss.get_config(), "reduction": "none"})
    tapped, tap = _tapped(model)
    with tf.GradientTape() as tape:
        tap.tape = tape
        outputs = tapped(inputs, training=False)
        per_text = unreduced(targets, outputs)
        if per_step:
            per_text = tf.gather(per_text, np.maximum(lengths - 1, 0), axis=1, batch_dims=1)
        # Texts do not interact, so the gradient of the sum at text b is that of text b's own loss.
        total = tf.reduce_sum(per_text)
    tap.tape = None
    grads = tape.gradient(total, tap.seen)
    # The norm in float64: the far end of a fading gradient is below float32's squares.
    norms = np.linalg.norm(np.asarray(grads, np.float64), axis=-1)
    reach = int(lengths.max())
    sums, texts = np.zeros(reach), np.zeros(reach, np.int64)
    for row, length in zip(norms, lengths):
        sums[:length] += row[:length][::-1]
        texts[:length] += 1
    return sums / np.maximum(texts, 1), texts


def diagnose_gradients(run_dir: str | None = None, config: str | None = None, overrides=(), compare: bool = False,
                       out: str | None = None, steps: int = 50) -> GradientReport:
    """Measures the gradient flow of a run's model (trained and at initialisation) or a config's (at
    initialisation) on the first training batch of its data, and with `compare` that of SimpleRNN, LSTM and GRU
    models of the same size, each at initialisation and after the first `steps` batches of the config's training;
    writes gradient_flow.png and gradient_flow.json into the output folder.

    Args:
        run_dir: a run folder (give this or config).
        config: a pipeline file or name (its `task = ...` line names the task).
        overrides: "section.key=value" strings (a run's model section is fixed by its weights).
        compare: also measure SimpleRNN, LSTM and GRU of the same size.
        out: the output folder; None = RUN/diagnostics, or models/diagnostics-<pipeline> for a config.
        steps: training batches of each compared model.

    Returns:
        The report (curves, and the files written).
    """
    from tfseq import runs
    from tfseq.trainer import make_task

    if (run_dir is None) == (config is None):
        raise UserError("give a run folder or --config FILE (one of them)")
    if compare and steps < 1:
        raise UserError(f"--steps {steps} must be at least 1")
    trained = None
    if run_dir is not None:
        cfg, trained, trained_label = _run_source(run_dir, overrides)
        folder = Path(out) if out else Path(run_dir) / "diagnostics"
    else:
        cfg = load_pipeline(config, overrides)
        folder = Path(out) if out else runs.MODELS_DIR / f"diagnostics-{cfg.pipeline or cfg.task}"
    data = cfg.data.path
    if data and not data.startswith("tfds") and not Path(data).exists():  # tfds, tfds:NAME: not files
        raise UserError(f"data.path {data} (the training data of {run_dir or config}) does not exist: the diagnosis "
                        "reads a batch of it; restore it, or point --set data.path= at a copy")
    task = make_task(cfg)
    if trained is not None:
        _check_same_data(run_dir, trained, task)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UserError(f"cannot create output folder {folder}: {err.strerror}; choose another --out") from None
    batch = next(iter(task.train_data(0)))
    inputs = tf.nest.map_structure(np.asarray, batch[0])
    targets = np.asarray(batch[1])
    ids = inputs["ids"] if isinstance(inputs, dict) else inputs

    def measure(model, label, cell, state):
        norms, texts = input_gradient_norms(model, inputs, targets, task.loss(), task.head.per_step,
                                            cfg.model.mask_zero)
        return FlowCurve(label, cell, state, norms, texts)

    own = CELL_NAMES[cfg.model.cell]
    curves = []
    if trained is not None:
        curves.append(measure(trained.model, f"this run ({own}): {trained_label}", cfg.model.cell, "trained"))
    if not compare:
        who = "this run" if trained is not None else cfg.pipeline or cfg.task
        curves.append(measure(_initial_model(cfg, task), f"{who} ({own}): at initialisation", cfg.model.cell,
                              "initial"))
    else:
        for cell in CELL_NAMES:
            # The config with another cell: its initial weights are drawn from the same seed as the run's.
            other = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, cell=cell))
            model = _initial_model(other, task)
            curves.append(measure(model, f"{CELL_NAMES[cell]}: at initialisation", cell, "initial"))
            print(f"training {CELL_NAMES[cell]} for {steps} steps ...", flush=True)
            _train_briefly(model, other, task, steps)
            curves.append(measure(model, f"{CELL_NAMES[cell]}: after {steps} steps", cell, f"after {steps} steps"))
    source = str(run_dir if run_dir is not None else config)
    report = GradientReport(source, curves, int(ids.shape[0]), int(ids.shape[1]), folder / "gradient_flow.png",
                            folder / "gradient_flow.json", _notes(cfg, task))
    write_json(report.data, _as_json(report, cfg, task))
    plot_gradient_flow(report, cfg)
    return report


def _run_source(run_dir: str, overrides) -> tuple[RunConfig, object, str]:
    """(the run's config with the overrides, the trained run, how far it was trained) of a run folder."""
    from tfseq.runs import RunFolder, load_trained

    if RunFolder(run_dir).members.exists():
        raise UserError(f"{run_dir} is an ensemble of runs; diagnose one of its members (listed in members.json)")
    trained = load_trained(run_dir)
    cfg = trained.cfg
    for item in overrides:
        if item.strip().startswith("model."):
            raise UserError(f"--set {item}: a run's model is fixed by its weights; use --config for other models")
        apply_override(cfg, item)
    cfg.check()
    state = RunFolder(run_dir).read_state()
    epochs, best = state.get("epoch", 0), state.get("best_epoch")
    if not state.get("finished"):  # load_trained took the last checkpoint
        label = f"trained, {epochs} of {cfg.train.epochs} epochs"
    elif best and best != epochs:  # early stopping kept the best epoch's weights
        label = f"trained, epoch {best} of {epochs} (the best)"
    else:
        label = f"trained, {epochs} epoch{'s' if epochs != 1 else ''}"
    return cfg, trained, label


def _check_same_data(run_dir: str, trained, task) -> None:
    """Refuses data whose vocabulary or classes differ from the run's: its ids would mean other tokens."""
    if task.vocab != trained.vocab or (trained.classes and task.classes and task.classes != trained.classes):
        raise UserError(f"{run_dir} was trained on other data: {task.data_name()} gives another vocabulary or class "
                        "list; restore the run's data or point --set data.path= at it")


def _initial_model(cfg: RunConfig, task) -> keras.Model:
    """The config's model with the initial weights its training starts from (drawn from train.seed)."""
    keras.utils.set_random_seed(cfg.train.seed)
    return build_model(cfg.model, task.vocab.size, task.num_classes)


def _train_briefly(model: keras.Model, cfg: RunConfig, task, steps: int) -> None:
    """Trains `model` on the first `steps` training batches (at most the config's whole training), with the
    config's optimizer and schedule."""
    from tfseq.trainer import make_optimizer

    total = cfg.train.epochs * task.steps_per_epoch
    model.compile(optimizer=make_optimizer(cfg.train, total), loss=task.loss())
    model.fit(task.train_data(0), epochs=1, steps_per_epoch=min(steps, total), shuffle=False, verbose=0)


def _notes(cfg: RunConfig, task) -> list[str]:
    """Why a curve may not fall with k although the recurrence fades: paths to the loss that skip it."""
    notes = []
    if cfg.model.bidirectional:
        notes.append("bidirectional: the backward layer reads each text from its end, so the steps at the right "
                     "end of the plot are close to its last step, not far from it")
    if not task.head.per_step and cfg.model.pooling != "last":
        notes.append(f"pooling = {cfg.model.pooling}: every step reaches the output directly through the pooling, "
                     "not only through the recurrence (pooling = last shows the recurrence alone)")
    return notes


def _finite(values) -> list:
    """Floats for JSON, None where not finite (JSON has no NaN)."""
    return [float(v) if math.isfinite(v) else None for v in values]


def _as_json(report: GradientReport, cfg: RunConfig, task) -> dict:
    m = cfg.model
    return {
        "source": report.source, "task": cfg.task, "pipeline": cfg.pipeline,
        "loss": ("the loss at each text's last step" if task.head.per_step else "each text's loss (its output "
                 "follows the last step)") + ", w.r.t. the embedding output k steps before that last step",
        "model": {"units": m.units, "layers": m.layers, "embedding_dim": m.embedding_dim,
                  "bidirectional": m.bidirectional},
        "batch": {"texts": report.batch_texts, "steps": report.batch_steps}, "notes": report.notes,
        "curves": [{"label": c.label, "cell": c.cell, "state": c.state, "norm": _finite(c.norms),
                    "relative": _finite(c.relative), "texts": c.texts.tolist()} for c in report.curves],
    }


def plot_gradient_flow(report: GradientReport, cfg: RunConfig) -> None:
    """Draws report.curves into report.plot: the relative gradient norm (log scale) against the steps back, one
    line per model and state (colour: cell; dashed: at initialisation; black: the run's trained model)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    m = cfg.model
    fig, ax = plt.subplots(figsize=(11, 5.5))
    try:
        # Steps back that at least a quarter of the texts reach: fewer make a noisy tail.
        needed = max(1, math.ceil(report.batch_texts / 4))
        for c in report.curves:
            shown = np.nonzero(c.texts >= needed)[0]
            values = c.relative[shown]
            values = np.where(values > 0, values, np.nan)  # a gradient that underflowed to 0 ends its line
            trained_run = c.state == "trained"
            ax.plot(shown, values, label=c.label, color="black" if trained_run else CELL_COLOURS[c.cell],
                    linestyle="--" if c.state == "initial" else "-", linewidth=2.2 if trained_run else 1.6)
        ax.set_yscale("log")
        ax.axhline(1.0, color="grey", linewidth=0.8, linestyle=":")
        ax.set_xlabel("k: steps back from the last step")
        ax.set_ylabel("gradient norm at k steps back\n/ gradient norm at the last step")
        size = f"{m.units} units" + (f" x {m.layers} layers" if m.layers > 1 else "") + \
            f", embedding {m.embedding_dim}" + (", bidirectional" if m.bidirectional else "")
        ax.set_title(f"How far back the gradient reaches: {Path(report.source).name} ({size})", fontsize=11)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=9, loc="upper left", bbox_to_anchor=(1.01, 1.0))  # outside: lines stay visible
        fig.text(0.01, 0.01, f"Each line: the mean over a training batch of {report.batch_texts} texts of "
                 "|d loss(last step) / d input(k steps back)|, divided by its value at k = 0.\nBelow 1 the gradient "
                 "fades (the model can hardly learn from inputs that far back); above 1 it grows (explodes).\n"
                 "Dashed: at initialisation. A line that stops early fell below float32's smallest number (its "
                 "gradient there is 0)." + "".join(f"\nNote: {note}." for note in report.notes), fontsize=8,
                 va="bottom")
        fig.tight_layout(rect=(0, 0.09 + 0.03 * len(report.notes), 1, 1))
        atomic_save(report.plot, lambda tmp: fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight"), suffix=".png")
    finally:
        plt.close(fig)
