"""Generic sources: tables (CSV, TSV, JSON lines), class folders, TFDS datasets (mocked, or built here)."""
import json
import re

import numpy as np
import pytest

from tfseq.data.sources import read_class_folders, read_table, read_tfds
from tfseq.errors import UserError


def write(path, text, encoding="utf-8"):
    path.write_bytes(text.encode(encoding))
    return path


# ---------------------------------------------------------------------------------------------------------- tables


def test_csv_with_bom_quoted_newlines_and_integer_labels(tmp_path):
    path = tmp_path / "reviews.csv"
    path.write_bytes(b"\xef\xbb\xbftext,label\n\"line one\nline two, with a comma\",1\nNA,10\n\"\",2\n")
    got = read_table(path, ["text"], "label")
    assert got.texts == ["line one\nline two, with a comma", "NA", ""]  # "NA" stays text; an empty cell is ""
    assert got.labels.dtype.kind == "U" and got.labels.tolist() == ["1", "10", "2"]
    assert got.names == ["reviews.csv row 1", "reviews.csv row 2", "reviews.csv row 3"]
    assert got.groups is None


def test_csv_string_labels_joined_text_columns_and_groups(tmp_path):
    path = write(tmp_path / "news.csv", "title,body,topic,author\nHello,World,  sport ,ann\n"
                                        "Only title,,politics,bob\n,Only body,3.0,7\n")
    got = read_table(path, ["title", "body"], "topic", "author")
    assert got.texts == ["Hello\nWorld", "Only title\n", "\nOnly body"]
    assert got.labels.tolist() == ["sport", "politics", "3"]  # stripped; a whole float names its integer class
    assert got.groups == ["ann", "bob", "7"]


@pytest.mark.parametrize("suffix", [".tsv", ".tab"])
def test_tsv(tmp_path, suffix):
    path = write(tmp_path / f"data{suffix}", "text\tlabel\nplain, with comma\tpos\n\"quoted\ttab\"\tneg\n")
    got = read_table(path, ["text"], "label")
    assert got.texts == ["plain, with comma", "quoted\ttab"]
    assert got.labels.tolist() == ["pos", "neg"]


@pytest.mark.parametrize("suffix", [".jsonl", ".ndjson", ".json"])
def test_json_lines_with_integer_labels_and_a_null_text(tmp_path, suffix):
    rows = [{"text": "first", "label": 3, "date": "2020-01-01", "user": 1}, {"text": None, "label": 12, "user": 2},
            {"text": 5, "label": 3, "user": None}]
    path = write(tmp_path / f"data{suffix}", "\ufeff" + "\n".join(json.dumps(r) for r in rows) + "\n")
    got = read_table(path, ["text"], "label", "user")
    assert got.texts == ["first", "", "5"]
    assert got.labels.tolist() == ["3", "12", "3"]
    assert got.groups == ["1", "2", ""]
    assert got.names[1] == f"data{suffix} row 2"


@pytest.mark.parametrize("name, content, expected", [
    ("news.csv", "title,body,topic\na,b,c\n", "news.csv has no column 'headline'; its columns are: title, body, "
                                               "topic; set data.text_column"),
    ("news.csv", "headline, topic\na,b\n", "has no column 'topic'; its columns are: headline, ' topic'; "
                                           "set data.label_column"),
    ("news.jsonl", '{"headline": "a", "topic": "b"}\n', "has no column 'author'; its columns are: headline, topic; "
                                                        "set data.group_column"),
    ("news.csv", "headline,topic\n,a\n  ,b\n", "column 'headline' is empty in every row"),
    ("news.csv", "headline,topic\na,x\nb,\nc, \n", "row 2 (data row, 1-based) has no label in column 'topic' "
                                                   "(2 of 3 rows have none)"),
    ("news.jsonl", '{"headline": "a", "topic": 1}\n{"headline": "b", "topic": null}\n', "row 2 (data row, 1-based) "
                                                                                        "has no label"),
    ("news.csv", "headline,topic\n", "has no data rows"),
    ("news.jsonl", "", "has no records"),
    ("news.csv", "", "is not a readable CSV (No columns to parse from file)"),
    ("news.csv", 'headline,topic\n"never closed,a\nb,c\n', "is not a readable CSV (Error tokenizing data. C error: "
                                                           "EOF inside string"),
    ("news.csv", "headline,topic\na,b,c\n", "a data row has more fields than the header; quote fields that contain "
                                            "a comma"),
    ("news.tsv", "headline\ttopic\na\tb\nc\td\te\n", "is not a readable TSV (Error tokenizing data. C error: "
                                                    "Expected 2 fields in line 3, saw 3)"),
    ("news.jsonl", '{"headline": "a", "topic": 1}\n\n{"headline": "b" "topic": 2}\n', "news.jsonl line 3 is not "
                                                                                      "JSON (Expecting ','"),
    ("news.json", '[{"headline": "a", "topic": 1}]', "is not JSON lines: it starts with '[', not '{'; write one JSON "
                                                     "object per line"),
    ("news.xlsx", "x", "cannot read '.xlsx' tables; use a .csv, .tsv/.tab or .jsonl/.ndjson/.json (JSON lines) file"),
])
def test_table_errors(tmp_path, name, content, expected):
    path = write(tmp_path / name, content)
    group = "author" if "author" in expected else ""
    with pytest.raises(UserError, match="^" + re.escape(str(path))) as err:
        read_table(path, ["headline"], "topic", group)
    assert expected in str(err.value) and "\n" not in str(err.value)


def test_table_that_is_not_utf8_names_the_byte(tmp_path):
    path = tmp_path / "latin.csv"
    path.write_bytes(b"text,label\n" + b"fine,1\n" * 3000 + b"caf\xe9,2\n")
    offset = len(b"text,label\n" + b"fine,1\n" * 3000) + 3
    with pytest.raises(UserError, match=f"latin.csv is not UTF-8: byte 0xe9 at offset {offset} \\(line 3002\\)"):
        read_table(path, ["text"], "label")
    jsonl = tmp_path / "latin.jsonl"
    jsonl.write_bytes(b'{"text": "caf\xe9", "label": 1}\n')
    with pytest.raises(UserError, match="latin.jsonl is not UTF-8: byte 0xe9 at offset 13 \\(line 1\\)"):
        read_table(jsonl, ["text"], "label")


def test_table_path_errors(tmp_path):
    with pytest.raises(UserError, match="missing.csv does not exist"):
        read_table(tmp_path / "missing.csv", ["text"], "label")
    (tmp_path / "folder.csv").mkdir()
    with pytest.raises(UserError, match="folder.csv is a folder"):
        read_table(tmp_path / "folder.csv", ["text"], "label")
    with pytest.raises(UserError, match="no text column given"):
        read_table(write(tmp_path / "a.csv", "text,label\na,b\n"), [], "label")


# --------------------------------------------------------------------------------------------------- class folders


def write_files(root, files):
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    return root


def test_class_folders_single_layout(tmp_path):
    root = write_files(tmp_path / "data", {
        "pos/b.txt": "good", "pos/a.txt": b"\xef\xbb\xbfgreat", "pos/deeper/c.txt": "nested counts",
        "pos/.hidden.txt": "skipped", "pos/.cache/d.txt": "skipped", "pos/notes.md": "skipped",
        "neg/x.TXT": "bad", ".git/e.txt": "skipped", "README.txt": "skipped"})
    got = read_class_folders(root)
    assert list(got) == ["all"]
    examples = got["all"]
    assert examples.names == ["neg/x.TXT", "pos/a.txt", "pos/b.txt", "pos/deeper/c.txt"]
    assert examples.texts == ["bad", "great", "good", "nested counts"]
    assert examples.labels.tolist() == ["neg", "pos", "pos", "pos"] and examples.groups is None


def test_class_folders_train_test_layout(tmp_path):
    root = write_files(tmp_path / "data", {"train/pos/1.txt": "p1", "train/neg/2.txt": "n2", "test/pos/3.txt": "p3",
                                           "test/neg/4.txt": "n4", "test/neg/5.txt": "n5", "LICENSE.txt": "skipped"})
    got = read_class_folders(root)
    assert list(got) == ["train", "test"]
    assert got["train"].names == ["train/neg/2.txt", "train/pos/1.txt"]
    assert got["test"].texts == ["n4", "n5", "p3"] and got["test"].labels.tolist() == ["neg", "neg", "pos"]


def test_class_folders_errors(tmp_path):
    with pytest.raises(UserError, match="nowhere does not exist"):
        read_class_folders(tmp_path / "nowhere")
    with pytest.raises(UserError, match="a.txt is not a folder"):
        read_class_folders(write(tmp_path / "a.txt", "x"))
    one = write_files(tmp_path / "one", {"only/a.txt": "x", "stray.txt": "y"})
    with pytest.raises(UserError, match=r"one holds 1 class folder\(s\) \(only\); class folders need at least 2 "
                                        r"subfolders, one per class, holding \.txt files"):
        read_class_folders(one)
    split = write_files(tmp_path / "split", {"train/pos/a.txt": "x", "train/neg/b.txt": "y", "test/pos/c.txt": "z"})
    with pytest.raises(UserError, match=r"split/test holds 1 class folder\(s\) \(pos\)"):
        read_class_folders(split)
    empty = write_files(tmp_path / "empty", {"pos/a.txt": "x", "neg/b.md": "y", "neg/.c.txt": "z"})
    with pytest.raises(UserError, match=r"class folder .*empty/neg holds no \.txt files"):
        read_class_folders(empty)
    latin = write_files(tmp_path / "latin", {"pos/a.txt": "x", "neg/b.txt": b"line\ncaf\xe9"})
    with pytest.raises(UserError, match=r"latin/neg/b\.txt is not UTF-8: byte 0xe9 at offset 8 \(line 2\)"):
        read_class_folders(latin)


# ------------------------------------------------------------------------------------------------------------ TFDS


@pytest.fixture(scope="session")
def tiny_tfds(tmp_path_factory):
    """A TFDS data_dir for `sources_tiny_news` (train 4 / test 2, ClassLabel topic, int stars, a list of tags) and
    `sources_offline` (its preparation fails as an offline download does); the builders register as defined."""
    import tensorflow_datasets as tfds

    class SourcesTinyNews(tfds.core.GeneratorBasedBuilder):
        VERSION = tfds.core.Version("1.0.0")

        def _info(self):
            return tfds.core.DatasetInfo(builder=self, supervised_keys=("headline", "topic"),
                                         features=tfds.features.FeaturesDict({
                                             "headline": tfds.features.Text(), "stars": np.int64,
                                             "topic": tfds.features.ClassLabel(names=["world", "sports"]),
                                             "tags": tfds.features.Sequence(tfds.features.Text())}))

        def _split_generators(self, dl_manager):
            return {"train": self._generate_examples(0, 4), "test": self._generate_examples(4, 6),
                    "unlabelled": self._generate_examples(6, 8)}

        def _generate_examples(self, start, stop):
            for i in range(start, stop):
                # -1: TFDS's "no label", as in GLUE's test splits.
                yield i, {"headline": f"héadline {i}", "stars": i, "topic": i % 2 if i < 6 else -1, "tags": ["a"]}

    class SourcesOffline(SourcesTinyNews):
        def _split_generators(self, dl_manager):
            raise ConnectionError("Failed to resolve 'example.org'")

    data_dir = tmp_path_factory.mktemp("tfds")
    return str(data_dir)


def test_tfds_mocked_imdb_uses_supervised_keys_and_class_names():
    import tensorflow_datasets as tfds

    with tfds.testing.mock_data(num_examples=6):
        got = read_tfds("imdb_reviews", "", ["train", "test"], "", "")
        whole = read_tfds("imdb_reviews", "", ["test"], "text", "label")
    assert list(got) == ["train", "test"] and list(whole) == ["all"]
    train = got["train"]
    assert len(train) == 6 and all(isinstance(t, str) and t for t in train.texts)
    assert set(train.labels.tolist()) <= {"neg", "pos"} and train.labels.dtype.kind == "U"
    assert train.names[5] == "tfds imdb_reviews/train[5]" and train.groups is None
    assert whole["all"].names[0] == "tfds imdb_reviews/test[0]"


def test_tfds_mocked_ag_news_with_named_keys():
    import tensorflow_datasets as tfds

    with tfds.testing.mock_data(num_examples=8):
        got = read_tfds("ag_news_subset", "", ["train", "test"], "description", "label")
        with pytest.raises(UserError, match="TFDS dataset ag_news_subset has no feature 'review'; its features are: "
                                            "label, title, description; set data.text_column"):
            read_tfds("ag_news_subset", "", ["train", "test"], "review", "label")
    assert set(got["test"].labels.tolist()) <= {"World", "Sports", "Business", "Sci/Tech"}
    assert len(got["test"]) == 8


def test_tfds_built_dataset_splits_labels_and_keys(tiny_tfds):
    got = read_tfds("sources_tiny_news", tiny_tfds, ["train", "test"], "", "")
    train = got["train"]
    order = np.argsort([int(t.split()[1]) for t in train.texts])  # TFDS shuffles examples when it writes them
    assert [train.texts[i] for i in order] == [f"héadline {i}" for i in range(4)]
    assert [train.labels[i] for i in order] == ["world", "sports", "world", "sports"]
    assert sorted(got["test"].texts) == ["héadline 4", "héadline 5"]
    stars = read_tfds("sources_tiny_news", tiny_tfds, ["train[:2]+test"], "headline", "stars")["all"]
    assert len(stars) == 4 and stars.labels.tolist() == [t.split()[1] for t in stars.texts]  # an int label: its value
    assert stars.names[3] == "tfds sources_tiny_news/train[:2]+test[3]"


def test_tfds_errors(tiny_tfds):
    def message(*args):
        with pytest.raises(UserError) as err:
            read_tfds(*args)
        assert "\n" not in str(err.value)
        return str(err.value)

    assert message("imdb_review", "", ["train"], "", "") == "TFDS has no dataset 'imdb_review'; did you mean " \
                                                            "'imdb_reviews'?"
    assert "TFDS has no dataset 'no_such_dataset_here'; see https://" in message("no_such_dataset_here", "",
                                                                                 ["train"], "", "")
    assert message("sources_tiny_news", tiny_tfds, ["train", "validation"], "", "") == \
        "TFDS dataset sources_tiny_news has no split 'validation'; its splits are: train, test, unlabelled; set " \
        "data.tfds_splits"
    assert message("sources_tiny_news", tiny_tfds, ["train[:300%]"], "", "").startswith(
        "TFDS dataset sources_tiny_news cannot read split 'train[:300%]' (Error parsing split")
    assert message("sources_tiny_news", tiny_tfds, ["train"], "", "label") == \
        "TFDS dataset sources_tiny_news has no feature 'label'; its features are: headline, stars, topic, tags; " \
        "set data.label_column"
    assert message("sources_tiny_news", tiny_tfds, ["train"], "tags", "") == \
        "TFDS dataset sources_tiny_news: feature 'tags' is not a single text; its text features are: headline; " \
        "set data.text_column"
    assert "feature 'tags' is not a single label" in message("sources_tiny_news", tiny_tfds, ["train"], "", "tags")
    assert message("sources_tiny_news", tiny_tfds, ["a", "b", "c"], "", "").startswith(
        "give TFDS dataset sources_tiny_news one split name or two")
    assert "has label -1, not one of the dataset's 2 classes (an unlabelled split?); choose labelled splits with " \
        "data.tfds_splits" in message("sources_tiny_news", tiny_tfds, ["train", "unlabelled"], "", "")
    offline = message("sources_offline", tiny_tfds, ["train", "test"], "", "")
    assert offline.startswith(f"TFDS could not prepare sources_offline in {tiny_tfds} (ConnectionError: ")
