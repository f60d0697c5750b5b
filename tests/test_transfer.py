"""model.init_from: a classifier started from a word LM run (embedding rows by token, recurrent layers in order), and
the errors when the two do not fit."""
import json

import numpy as np
import pytest

from conftest import tiny_charlm_config, tiny_classify_config, train_killed_after_epoch
from tfseq import trainer
from tfseq.config import load_config
from tfseq.data.words import UNK
from tfseq.errors import UserError
from tfseq.models.factory import build_model, rnn_layers
from tfseq.models.transfer import init_from_run
from tfseq.runs import load_trained
from tfseq.tasks.classify import ClassifyTask

# The classifier's shape that fits wordlm_tiny (LSTM 32 over 16-dimensional embeddings).
FITS = ["data.tokenizer=words_lower", "model.cell=lstm", "model.units=32", "model.embedding_dim=16"]


@pytest.fixture(scope="module")
def word_lm(small_book, tmp_path_factory):
    cfg = load_config("lm", "wordlm_tiny", [f"data.path={small_book}", "train.epochs=1", "data.lowercase=true"])
    return trainer.train(cfg, str(tmp_path_factory.mktemp("lm") / "run")).path


def classifier(news_csv, lm, *overrides):
    cfg = tiny_classify_config(news_csv, *FITS, f"model.init_from={lm}", *overrides)
    task = ClassifyTask(cfg)
    return task, build_model(cfg.model, task.vocab.size, task.num_classes)


def test_shared_tokens_take_the_lms_rows_and_the_forward_layer_its_weights(news_csv, word_lm):
    task, model = classifier(news_csv, word_lm)
    fresh_backward = [w.copy() for w in rnn_layers(model)[0].backward_layer.get_weights()]
    line = init_from_run(model, task.vocab, str(word_lm))
    lm = load_trained(word_lm)
    lm_rows = lm.model.get_layer("embedding").get_weights()[0]
    rows = model.get_layer("embedding").get_weights()[0]
    index = {t: i for i, t in enumerate(lm.vocab.tokens)}
    shared = [t for t in task.vocab.tokens if t in index]
    missing = [t for t in task.vocab.tokens if t not in index]
    assert shared and missing  # the fixture has both kinds
    for i, token in enumerate(task.vocab.tokens, start=1):
        np.testing.assert_array_equal(rows[i], lm_rows[index.get(token, index[UNK])])
    np.testing.assert_array_equal(rows[task.vocab.oov_id], lm_rows[index[UNK]])
    layer = rnn_layers(model)[0]
    for mine, theirs in zip(layer.forward_layer.get_weights(), rnn_layers(lm.model)[0].get_weights()):
        np.testing.assert_array_equal(mine, theirs)
    for mine, fresh in zip(layer.backward_layer.get_weights(), fresh_backward):
        np.testing.assert_array_equal(mine, fresh)
    assert f"embedding rows of {len(shared):,} of {len(task.vocab.tokens):,} tokens" in line
    assert f"the LM has {len(lm.vocab.tokens):,}" in line and "tokenize as the LM did" not in line
    assert "1 recurrent layer (forward directions; the backward ones start fresh)" in line


def test_training_starts_from_the_lm_and_a_resume_does_not_copy_it_again(news_csv, word_lm, tmp_path, capsys,
                                                                          monkeypatch):
    cfg = tiny_classify_config(news_csv, *FITS, f"model.init_from={word_lm}", "train.epochs=2")
    straight = trainer.train(cfg, str(tmp_path / "straight"))
    assert "started from" in capsys.readouterr().out
    train_killed_after_epoch(cfg, str(tmp_path / "resumed"), 1, monkeypatch)
    capsys.readouterr()
    resumed = trainer.train(cfg, str(tmp_path / "resumed"))
    assert "started from" not in capsys.readouterr().out  # the checkpoint holds the weights now
    digest = lambda run: json.loads(run.metrics.read_text())["weights_sha256"]
    assert digest(resumed) == digest(straight)


@pytest.mark.parametrize("override, message", [
    ("model.embedding_dim=8", "its embedding has 16 dimensions, this model's 8; set model.embedding_dim = 16"),
    ("model.cell=gru", "its layer rnn_0 is LSTM 32, this model's GRU 32; set model.cell = 'lstm' and model.units = 32"),
    ("model.units=16", "its layer rnn_0 is LSTM 32, this model's LSTM 16"),
])
def test_a_model_that_does_not_fit_is_refused_with_the_setting_to_change(news_csv, word_lm, override, message):
    task, model = classifier(news_csv, word_lm, override)
    with pytest.raises(UserError, match=message.replace("(", r"\(").replace(")", r"\)")):
        init_from_run(model, task.vocab, str(word_lm))


def test_another_tokenizer_is_named_when_few_tokens_are_shared(news_csv, word_lm):
    task, model = classifier(news_csv, word_lm, "data.tokenizer=book")
    assert "tokenize as the LM did (data.tokenizer = 'words_lower', not 'book')" in init_from_run(
        model, task.vocab, str(word_lm))


def test_a_stacked_bidirectional_model_is_refused(small_book, news_csv, tmp_path):
    cfg = load_config("lm", "wordlm_tiny", [f"data.path={small_book}", "train.epochs=1", "model.layers=2",
                                            "train.steps_per_epoch=2"])
    lm = trainer.train(cfg, str(tmp_path / "lm2")).path
    task, model = classifier(news_csv, lm, "model.layers=2")
    with pytest.raises(UserError, match=r"layer rnn_1's weights are .* here \(a bidirectional layer below it doubles its input\)"):
        init_from_run(model, task.vocab, str(lm))


def test_a_char_lm_a_missing_folder_and_a_language_model_head_are_refused(small_book, news_csv, word_lm, tmp_path):
    char_lm = trainer.train(tiny_charlm_config(small_book, epochs=1, steps_per_epoch=2), str(tmp_path / "c")).path
    task, model = classifier(news_csv, word_lm)
    with pytest.raises(UserError, match="is a character language model; a classifier starts from a word language"):
        init_from_run(model, task.vocab, str(char_lm))
    with pytest.raises(UserError, match="no such run folder"):
        init_from_run(model, task.vocab, str(tmp_path / "nowhere"))
    with pytest.raises(UserError, match="model.init_from starts a classifier from a language model, not head"):
        load_config("lm", "wordlm_tiny", [f"model.init_from={word_lm}"])
