import tarfile
import unicodedata

import numpy as np
import pandas as pd
import pytest

from conftest import IMDB_ARCHIVE, NEGATIVE, POSITIVE, TEST_ONLY_WORD, write_imdb_folder
from tfseq.tasks.sentiment import SentimentData
from tfseq.data import imdb
from tfseq.data.encoder import TextEncoder, build_vocab, encode_splits, tokenized_chunks
from tfseq.data.text import tokenize
from tfseq.errors import UserError

HARD_CASES = [
    "", "   ", "<br /><br />", "A moving, beautifully shot film.", "don't won't it's O'Neil's rock'n'roll",
    "café naïve façade Ünïcödé ÆØÅ straße İstanbul", "snake_case __init__ _lead trail_", "1,000,000 3.14 2nd 10/10",
    "emoji 😀😡 👍🏽 and ❤️ hearts", "tabs\tand\nnewlines\r\n", "中文 日本語 한국어 العربية עברית", "x²³ ½ Ⅻ ٣ ०१२",
    "e\u0301 combining a\u0308", "zero\u200bwidth", "«quotes» “curly” ‘single’", "hyphen-ated — dash – en",
]


def book_tokens(texts):
    import tensorflow as tf

    return [[t.decode("utf-8") for t in row] for row in tokenize(tf.constant(texts), "book").to_list()]


def test_book_tokenizer_gives_the_textbook_tokens_on_hard_cases():
    import tensorflow_datasets as tfds

    reference = tfds.deprecated.text.Tokenizer()
    assert book_tokens(HARD_CASES + POSITIVE + NEGATIVE) == [reference.tokenize(t)
                                                             for t in HARD_CASES + POSITIVE + NEGATIVE]


def test_book_tokenizer_agrees_with_python_re_on_every_code_point():
    import re

    points = [p for p in range(0x110000) if not 0xD800 <= p <= 0xDFFF]
    python_word = np.array([re.fullmatch(r"\w", chr(p)) is not None for p in points])
    # "a" + c + "b" is one token when c is a word character, else the two tokens "a" and "b".
    rows = tokenize(tf_strings([f"a{chr(p)}b" for p in points]), "book").row_lengths().numpy()
    assert set(rows.tolist()) == {1, 2}
    mismatch = np.flatnonzero(python_word != (rows == 1))
    assert mismatch.size == 0, [(hex(points[i]), unicodedata.category(chr(points[i]))) for i in mismatch[:10]]


def tf_strings(texts):
    import tensorflow as tf

    return tf.constant([t.encode("utf-8", "surrogatepass") for t in texts])


@pytest.mark.skipif(not IMDB_ARCHIVE.exists(), reason=f"shared IMDb archive not found at {IMDB_ARCHIVE}")
def test_book_tokenizer_on_real_reviews():
    import tensorflow_datasets as tfds

    source = imdb.read_source(str(IMDB_ARCHIVE))[0]
    reviews = source["train"].texts[::25] + source["test"].texts[::25]  # 2,000 real reviews
    reference = tfds.deprecated.text.Tokenizer()
    assert book_tokens(reviews) == [reference.tokenize(t) for t in reviews]


def test_lower_tokenizer_drops_html_breaks_and_case():
    import tensorflow as tf

    rows = tokenize(tf.constant(["Great<br />Film<br/>ÉCOLE", "It's"]), "lower").to_list()
    assert rows == [[b"great", b"film", "école".encode()], [b"it", b"s"]]


def test_archive_and_folder_give_the_same_reviews_without_unlabelled_ones(imdb_archive, tmp_path):
    from_archive = imdb.read_source(str(imdb_archive))[0]
    write_imdb_folder(tmp_path)
    from_folder = imdb.read_source(str(tmp_path / "aclImdb"))[0]
    for split in ("train", "test"):
        a, b = from_archive[split], from_folder[split]
        assert a.texts == b.texts and a.groups == b.groups and np.array_equal(a.labels, b.labels)
        assert len(a) == 24 and a.labels.sum() == 12
        assert not any("UNLABELLED" in t for t in a.texts)
    assert from_archive["train"].groups[:4] == ["tt0000000", "tt0000000", "tt0000000", "tt0000001"]


def test_bad_archives_are_named(tmp_path, imdb_archive):
    truncated = tmp_path / "truncated.tar.gz"
    truncated.write_bytes(imdb_archive.read_bytes()[: imdb_archive.stat().st_size * 2 // 3])
    with pytest.raises(UserError, match="truncated.tar.gz is not a readable .tar.gz archive or is truncated"):
        imdb.read_source(str(truncated))[0]
    other = tmp_path / "other.tar.gz"
    with tarfile.open(other, "w:gz") as tar:
        tar.add(__file__, arcname="x.py")
    with pytest.raises(UserError, match="holds no aclImdb/train/pos or /neg reviews"):
        imdb.read_source(str(other))[0]
    with pytest.raises(UserError, match="IMDb data .*nothing.tar.gz does not exist"):
        imdb.read_source(str(tmp_path / "nothing.tar.gz"))[0]
    with pytest.raises(UserError, match="no IMDb data given: pass --data"):
        imdb.read_source("")


def test_csv_sources(tmp_path):
    good = tmp_path / "movie_data.csv"
    pd.DataFrame({"review": ["good film", "bad film", "fine"], "sentiment": [1, 0, 1]}).to_csv(good, index=False)
    reviews = imdb.read_source(str(good))[0]["all"]
    assert reviews.texts == ["good film", "bad film", "fine"] and reviews.labels.tolist() == [1, 0, 1]
    words = tmp_path / "words.csv"
    pd.DataFrame({"review": ["a", "b"], "label": ["pos", "negative"]}).to_csv(words, index=False)
    assert imdb.read_source(str(words))[0]["all"].labels.tolist() == [1, 0]
    no_label = tmp_path / "no_label.csv"
    pd.DataFrame({"text": ["a"], "stars": [3]}).to_csv(no_label, index=False)
    with pytest.raises(UserError, match="needs a 'review' column and a 'sentiment' or 'label' column; it has: text, "
                                        "stars"):
        imdb.read_source(str(no_label))[0]
    bad_label = tmp_path / "bad_label.csv"
    pd.DataFrame({"review": ["a", "b"], "label": [1, 5]}).to_csv(bad_label, index=False)
    with pytest.raises(UserError, match="bad_label.csv line 3: label = .5.; labels must be 0/1 or pos/neg"):
        imdb.read_source(str(bad_label))[0]
    with pytest.raises(UserError, match="a CSV has no official train/test split"):
        imdb.make_splits(imdb.read_source(str(good))[0], SentimentData())


def test_official_split_carves_validation_by_movie(imdb_archive):
    cfg = SentimentData(path=str(imdb_archive), val_fraction=0.25)
    splits, note = imdb.make_splits(imdb.read_source(cfg.path)[0], cfg)
    assert not set(splits["train"].groups) & set(splits["val"].groups)
    assert len(splits["train"]) + len(splits["val"]) == 24 and len(splits["test"]) == 24
    assert "validation: all reviews of 1 of 4 training movies" == note
    # Each fixture movie has positive and negative reviews: all of them go to validation together.
    assert len(splits["val"]) == 6 and sorted(splits["val"].labels.tolist()) == [0, 0, 0, 1, 1, 1]
    again, _ = imdb.make_splits(imdb.read_source(cfg.path)[0], cfg)
    assert again["val"].names == splits["val"].names


def test_textbook_split_proportions_and_limit(imdb_archive):
    cfg = SentimentData(path=str(imdb_archive), split="textbook")
    splits, _ = imdb.make_splits(imdb.read_source(cfg.path)[0], cfg)
    assert [len(splits[s]) for s in ("test", "train", "val")] == [24, 19, 5]
    names = [n for s in splits.values() for n in s.names]
    assert len(names) == len(set(names)) == 48
    limited, _ = imdb.make_splits(imdb.read_source(cfg.path)[0], SentimentData(split="textbook", limit=10))
    assert len(limited["test"]) == 10 and limited["test"].labels.sum() in (4, 5, 6)


def test_vocabulary_and_ids_follow_the_textbook_encoder(imdb_archive):
    import tensorflow_datasets as tfds
    from collections import Counter

    train = imdb.read_source(str(imdb_archive))[0]["train"]
    chunks = list(tokenized_chunks(train.texts, "book"))
    vocab = build_vocab(chunks, "book")
    tokenizer = tfds.deprecated.text.Tokenizer()
    counts = Counter()
    for text in train.texts:
        counts.update(tokenizer.tokenize(text))
    encoder = tfds.deprecated.text.TokenTextEncoder(counts)
    assert vocab.tokens == encoder.tokens and vocab.size == encoder.vocab_size  # padding + tokens + one OOV id
    encoded = TextEncoder(vocab).encode_chunks(chunks, train.labels)
    for i, text in enumerate(train.texts):
        assert encoded.ids[encoded.splits[i]:encoded.splits[i + 1]].tolist() == encoder.encode(text)


def test_a_token_seen_only_in_test_stays_out_of_the_vocabulary(imdb_archive):
    cfg = SentimentData(path=str(imdb_archive), tokenizer="lower", val_fraction=0.25)
    splits, _ = imdb.make_splits(imdb.read_source(cfg.path)[0], cfg)
    assert any(TEST_ONLY_WORD in text for text in splits["test"].texts)
    vocab, encoded = encode_splits(splits, cfg)
    assert TEST_ONLY_WORD not in vocab.tokens and "great" in vocab.tokens
    test = encoded["test"]
    first = test.ids[test.splits[0]:test.splits[1]].tolist()  # "dull and awful a stupid zyzzyva test 0"
    assert first[5] == vocab.oov_id and vocab.oov_id not in first[:5]


def test_vocabulary_caps_and_oov():
    texts = ["b a a c", "c c c d", "e"]
    chunks = list(tokenized_chunks(texts, "book"))
    assert build_vocab(chunks, "book").tokens == ["b", "a", "c", "d", "e"]
    assert build_vocab(chunks, "book", min_count=2).tokens == ["a", "c"]
    assert build_vocab(chunks, "book", max_tokens=2).tokens == ["a", "c"]
    vocab = build_vocab(chunks, "book", max_tokens=1)  # ["c"]: id 1, OOV = 2
    encoded = TextEncoder(vocab).encode_chunks(chunks, np.zeros(3))
    assert encoded.ids.tolist() == [2, 2, 2, 1, 1, 1, 1, 2, 2] and vocab.oov_id == 2


def test_truncation_and_empty_reviews():
    texts = ["a b c d e", "", "f", "...", "a b"]
    chunks = list(tokenized_chunks(texts, "book"))
    vocab = build_vocab(chunks, "book")
    rows = lambda e: [e.ids[e.splits[i]:e.splits[i + 1]].tolist() for i in range(len(texts))]
    oov = vocab.oov_id
    assert rows(TextEncoder(vocab, 3, "last").encode_chunks(chunks, np.zeros(5))) == [[3, 4, 5], [oov], [6], [oov], [1, 2]]
    assert rows(TextEncoder(vocab, 3, "first").encode_chunks(chunks, np.zeros(5))) == [[1, 2, 3], [oov], [6], [oov], [1, 2]]


def test_tfds_source_with_mock_data():
    import tensorflow_datasets as tfds

    with tfds.testing.mock_data(num_examples=6):
        source = imdb.read_source("tfds")[0]
    assert len(source["train"]) == 6 and len(source["test"]) == 6 and source["train"].groups is None
    cfg = SentimentData(path="tfds", val_fraction=0.5)
    _, note = imdb.make_splits(source, cfg)
    assert "random carve" in note


def test_tfds_manual_route_with_a_repacked_archive_gives_a_clear_message(tmp_path, imdb_archive):
    # The real TFDS manual-download route: the file is found, its sha256 is checked and rejected.
    manual = tmp_path / "downloads" / "manual"
    manual.mkdir(parents=True)
    (manual / "aclImdb_v1.tar.gz").write_bytes(imdb_archive.read_bytes())
    with pytest.raises(UserError, match="TFDS rejected the IMDb archive: its checksum is not the one TFDS registered "
                                        ".*pass the archive itself instead: --data"):
        imdb.read_source("tfds", tfds_data_dir=str(tmp_path))[0]
