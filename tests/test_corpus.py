"""Language-model corpora: every source kind, the held-out split, IMDb without its test reviews, the errors."""
import json
import tarfile

import pytest

from tfseq.data import imdb
from tfseq.data.corpus import read_corpus
from tfseq.data.gutenberg import EMBEDDED_BOOK, strip_gutenberg
from tfseq.data.text import read_text
from tfseq.errors import UserError

SENTINEL = "TEST-REVIEW-SENTINEL"


def write_docs(folder, n, prefix="document"):
    """n small documents doc00.txt .. in `folder`; returns their texts in path order."""
    folder.mkdir(parents=True, exist_ok=True)
    texts = [f"{prefix} {i}: some words {i * 7}\n" for i in range(n)]
    for i, text in enumerate(texts):
        (folder / f"doc{i:02d}.txt").write_text(text, encoding="utf-8")
    return texts


def write_acl_imdb(root, n_unsup=20):
    """A minimal aclImdb/ tree: 2 training reviews, n_unsup unlabelled ones, 1 test review holding the sentinel."""
    base = root / "aclImdb"
    reviews = {"train/pos/0_9.txt": "Great film.<br /><br />Loved it.", "train/neg/1_2.txt": "Awful.<br/>Dull<br>.",
               "test/pos/0_10.txt": f"{SENTINEL} must never be read"}
    reviews.update({f"train/unsup/{i}_0.txt": f"unlabelled review {i}<br />end" for i in range(n_unsup)})
    for name, text in reviews.items():
        (base / name).parent.mkdir(parents=True, exist_ok=True)
        (base / name).write_text(text, encoding="utf-8")
    return base


def write_archive(root, **kwargs):
    base = write_acl_imdb(root / "src", **kwargs)
    archive = root / "aclImdb_v1.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(base, arcname="aclImdb")
    return archive


# ---------------------------------------------------------------------------------------------- one document


def test_embedded_book_is_one_document_cut_at_the_last_tenth():
    corpus = read_corpus("", start_marker="THE MYSTERIOUS ISLAND")
    text = strip_gutenberg(read_text(EMBEDDED_BOOK), "THE MYSTERIOUS ISLAND")
    cut = int(len(text) * 0.9)
    assert corpus.train == [text[:cut]] and corpus.held_out == [text[cut:]]
    assert corpus.kind == "text" and corpus.source == str(EMBEDDED_BOOK)


def test_text_file_is_stripped_and_cut_at_a_character_position(small_book):
    corpus = read_corpus(str(small_book), val_fraction=0.25)
    text = strip_gutenberg(read_text(small_book))
    cut = int(len(text) * 0.75)
    assert corpus.train == [text[:cut]] and corpus.held_out == [text[cut:]]
    assert "START OF" not in text and "licence" not in text and "\r" not in text
    assert corpus.kind == "text" and corpus.source == str(small_book)


def test_a_plain_text_file_is_kept_whole_and_max_documents_does_not_cut_it(tmp_path):
    path = tmp_path / "notes.md"
    path.write_text("\ufeff" + "abcdefghij\r\n" * 10, encoding="utf-8")
    corpus = read_corpus(str(path), val_fraction=0.1, max_documents=1)
    assert corpus.train[0] + corpus.held_out[0] == "abcdefghij\n" * 10
    assert len(corpus.held_out[0]) == 110 - int(110 * 0.9)


# ------------------------------------------------------------------------------------------ several documents


def test_folder_documents_are_whole_disjoint_ordered_and_reproducible(tmp_path):
    texts = write_docs(tmp_path / "docs", 8)
    below = write_docs(tmp_path / "docs" / "sub", 2, "below")  # read too, after docs/doc07.txt in path order
    (tmp_path / "docs" / "empty.txt").write_text("")  # skipped
    (tmp_path / "docs" / "blank.txt").write_text(" \n")  # skipped
    (tmp_path / "docs" / "notes.md").write_text("not a .txt file")
    (tmp_path / "docs" / "crlf.txt").write_bytes(b"\xef\xbb\xbfwindows\r\nline\r\n")
    everything = ["windows\nline\n"] + texts + below
    corpus = read_corpus(str(tmp_path / "docs"), val_fraction=0.25, split_seed=3)
    assert corpus.kind == "folder" and len(corpus.held_out) == round(11 * 0.25)
    assert sorted(corpus.train + corpus.held_out) == sorted(everything)
    # Original order in both parts: each part is a subsequence of the documents in path order.
    assert corpus.held_out == [d for d in everything if d in corpus.held_out]
    assert corpus.train == [d for d in everything if d not in corpus.held_out]
    assert corpus == read_corpus(str(tmp_path / "docs"), val_fraction=0.25, split_seed=3)
    other = {tuple(read_corpus(str(tmp_path / "docs"), val_fraction=0.25, split_seed=s).held_out) for s in range(6)}
    assert len(other) > 1  # the seed draws the held-out documents


def test_folder_holds_out_at_least_one_document_and_max_documents_keeps_the_first(tmp_path):
    texts = write_docs(tmp_path / "docs", 6)
    corpus = read_corpus(str(tmp_path / "docs"), val_fraction=0.01, max_documents=3)
    assert len(corpus.held_out) == 1 and len(corpus.train) == 2
    assert sorted(corpus.train + corpus.held_out) == sorted(texts[:3])


def test_tables_give_one_document_per_non_empty_row(tmp_path):
    csv = tmp_path / "t.csv"
    csv.write_bytes(b"\xef\xbb\xbfid,body\n1,\"first\r\nrow, quoted\"\n2,\n3,third\n4,fourth\n")
    corpus = read_corpus(str(csv), text_column="body", val_fraction=0.3, split_seed=1)
    assert corpus.kind == "table" and len(corpus.held_out) == 1
    assert sorted(corpus.train + corpus.held_out) == sorted(["first\nrow, quoted", "third", "fourth"])
    tsv = tmp_path / "t.tsv"
    tsv.write_text("text\tn\nalpha\t1\nbeta\t2\n", encoding="utf-8")
    corpus = read_corpus(str(tsv))
    assert (corpus.train, corpus.held_out) in [(["alpha"], ["beta"]), (["beta"], ["alpha"])]
    jsonl = tmp_path / "t.jsonl"
    jsonl.write_text("\n".join(json.dumps({"text": t}) for t in ["un", "deux", None, "trois"]) + "\n")
    corpus = read_corpus(str(jsonl), val_fraction=0.5, split_seed=0)
    assert sorted(corpus.train + corpus.held_out) == ["deux", "trois", "un"]
    assert corpus == read_corpus(str(jsonl), val_fraction=0.5, split_seed=0)


# ----------------------------------------------------------------------------------------------------- IMDb


@pytest.mark.parametrize("form", ["archive", "folder", "parent folder"])
def test_imdb_reads_training_and_unlabelled_reviews_never_the_test_ones(tmp_path, form):
    if form == "archive":
        path = write_archive(tmp_path)
    else:
        base = write_acl_imdb(tmp_path)
        path = base if form == "folder" else tmp_path
    corpus = read_corpus(str(path), val_fraction=0.25, split_seed=5)
    assert corpus.kind == "imdb" and corpus.source == str(path)
    everything = corpus.train + corpus.held_out
    assert len(everything) == 22 and not any(SENTINEL in doc for doc in everything)
    assert not any("<br" in doc for doc in everything)
    # The training reviews come first (train/neg before train/pos), and are never held out.
    assert corpus.train[:2] == ["Awful.\nDull\n.", "Great film.\n\nLoved it."]
    assert len(corpus.held_out) == 5 and all(doc.startswith("unlabelled review ") for doc in corpus.held_out)
    assert all(doc.endswith("\nend") for doc in corpus.held_out)
    numbers = [int(doc.split()[2]) for doc in corpus.held_out]
    assert numbers == sorted(numbers) and set(corpus.held_out).isdisjoint(corpus.train)
    assert corpus == read_corpus(str(path), val_fraction=0.25, split_seed=5)


def test_imdb_archive_and_folder_give_the_same_corpus(tmp_path):
    archive = write_archive(tmp_path)
    assert read_corpus(str(archive), split_seed=2).held_out == read_corpus(str(tmp_path / "src"), split_seed=2).held_out
    train, unlabelled = imdb.read_unlabelled_and_train(archive)
    assert train == ["Awful.<br/>Dull<br>.", "Great film.<br /><br />Loved it."]
    assert unlabelled == [f"unlabelled review {i}<br />end" for i in range(20)]  # by number: 2 before 10


def test_imdb_max_documents_keeps_the_proportion_of_training_and_unlabelled_reviews(tmp_path):
    archive = write_archive(tmp_path, n_unsup=4)
    corpus = read_corpus(str(archive), max_documents=3, val_fraction=0.1)
    # 3 documents, 2 training : 4 unlabelled -> 1 training review and 2 unlabelled ones, 1 of them held out.
    assert len(corpus.train) == 2 and len(corpus.held_out) == 1
    assert corpus.train[0] == "Awful.\nDull\n."


# --------------------------------------------------------------------------------------------------- errors


def test_errors_name_the_path_and_what_to_do(tmp_path):
    with pytest.raises(UserError, match="corpus .*nothing.txt does not exist; give a text file, a folder"):
        read_corpus(str(tmp_path / "nothing.txt"))
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "blank.txt").write_text("")
    with pytest.raises(UserError, match="empty holds no non-empty .txt files; put each document in it"):
        read_corpus(str(tmp_path / "empty"))
    write_docs(tmp_path / "one", 1)
    with pytest.raises(UserError, match="one holds 1 document: a held-out document needs at least 2; give a single"):
        read_corpus(str(tmp_path / "one"))
    write_docs(tmp_path / "two", 2)
    with pytest.raises(UserError, match="two holds 1 document once data.max_documents = 1 applies"):
        read_corpus(str(tmp_path / "two"), max_documents=1)
    with pytest.raises(UserError, match="data.val_fraction = 0.8 holds out all 2 documents of .*two, leaving none"):
        read_corpus(str(tmp_path / "two"), val_fraction=0.8)
    with pytest.raises(UserError, match="data.val_fraction = 0 leaves the training or the held-out part of .*two "
                                        "empty; give a fraction between 0 and 1"):
        read_corpus(str(tmp_path / "two"), val_fraction=0)
    short = tmp_path / "short.txt"
    short.write_text("a")
    with pytest.raises(UserError, match="short.txt holds 1 characters after stripping: data.val_fraction = 0.1 "
                                        "leaves its training or held-out part empty"):
        read_corpus(str(short))
    bad = tmp_path / "bad" / "latin1.txt"
    bad.parent.mkdir()
    bad.write_bytes("café".encode("latin-1"))
    (tmp_path / "bad" / "ok.txt").write_text("fine")
    with pytest.raises(UserError, match="latin1.txt is not UTF-8 text: byte 0xe9 at offset 3"):
        read_corpus(str(bad.parent))
    corpus = read_corpus(str(bad.parent), encoding_errors="replace", val_fraction=0.5)
    assert sorted(corpus.train + corpus.held_out) == ["caf\ufffd", "fine"]


def test_table_errors(tmp_path):
    header_only = tmp_path / "header.csv"
    header_only.write_text("text,label\n")
    with pytest.raises(UserError, match="header.csv has no data rows; it needs a header and at least one row"):
        read_corpus(str(header_only))
    columns = tmp_path / "columns.csv"
    columns.write_text("title,body\na,b\nc,d\n")
    with pytest.raises(UserError, match="columns.csv has no column 'text'; its columns are: title, body; set "
                                        "data.text_column"):
        read_corpus(str(columns))
    with pytest.raises(UserError, match="columns.csv has no column 'Body'"):
        read_corpus(str(columns), text_column="Body")
    blank = tmp_path / "blank.jsonl"
    blank.write_text('{"text": ""}\n{"text": "  "}\n')
    with pytest.raises(UserError, match="blank.jsonl: column 'text' is empty in every row"):
        read_corpus(str(blank))
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    with pytest.raises(UserError, match="empty.jsonl has no records"):
        read_corpus(str(empty))


def test_imdb_errors(tmp_path):
    other = tmp_path / "other.tar.gz"
    with tarfile.open(other, "w:gz") as tar:
        tar.add(__file__, arcname="x.py")
    with pytest.raises(UserError, match="other.tar.gz holds no aclImdb/train/pos or /neg reviews"):
        read_corpus(str(other))
    archive = write_archive(tmp_path)
    truncated = tmp_path / "truncated.tgz"
    truncated.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    with pytest.raises(UserError, match="truncated.tgz is not a readable .tar.gz archive or is truncated"):
        read_corpus(str(truncated))
    no_unsup = tmp_path / "no_unsup.tar.gz"
    with tarfile.open(no_unsup, "w:gz") as tar:
        tar.add(tmp_path / "src" / "aclImdb" / "train" / "pos", arcname="aclImdb/train/pos")
    with pytest.raises(UserError, match="no_unsup.tar.gz holds no aclImdb/train/unsup reviews"):
        read_corpus(str(no_unsup))
    (tmp_path / "src" / "aclImdb" / "train" / "neg" / "1_2.txt").unlink()
    (tmp_path / "src" / "aclImdb" / "train" / "neg").rmdir()
    with pytest.raises(UserError, match="is not an extracted aclImdb folder: .*train/neg is missing"):
        read_corpus(str(tmp_path / "src"))
