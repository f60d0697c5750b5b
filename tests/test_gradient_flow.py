"""Gradient flow over time steps: the measured norms against NumPy, fading and exploding SimpleRNNs, LSTM vs
SimpleRNN, the alignment of padded texts, and diagnose_gradients on a config and a run."""
import json

import numpy as np
import pytest

from conftest import tiny_charlm_config
from tfseq.config import ModelConfig
from tfseq.errors import UserError

VOCAB = 11


def lm_loss():
    import keras

    return keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def simple_rnn(gain: float, units: int = 16, embedding_scale: float = 1.0, seed: int = 0):
    """A SimpleRNN language model whose recurrent matrix is `gain` times an orthogonal matrix (all its singular
    values equal `gain`), and whose embedding is multiplied by embedding_scale."""
    import keras

    from tfseq.models.factory import build_model

    keras.utils.set_random_seed(seed)
    model = build_model(ModelConfig(cell="simplernn", units=units, embedding_dim=8), VOCAB)
    q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(units, units)))
    model.get_layer("rnn_0").cell.recurrent_kernel.assign((gain * q).astype("float32"))
    embedding = model.get_layer("embedding").embeddings
    embedding.assign(embedding * embedding_scale)
    return model


def batch(texts=4, steps=60, seed=1):
    rng = np.random.default_rng(seed)
    return (rng.integers(0, VOCAB, (texts, steps)).astype("int32"),
            rng.integers(0, VOCAB, (texts, steps)).astype("int32"))


def relative(model, ids, targets, per_step=True, mask_zero=False, loss=None):
    from tfseq.models.gradient_flow import input_gradient_norms

    norms, texts = input_gradient_norms(model, ids, targets, loss or lm_loss(), per_step, mask_zero)
    return norms / norms[0], texts


def test_a_small_recurrent_matrix_fades_the_gradient_below_a_thousandth_in_50_steps():
    ids, targets = batch()
    ratio, texts = relative(simple_rnn(0.5), ids, targets)
    assert len(ratio) == 60 and (texts == 4).all()
    assert ratio[50] < 1e-3
    assert (np.diff(ratio[1:51]) < 0).all()  # fading step after step: each step multiplies by 0.5 * tanh' or less


def test_a_large_recurrent_matrix_makes_it_grow_as_numpy_computes_it():
    import keras

    # Inputs near zero: tanh stays linear, so d loss / d input(T-1-k) = g (R^T)^k K^T with g = d loss / d h_T.
    ids, targets = batch(steps=16)
    model = simple_rnn(3.0, embedding_scale=1e-10)
    ratio, _ = relative(model, ids, targets)
    cell, dense = model.get_layer("rnn_0").cell, model.get_layer("logits")
    kernel, recurrent = (keras.ops.convert_to_numpy(w).astype(np.float64) for w in (cell.kernel, cell.recurrent_kernel))
    w_out = keras.ops.convert_to_numpy(dense.kernel).astype(np.float64)
    logits = keras.ops.convert_to_numpy(model(ids)).astype(np.float64)[:, -1]
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    norms = np.zeros(16)
    for b in range(len(ids)):
        g = (p[b] - np.eye(VOCAB)[targets[b, -1]]) @ w_out.T
        for k in range(16):
            norms[k] += np.linalg.norm(g @ kernel.T)
            g = g @ recurrent.T
    np.testing.assert_allclose(ratio, norms / norms[0], rtol=1e-3)
    assert ratio[15] > 1e5 and (np.diff(ratio) > 0).all()  # about 3 ** k


def test_an_lstm_keeps_more_of_the_gradient_than_a_simplernn_once_the_simplernn_saturates():
    import keras

    from tfseq.models.factory import build_model

    # Inputs of unit size, as a trained embedding's are: the SimpleRNN's tanh saturates and every step multiplies
    # its gradient by tanh' < 1; the LSTM's cell state carries it through the forget gate instead.
    ids, targets = batch(texts=8)
    table = np.random.default_rng(0).normal(size=(VOCAB, 8)).astype("float32")
    kept = {}
    for cell in ("simplernn", "lstm"):
        keras.utils.set_random_seed(1)
        model = build_model(ModelConfig(cell=cell, units=16, embedding_dim=8), VOCAB)
        model.get_layer("embedding").embeddings.assign(table)
        kept[cell] = relative(model, ids, targets)[0]
    assert kept["lstm"][50] > 10 * kept["simplernn"][50], kept


def test_at_keras_initialisation_a_simplernn_is_near_linear_and_keeps_more_than_an_lstm():
    import keras

    from tfseq.models.factory import build_model

    # Keras' small embeddings and orthogonal recurrent matrix: tanh' ~ 1 and singular values 1, so the SimpleRNN's
    # gradient hardly fades, while the LSTM's forget gate starts near sigmoid(1) = 0.73 per step. The comparison
    # the lessons make (an LSTM keeps more) appears with training (see the compare test below).
    ids, targets = batch(texts=8)
    kept = {}
    for cell in ("simplernn", "lstm"):
        keras.utils.set_random_seed(1)
        kept[cell] = relative(build_model(ModelConfig(cell=cell, units=16, embedding_dim=8), VOCAB), ids, targets)[0]
    assert kept["simplernn"][50] > 0.1 and kept["lstm"][50] < 1e-2


def test_padded_texts_are_aligned_at_their_own_last_token():
    import keras

    from tfseq.models.factory import build_model

    keras.utils.set_random_seed(0)
    model = build_model(ModelConfig(cell="gru", units=8, embedding_dim=4, mask_zero=True, head="binary"), VOCAB)
    ids = np.array([[3, 4, 5, 6, 7, 8], [5, 6, 7, 0, 0, 0], [9, 0, 0, 0, 0, 0]], np.int32)
    from tfseq.models.gradient_flow import input_gradient_norms

    loss = keras.losses.BinaryCrossentropy()
    norms, texts = input_gradient_norms(model, ids, np.array([1, 0, 1]), loss, per_step=False, mask_zero=True)
    assert texts.tolist() == [3, 2, 2, 1, 1, 1]
    # Each text alone, unpadded, gives the same norms at the same distance from its end.
    alone = [input_gradient_norms(model, row[None, :n], np.array([y]), loss, False, True)[0]
             for row, n, y in zip(ids, (6, 3, 1), (1, 0, 1))]
    expected = [np.mean([a[k] for a in alone if len(a) > k]) for k in range(6)]
    np.testing.assert_allclose(norms, expected, rtol=1e-5)


def test_diagnose_a_config_compares_the_three_cells_at_initialisation_and_after_training(small_book, tmp_path):
    from tfseq.models.gradient_flow import diagnose_gradients

    report = diagnose_gradients(config="charlm_tiny", overrides=[f"data.path={small_book}", "data.start_marker=",
                                                                  "data.seq_len=40"],
                                compare=True, out=str(tmp_path / "out"), steps=20)
    labels = [c.label for c in report.curves]
    assert labels == ["SimpleRNN: at initialisation", "SimpleRNN: after 20 steps", "LSTM: at initialisation",
                      "LSTM: after 20 steps", "GRU: at initialisation", "GRU: after 20 steps"]
    data = json.loads(report.data.read_text())
    assert data["batch"] == {"texts": 16, "steps": 40} and report.plot.stat().st_size > 10_000
    curves = {c["label"]: c for c in data["curves"]}
    assert curves["LSTM: after 20 steps"]["relative"][25] > 100 * curves["SimpleRNN: after 20 steps"]["relative"][25]
    table = report.table().splitlines()
    assert table[1].split() == ["model", "k=10", "k=25"] and table[3].startswith("SimpleRNN: after 20 steps")


def test_diagnose_a_run_measures_its_trained_weights_and_refuses_a_model_override(small_book, tmp_path):
    from tfseq import trainer
    from tfseq.models.gradient_flow import diagnose_gradients

    cfg = tiny_charlm_config(small_book, epochs=1, steps_per_epoch=3, learning_rate=0.05)
    run = trainer.train(cfg, str(tmp_path / "run"))
    report = diagnose_gradients(str(run.path))
    assert [c.label for c in report.curves] == ["this run (LSTM): trained, 1 epoch", "this run (LSTM): at initialisation"]
    assert report.plot == run.path / "diagnostics" / "gradient_flow.png" and report.plot.is_file()
    trained, initial = report.curves
    assert not np.allclose(trained.norms, initial.norms)
    with pytest.raises(UserError, match=r"--set model.units=8: a run's model is fixed by its weights"):
        diagnose_gradients(str(run.path), overrides=["model.units=8"])
    small_book_copy = tmp_path / "moved.txt"
    small_book_copy.write_text("other text entirely " * 500)
    with pytest.raises(UserError, match=r"was trained on other data: .*moved.txt gives another vocabulary"):
        diagnose_gradients(str(run.path), overrides=[f"data.path={small_book_copy}"])
    with pytest.raises(UserError, match=r"data.path .*gone.txt \(the training data of .*run\) does not exist: the "
                                        r"diagnosis reads a batch of it; restore it, or point --set data.path= at"):
        diagnose_gradients(str(run.path), overrides=[f"data.path={tmp_path / 'gone.txt'}"])


def test_diagnose_a_classifier_aligns_its_texts_and_notes_what_else_carries_the_gradient(news_csv, tmp_path):
    from tfseq.models.gradient_flow import diagnose_gradients

    train, test = news_csv
    report = diagnose_gradients(config="classify_tiny", out=str(tmp_path), overrides=[
        f"data.path={train}", f"data.test_path={test}", "data.text_column=headline", "data.label_column=topic"])
    (curve,) = report.curves
    assert curve.label == "classify_tiny (GRU): at initialisation" and curve.relative[0] == 1.0
    # Headlines of 6-7 words in a batch padded to 16 steps: k counts back from each text's own last word.
    assert report.batch_steps == 16 and len(curve.texts) in (6, 7) and curve.texts[5] == report.batch_texts
    assert [note.split(":")[0] for note in report.notes] == ["bidirectional", "pooling = max_mean"]
    assert json.loads(report.data.read_text())["notes"] == report.notes
