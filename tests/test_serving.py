"""Raw-string serving: scores that do not depend on the batch, input checks in the exported signatures, and an
export that deletes nothing it did not write."""
import json

import numpy as np
import pytest
import tensorflow as tf

from conftest import tiny_charlm_config
from tfseq import trainer
from tfseq.config import ModelConfig
from tfseq.data.encoder import TextEncoder
from tfseq.data.text import WordVocab
from tfseq.errors import UserError
from tfseq.models.factory import build_model
from tfseq.models.heads import get_head
from tfseq.serving import STRINGS, classifier_function, export_run

VOCAB = WordVocab("a good film bad dull great plot acting".split(), "lower")
SHORT = "good film"
LONG = "a dull film " * 30


def serve_fn(mask_zero: bool):
    import keras

    keras.utils.set_random_seed(3)
    cfg = ModelConfig(cell="lstm", units=8, embedding_dim=6, bidirectional=True, head="binary", mask_zero=mask_zero,
                      hidden_units=4)
    model = build_model(cfg, VOCAB.size)
    rng = np.random.default_rng(1)
    for w in model.weights:  # larger than the initialiser's, so that every step read moves the answer
        w.assign(rng.normal(0, 0.5, w.shape).astype("float32"))
    serve = tf.function(classifier_function(model, TextEncoder(VOCAB), get_head("binary"), ["bad", "good"],
                                            not mask_zero), input_signature=[STRINGS])
    return model, serve


@pytest.mark.parametrize("mask_zero", [False, True])
def test_a_text_is_scored_the_same_whatever_its_batch(mask_zero):
    model, serve = serve_fn(mask_zero)
    alone = serve(tf.constant([SHORT]))["probability"].numpy()[0]
    beside_long = serve(tf.constant([LONG, SHORT, ""]))["probability"].numpy()
    np.testing.assert_allclose(beside_long[1], alone, rtol=1e-5, atol=1e-6)
    if not mask_zero:
        # The test can fail: scored in one padded batch, the unmasked model reads the padding and answers otherwise.
        padded = TextEncoder(VOCAB).encode(tf.constant([LONG, SHORT]))[0].to_tensor(0)
        assert abs(float(model(padded)[1, 0]) - alone) > 1e-3


def test_serve_reports_known_tokens_and_answers_an_empty_batch():
    _, serve = serve_fn(mask_zero=True)
    out = serve(tf.constant(["good film, GREAT plot", "zzz qqq", "", "<br />"]))
    assert out["known_tokens"].numpy().tolist() == [4, 0, 0, 0]
    empty = serve(tf.zeros([0], tf.string))
    assert empty["probability"].shape == (0,) and empty["known_tokens"].shape == (0,)
    _, unmasked = serve_fn(mask_zero=False)
    assert unmasked(tf.zeros([0], tf.string))["probability"].shape == (0,)


@pytest.fixture(scope="module")
def charlm_run(small_book, tmp_path_factory):
    cfg = tiny_charlm_config(small_book, epochs=1, steps_per_epoch=2)
    return trainer.train(cfg, str(tmp_path_factory.mktemp("serving") / "run"))


def test_export_refuses_a_folder_it_did_not_write(charlm_run, tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("keep me")
    (other / "saved_model.pb").write_bytes(b"")
    with pytest.raises(UserError, match=r"--out .*other already holds 2 entries that tfseq did not write for this run "
                                        r"\(notes.txt, saved_model.pb\); choose another folder, or pass --force"):
        export_run(charlm_run.path, other)
    assert (other / "notes.txt").read_text() == "keep me"
    out = export_run(charlm_run.path, tmp_path / "export")
    export_run(charlm_run.path, out)  # re-exporting the same run replaces its own export without a word
    assert json.loads((out / "tfseq.json").read_text())["run"] == str(charlm_run.path.resolve())
    second_run = charlm_run.path.parent / "copy"
    import shutil

    shutil.copytree(charlm_run.path, second_run)
    with pytest.raises(UserError, match="already holds a SavedModel exported from another run"):
        export_run(second_run, out)
    export_run(second_run, out, force=True)
    assert json.loads((out / "tfseq.json").read_text())["run"] == str(second_run.resolve())
    (tmp_path / "a_file").write_text("x")
    with pytest.raises(UserError, match="is a file, not a folder"):
        export_run(charlm_run.path, tmp_path / "a_file")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file", "export", "other"]  # no staging left behind


def test_exported_generate_checks_its_inputs(charlm_run, tmp_path):
    loaded = tf.saved_model.load(str(export_run(charlm_run.path, tmp_path / "gen")))

    def call(prompts=("The",), length=5, temperature=1.0, top_k=0, top_p=1.0, seed=1):
        return loaded.generate(tf.constant(list(prompts), tf.string), tf.constant(length), tf.constant(temperature),
                               tf.constant(top_k), tf.constant(top_p), tf.constant(seed, tf.int64))

    assert call()["generated"].shape == (1,)
    for kwargs, message in [(dict(temperature=-1.0), "temperature must be >= 0"),
                            (dict(temperature=float("nan")), "temperature must be >= 0"),
                            (dict(top_k=-1), "top_k must be >= 0"),
                            (dict(top_p=0.0), "top_p must be in (0, 1]"), (dict(top_p=1.5), "top_p must be in (0, 1]"),
                            (dict(top_p=float("nan")), "top_p must be in (0, 1]"),
                            (dict(length=0), "length must be between 1 and"),
                            (dict(length=2**30), "length must be between 1 and"),
                            (dict(seed=-1), "seed is out of range")]:
        with pytest.raises(tf.errors.InvalidArgumentError, match=message.replace("(", r"\(").replace(")", r"\)")):
            call(**kwargs)
    empty = call(prompts=())
    assert empty["generated"].shape == (0,) and empty["text"].shape == (0,)
