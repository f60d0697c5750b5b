"""Tagging tasks derived from raw text (punctuation restoration, truecasing): hand-checked golden tags, the sources
they read, and `python -m tfseq.data.make_tagging` run as a user runs it."""
import subprocess

import pytest

from conftest import IMDB_ARCHIVE, PYTHON, ROOT, write_imdb_folder
from tfseq.data.derive_tags import (PUNCTUATION_TAGS, derive, derive_source, initial_words, punctuation,
                                    read_documents, truecase)
from tfseq.data.tagged import Tagged, read_tagged
from tfseq.errors import UserError

TEXT = ("Mr. Smith said: 'Yes!' Was it well-known? I don't know -- maybe 1,000 people—or more... “Help!” cried "
        "McDonald; it’s over.\n\nNew paragraph, here")


def test_punctuation_golden():
    assert punctuation(TEXT) == Tagged(
        [["mr", "smith", "said", "yes", "was", "it", "well-known", "i", "don't", "know", "maybe", "1,000", "people",
          "or", "more", "help", "cried", "mcdonald", "it's", "over"], ["new", "paragraph", "here"]],
        [["PERIOD", "O", "COLON", "EXCLAMATION", "O", "O", "QUESTION", "O", "O", "DASH", "O", "O", "DASH", "O", "O",
          "EXCLAMATION", "O", "SEMICOLON", "O", "PERIOD"], ["O", "COMMA", "O"]])


def test_punctuation_takes_the_first_tagged_mark_and_passes_over_ellipses_quotes_and_brackets():
    tagged = punctuation("“Masons,--no, but chemists (sure)” Alone!... The end?! Well: it... it - is; 3.5/10")
    assert tagged.tokens == [["masons", "no", "but", "chemists", "sure", "alone", "the", "end", "well", "it", "it",
                              "is", "3.5", "10"]]
    assert tagged.tags == [["COMMA", "COMMA", "O", "O", "O", "EXCLAMATION", "O", "QUESTION", "COLON", "O", "DASH",
                            "SEMICOLON", "O", "O"]]


def test_punctuation_pieces_are_paragraphs_cut_at_random_lengths_not_at_sentence_ends():
    text = "one two three four five. " * 20 + "\r\n\r\n  \nShort paragraph."
    tagged = punctuation(text, words_per_piece=12)
    lengths = [len(piece) for piece in tagged.tokens]
    assert lengths[-1] == 2 and all(6 <= n <= 12 for n in lengths[:-2]) and sum(lengths[:-1]) == 100
    assert [w for piece in tagged.tokens[:-1] for w in piece] == "one two three four five".split() * 20
    assert {piece[-1] for piece in tagged.tags[:-1]} == {"O", "PERIOD"}  # a cut piece may end anywhere
    assert punctuation(text, words_per_piece=12) == tagged  # the cuts come from a fixed seed
    assert [len(piece) for piece in punctuation(text, words_per_piece=1).tokens] == [1] * 102
    with pytest.raises(UserError, match="words_per_piece = 0 must be at least 1"):
        punctuation(text, words_per_piece=0)


def test_truecase_golden_and_sentence_initial_words():
    tagged = truecase("Mr. Smith said: 'Yes!' I met McDonald in NYC... iPhone users ask why?\n\n“Help!” cried "
                      "Dr. Watson. A U.S. team won")
    assert tagged == Tagged(
        [["mr", ".", "smith", "said", ":", "'", "yes", "!", "'"],
         ["i", "met", "mcdonald", "in", "nyc", "...", "iphone", "users", "ask", "why", "?"],
         ["“", "help", "!", "”", "cried", "dr", ".", "watson", "."],
         ["a", "u", ".", "s", ".", "team", "won"]],
        [["Title", "lower", "Title", "lower", "lower", "lower", "Title", "lower", "lower"],
         ["Title", "lower", "mixed", "lower", "UPPER", "lower", "mixed", "lower", "lower", "lower", "lower"],
         ["lower", "Title", "lower", "lower", "lower", "Title", "lower", "Title", "lower"],
         ["Title", "Title", "lower", "Title", "lower", "lower", "lower"]])
    assert [flags.index(True) for flags in map(initial_words, tagged.tokens)] == [0, 0, 1, 0]
    assert initial_words(["...", "!", "42"]) == [False, False, False] and initial_words([]) == []


def test_derive_concatenates_documents_and_checks_the_kind():
    docs = ["Hello there. Bye!", "", "Yes, no"]
    assert derive("truecase", docs) == Tagged(truecase(docs[0]).tokens + truecase(docs[2]).tokens,
                                              truecase(docs[0]).tags + truecase(docs[2]).tags)
    assert derive("punctuate", docs, words_per_piece=2).tokens == [["hello", "there"], ["bye"], ["yes", "no"]]
    with pytest.raises(UserError, match="unknown tagging task 'ner'; choose one of punctuate, truecase"):
        derive("ner", docs)


def test_text_file_gutenberg_stripped_and_folder_documents(tmp_path):
    book = tmp_path / "book.txt"
    book.write_bytes("\ufeffHeader words\r\n*** START OF THE BOOK ***\r\nHello there, friend.\r\n\r\nEnd of the "
                     "Project Gutenberg EBook\r\n*** END OF THE BOOK ***\r\nlicence".encode())
    assert derive_source("punctuate", str(book)) == Tagged([["hello", "there", "friend"]], [["O", "COMMA", "PERIOD"]])
    folder = tmp_path / "docs"
    (folder / "sub").mkdir(parents=True)
    (folder / "b.txt").write_text("Second.")
    (folder / "sub" / "c.txt").write_text("Third.")
    (folder / "a.md").write_text("Not a document.")
    assert read_documents(str(folder)) == ["Second.", "Third."] == read_documents(str(folder), split="test")
    assert derive_source("truecase", str(folder), limit=1) == Tagged([["second", "."]], [["Title", "lower"]])


def test_imdb_reviews_by_split_with_breaks_made_paragraph_breaks(tmp_path, imdb_archive):
    write_imdb_folder(tmp_path)
    for source in (str(imdb_archive), str(tmp_path), str(tmp_path / "aclImdb")):
        assert read_documents(source, limit=2) == ["An awful, boring mess.\n\nTerrible. (train 0)",
                                                   "I hated it: dull and stupid (train 1)"]
    assert len(read_documents(str(imdb_archive))) == 24
    assert read_documents(str(imdb_archive), split="test", limit=1) == ["Dull and awful, a stupid zyzzyva (test 0)"]
    assert derive_source("punctuate", str(imdb_archive), limit=1).tokens == [
        ["an", "awful", "boring", "mess"], ["terrible", "train", "0"]]


def test_the_embedded_book_gives_every_punctuation_tag():
    tagged = derive_source("punctuate", "book", start_marker="THE MYSTERIOUS ISLAND")
    assert tagged.tokens[0] == ["the", "mysterious", "island"]
    assert set(tagged.tag_set()) == set(PUNCTUATION_TAGS) and tagged.token_count() > 190_000
    assert max(map(len, tagged.tokens)) <= 40


def test_source_errors(tmp_path):
    (tmp_path / "latin.txt").write_bytes("caf\xe9".encode("latin-1"))
    (tmp_path / "blank.txt").write_text(" ... \n\n !")
    (tmp_path / "empty").mkdir()
    for call, message in [
        (lambda: derive_source("punctuate", str(tmp_path / "nope.txt")), "nope.txt does not exist; give a text file, "
         "a folder of .txt files, the IMDb archive aclImdb_v1.tar.gz or an aclImdb/ folder, or 'book'"),
        (lambda: derive_source("punctuate", ""), "no source given; give a text file"),
        (lambda: derive_source("truecase", str(tmp_path), split="dev"), "split 'dev' is not one of train, test"),
        (lambda: derive_source("truecase", str(tmp_path), limit=-1), "limit = -1 must be 0"),
        (lambda: derive_source("punctuate", str(tmp_path), words_per_piece=0), "words_per_piece = 0 must be at least"),
        (lambda: derive_source("capitals", str(tmp_path)), "unknown tagging task 'capitals'"),
        (lambda: derive_source("truecase", str(tmp_path / "empty")), "empty holds no .txt files"),
        (lambda: derive_source("truecase", str(tmp_path / "latin.txt")), r"latin.txt is not UTF-8: byte 0xe9 at "
         r"offset 3 \(line 1\)"),
        (lambda: derive_source("punctuate", str(tmp_path / "blank.txt")), "blank.txt holds no words to tag"),
    ]:
        with pytest.raises(UserError, match=message):
            call()


def make_tagging(*args, timeout=300):
    return subprocess.run([PYTHON, "-m", "tfseq.data.make_tagging", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout)


def test_cli_help_explains_every_option():
    done = make_tagging("--help")
    assert done.returncode == 0, done.stderr
    for option in ("punctuate", "truecase", "SOURCE", "OUT", "--split", "--words-per-piece", "--limit", ".jsonl",
                   "'book'"):
        assert option in done.stdout


def test_cli_writes_conll_and_json_lines(tmp_path):
    text = tmp_path / "small.txt"
    text.write_text(TEXT, encoding="utf-8")
    done = make_tagging("punctuate", str(text), str(tmp_path / "out" / "p.conll"), "--words-per-piece", "8")
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # TensorFlow's start-up chatter is filtered
    assert done.stdout == (f"wrote {tmp_path / 'out' / 'p.conll'}: 4 sentences, 23 tokens; tags: O 13, DASH 2, "
                           "EXCLAMATION 2, PERIOD 2, COLON 1, COMMA 1, QUESTION 1, SEMICOLON 1\n")
    assert read_tagged(tmp_path / "out" / "p.conll") == punctuation(TEXT, words_per_piece=8)
    done = make_tagging("truecase", str(tmp_path), str(tmp_path / "t.jsonl"), "--limit", "1")
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"wrote {tmp_path / 't.jsonl'}: 5 sentences, 38 tokens; tags: lower 30, Title 7, mixed 1\n"
    assert read_tagged(tmp_path / "t.jsonl") == truecase(TEXT)


@pytest.mark.parametrize("args, message", [
    (("punctuate", "missing.txt", "out.conll"), "error: source missing.txt does not exist"),
    (("punctuate", "README.md", "README.md/out.conll"), "error: cannot write README.md/out.conll: README.md is a file"),
    (("punctuate", "README.md", "tests"), "error: tests is a folder; give the file to write"),
    (("truecase", "tests", "x.jsonl", "--words-per-piece", "5"), "error: --words-per-piece applies to punctuate only"),
    (("truecase", "tests", "x.jsonl", "--limit", "-1"), "error: --limit -1 must be 0 (all documents) or more"),
    (("truecase", "tests", "x.jsonl", "--split", "test"),
     "error: --split chooses IMDb's training or test reviews; tests is not"),
    (("capitals", "tests", "x.jsonl"), "argument kind: invalid choice: 'capitals'"),
])
def test_cli_errors_are_one_line_with_exit_code_2(args, message):
    done = make_tagging(*args)
    assert done.returncode == 2, done.stderr
    assert message in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr


@pytest.mark.skipif(not IMDB_ARCHIVE.exists(), reason=f"shared IMDb archive not found at {IMDB_ARCHIVE}")
def test_cli_on_the_imdb_test_reviews(tmp_path):
    done = make_tagging("truecase", str(IMDB_ARCHIVE), str(tmp_path / "imdb.conll"), "--split", "test",
                        "--limit", "20")
    assert done.returncode == 0, done.stderr
    tagged = read_tagged(tmp_path / "imdb.conll")
    assert len(tagged) > 20 and set(tagged.tag_set()) == {"lower", "Title", "UPPER", "mixed"}
    assert "<br" not in {token for sentence in tagged.tokens for token in sentence}
