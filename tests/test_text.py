import numpy as np
import pytest

from tfseq.data.text import CharVocab, load_vocab, read_text, save_vocab
from tfseq.errors import UserError


def test_read_text_drops_bom_and_normalises_line_endings(tmp_path):
    path = tmp_path / "t.txt"
    path.write_bytes("\ufeffone\r\ntwo\rthree\n".encode("utf-8"))
    assert read_text(path) == "one\ntwo\nthree\n"


def test_read_text_errors_name_the_file_and_byte(tmp_path):
    with pytest.raises(UserError, match=r"text file .*missing.txt does not exist"):
        read_text(tmp_path / "missing.txt")
    latin = tmp_path / "latin1.txt"
    latin.write_bytes("caf\xe9 au lait".encode("latin-1"))
    with pytest.raises(UserError, match=r"latin1.txt is not UTF-8 text: byte 0xe9 at offset 3 .*encoding_errors=replace"):
        read_text(latin)
    assert read_text(latin, errors="replace") == "caf\ufffd au lait"
    empty = tmp_path / "empty.txt"
    empty.write_text(" \n\n")
    with pytest.raises(UserError, match="empty.txt is empty"):
        read_text(empty)
    with pytest.raises(UserError, match="is a folder"):
        read_text(tmp_path)


def test_char_vocab_is_sorted_and_round_trips_newlines_and_quotes(tmp_path):
    text = 'He said "hi"\nand left.\r\t\'ok\'\\ é'
    vocab = CharVocab.from_text(text)
    assert vocab.chars == sorted(set(text))
    ids = vocab.encode(text)
    assert ids.dtype == np.int32 and vocab.decode(ids) == text
    save_vocab(vocab, tmp_path / "vocab.json")
    again = load_vocab(tmp_path / "vocab.json")
    assert again == vocab and again.decode(ids) == text


def test_unknown_characters_are_named():
    vocab = CharVocab.from_text("abc")
    with pytest.raises(UserError, match=r"2 character\(s\) not in the model's vocabulary: 'x', 'é'"):
        vocab.encode("abxé")


def test_corrupt_vocab_files(tmp_path):
    bad = tmp_path / "vocab.json"
    bad.write_text('{"kind": "chars", "chars": ["ab"]}')
    with pytest.raises(UserError, match="'chars' must be a sorted list of distinct single characters"):
        load_vocab(bad)
    bad.write_text('{"kind": "chars", "chars": ["b", "a"]}')
    with pytest.raises(UserError, match="must be a sorted list of distinct single characters"):
        load_vocab(bad)
    bad.write_text('{"kind": "words", "tokenizer": "book", "tokens": ["a", "b", "a"]}')
    with pytest.raises(UserError, match="'tokens' must be a list of distinct strings"):
        load_vocab(bad)
    bad.write_text('{"kind": "chars", ')
    with pytest.raises(UserError, match="vocabulary .*vocab.json is corrupt"):
        load_vocab(bad)
    with pytest.raises(UserError, match="is missing"):
        load_vocab(tmp_path / "none.json")


def test_the_words_tokenizers_cut_a_review_as_the_word_lm_reads_imdb():
    from tfseq.data import corpus, words
    from tfseq.data.text import tokenize

    review = "I didn't like it.<br /><br />It's BAD, said Pencroft's dog!<br />No."
    tokens = [t.decode() for t in tokenize([review], "words_lower").to_list()[0]]
    assert tokens == ["i", "didn", "'t", "like", "it", ".", "\n\n", "it", "'s", "bad", ",", "said", "pencroft", "'s",
                      "dog", "!", "no", "."]
    # The LM's IMDb corpus turns each HTML break into a newline before tokenizing: the same tokens.
    assert [t.decode() for t in words.tokenize([corpus._BREAK.sub("\n", review)], True).to_list()[0]] == tokens
    assert tokenize([review], "words").to_list()[0][:1] == [b"I"]
