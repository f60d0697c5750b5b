import itertools

import keras
import numpy as np
import pytest

from tfseq.config import ModelConfig
from tfseq.errors import UserError
from tfseq.models.factory import GATES, build_model, parameter_count

V = 13


def rnn_params(cell: str, inputs: int, units: int) -> int:
    """Closed forms: SimpleRNN u(i+u+1); LSTM 4u(i+u+1); GRU with reset_after 3u(i+u+2)."""
    return GATES[cell] * units * (inputs + units + (2 if cell == "gru" else 1))


@pytest.mark.parametrize("cell, bidirectional, layers", list(itertools.product(
    ("simplernn", "lstm", "gru"), (False, True), (1, 2))))
def test_classifier_shapes_and_parameter_count(cell, bidirectional, layers):
    cfg = ModelConfig(cell=cell, units=6, layers=layers, bidirectional=bidirectional, embedding_dim=5,
                      head="binary", mask_zero=True, hidden_units=4)
    model = build_model(cfg, V)
    out = model(np.array([[1, 2, 3, 0], [4, 5, 0, 0]], np.int32))
    assert tuple(out.shape) == (2, 1)
    directions = 2 if bidirectional else 1
    expected = V * 5
    width = 5
    for _ in range(layers):
        expected += directions * rnn_params(cell, width, 6)
        width = directions * 6
    expected += width * 4 + 4 + 4 * 1 + 1
    assert model.count_params() == expected


@pytest.mark.parametrize("cell, layers", list(itertools.product(("simplernn", "lstm", "gru"), (1, 3))))
def test_next_token_shapes_and_parameter_count(cell, layers):
    cfg = ModelConfig(cell=cell, units=7, layers=layers, embedding_dim=4, dropout=0.1)
    model = build_model(cfg, V)
    assert tuple(model(np.ones((3, 9), np.int32)).shape) == (3, 9, V)
    expected = V * 4 + rnn_params(cell, 4, 7) + (layers - 1) * rnn_params(cell, 7, 7) + 7 * V + V
    assert model.count_params() == expected


def test_a_tied_output_reuses_the_embedding_and_is_for_language_models_only():
    cfg = ModelConfig(cell="gru", units=7, layers=2, embedding_dim=4, tie_embeddings=True)
    model = build_model(cfg, V)
    assert tuple(model(np.ones((3, 9), np.int32)).shape) == (3, 9, V)
    # No vocab-wide output matrix: a 7 -> 4 projection, then the embedding transposed.
    assert model.count_params() == V * 4 + rnn_params("gru", 4, 7) + rnn_params("gru", 7, 7) + 7 * 4 + 4
    assert parameter_count(cfg, V) == model.count_params()
    with pytest.raises(UserError, match="model.tie_embeddings is for language models .*not head = 'binary'"):
        build_model(ModelConfig(head="binary", tie_embeddings=True), V)


@pytest.mark.parametrize("pooling, width", [("last", 12), ("mean", 12), ("max", 12), ("max_mean", 24)])
def test_pooling_widths_and_multiclass_head(pooling, width):
    cfg = ModelConfig(cell="gru", units=6, bidirectional=True, embedding_dim=5, head="multiclass", num_classes=3,
                      mask_zero=True, pooling=pooling)
    model = build_model(cfg, V)
    probs = keras.ops.convert_to_numpy(model(np.array([[1, 2, 3, 0]], np.int32)))
    assert probs.shape == (1, 3)
    np.testing.assert_allclose(probs.sum(-1), 1.0, rtol=1e-6)
    assert model.get_layer("output").kernel.shape == (width, 3)


def test_simplernn_matches_a_numpy_forward_pass():
    cfg = ModelConfig(cell="simplernn", units=4, embedding_dim=3)
    model = build_model(cfg, V)
    rng = np.random.default_rng(0)
    for w in model.weights:
        w.assign(rng.normal(0, 0.5, w.shape).astype("float32"))
    ids = np.array([[3, 1, 4, 1, 5, 9, 2]], np.int32)
    emb = model.get_layer("embedding").embeddings.numpy()
    w_xh, w_hh, b = (v.numpy() for v in model.get_layer("rnn_0").cell.weights)
    w_out, b_out = (v.numpy() for v in model.get_layer("logits").weights)
    h = np.zeros(4)
    expected = []
    for t in ids[0]:
        h = np.tanh(emb[t] @ w_xh + h @ w_hh + b)  # h_t = tanh(x_t W_xh + h_{t-1} W_hh + b)
        expected.append(h @ w_out + b_out)
    np.testing.assert_allclose(model(ids).numpy()[0], np.array(expected), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("cell, bidirectional, pooling", [
    ("lstm", True, "last"), ("gru", True, "max_mean"), ("simplernn", False, "mean"), ("lstm", False, "max"),
    ("gru", False, "last")])
def test_masked_right_padding_does_not_change_the_prediction(cell, bidirectional, pooling):
    cfg = ModelConfig(cell=cell, units=5, layers=2, bidirectional=bidirectional, embedding_dim=4, head="binary",
                      mask_zero=True, pooling=pooling, hidden_units=3)
    model = build_model(cfg, V)
    ids = np.array([[5, 2, 7, 1, 9]], np.int32)
    padded = np.array([[5, 2, 7, 1, 9, 0, 0, 0]], np.int32)
    np.testing.assert_allclose(model(ids).numpy(), model(padded).numpy(), rtol=1e-5, atol=1e-6)


def test_hashed_bigrams_see_word_pairs_and_keep_padding_invariance():
    cfg = ModelConfig(cell="gru", units=5, bidirectional=True, embedding_dim=4, head="binary", mask_zero=True,
                      pooling="max_mean", bigram_buckets=64)
    model = build_model(cfg, V)
    ids = np.array([[5, 2, 7, 1, 9]], np.int32)
    np.testing.assert_allclose(model(ids).numpy(), model(np.pad(ids, [[0, 0], [0, 4]])).numpy(), rtol=1e-5)
    assert model.count_params() == build_model(ModelConfig(**{**cfg.__dict__, "bigram_buckets": 0}), V).count_params() + 64 * 4
    pairs = model.get_layer("bigrams")
    a, b = pairs(np.array([[3, 4]], np.int32)).numpy(), pairs(np.array([[5, 4]], np.int32)).numpy()
    assert not np.allclose(a[0, 1], b[0, 1])  # the same token after another one gets another pair embedding


def test_ngram_bag_counts_each_distinct_ngram_once_and_ignores_padding():
    from tfseq.models.layers import NgramBag

    bag = NgramBag(1000, 3, 1)
    ids = np.array([[5, 6, 5, 6, 0, 0], [5, 6, 7, 0, 0, 0]], np.int32)
    hashes = bag.hashes(ids).numpy()
    # Row 0: unigrams 5 6 5 6, bigrams (5 6) (6 5) (5 6), trigrams (5 6 5) (6 5 6); nothing reaches into padding.
    assert (hashes >= 0).sum(axis=1).tolist() == [4 + 3 + 2, 3 + 2 + 1]
    assert len(set(hashes[0][hashes[0] >= 0])) == 2 + 2 + 2
    bag.build(ids.shape)
    bag.table.embeddings.assign(np.ones((1000, 1), np.float32))
    # Every distinct n-gram's row (all ones) once, over sqrt(distinct n-grams): 6 / sqrt(6) in both rows.
    np.testing.assert_allclose(bag(ids).numpy(), [[6 ** 0.5], [6 ** 0.5]], rtol=1e-6)
    np.testing.assert_allclose(bag(ids[:, :4]).numpy(), bag(ids).numpy())
    scaled = NgramBag(1000, 3, 1, scale=4.0)
    scaled.build(ids.shape)
    scaled.table.embeddings.assign(np.ones((1000, 1), np.float32))
    np.testing.assert_allclose(scaled(ids).numpy(), 4 * bag(ids).numpy(), rtol=1e-6)
    assert NgramBag.from_config(scaled.get_config()).scale == 4.0


def test_mixed_hash_is_murmur3s_finalizer_and_spreads_pairs_of_frequent_words():
    from tfseq.models.layers import NgramBag, _fmix32

    # murmur3 fmix32 of these inputs (reference values from its definition on unsigned 32-bit words).
    x = np.array([0, 1, -1, 123456789, -2 ** 31], np.int32)
    assert _fmix32(x).numpy().tolist() == [0, 1364076727, -2114883783, -1168058214, 1832674720]
    # The 90,000 word pairs of the 300 most frequent ids (a frequency-ranked vocabulary) in 2^21 or 2^24 buckets: a
    # random function would merge about 240 of them in 2^24; the FNV step alone merges about 8,000 at either size.
    a, b = np.meshgrid(np.arange(1, 301), np.arange(1, 301))
    pairs = np.stack([a.ravel(), b.ravel()], axis=1).astype(np.int32)
    spread = {}
    for kind, buckets in (("fnv", 2 ** 21), ("fnv", 2 ** 24), ("mixed", 2 ** 24)):
        hashes = NgramBag(buckets, 2, 1, hash=kind).hashes(pairs).numpy()
        spread[kind, buckets] = len(set(hashes[:, 3].tolist()))  # the pair's bigram: second token, order 2
    assert spread["fnv", 2 ** 21] < 85_000 and spread["fnv", 2 ** 24] < 85_000 and spread["mixed", 2 ** 24] > 89_500
    # fnv keeps the buckets of runs saved before the mixed hash existed.
    h = (np.int64(0) * 16777619) ^ (7 + 7919)
    h = (h * 16777619 % 2 ** 32) ^ (5 + 2 * 7919)
    h = h - 2 ** 32 if h >= 2 ** 31 else h
    assert NgramBag(1000, 2, 1, hash="fnv").hashes(np.array([[5, 7]], np.int32)).numpy()[0, 3] == h % 1000


def test_ngram_dropout_leaves_out_ngrams_while_training_only():
    from tfseq.models.layers import NgramBag

    ids = np.tile(np.arange(1, 201, dtype=np.int32), (64, 1))  # 200 distinct unigrams per text
    bag = NgramBag(2 ** 20, 1, 1, dropout=0.25, seed=3)
    bag.build(ids.shape)
    bag.table.embeddings.assign(np.ones((2 ** 20, 1), np.float32))
    full = bag(ids).numpy()
    np.testing.assert_allclose(full, bag(ids, training=False).numpy())
    np.testing.assert_allclose(full, np.sqrt(200 - np.zeros((64, 1))), rtol=1e-5)  # no collisions among 200 ids
    dropped = bag(ids, training=True).numpy()
    # Each kept n-gram counts 1 / 0.75, so a text's logit is (kept / 0.75) / sqrt(200), with 150 kept on average.
    kept = dropped[:, 0] * np.sqrt(200) * 0.75
    np.testing.assert_allclose(kept, np.round(kept), atol=1e-3)
    assert len(set(np.round(kept).tolist())) > 5 and 140 < kept.mean() < 160
    assert abs(dropped.mean() - full.mean()) < 0.05 * full.mean()
    assert NgramBag.from_config(bag.get_config()).dropout == 0.25


def test_naive_bayes_ratios_count_each_text_once_per_bucket():
    from tfseq.data.batching import Encoded
    from tfseq.models.layers import NgramBag
    from tfseq.models.ngram_prior import naive_bayes_ratios

    texts, labels = [[5, 6, 5], [5, 7], [8], [6, 6]], [1, 0, 2, 1]
    encoded = Encoded(np.array(sum(texts, []), np.int32), np.cumsum([0] + [len(t) for t in texts]),
                      np.array(labels, np.int32))
    binary = NgramBag(1000, 1, 1, prior=True)
    b5, b6, b7, b8 = binary.hashes(np.array([[5, 6, 7, 8]], np.int32)).numpy()[0]
    # Class 1 against class 0 (the binary head's column): 6 is in two class-1 texts (once each), 5 in one of each.
    ratios = naive_bayes_ratios(binary, Encoded(encoded.ids[:5], encoded.splits[:3], encoded.labels[:2]), 2)
    assert ratios.shape == (1000, 1) and ratios.dtype == np.float32
    # alpha = 1 per bucket; each class has two bucket counts, so the sums are equal: 5 and the unseen 8 get 0.
    np.testing.assert_allclose(ratios[[b5, b6, b7, b8], 0], [0, np.log(2), -np.log(2), 0], atol=1e-6)
    # Three classes, each against the rest: text [6, 6] adds class 1's second 6; class 2 has only the 8.
    wide = NgramBag(1000, 1, 3, prior=True)
    ratios = naive_bayes_ratios(wide, encoded, 3)
    class1, rest1 = 1000 + 3, 1000 + 3  # class 1: 5, 6, 6; the rest: 5, 7, 8
    np.testing.assert_allclose(ratios[b6, 1], np.log(3 / class1) - np.log(1 / rest1), rtol=1e-6)
    np.testing.assert_allclose(ratios[b8, 2], np.log(2 / (1000 + 1)) - np.log(1 / (1000 + 5)), rtol=1e-6)
    wide.build((1, 4))
    wide.table.embeddings.assign(np.ones((1000, 3), np.float32))
    assert wide(np.array([[6, 8, 0]], np.int32)).numpy() == pytest.approx(np.sqrt(2) * np.ones((1, 3)))  # ratios 1
    wide.ratios.embeddings.assign(ratios)
    np.testing.assert_allclose(wide(np.array([[6, 8, 0]], np.int32)).numpy()[0],
                               (ratios[b6] + ratios[b8]) / np.sqrt(2), rtol=1e-5)
    assert NgramBag.from_config(wide.get_config()).prior and not wide.ratios.trainable
    # min_count 2: 7 and 8 (one text each) get 0 and leave the sums, where only 5 and 6 (two texts each) remain.
    ratios = naive_bayes_ratios(wide, encoded, 3, min_count=2)
    np.testing.assert_allclose(ratios[b6, 1], np.log(3 / 5) - np.log(1 / 3), rtol=1e-6)
    np.testing.assert_allclose(ratios[b5, 1], np.log(2 / 5) - np.log(2 / 3), rtol=1e-6)
    assert not ratios[[b7, b8]].any() and np.count_nonzero(ratios.any(axis=1)) == 2


def test_ngram_scale_is_the_tables_learning_rate_under_adam():
    import keras

    ids = np.array([[5, 2, 7, 1, 9], [3, 3, 8, 0, 0]], np.int32)
    y = np.array([[1.0], [0.0]], np.float32)
    moved = {}
    for scale in (1.0, 4.0):
        keras.utils.set_random_seed(0)
        cfg = ModelConfig(cell="gru", units=5, embedding_dim=4, head="binary", mask_zero=True, pooling="mean",
                          ngram_buckets=64, ngram_order=2, ngram_scale=scale)
        model = build_model(cfg, V)
        model.compile(keras.optimizers.Adam(1e-2), keras.losses.BinaryCrossentropy())  # the head is a sigmoid
        model.train_on_batch(ids, y)  # from a zero table: the same loss and RNN gradient for both scales
        bag = model.get_layer("ngrams")
        moved[scale] = (bag(ids).numpy(), bag.table.embeddings.numpy())
    # Adam moves each weight by about the learning rate whatever the gradient's size: the same table, 4x the logits.
    np.testing.assert_allclose(moved[4.0][1], moved[1.0][1], rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(moved[4.0][0], 4 * moved[1.0][0], rtol=1e-4, atol=1e-7)
    assert np.abs(moved[1.0][0]).min() > 1e-3


def test_ngram_logits_add_to_the_head_and_keep_padding_invariance():
    cfg = ModelConfig(cell="gru", units=5, bidirectional=True, embedding_dim=4, head="multiclass", num_classes=3,
                      mask_zero=True, pooling="max_mean", ngram_buckets=128, ngram_order=2)
    model = build_model(cfg, V)
    plain = build_model(ModelConfig(**{**cfg.__dict__, "ngram_buckets": 0}), V)
    assert model.count_params() == plain.count_params() + 128 * 3 == parameter_count(cfg, V)
    prior = ModelConfig(**{**cfg.__dict__, "ngram_prior": "nb"})
    assert build_model(prior, V).count_params() == model.count_params() + 128 * 3 == parameter_count(prior, V)
    ids = np.array([[5, 2, 7, 1, 9]], np.int32)
    np.testing.assert_allclose(model(ids).numpy(), model(np.pad(ids, [[0, 0], [0, 4]])).numpy(), rtol=1e-5)
    table = model.get_layer("ngrams").table
    before = model(ids).numpy()
    table.embeddings.assign(np.tile([[0.0, 3.0, 0.0]], (128, 1)).astype(np.float32))
    after = model(ids).numpy()
    np.testing.assert_allclose(after.sum(axis=1), 1.0, rtol=1e-5)
    assert after[0, 1] > before[0, 1] + 0.5  # the n-gram logits moved the softmax towards class 1


def test_ngram_bag_is_for_classifiers_only():
    with pytest.raises(UserError, match="model.ngram_buckets is for classifiers"):
        build_model(ModelConfig(units=4, embedding_dim=2, ngram_buckets=64), V)


def test_bidirectional_language_model_is_refused():
    with pytest.raises(UserError, match="bidirectional = true cannot be used with head = .next_token."):
        build_model(ModelConfig(bidirectional=True, units=4, embedding_dim=2), V)
    from tfseq.models.heads import get_head

    with pytest.raises(UserError, match="head = 'next_token'"):
        get_head("next_token").check(ModelConfig(bidirectional=True))


def test_default_layers_stay_on_the_cudnn_path():
    model = build_model(ModelConfig(units=4, embedding_dim=2), V)
    layer = model.get_layer("rnn_0")
    assert layer.cell.activation.__name__ == "tanh" and layer.cell.recurrent_activation.__name__ == "sigmoid"
    assert layer.cell.recurrent_dropout == 0 and not layer.unroll and layer.cell.use_bias
    gru = build_model(ModelConfig(cell="gru", units=4, embedding_dim=2), V).get_layer("rnn_0")
    assert gru.cell.reset_after


def test_pipelines_are_cudnn_eligible_except_the_cpu_char_lms_and_bad_settings_are_named():
    import tomllib

    from tfseq.config import PIPELINES_DIR, load_config
    from tfseq.models.factory import cudnn_warnings

    # charlm_best (and charlm_stateful, a stateful GRU with its dropout) are tuned for a 2-core CPU budget, where
    # recurrent dropout is worth 0.006-0.012 nats/char (bench/RESULTS.md); they leave cuDNN knowingly, one warning per
    # layer, and no other pipeline may.
    # charlm_stateful's GRU layers are FastGRU too (model.fast_gru), a second warning each; README's two overrides
    # put it back on cuDNN.
    cpu_only = {"charlm_best.toml": 2, "charlm_stateful.toml": 4}
    on_gpu = load_config("lm", "charlm_stateful", ["model.recurrent_dropout=0", "model.fast_gru=false"])
    assert cudnn_warnings(build_model(on_gpu.model, 50)) == []
    for path in sorted(PIPELINES_DIR.glob("*.toml")):
        cfg = load_config(tomllib.loads(path.read_text())["task"], str(path))
        warnings = cudnn_warnings(build_model(cfg.model, 50, num_classes=3))
        assert len(warnings) == cpu_only.get(path.name, 0), (path.name, warnings)
        assert all(": recurrent_dropout = " in warning or ": model.fast_gru = true (set it false on a GPU)" in warning
                   for warning in warnings), (path.name, warnings)
    slow = build_model(ModelConfig(cell="gru", units=4, embedding_dim=2, layers=2, recurrent_dropout=0.25,
                                   bidirectional=True, head="binary"), V)
    warnings = cudnn_warnings(slow)
    assert len(warnings) == 2 and "layer rnn_0 (GRU) is off the cuDNN path on a GPU: recurrent_dropout = 0.25 " \
                                  "(set model.recurrent_dropout = 0" in warnings[0]
