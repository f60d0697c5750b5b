"""One text encoder for training and serving: the ids the training pipeline gives a text are the ids an exported
model computes from the raw string, on texts chosen to break that promise."""
import numpy as np
import pytest
import tensorflow as tf

from tfseq.data.encoder import TextEncoder, build_vocab, tokenized_chunks

TRAINING = ["A good film, a GREAT plot.<br /><br />Bad acting", "dull dull film 😀 café", "中文 film ; good"]
HARD = [
    "",  # empty
    " \t\n\r\u3000 ",  # whitespace only
    "!?.,;:--()[]{}«»…",  # punctuation only
    "<br />",  # an HTML line break only
    "<br /><br /><BR/>",
    "good film " * 60_000 + "dull",  # 1.2 MB
    "😀😡👍🏽 ❤️ film 😀",  # emoji
    "中文 film عربي good עברית",  # mixed scripts
    "good " + "!" * 5000 + " ... " + " " * 300 + "film plot",  # the cut falls inside a long run of separators
    "film" + "-" * 100 + "plot" + "." * 100,
    "\x00 good \x00",
]


@pytest.mark.parametrize("tokenizer", ["book", "lower"])
@pytest.mark.parametrize("max_length, truncate", [(0, "last"), (2, "last"), (3, "first"), (1, "first")])
def test_training_ids_equal_serving_ids_on_hard_texts(tokenizer, max_length, truncate):
    vocab = build_vocab(tokenized_chunks(TRAINING, tokenizer), tokenizer)
    encoder = TextEncoder(vocab, max_length, truncate)
    trained = encoder.encode_chunks(tokenized_chunks(HARD, tokenizer), np.zeros(len(HARD), np.int32))
    served, known = encoder.encode(tf.constant(HARD))
    training_rows = [trained.ids[a:b].tolist() for a, b in zip(trained.splits[:-1], trained.splits[1:])]
    assert served.to_list() == training_rows
    assert all(len(row) >= 1 for row in training_rows)  # an empty text is one OOV id, never an empty row
    assert training_rows[0] == [vocab.oov_id] and known.numpy()[0] == 0
    if max_length:
        assert max(len(row) for row in training_rows) <= max_length


def test_truncation_keeps_the_last_or_the_first_tokens_and_counts_known_ones():
    vocab = build_vocab(tokenized_chunks(["a b c"], "book"), "book")  # a=1, b=2, c=3, OOV=4
    ids, known = TextEncoder(vocab, 2, "last").encode(tf.constant(["a b c zz", "zz", "...", "b"]))
    assert ids.to_list() == [[3, 4], [4], [4], [2]] and known.numpy().tolist() == [1, 0, 0, 1]
    ids, _ = TextEncoder(vocab, 2, "first").encode(tf.constant(["a b c zz"]))
    assert ids.to_list() == [[1, 2]]
