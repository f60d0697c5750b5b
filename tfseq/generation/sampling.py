"""The sampling loop: temperature, top-k, top-p, stop sequences and seeds, over any step function.

The loop knows nothing about the model: it takes `step(ids, states) -> (logits, states)` and the initial states
(tfseq.generation.stepper gives both for a trained model), as flax's lm1b `temperature_sample` takes its
`tokens_to_logits`.
"""
from __future__ import annotations

import numpy as np
import tensorflow as tf


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


def sample_loop(step, initial_state, prompts, prompt_lengths, length, temperature, top_k, top_p, seed, stops):
    """Continues each prompt by up to `length` sampled ids, in one tf.while_loop with the state carried.

    Args:
        step: (int32 ids [batch], states) -> (float32 logits [batch, vocab], states).
        initial_state: the states before the first prompt id.
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
            logits, states = step(ids, states)
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

        start = (tf.constant(0), prompts[:, 0], initial_state, tf.TensorArray(tf.int32, size=steps),
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
