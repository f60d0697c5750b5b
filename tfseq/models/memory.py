"""How big a configuration's model is before it trains: parameters per layer (by formula, checked against Keras),
and the memory of its weights, of Adam's state and of one training batch's activations.

What is counted, in bytes, for one training step of `train.batch_size` sequences of T time steps:

- weights: every parameter in float32 (4 bytes; mixed precision keeps float32 variables too);
- optimizer: Adam / AdamW's two moments per trainable weight plus the weight's gradient, float32 (12 bytes per
  weight; an embedding's gradient is counted dense, as the update makes it), and the weight's average under
  train.ema (4 bytes more, 16 in all);
- activations: what backprop keeps from the forward pass, in each tensor's compute dtype (float16 under mixed
  precision, float32 for the output layer and the loss, int32 for ids):
  - every layer's output (the next layer's backward pass reads it), the input ids included;
  - a recurrent layer, per direction: T x batch x units x gates (the gate activations, from which the derivatives
    of sigmoid / tanh are computed: 4 for LSTM, 3 for GRU, 1 for SimpleRNN), plus the hidden state h at every step
    (which is also the output sequence), plus the cell state c for an LSTM; a Bidirectional layer also keeps its
    concatenated output. Intermediate products (tanh(c), a GRU's reset-gated recurrent term, masking selects)
    are not counted: cuDNN's reserve space holds about this much; TensorFlow's step-by-step loop on a CPU keeps
    more;
  - a dropout layer's mask (its noise shape: the full tensor for Dropout, batch x channels for SpatialDropout1D);
  - the loss's gradient with respect to the model's outputs, float32, the size of the outputs: for a language
    model a second batch x T x vocab tensor beside the logits (softmax minus one-hot).
  Not counted: framework workspaces and temporaries freed within a step, the float16 copies of weights under mixed
  precision, data pipeline buffers.

Importing this module does not import Keras or TensorFlow: `plan_summary` (reading a config, choosing the sizes)
runs before they are loaded; `estimate_memory` imports them.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tfseq.errors import UserError

DEFAULT_TIME_STEPS = 256  # a classifier's assumed text length when data.max_length is 0 (IMDb reviews average ~230)
ASSUMED_VOCAB = {"char": 100, "word": 20_000}  # assumed vocabulary sizes when nothing bounds them
FLOAT32 = 4
ADAM_BYTES_PER_WEIGHT = 3 * FLOAT32  # first moment, second moment, gradient
AVERAGE_BYTES_PER_WEIGHT = FLOAT32  # the moving average of train.ema
DTYPE_BYTES = {"float16": 2, "bfloat16": 2, "float32": 4, "float64": 8, "int32": 4, "int64": 8, "bool": 1}
# Layer kinds without weights, whose parameter formula is 0.
WEIGHTLESS = ("InputLayer", "Dropout", "SpatialDropout1D", "Add", "Activation", "TimePooling", "TokenDropout",
              "Concatenate")


@dataclass
class Plan:
    """What an estimate is made for: a config and the sizes it does not fix, each with where it came from.

    Args:
        cfg: the run config (tfseq.config.RunConfig).
        source: what the config was read from (a pipeline file or a run folder), for the heading.
        batch_size: sequences per training batch (train.batch_size).
        time_steps: steps per sequence.
        vocab_size: ids the embedding takes.
        num_classes: classes of a head whose width depends on them (0 otherwise).
        sources: {"time_steps" | "vocab_size" | "num_classes": where the value came from}.
        notes: assumptions the reader must know about (assumed sizes).
    """

    cfg: object
    source: str
    batch_size: int
    time_steps: int
    vocab_size: int
    num_classes: int = 0
    sources: dict = field(default_factory=dict)
    notes: list = field(default_factory=list)


@dataclass
class LayerMemory:
    """One layer's parameters and memory.

    Args:
        name, kind: the Keras layer's name and class.
        output_shape: its output for one training batch (batch and time filled in).
        params: parameters by formula (Keras' count for kinds without one, see `source`).
        keras_params: Keras' count_params().
        source: "formula" or "keras count".
        weight_bytes: float32 weights.
        optimizer_bytes: Adam's two moments and the gradient of the trainable weights (and their average under
            train.ema), float32.
        activation_bytes: what backprop keeps of this layer for one batch.
        activations: the tensors counted, each {"tensor", "shape", "dtype", "bytes"}.
        cell: a recurrent layer's cell ("LSTM", "GRU", "SIMPLERNN"; "" for other layers).
        cudnn: LSTM / GRU layers: [] when the layer stays on the cuDNN kernel on a GPU, else the reasons it leaves it;
            None for other layers.
    """

    name: str
    kind: str
    output_shape: list
    params: int
    keras_params: int
    source: str
    weight_bytes: int
    optimizer_bytes: int
    activation_bytes: int
    activations: list
    cell: str = ""
    cudnn: list | None = None


@dataclass
class MemoryEstimate:
    """A model's parameters and training memory, per layer and in total.

    Args:
        plan: what it was made for.
        layers: one entry per Keras layer, in model order.
        activation_dtype: the compute dtype of the backbone's activations ("float16" under mixed precision).
        notes: what the reader should know (cuDNN and XLA, assumptions).
    """

    plan: Plan
    layers: list
    activation_dtype: str
    notes: list

    @property
    def totals(self) -> dict:
        """Sums over the layers: params, keras_params, weight / optimizer / activation bytes and their total."""
        sums = {key: sum(getattr(layer, key) for layer in self.layers) for key in
                ("params", "keras_params", "weight_bytes", "optimizer_bytes", "activation_bytes")}
        return {**sums, "total_bytes": sums["weight_bytes"] + sums["optimizer_bytes"] + sums["activation_bytes"]}

    def to_dict(self) -> dict:
        """The estimate as plain JSON values: the sizes and their sources, the layers, the totals, the notes."""
        p, cfg = self.plan, self.plan.cfg
        return {
            "source": p.source, "task": cfg.task, "head": cfg.model.head, "batch_size": p.batch_size,
            "time_steps": p.time_steps, "vocab_size": p.vocab_size, "num_classes": p.num_classes,
            "sources": p.sources, "mixed_precision": cfg.train.mixed_precision,
            "bytes_per_element": {"weights": FLOAT32, "optimizer": FLOAT32,
                                  "activations": DTYPE_BYTES[self.activation_dtype], "outputs_and_loss": FLOAT32},
            "layers": [asdict(layer) for layer in self.layers], "totals": self.totals,
            "cudnn": {layer.name: {"on_cudnn": not layer.cudnn, "reasons": layer.cudnn}
                      for layer in self.layers if layer.cudnn is not None},
            "notes": p.notes + self.notes,
        }


def plan_summary(run: str | None = None, config: str | None = None, overrides=(), vocab_size: int = 0,
                 time_steps: int = 0, num_classes: int = 0) -> Plan:
    """Reads a run folder's or a pipeline's config and chooses the sizes to estimate for. Reads no training data.

    Args:
        run: a run folder (its config.toml, vocab.json and class list are read); or None.
        config: a pipeline file or name whose `task =` line names the task; or None. Exactly one of run / config.
        overrides: "section.key=value" strings applied on top.
        vocab_size, time_steps, num_classes: explicit sizes (0 = from the run, the config, or an assumption).

    Returns:
        The Plan. Raises UserError for a bad config, folder or size.
    """
    from tfseq.config import apply_override, load_pipeline, pipeline_path, task_spec
    from tfseq.runs import RunFolder

    if (run is None) == (config is None):
        raise UserError("give a run folder or --config FILE (one of them)")
    found_vocab, found_classes = 0, None
    if run is not None:
        folder = RunFolder(Path(run))
        if not folder.path.is_dir():
            raise UserError(f"run folder {folder.path} does not exist" if not folder.path.exists() else
                            f"{folder.path} is a file, not a run folder; give a run folder (models/<run>)")
        cfg = folder.read_config()
        for item in overrides:
            apply_override(cfg, item)
        cfg.check()
        found_vocab = folder.read_vocab().size
        found_classes = folder.read_classes() or task_spec(cfg.task).task.default_classes
        source = str(folder.path)
    else:
        cfg = load_pipeline(config, overrides)
        source = str(pipeline_path(config))
    return make_plan(cfg, source, vocab_size or found_vocab, time_steps, num_classes or len(found_classes or []),
                     vocab_source="--vocab-size" if vocab_size else "the run's vocab.json",
                     classes_source="--num-classes" if num_classes else "the run's class list")


def make_plan(cfg, source: str = "", vocab_size: int = 0, time_steps: int = 0, num_classes: int = 0,
              vocab_source: str = "--vocab-size", classes_source: str = "--num-classes") -> Plan:
    """Chooses the sizes of an estimate: the given ones, else what the config bounds them by, else an assumption
    (named in the notes).

    Args:
        cfg: a checked RunConfig.
        source: what the config was read from.
        vocab_size, time_steps, num_classes: known sizes; 0 = unknown.
        vocab_source, classes_source: where a given vocab_size / num_classes came from, for the report.

    Returns:
        The Plan: batch = train.batch_size; time steps = data.seq_len (language models), else data.max_length
        rounded up to data.pad_multiple (each batch is padded to one), else DEFAULT_TIME_STEPS.
    """
    from tfseq.config import INT32_MAX
    from tfseq.models.heads import get_head

    for option, value, low in (("--vocab-size", vocab_size, 2), ("--time-steps", time_steps, 1),
                               ("--num-classes", num_classes, 2)):
        if value and not low <= value <= INT32_MAX:
            raise UserError(f"{option} {value} is out of range; allowed: {low} to {INT32_MAX}")
    d, m = cfg.data, cfg.model
    sources, notes = {}, []
    if time_steps:
        sources["time_steps"] = "--time-steps"
    elif getattr(d, "seq_len", 0):
        time_steps, sources["time_steps"] = d.seq_len, "data.seq_len"
    elif getattr(d, "max_length", 0):
        multiple = getattr(d, "pad_multiple", 1)
        time_steps = math.ceil(d.max_length / multiple) * multiple
        sources["time_steps"] = (f"data.max_length = {d.max_length}" if time_steps == d.max_length else
                                 f"data.max_length = {d.max_length} padded to a multiple of data.pad_multiple = "
                                 f"{multiple}")
    else:
        time_steps, sources["time_steps"] = DEFAULT_TIME_STEPS, "assumed"
        cut = "data.max_length = 0 keeps" if hasattr(d, "max_length") else "the task keeps"
        notes.append(f"time steps: assumed {DEFAULT_TIME_STEPS} ({cut} whole texts, and the data is not read to find "
                     "their lengths); pass --time-steps N (the longest batch's length)"
                     + (" or set data.max_length" if hasattr(d, "max_length") else ""))
    unit = getattr(d, "unit", "word")
    if vocab_size:
        sources["vocab_size"] = vocab_source
    elif getattr(d, "max_tokens", 0):
        vocab_size = d.max_tokens + 2
        sources["vocab_size"] = f"at most data.max_tokens = {d.max_tokens} + 2 reserved ids"
    else:
        vocab_size, sources["vocab_size"] = ASSUMED_VOCAB[unit], "assumed"
        notes.append(f"vocabulary: assumed {vocab_size:,} {unit} ids (a {unit} vocabulary's size is known once the "
                     "data is read); pass --vocab-size N" + ("" if unit == "char" else " or set data.max_tokens"))
    head = get_head(m.head)
    if head.width(2, 2) != head.width(2, 3):  # the head's width depends on the number of classes
        if num_classes:
            sources["num_classes"] = classes_source
        elif m.num_classes:
            num_classes, sources["num_classes"] = m.num_classes, "model.num_classes"
        else:
            num_classes, sources["num_classes"] = 2, "assumed"
            notes.append("classes (a tagger's tags): assumed 2 (model.num_classes = 0 takes them from the data); pass "
                         "--num-classes N")
    else:
        num_classes = 0
    return Plan(cfg, source, cfg.train.batch_size, time_steps, vocab_size, num_classes, sources, notes)


def layer_parameters(layer) -> int | None:
    """A layer's parameter count by formula, from its settings and input width (never from its weights).

    Formulas: Embedding (also ReversibleEmbedding) vocab x dim; HashedBigrams buckets x dim; NgramBag buckets x
    width; CharCNN buckets x dim +
    width x dim x filters + filters; Dense in x units (+ units);
    Conv1D kernel x in / groups x filters (+ filters); per gate, x W + h U + b: LSTM 4, GRU 3 (a second bias with
    reset_after), SimpleRNN 1; Bidirectional twice its layer; 0 for layers without weights.

    Returns:
        The count, or None for a layer kind without a formula.
    """
    from keras import layers

    from tfseq.models.layers import CharCNN, HashedBigrams, NgramBag

    if isinstance(layer, layers.Embedding):
        return layer.input_dim * layer.output_dim
    if isinstance(layer, HashedBigrams):
        return layer.buckets * layer.dim
    if isinstance(layer, NgramBag):
        return layer.buckets * layer.width
    if isinstance(layer, CharCNN):
        return layer.buckets * layer.dim + layer.width * layer.dim * layer.filters + layer.filters
    if type(layer).__name__ in WEIGHTLESS:
        return 0
    width = layer._inbound_nodes[0].input_tensors[0].shape[-1]
    if isinstance(layer, layers.Dense):
        return width * layer.units + (layer.units if layer.use_bias else 0)
    if isinstance(layer, layers.Conv1D):
        return layer.kernel_size[0] * (width // layer.groups) * layer.filters + (layer.filters if layer.use_bias else 0)
    if isinstance(layer, layers.Bidirectional):
        return sum(_rnn_parameters(inner.cell, width) for inner in (layer.forward_layer, layer.backward_layer))
    if isinstance(layer, layers.RNN):
        return _rnn_parameters(layer.cell, width)
    return None


def _rnn_parameters(cell, width: int) -> int:
    from tfseq.models.factory import GATES, cell_kind

    gates = GATES[cell_kind(cell)]
    biases = (2 if getattr(cell, "reset_after", False) else 1) if cell.use_bias else 0
    return gates * cell.units * (width + cell.units + biases)


def estimate_memory(plan: Plan) -> MemoryEstimate:
    """Builds the model a plan's config describes (without allocating its weights) and estimates its memory.

    Args:
        plan: the config and sizes (make_plan / plan_summary).

    Returns:
        The MemoryEstimate, with the layers in model order.
    """
    import keras

    from tfseq.models.factory import cudnn_warnings, rnn_layers

    model = _build_deferred(plan)
    cells = {layer.name: _cell_kind(layer) for layer in rnn_layers(model)}
    reasons = {name: [] for name, cell in cells.items() if cell in ("LSTM", "GRU")}
    for warning in cudnn_warnings(model):
        for name in reasons:
            if warning.startswith(f"layer {name} ("):
                reasons[name].append(warning.split(": ", 1)[1])
    per_weight = ADAM_BYTES_PER_WEIGHT + (AVERAGE_BYTES_PER_WEIGHT if plan.cfg.train.ema else 0)
    found = []
    for layer in model.layers:
        keras_params = layer.count_params()
        formula = layer_parameters(layer)
        params = keras_params if formula is None else formula
        frozen = sum(math.prod(w.shape) for w in layer.non_trainable_weights)
        terms = _activations(layer, plan, model.outputs)
        shape = _batch_shape(layer._inbound_nodes[0].output_tensors[0].shape, plan)
        found.append(LayerMemory(
            layer.name, type(layer).__name__, shape, params, keras_params,
            "keras count" if formula is None else "formula", params * FLOAT32,
            (params - frozen) * per_weight, sum(t["bytes"] for t in terms), terms,
            cells.get(layer.name, ""), reasons.get(layer.name)))
    notes = []
    if plan.cfg.train.jit_compile and any(not r for r in reasons.values()):
        notes.append("train.jit_compile: on a GPU, a cuDNN-eligible LSTM / GRU turns XLA off for the whole model "
                     "(TensorFlow backend)")
    compute = keras.mixed_precision.Policy("mixed_float16" if plan.cfg.train.mixed_precision else "float32")
    return MemoryEstimate(plan, found, compute.compute_dtype, notes)


def _build_deferred(plan: Plan):
    """The model of the plan's config, built inside a StatelessScope that leaves its variables uninitialised:
    shapes and counts without the memory (a billion-weight config is summarised as cheaply as a small one)."""
    import keras
    from keras.src.backend.common import global_state

    from tfseq.models.factory import build_model

    # Keras lists variables created in a stateless scope, to initialise them when the next one closes: the list is
    # put back as it was, so that these are never initialised.
    pending = list(global_state.get_global_attribute("uninitialized_variables") or [])
    policy = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("mixed_float16" if plan.cfg.train.mixed_precision else "float32")
    try:
        with keras.StatelessScope(initialize_variables=False):
            return build_model(plan.cfg.model, plan.vocab_size, plan.num_classes)
    finally:
        keras.mixed_precision.set_global_policy(policy)
        global_state.set_global_attribute("uninitialized_variables", pending)


def _cell_kind(layer) -> str:
    from keras import layers

    from tfseq.models.factory import cell_kind

    inner = layer.forward_layer if isinstance(layer, layers.Bidirectional) else layer
    return cell_kind(inner.cell).upper()


def _batch_shape(shape, plan: Plan) -> list:
    """A symbolic shape with the batch (axis 0) and time (axis 1, when unknown) of one training batch."""
    return [plan.batch_size if i == 0 else plan.time_steps if d is None else d for i, d in enumerate(shape)]


def _term(tensor: str, shape, dtype: str) -> dict:
    return {"tensor": tensor, "shape": list(shape), "dtype": dtype,
            "bytes": math.prod(shape) * DTYPE_BYTES[dtype]}


def _activations(layer, plan: Plan, model_outputs: list) -> list[dict]:
    """The tensors backprop keeps of one layer for one batch (see the module docstring); the loss's gradient
    with the layer that gives the model's output."""
    from keras import layers

    from tfseq.models.factory import GATES, cell_kind
    from tfseq.models.layers import TokenDropout

    terms = []
    for call, node in enumerate(layer._inbound_nodes):
        out = node.output_tensors[0]
        shape, dtype = _batch_shape(out.shape, plan), out.dtype
        if isinstance(layer, TokenDropout):  # ids in, ids out
            dtype = node.input_tensors[0].dtype
        if isinstance(layer, (layers.RNN, layers.Bidirectional)):
            cells = ([layer.forward_layer.cell, layer.backward_layer.cell] if isinstance(layer, layers.Bidirectional)
                     else [layer.cell])
            for direction, cell in zip(("forward ", "backward ") if len(cells) == 2 else ("",), cells):
                steps = [plan.time_steps, plan.batch_size, cell.units]
                gates = GATES[cell_kind(cell)]
                terms.append(_term(f"{direction}gate activations ({gates} gates)", [*steps[:2], gates * cell.units],
                                   dtype))
                terms.append(_term(f"{direction}hidden state h per step", steps, dtype))
                if gates == 4:
                    terms.append(_term(f"{direction}cell state c per step", steps, dtype))
            if len(cells) == 2:
                terms.append(_term("concatenated output", shape, dtype))
            continue
        terms.append(_term(f"output of call {call + 1}" if len(layer._inbound_nodes) > 1 else "output", shape,
                           dtype))
        if isinstance(layer, layers.SpatialDropout1D):
            terms.append(_term("dropout mask", [shape[0], 1, shape[-1]], dtype))
        elif isinstance(layer, layers.Dropout):
            terms.append(_term("dropout mask", shape, dtype))
        if any(out is output for output in model_outputs):
            terms.append(_term("loss gradient", shape, "float32"))
    return terms


def human_bytes(count: int) -> str:
    """Bytes as people read them: 512 B, 12.5 KiB, 3.2 MiB, 1.25 GiB."""
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if count >= scale:
            return f"{count / scale:.2f} {unit}" if unit == "GiB" else f"{count / scale:.1f} {unit}"
    return f"{count} B"


def format_estimate(estimate: MemoryEstimate) -> str:
    """The estimate as the text `python -m tfseq.summary` prints: a heading, one row per layer, the totals, what
    was counted, the bytes per element, the cuDNN verdicts and the assumptions."""
    p, cfg = estimate.plan, estimate.plan.cfg
    lines = [
        f"{p.source}: task {cfg.task}, head {cfg.model.head}, {cfg.model.cell.upper()} {cfg.model.units} units x "
        f"{cfg.model.layers} layer(s){' (bidirectional)' if cfg.model.bidirectional else ''}",
        f"one training batch: {p.batch_size} sequences (train.batch_size) x {p.time_steps} time steps "
        f"({p.sources['time_steps']}); vocabulary {p.vocab_size:,} ({p.sources['vocab_size']})"
        + (f"; {p.num_classes} classes ({p.sources['num_classes']})" if "num_classes" in p.sources else ""),
        "",
    ]
    header = ("layer", "kind", "output shape", "params", "keras", "by", "weights", "Adam+grad", "activations")
    rows = [header]
    for layer in estimate.layers:
        by = layer.source if layer.params == layer.keras_params else f"{layer.source} MISMATCH"
        rows.append((layer.name, layer.kind, "x".join(map(str, layer.output_shape)), f"{layer.params:,}",
                     f"{layer.keras_params:,}", by, human_bytes(layer.weight_bytes),
                     human_bytes(layer.optimizer_bytes), human_bytes(layer.activation_bytes)))
    t = estimate.totals
    rows.append(("total", "", "", f"{t['params']:,}", f"{t['keras_params']:,}", "", human_bytes(t["weight_bytes"]),
                 human_bytes(t["optimizer_bytes"]), human_bytes(t["activation_bytes"])))
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    for i, row in enumerate(rows):
        if i == len(rows) - 1:
            lines.append("  ".join("-" * w for w in widths))
        lines.append("  ".join(cell.ljust(w) if j < 3 or j == 5 else cell.rjust(w)
                               for j, (cell, w) in enumerate(zip(row, widths))).rstrip())
    lines += ["", f"memory for one training step: {human_bytes(t['total_bytes'])} = weights "
              f"{human_bytes(t['weight_bytes'])} + Adam's two moments and the gradients "
              f"{human_bytes(t['optimizer_bytes'])} + activations {human_bytes(t['activation_bytes'])}"]
    act = estimate.activation_dtype
    lines.append(f"bytes per element: weights, gradients and moments float32 (4); activations {act} "
                 f"({DTYPE_BYTES[act]}){' (mixed precision)' if cfg.train.mixed_precision else ''}; the output layer "
                 "and the loss float32 (4); ids int32 (4)")
    lines += ["", "activations counted (what backprop keeps for one batch):"]
    for layer in estimate.layers:
        kept = "; ".join(f"{term['tensor']} {'x'.join(map(str, term['shape']))} {term['dtype']}"
                         for term in layer.activations)
        lines.append(f"  {layer.name}: {kept}")
    lines += ["", "cuDNN on a GPU:"]
    for layer in estimate.layers:
        if layer.cell:
            verdict = ("no cuDNN kernel for SimpleRNN: it runs step by step on any device" if layer.cudnn is None else
                       "off the cuDNN kernel: " + "; ".join(layer.cudnn) if layer.cudnn else
                       "stays on the cuDNN kernel")
            lines.append(f"  {layer.name} ({layer.cell}{', bidirectional' if layer.kind == 'Bidirectional' else ''})"
                         f": {verdict}")
    notes = p.notes + estimate.notes
    if notes:
        lines += ["", "notes:"] + [f"  {note}" for note in notes]
    lines += ["", "An estimate: framework workspaces, temporaries and the input pipeline come on top (see "
              "tfseq/models/memory.py for what is counted)."]
    return "\n".join(lines)

