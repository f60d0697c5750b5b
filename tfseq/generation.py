"""Autoregressive sampling from a trained next-token model, with explicit RNN state in one compiled loop.

The Keras model's weights are read into a `tf.Module` that runs the recurrent cells by hand: the state is carried
from character to character (the textbook re-runs the model on a 40-character window for every new character),
and the embedding lookup and the first layer's input projection are folded into one table, so each step of the first
layer costs a gather instead of a matmul. A test checks that the logits at every step equal the Keras model's.
"""
from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

from tfseq.config import SAMPLING_RULES, SampleConfig
from tfseq.errors import UserError
from tfseq.models.factory import rnn_layers

MAX_LENGTH = 10_000_000  # most ids one call generates per prompt: the output alone is then 40 MB per prompt
MAX_GENERATED = 2**28  # most ids one call generates over all prompts (1 GiB of int32 output)


def filter_logits(logits: tf.Tensor, top_k: tf.Tensor, top_p: tf.Tensor) -> tf.Tensor:
    """Sets to -inf every logit outside the top-k and outside the top-p nucleus (each off when 0 / 1).

    Args:
        logits: float32 [batch, vocab].
        top_k: int32 scalar; keep the k largest logits of each row (ties at the k-th value are kept too).
        top_p: float32 scalar; keep the smallest set of largest-probability entries whose total reaches top_p.

    Returns:
        The filtered logits, same shape.
    """
    vocab = tf.shape(logits)[-1]
    neg_inf = tf.constant(-np.inf, logits.dtype)
    ordered = tf.sort(logits, axis=-1, direction="DESCENDING")
    k = tf.where(top_k > 0, tf.minimum(top_k, vocab), vocab)
    kth = tf.gather(ordered, k - 1, axis=-1)[:, None]
    probs = tf.nn.softmax(ordered, axis=-1)
    # Entry i is kept when the mass before it is still below top_p: the smallest set reaching top_p.
    before = tf.cumsum(probs, axis=-1, exclusive=True)
    kept = tf.reduce_sum(tf.cast(before < top_p, tf.int32), axis=-1)
    nucleus = tf.gather(ordered, tf.maximum(kept, 1) - 1, axis=-1, batch_dims=1)[:, None]
    return tf.where((logits < kth) | (logits < nucleus), neg_inf, logits)


def pick_next(logits: tf.Tensor, temperature: tf.Tensor, top_k: tf.Tensor, top_p: tf.Tensor,
              seed: tf.Tensor, mode: str = "filtered") -> tf.Tensor:
    """Draws the next id of each row: greedy at temperature 0, else from softmax(filter(logits / temperature)).

    Temperature comes first, then top-k / top-p (as in Hugging Face and KerasHub): the nucleus is the smallest set
    whose probabilities *at this temperature* reach top_p.

    Args:
        logits: float32 [batch, vocab].
        temperature, top_k, top_p: scalars, as in SampleConfig.
        seed: int64 [2], a stateless seed (the same seed gives the same draw).
        mode: "greedy" (argmax), "sample" (no top-k / top-p) or "filtered"; the generation loop picks the mode
            once per call so that each step runs only the ops it needs.

    Returns:
        int32 [batch].
    """
    if mode == "greedy":
        return tf.argmax(logits, axis=-1, output_type=tf.int32)
    logits = logits / temperature
    if mode == "filtered":
        logits = filter_logits(logits, top_k, top_p)
    return tf.random.stateless_categorical(logits, 1, seed, dtype=tf.int32)[:, 0]


def sampling_mode(temperature: tf.Tensor, top_k: tf.Tensor, top_p: tf.Tensor) -> tf.Tensor:
    """0 greedy, 1 plain sampling, 2 sampling with top-k / top-p: the index into SAMPLING_MODES."""
    filtered = tf.cast((top_k > 0) | (top_p < 1.0), tf.int32)
    return tf.where(temperature > 0, 1 + filtered, 0)


SAMPLING_MODES = ("greedy", "sample", "filtered")


@dataclass
class _Layer:
    kind: str
    units: int
    kernel: np.ndarray  # [inputs, gates * units]
    recurrent: np.ndarray  # [units, gates * units]
    bias: np.ndarray  # [gates * units], added to the input projection
    recurrent_bias: np.ndarray | None  # GRU (reset_after): [3 * units], added to the recurrent projection


def _read_layers(model: keras.Model) -> list[_Layer]:
    found = []
    for layer in rnn_layers(model):
        if isinstance(layer, keras.layers.Bidirectional):
            raise UserError("a bidirectional model cannot generate text")
        cell = layer.cell
        kind = {keras.layers.LSTMCell: "lstm", keras.layers.GRUCell: "gru",
                keras.layers.SimpleRNNCell: "simplernn"}[type(cell)]
        kernel, recurrent, bias = (np.asarray(keras.ops.convert_to_numpy(w), np.float32)
                                   for w in (cell.kernel, cell.recurrent_kernel, cell.bias))
        recurrent_bias = None
        if kind == "gru":
            bias, recurrent_bias = bias[0], bias[1]
        found.append(_Layer(kind, cell.units, kernel, recurrent, bias, recurrent_bias))
    return found


class CharGenerator(tf.Module):
    """A char-LM's weights and a compiled sampling loop over them.

    Args:
        model: a next-token model from `build_model` (unidirectional SimpleRNN / LSTM / GRU, any depth).
    """

    def __init__(self, model: keras.Model):
        super().__init__(name="char_generator")
        layers = _read_layers(model)
        embedding = keras.ops.convert_to_numpy(model.get_layer("embedding").embeddings).astype(np.float32)
        dense = model.get_layer("logits")
        self.kinds = [layer.kind for layer in layers]
        self.units = [layer.units for layer in layers]
        # Folded first layer: table[id] = embedding[id] @ kernel + bias, computed once in float64.
        first = layers[0]
        table = embedding.astype(np.float64) @ first.kernel.astype(np.float64) + first.bias
        # Variables, not constants: an exported generator keeps its weights out of the graph definition.
        const = lambda value, name: tf.Variable(np.asarray(value, np.float32), trainable=False, name=name)
        self.table = const(table, "folded_embedding")
        self.kernels = [const(layer.kernel, f"kernel_{i + 1}") for i, layer in enumerate(layers[1:])]
        self.biases = [const(layer.bias, f"bias_{i + 1}") for i, layer in enumerate(layers[1:])]
        self.recurrents = [const(layer.recurrent, f"recurrent_{i}") for i, layer in enumerate(layers)]
        self.recurrent_biases = [const(layer.recurrent_bias if layer.recurrent_bias is not None else np.zeros(0),
                                       f"recurrent_bias_{i}") for i, layer in enumerate(layers)]
        self.out_kernel = const(keras.ops.convert_to_numpy(dense.kernel), "out_kernel")
        self.out_bias = const(keras.ops.convert_to_numpy(dense.bias), "out_bias")

    def initial_state(self, batch: tf.Tensor) -> list:
        """Zero states: [h, c] per LSTM layer, [h] per GRU / SimpleRNN layer."""
        return [[tf.zeros([batch, u])] * (2 if kind == "lstm" else 1) for kind, u in zip(self.kinds, self.units)]

    def step(self, ids: tf.Tensor, states: list) -> tuple[tf.Tensor, list]:
        """Advances every layer by one character.

        Args:
            ids: int32 [batch], the current characters.
            states: as from `initial_state`.

        Returns:
            (logits float32 [batch, vocab] for the next character, new states).
        """
        projected = tf.gather(self.table, ids)
        new_states = []
        for i, (kind, state) in enumerate(zip(self.kinds, states)):
            if i:
                projected = tf.matmul(x, self.kernels[i - 1]) + self.biases[i - 1]
            x, state = _cell(kind, projected, state, self.recurrents[i], self.recurrent_biases[i])
            new_states.append(state)
        return tf.matmul(x, self.out_kernel) + self.out_bias, new_states

    @tf.function(input_signature=[
        tf.TensorSpec([None, None], tf.int32), tf.TensorSpec([None], tf.int32), tf.TensorSpec([], tf.int32),
        tf.TensorSpec([], tf.float32), tf.TensorSpec([], tf.int32), tf.TensorSpec([], tf.float32),
        tf.TensorSpec([], tf.int64), tf.TensorSpec([None, None], tf.int32)], autograph=False)
    def generate_ids(self, prompts, prompt_lengths, length, temperature, top_k, top_p, seed, stops):
        """Continues each prompt by up to `length` sampled ids, in one loop with the state carried.

        Args:
            prompts: int32 [batch, max_prompt_len], right-padded prompt ids.
            prompt_lengths: int32 [batch], each prompt's length (>= 1).
            length: the most ids to generate per prompt.
            temperature, top_k, top_p: as in SampleConfig.
            seed: int64 scalar.
            stops: int32 [n_stops, width], stop sequences left-padded with -1 ([0, 1] for none). A stream ends
                when its generated ids end with a stop sequence; the loop ends when every stream has ended.

        Returns:
            (int32 [batch, length] generated ids, int32 [batch] how many of them to keep: up to, not including,
            a stop sequence).
        """
        batch = tf.shape(prompts)[0]
        steps = tf.reduce_max(prompt_lengths) + length - 1
        # Pad the prompts so that "the prompt's next id" exists at every step; past a prompt's end it is unused.
        padded = tf.pad(prompts, [[0, 0], [0, steps + 1 - tf.shape(prompts)[1]]])
        stop_lengths = tf.reduce_sum(tf.cast(stops >= 0, tf.int32), axis=1)

        def loop(mode: str, with_stops: bool):
            def body(t, ids, states, drawn, recent, kept, finished):
                logits, states = self.step(ids, states)
                picked = pick_next(logits, temperature, top_k, top_p, tf.stack([seed, tf.cast(t, tf.int64)]), mode)
                drawn = drawn.write(t, picked)
                # Inside its prompt a stream reads the prompt; after it, its own last draw.
                ids = tf.where(t + 1 < prompt_lengths, padded[:, t + 1], picked)
                if with_stops:
                    position = t - prompt_lengths + 1  # index of `picked` among the stream's generated ids
                    running = (position >= 0) & (kept < 0)
                    recent = tf.where(running[:, None], tf.concat([recent[:, 1:], picked[:, None]], 1), recent)
                    matched = tf.reduce_all((stops[None] < 0) | (recent[:, None, :] == stops[None]), axis=-1)
                    longest = tf.reduce_max(tf.where(matched, stop_lengths[None], 0), axis=1)
                    kept = tf.where(running & (longest > 0), position + 1 - longest, kept)
                    finished = tf.reduce_all((kept >= 0) | (position + 1 >= length))
                return t + 1, ids, states, drawn, recent, kept, finished

            start = (tf.constant(0), prompts[:, 0], self.initial_state(batch), tf.TensorArray(tf.int32, size=steps),
                     tf.fill([batch, tf.shape(stops)[1]], -2), tf.fill([batch], -1), tf.constant(False))
            t, _, _, drawn, _, kept, _ = tf.while_loop(lambda t, *rest: (t < steps) & ~rest[-1], body, start)
            drawn = tf.pad(tf.transpose(drawn.stack()[:t]), [[0, 0], [0, steps - t]])
            return drawn, tf.where(kept < 0, length, kept)

        # One loop per (sampling mode, stops or not), chosen once per call: each step runs only what it needs.
        variants = [lambda m=m, w=w: loop(m, w) for m in SAMPLING_MODES for w in (False, True)]
        choice = sampling_mode(temperature, top_k, top_p) * 2 + tf.cast(tf.shape(stops)[0] > 0, tf.int32)
        drawn, kept = tf.switch_case(choice, variants)
        # Stream i's first generated id was drawn at step prompt_lengths[i] - 1.
        index = prompt_lengths[:, None] - 1 + tf.range(length)[None, :]
        return tf.gather(drawn, index, batch_dims=1), kept


def _cell(kind: str, projected, state, recurrent, recurrent_bias):
    """One step of a Keras LSTM / GRU (reset_after) / SimpleRNN cell given the input projection x @ W + b."""
    if kind == "lstm":
        h, c = state
        i, f, g, o = tf.split(projected + tf.matmul(h, recurrent), 4, axis=-1)
        c = tf.sigmoid(f) * c + tf.sigmoid(i) * tf.tanh(g)
        h = tf.sigmoid(o) * tf.tanh(c)
        return h, [h, c]
    if kind == "gru":
        (h,) = state
        x_z, x_r, x_h = tf.split(projected, 3, axis=-1)
        r_z, r_r, r_h = tf.split(tf.matmul(h, recurrent) + recurrent_bias, 3, axis=-1)
        z = tf.sigmoid(x_z + r_z)
        candidate = tf.tanh(x_h + tf.sigmoid(x_r + r_r) * r_h)
        h = z * h + (1 - z) * candidate
        return h, [h]
    (h,) = state
    h = tf.tanh(projected + tf.matmul(h, recurrent))
    return h, [h]


def generate(generator: CharGenerator, vocab, prompts: list[str], length: int, options: SampleConfig,
             stops: list[str] = ()) -> list[str]:
    """Continues each prompt by up to `length` characters.

    Args:
        generator: a CharGenerator.
        vocab: the run's CharVocab.
        prompts: one or more non-empty prompts (their characters must be in the vocabulary).
        length: the most characters to generate per prompt (> 0).
        options: temperature, top-k, top-p, seed.
        stops: stop strings: a continuation ends just before the first one it produces (not included).

    Returns:
        The generated continuations (without the prompts), one per prompt.
    """
    check_request(prompts, length, options)
    encoded = [vocab.encode(p) for p in prompts]
    lengths = np.array([len(e) for e in encoded], np.int32)
    ids = np.zeros((len(encoded), lengths.max()), np.int32)
    for row, e in zip(ids, encoded):
        row[: len(e)] = e
    out, kept = generator.generate_ids(ids, lengths, np.int32(length), np.float32(options.temperature),
                                       np.int32(options.top_k), np.float32(options.top_p), np.int64(options.seed),
                                       encode_stops(vocab, stops))
    return [vocab.decode(row[:n]) for row, n in zip(out.numpy(), kept.numpy())]


def check_request(prompts: list[str], length: int, options: SampleConfig) -> None:
    """Refuses, with a UserError naming the value, what the generation loop cannot do: an empty prompt, a length
    outside 1..MAX_LENGTH, more than MAX_GENERATED ids in all, and sampling options out of range."""
    options.check()
    if not 0 < length <= MAX_LENGTH:
        raise UserError(f"length = {length} must be between 1 and {MAX_LENGTH:,}")
    if not prompts or any(not p for p in prompts):
        raise UserError("the prompt is empty; give at least one character to start from")
    if len(prompts) * length > MAX_GENERATED:
        raise UserError(f"{len(prompts):,} prompts x length {length:,} = {len(prompts) * length:,} ids to generate, "
                        f"more than one call can hold ({MAX_GENERATED:,}); ask for fewer samples or a shorter length")


def encode_stops(vocab, stops) -> np.ndarray:
    """Stop strings as an int32 [n, width] array, left-padded with -1 ([0, 1] when there are none)."""
    if any(not s for s in stops):
        raise UserError("a stop string is empty")
    try:
        encoded = [vocab.encode(s) for s in stops]
    except UserError as err:
        raise UserError(f"a stop string can never be generated: {err}") from None
    width = max([len(e) for e in encoded] + [1])
    table = np.full((len(encoded), width), -1, np.int32)
    for row, e in zip(table, encoded):
        row[width - len(e):] = e
    return table


def cut_at_stops(text: str, stops) -> str:
    """The text up to, not including, the stop string that is completed first (the longest, when several end there).

    The same cut as the generation loop makes: it ends a stream as soon as a stop string is complete.
    """
    found = [(i + len(s), -len(s)) for s in stops if (i := text.find(s)) >= 0]
    if not found:
        return text
    end, minus_length = min(found)
    return text[: end + minus_length]


_ENDPOINT_CHECKS = ("prompt character not in the vocabulary", "empty prompt",
                    f"length must be between 1 and {MAX_LENGTH}", f"prompts x length must be at most {MAX_GENERATED}",
                    *(f"{name} {rule}" for name, _, rule in SAMPLING_RULES))


def add_generate_endpoint(archive, generator: CharGenerator, vocab) -> None:
    """Adds `generate(prompts, length, temperature, top_k, top_p, seed) -> {"text", "generated"}` to an ExportArchive.

    The endpoint takes raw prompts (string[batch]) and returns prompt + continuation ("text") and the continuation
    alone ("generated"); characters, vocabulary and loop are all in the graph. A prompt character outside the
    vocabulary, an empty prompt, or a length, temperature (negative or NaN), top_k or top_p out of range fails with
    InvalidArgumentError naming the problem, as the command line does. An empty batch of prompts gives empty outputs.
    """
    chars = tf.constant(vocab.chars)
    table = tf.lookup.StaticHashTable(
        tf.lookup.KeyValueTensorInitializer(chars, tf.range(len(vocab.chars), dtype=tf.int64)), default_value=-1)
    archive.track(generator)
    archive.track(table)

    def endpoint(prompts, length, temperature, top_k, top_p, seed):
        ids = tf.ragged.map_flat_values(table.lookup, tf.strings.unicode_split(prompts, "UTF-8"))
        checks = [
            tf.debugging.assert_non_negative(ids.flat_values, message=_ENDPOINT_CHECKS[0]),
            tf.debugging.assert_positive(ids.row_lengths(), message=_ENDPOINT_CHECKS[1]),
            tf.debugging.Assert((length > 0) & (length <= MAX_LENGTH), [_ENDPOINT_CHECKS[2]]),
            tf.debugging.Assert(tf.cast(tf.size(prompts), tf.int64) * tf.cast(length, tf.int64) <= MAX_GENERATED,
                                [_ENDPOINT_CHECKS[3]]),
        ]
        options = {"temperature": temperature, "top_k": top_k, "top_p": top_p, "seed": seed}
        checks += [tf.debugging.Assert(allowed(options[name]), [f"{name} {rule}"])
                   for name, allowed, rule in SAMPLING_RULES]
        def run():
            out, _ = generator.generate_ids(tf.cast(ids.to_tensor(0), tf.int32),
                                            tf.cast(ids.row_lengths(), tf.int32), length, temperature, top_k, top_p,
                                            seed, tf.fill([0, 1], -1))
            return tf.strings.reduce_join(tf.gather(chars, out), axis=-1)

        with tf.control_dependencies(checks):
            generated = tf.cond(tf.size(prompts) > 0, run, lambda: tf.zeros([0], tf.string))
        return {"text": prompts + generated, "generated": generated}

    archive.add_endpoint("generate", endpoint, input_signature=[
        tf.TensorSpec([None], tf.string, name="prompts"), tf.TensorSpec([], tf.int32, name="length"),
        tf.TensorSpec([], tf.float32, name="temperature"), tf.TensorSpec([], tf.int32, name="top_k"),
        tf.TensorSpec([], tf.float32, name="top_p"), tf.TensorSpec([], tf.int64, name="seed")])


def sample_run(source: str, prompts: list[str], length: int, options: SampleConfig,
               stops: list[str] = ()) -> list[str]:
    """Returns prompt + continuation for each prompt, from a char-LM run folder or its exported SavedModel.

    Args:
        source: a run folder, or a SavedModel written by `python -m tfseq.export`.
        prompts: the prompts (repeat one prompt for several samples of it).
        length: the most characters to generate per prompt.
        options: temperature, top-k, top-p, seed.
        stops: stop strings (a continuation ends before the first one; a SavedModel's text is cut the same way).
    """
    from pathlib import Path

    from tfseq.runs import load_trained

    check_request(prompts, length, options)
    if (Path(source) / "saved_model.pb").is_file():
        loaded = tf.saved_model.load(str(source))
        if not hasattr(loaded, "generate"):
            raise UserError(f"{source} is a SavedModel without a 'generate' signature; export a char-LM run")
        try:
            out = loaded.generate(tf.constant(prompts), np.int32(length), np.float32(options.temperature),
                                  np.int32(options.top_k), np.float32(options.top_p), np.int64(options.seed))
        except tf.errors.InvalidArgumentError as err:
            known = [m for m in _ENDPOINT_CHECKS if m in err.message] or [err.message.strip().splitlines()[-1]]
            raise UserError(f"{source} refused the prompt: {known[0]}") from None
        generated = [t.decode("utf-8") for t in out["generated"].numpy()]
        return [p + cut_at_stops(g, stops) for p, g in zip(prompts, generated)]
    trained = load_trained(source, tool="sample")
    continuations = generate(CharGenerator(trained.model), trained.vocab, prompts, length, options, stops)
    return [p + c for p, c in zip(prompts, continuations)]
