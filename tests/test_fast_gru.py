import keras
import numpy as np
import pytest

from tfseq.config import ModelConfig
from tfseq.errors import UserError
from tfseq.models.factory import build_model, cell_kind, parameter_count
from tfseq.models.fast_gru import FastGRU, FastGRUCell

X = np.random.default_rng(0).normal(size=(4, 7, 5)).astype("float32")


def twins(recurrent_dropout=0.3, **kwargs):
    """A keras.layers.GRU and a FastGRU with the same weights (random biases, so that both halves count)."""
    gru = keras.layers.GRU(6, recurrent_dropout=recurrent_dropout, **kwargs)
    gru(X)
    kernel, recurrent_kernel, bias = gru.get_weights()
    bias = np.random.default_rng(1).normal(size=bias.shape).astype("float32")
    gru.set_weights([kernel, recurrent_kernel, bias])
    fast = FastGRU(FastGRUCell(6, recurrent_dropout=recurrent_dropout), **kwargs)
    fast(X)
    fast.set_weights([kernel, recurrent_kernel, bias])
    return gru, fast


@pytest.mark.parametrize("kwargs", [dict(return_sequences=True), dict(go_backwards=True),
                                    dict(return_sequences=True, recurrent_dropout=0.0)])
def test_fast_gru_computes_what_keras_gru_computes_with_its_weights(kwargs):
    gru, fast = twins(**kwargs)
    mask = np.arange(7)[None, :] < np.array([[7], [5], [3], [1]])  # right padding
    np.testing.assert_allclose(fast(X), gru(X), atol=1e-6)
    np.testing.assert_allclose(fast(X, mask=mask), gru(X, mask=mask), atol=1e-6)


def test_a_stateful_fast_gru_carries_its_state_as_keras_gru_does():
    gru, fast = twins(return_sequences=True, stateful=True)
    for layer in (gru, fast):
        layer.reset_state()
    for window in (X[:, :3], X[:, 3:]):
        np.testing.assert_allclose(fast(window), gru(window), atol=1e-6)


def test_recurrent_dropout_uses_one_mask_per_call_for_every_step_and_gate():
    keras.utils.set_random_seed(3)
    _, fast = twins(recurrent_dropout=0.5, return_sequences=True)
    cell = fast.cell
    kernel, recurrent_kernel, bias = (np.asarray(w) for w in fast.get_weights())
    # The mask the layer will draw: the cell's seed generator, copied before the call.
    generator = keras.random.SeedGenerator(0)
    generator.state.assign(cell.seed_generator.state.value)
    keep = np.asarray(keras.random.dropout(np.ones((4, 6), "float32"), 0.5, seed=generator))
    out = np.asarray(fast(X, training=True))
    h = np.zeros((4, 6), "float32")
    sigmoid = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    for t in range(7):
        x = X[:, t] @ kernel + bias[0]
        inner = (h * keep) @ recurrent_kernel + bias[1]
        z, r = sigmoid(x[:, :6] + inner[:, :6]), sigmoid(x[:, 6:12] + inner[:, 6:12])
        h = z * h + (1 - z) * np.tanh(x[:, 12:] + r * inner[:, 12:])
        np.testing.assert_allclose(out[:, t], h, atol=1e-5)
    assert 0 < (keep == 0).mean() < 1


def test_the_factory_builds_it_saves_it_and_counts_its_weights_as_a_gru(tmp_path):
    cfg = ModelConfig(cell="gru", fast_gru=True, units=6, layers=2, embedding_dim=4, recurrent_dropout=0.2)
    model = build_model(cfg, 11)
    assert [cell_kind(model.get_layer(f"rnn_{i}").cell) for i in range(2)] == ["gru", "gru"]
    assert isinstance(model.get_layer("rnn_1"), FastGRU)
    assert model.count_params() == parameter_count(cfg, 11)
    ids = np.random.default_rng(2).integers(0, 11, (3, 8)).astype("int32")
    model.save(tmp_path / "m.keras")
    np.testing.assert_allclose(keras.models.load_model(tmp_path / "m.keras")(ids), model(ids), atol=1e-6)
    # The weights are keras.layers.GRU's: the same config without fast_gru reads them and computes the same.
    plain = build_model(ModelConfig(cell="gru", units=6, layers=2, embedding_dim=4, recurrent_dropout=0.2), 11)
    plain.set_weights(model.get_weights())
    np.testing.assert_allclose(plain(ids), model(ids), atol=1e-5)


def test_fast_gru_needs_a_gru():
    with pytest.raises(UserError, match=r"model.fast_gru = true needs model.cell = \"gru\", not 'lstm'"):
        ModelConfig(cell="lstm", fast_gru=True).check()
    with pytest.raises(ValueError, match="neither input dropout"):
        FastGRUCell(4, dropout=0.1)


def test_a_bidirectional_fast_gru_classifier_ignores_right_padding():
    cfg = ModelConfig(cell="gru", fast_gru=True, units=5, embedding_dim=4, bidirectional=True, mask_zero=True,
                      recurrent_dropout=0.2, head="binary", pooling="mean")
    model = build_model(cfg, 11)
    assert isinstance(model.get_layer("rnn_0").backward_layer, FastGRU)
    ids = np.array([[3, 4, 5, 0, 0], [3, 4, 5, 6, 7]], np.int32)
    np.testing.assert_allclose(model(ids[:, :3])[0], model(ids)[0], atol=1e-6)
    assert model.count_params() == parameter_count(cfg, 11)


def test_a_run_is_not_resumed_with_the_other_fast_gru_setting():
    from tfseq.config import load_config
    from tfseq.runs import config_differences

    trained = load_config("lm", "charlm_stateful")
    other = load_config("lm", "charlm_stateful", ["model.fast_gru=false"])
    assert config_differences(trained, other) == ["model.fast_gru"]
