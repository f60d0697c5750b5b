import re

import pytest
import tensorflow as tf

from tfseq.data.words import EOD, PARAGRAPH, UNK, TokenVocab, detokenize, encode_documents, tokenize


def tokens_of(text, lowercase=False):
    return [t.decode() for t in tokenize(tf.constant([text]), lowercase)[0].numpy()]


def detok(tokens):
    return detokenize(tf.ragged.constant([tokens], dtype=tf.string)).numpy()[0].decode()


def test_words_punctuation_contractions_numbers_and_paragraphs_are_tokens():
    text = "Pencroft's gun--it didn't fire!\n\n  “Well,” said he, 2,000 feet (3.5 miles)...\nend"
    assert tokens_of(text) == ["Pencroft", "'s", "gun", "-", "-", "it", "didn", "'t", "fire", "!", PARAGRAPH,
                               "“", "Well", ",", "”", "said", "he", ",", "2,000", "feet", "(", "3.5", "miles", ")",
                               ".", ".", ".", "end"]
    assert tokens_of("Don’t SHOUT", lowercase=True) == ["don", "’t", "shout"]
    # Matches do not overlap; a second pass catches what the first consumed.
    assert tokens_of("rock'n'roll 1,000,000") == ["rock", "'n", "'roll", "1,000,000"]
    # The private-use marks the tokenizer works with cannot come from the text.
    assert tokens_of("a\ue000b \ue001c") == ["ab", "c"]


def test_detokenizer_joins_punctuation_and_pairs_quotes():
    assert detok(["He", "said", ",", '"', "it", "'s", "mine", "!", '"', "and", "left", "."]) == \
        'He said, "it\'s mine!" and left.'
    assert detok(['"', "a", '"', "b", '"', "c", "d", '"']) == '"a" b "c d"'
    assert detok(["(", "well", "-", "known", ")", "?", PARAGRAPH, "Next", ";", "then", ":"]) == \
        "(well-known)?\n\nNext; then:"


def test_the_embedded_book_round_trips_up_to_whitespace():
    from tfseq.data.gutenberg import EMBEDDED_BOOK, strip_gutenberg
    from tfseq.data.text import read_text

    text = strip_gutenberg(read_text(EMBEDDED_BOOK), "THE MYSTERIOUS ISLAND", "End of the Project Gutenberg")
    back = detokenize(tokenize(tf.constant([text]))).numpy()[0].decode()
    assert re.sub(r"\s+", "", back) == re.sub(r"\s+", "", text)
    assert back.count("\n\n") == len(re.findall(r"\n[ \t]*\n\s*", text))  # paragraphs kept
    # Spacing too: 99.99% of the book's whitespace-separated words come back exactly (compared as multisets).
    import collections

    words, returned = collections.Counter(text.split()), collections.Counter(back.split())
    assert sum((words & returned).values()) / sum(words.values()) > 0.9999


def test_vocabulary_counts_training_tokens_only_and_caps_with_unk():
    train = ["the cat sat on the mat .", "the dog ."]
    ids, vocab = encode_documents(train, None, lowercase=False, max_tokens=3)
    assert vocab.tokens == [UNK, EOD, "the", ".", "cat"]  # by count, ties in order of first appearance
    assert ids.tolist() == [2, 4, 0, 0, 2, 0, 3, 1, 2, 0, 3, 1]
    held, _ = encode_documents(["the zebra"], vocab, lowercase=False, separate=False)
    assert held.tolist() == [2, 0]  # a word only the held-out text has is <unk>
    _, rare = encode_documents(train, None, lowercase=False, min_count=2)
    assert rare.tokens == [UNK, EOD, "the", "."]


def test_vocabulary_round_trips_through_its_file(tmp_path):
    from tfseq.data.text import load_vocab, save_vocab
    from tfseq.errors import UserError

    vocab = TokenVocab([UNK, EOD, "a", PARAGRAPH, "\""], lowercase=True)
    save_vocab(vocab, tmp_path / "vocab.json")
    assert load_vocab(tmp_path / "vocab.json") == vocab
    (tmp_path / "bad.json").write_text('{"kind": "lm_words", "tokens": ["a"], "lowercase": false}')
    with pytest.raises(UserError, match="bad.json is corrupt: 'tokens' must be distinct strings starting with"):
        load_vocab(tmp_path / "bad.json")
