import numpy as np
import pytest
import tensorflow as tf

from tfseq.config import ModelConfig, SampleConfig
from tfseq.data.text import CharVocab
from tfseq.errors import UserError
from tfseq.generation.generate import generate
from tfseq.generation.sampling import SAMPLING_MODES, filter_logits, pick_next, sampling_mode
from tfseq.generation.stepper import Stepper
from tfseq.models.factory import build_model

VOCAB = CharVocab(list("\n \"'.Tabdehilnorst"))


def random_model(cell: str, layers: int, tie_embeddings: bool = False, fast_gru: bool = False):
    import keras

    keras.utils.set_random_seed(7)
    model = build_model(ModelConfig(cell=cell, units=16, layers=layers, embedding_dim=8, tie_embeddings=tie_embeddings,
                                    fast_gru=fast_gru, recurrent_dropout=0.3 if fast_gru else 0.0), VOCAB.size)
    # Larger weights than the initialiser's, so that every gate matters.
    rng = np.random.default_rng(1)
    for w in model.weights:
        w.assign(rng.normal(0, 0.4, w.shape).astype("float32"))
    return model


@pytest.mark.parametrize("cell, layers, tied, fast", [("lstm", 1, False, False), ("lstm", 2, False, False),
                                                      ("gru", 2, False, False), ("gru", 2, False, True),
                                                      ("simplernn", 3, False, False), ("lstm", 2, True, False)])
def test_stateful_steps_give_the_full_models_logits(cell, layers, tied, fast):
    model = random_model(cell, layers, tied, fast)
    generator = Stepper(model)
    ids = np.random.default_rng(0).integers(0, VOCAB.size, (3, 25)).astype(np.int32)
    full = model(ids).numpy()
    states = generator.initial_state(3)
    for t in range(ids.shape[1]):
        logits, states = generator.step(tf.constant(ids[:, t]), states)
        np.testing.assert_allclose(logits.numpy(), full[:, t], rtol=1e-4, atol=1e-4)


def test_generated_text_follows_the_models_own_greedy_choice():
    model = random_model("gru", 2)
    prompt = "The island"
    text = generate(Stepper(model), VOCAB, [prompt], 12, SampleConfig(temperature=0))[0]
    # Re-run the full model on the growing prefix: each next character is its argmax.
    prefix = prompt
    for char in text:
        logits = model(VOCAB.encode(prefix)[None]).numpy()[0, -1]
        assert VOCAB.chars[int(np.argmax(logits))] == char
        prefix += char


def test_prompts_of_different_lengths_in_one_batch_match_single_runs():
    generator = Stepper(random_model("lstm", 2))
    prompts = ["The island", "a", "he said 'there'"]
    options = SampleConfig(temperature=0)
    together = generate(generator, VOCAB, prompts, 30, options)
    alone = [generate(generator, VOCAB, [p], 30, options)[0] for p in prompts]
    assert together == alone


def test_same_seed_same_text_other_seed_other_text():
    generator = Stepper(random_model("lstm", 1))
    one = generate(generator, VOCAB, ["The"] * 2, 200, SampleConfig(temperature=1.0, seed=5))
    assert one == generate(generator, VOCAB, ["The"] * 2, 200, SampleConfig(temperature=1.0, seed=5))
    assert one[0] != one[1]
    assert one != generate(generator, VOCAB, ["The"] * 2, 200, SampleConfig(temperature=1.0, seed=6))


def test_stop_strings_end_each_stream_where_the_text_completes_one():
    from tfseq.generation.generate import cut_at_stops

    generator = Stepper(random_model("gru", 2))
    greedy = SampleConfig(temperature=0)
    prompts = ["The island", "he said 'there'"]
    full = generate(generator, VOCAB, prompts, 80, greedy)
    stops = [full[0][20:23], full[1][5:7] + "\u00e9"]  # the second can never complete in stream 2's text
    stopped = generate(generator, VOCAB, prompts, 80, greedy, [full[0][20:23], full[1][5:7]])
    assert stopped == [cut_at_stops(text, [full[0][20:23], full[1][5:7]]) for text in full]
    assert len(stopped[0]) <= 20 and len(stopped[1]) <= 5
    assert cut_at_stops("abcd", ["abcd", "c"]) == "ab"  # the first completed stop wins
    assert cut_at_stops("xabz", ["ab", "b"]) == "x"  # the longest of those ending at the same place
    with pytest.raises(UserError, match="a stop string can never be generated"):
        generate(generator, VOCAB, prompts, 10, greedy, stops)


FIXED = tf.constant([[0.0, 3.0, 1.0, 2.0, -1.0]])  # probabilities ~ .03 .64 .09 .23 .01


def draws(logits, temperature=1.0, top_k=0, top_p=1.0, n=400):
    """The set of ids drawn in n draws, in the mode the generation loop would pick for these options."""
    t, k, p = tf.constant(temperature), tf.constant(top_k), tf.constant(top_p)
    mode = SAMPLING_MODES[int(sampling_mode(t, k, p))]
    return {int(pick_next(logits, t, k, p, tf.constant([9, i], tf.int64), mode)[0]) for i in range(n)}


def test_sampler_on_fixed_logits():
    assert draws(FIXED, temperature=0.0, n=5) == {1}  # greedy is the argmax
    assert draws(FIXED, temperature=0.0, top_k=3, n=5) == {1}
    assert draws(FIXED, top_k=2) == {1, 3}  # top-k never leaves the k best
    assert draws(FIXED, top_k=1) == {1}
    assert draws(FIXED, top_p=0.6) == {1}  # .64 alone reaches .6
    assert draws(FIXED, top_p=0.8) == {1, 3}  # .64 + .23 is the smallest set above .8
    assert draws(FIXED, top_p=0.9) == {1, 3, 2}
    assert draws(FIXED, top_p=1.0) == {0, 1, 2, 3, 4}
    assert draws(tf.one_hot([[3]], 5)[0] * 1e9) == {3}


def test_temperature_comes_before_top_p():
    # At T = 0.5 the probabilities become ~ .00 .87 .02 .12 .00: .87 alone reaches top_p = .8, while at T = 1
    # (.64, .23, ...) it takes two entries.
    assert draws(FIXED, temperature=0.5, top_p=0.8) == {1}
    assert draws(FIXED, temperature=1.0, top_p=0.8) == {1, 3}
    # At T = 2 (.43 .26 .16 .10 .06 sorted) the nucleus of .8 holds three entries; top-k alone ignores temperature.
    assert draws(FIXED, temperature=2.0, top_p=0.8) == {1, 3, 2}
    assert draws(FIXED, temperature=5.0, top_k=2) == {1, 3}


def test_filter_logits_masks_exactly_what_it_should():
    out = filter_logits(FIXED, tf.constant(3), tf.constant(1.0)).numpy()[0]
    assert np.isneginf(out[[0, 4]]).all() and np.array_equal(out[[1, 2, 3]], [3.0, 1.0, 2.0])


def test_more_than_one_call_can_hold_is_refused_before_any_work():
    from tfseq.generation.generate import MAX_GENERATED, check_request

    with pytest.raises(UserError, match=r"27 prompts x length 10,000,000 = 270,000,000 ids to generate, more than "
                                        r"one call can hold \(268,435,456\)"):
        check_request(["The"] * 27, 10_000_000, SampleConfig())
    check_request(["The"] * 26, 10_000_000, SampleConfig())  # 260,000,000 fits under 2^28
    assert MAX_GENERATED == 2**28


@pytest.mark.parametrize("kwargs, length, prompt, message", [
    (dict(temperature=-1.0), 5, "The", r"temperature = -1.0 must be >= 0 \(0 means greedy"),
    (dict(top_k=-2), 5, "The", "top_k = -2 must be >= 0"),
    (dict(top_p=0.0), 5, "The", r"top_p = 0.0 must be in \(0, 1\]"),
    (dict(top_p=1.5), 5, "The", r"top_p = 1.5 must be in \(0, 1\]"),
    (dict(), 0, "The", "length = 0 must be between 1 and 10,000,000"),
    (dict(), 5, "", "the prompt is empty"),
    (dict(), 5, "The €", r"1 character\(s\) not in the model's vocabulary: '€'"),
    (dict(), 10_000_001, "The", "length = 10000001 must be between 1 and 10,000,000"),
    (dict(seed=2**63), 5, "The", "seed = 9223372036854775808 is out of range"),
    (dict(top_k=2**31), 5, "The", "top_k = 2147483648 must be >= 0 and at most 2147483647"),
])
def test_bad_sampling_input(kwargs, length, prompt, message):
    generator = Stepper(random_model("simplernn", 1))
    with pytest.raises(UserError, match=message):
        generate(generator, VOCAB, [prompt], length, SampleConfig(**kwargs))


def test_a_char_prompt_of_whitespace_alone_is_a_prompt():
    stepper = Stepper(random_model("lstm", 1))
    assert len(generate(stepper, VOCAB, [" ", "\n"], 5, SampleConfig(temperature=0))[0]) == 5
