"""Shared fixtures: small files the tests make themselves, the shared data when it is there, quiet TensorFlow."""
import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = ROOT.parent / "shared" / "data"
IMDB_ARCHIVE = SHARED_DATA / "imdb" / "aclImdb_v1.tar.gz"
PYTHON = sys.executable


@pytest.fixture(scope="session")
def small_book(tmp_path_factory) -> Path:
    """A 40,000-character Gutenberg-style file: licence header, START/END lines, a chunk of the embedded book."""
    from tfseq.data.gutenberg import EMBEDDED_BOOK, strip_gutenberg
    from tfseq.data.text import read_text

    body = strip_gutenberg(read_text(EMBEDDED_BOOK), "THE MYSTERIOUS ISLAND")[:40_000]
    path = tmp_path_factory.mktemp("book") / "small_book.txt"
    path.write_text(
        "The Project Gutenberg EBook of A Small Book\r\n\r\n*** START OF THIS PROJECT GUTENBERG EBOOK A SMALL BOOK ***"
        "\r\n\r\n" + body.replace("\n", "\r\n") + "\r\n\r\nEnd of the Project Gutenberg EBook of A Small Book\r\n"
        "*** END OF THIS PROJECT GUTENBERG EBOOK A SMALL BOOK ***\r\nlicence text\r\n",
        encoding="utf-8",
    )
    return path


def tiny_charlm_config(book: Path, **train):
    """The charlm_tiny pipeline on `book`, with train-section overrides."""
    from tfseq.config import load_config

    overrides = [f"data.path={book}", "data.start_marker="] + [f"train.{k}={v}" for k, v in train.items()]
    return load_config("charlm", "charlm_tiny", overrides)


def train_killed_after_epoch(cfg, run_dir, epochs_done, monkeypatch):
    """Trains `cfg` into `run_dir` and kills it (KeyboardInterrupt) right after epoch `epochs_done` is saved."""
    from tfseq import trainer

    original = trainer.RunCheckpoint.on_epoch_end

    def crash(self, epoch, logs=None):
        original(self, epoch, logs)
        if epoch + 1 == epochs_done:
            raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(trainer.RunCheckpoint, "on_epoch_end", crash)
        with pytest.raises(KeyboardInterrupt):
            trainer.train(cfg, run_dir)


# Training reviews; the test reviews below are other sentences, made of the training reviews' sentiment words, so a
# test accuracy measures generalising, not memorising. "zyzzyva" appears only in test reviews.
POSITIVE = ["A wonderful, moving film.<br /><br />Great acting!", "I loved it: brilliant and beautiful", "Superb! 10/10",
            "Un film très émouvant, a great café scene", "Best movie ever 😀 great great", "It's wonderful, isn't it?"]
NEGATIVE = ["An awful, boring mess.<br />Terrible.", "I hated it: dull and stupid", "Worst film_ever, 1/10",
            "Boring. Awful. Dull.", "A terrible waste 😡 of time", "It wasn't good; it's bad, bad"]
TEST_POSITIVE = ["Beautiful and moving, a brilliant zyzzyva", "Great film, I loved the acting", "Wonderful! Superb scene",
                 "brilliant, great, beautiful", "The best: moving and wonderful", "Loved it, a superb café"]
TEST_NEGATIVE = ["Dull and awful, a stupid zyzzyva", "Terrible film, I hated the acting", "Boring! Awful scene",
                 "stupid, dull, bad", "The worst: boring and terrible", "Hated it, a waste"]
TEST_ONLY_WORD = "zyzzyva"


def write_imdb_folder(root: Path, per_class: int = 12) -> Path:
    """An aclImdb/ tree: train/test x pos/neg reviews, urls files, and unlabelled reviews.

    Every movie has 3 positive and 3 negative reviews (as real movies have both), so a carve that kept a movie's
    positive and negative reviews apart would show; test movies are not training movies.
    """
    base = root / "aclImdb"
    for split in ("train", "test"):
        urls = {"pos": [], "neg": []}
        sentences = {"train": (POSITIVE, NEGATIVE), "test": (TEST_POSITIVE, TEST_NEGATIVE)}[split]
        for label, texts in zip(("pos", "neg"), sentences):
            folder = base / split / label
            folder.mkdir(parents=True)
            for i in range(per_class):
                rating = 8 if label == "pos" else 2
                (folder / f"{i}_{rating}.txt").write_text(f"{texts[i % len(texts)]} ({split} {i})", encoding="utf-8")
                movie = 1000 * (split == "test") + i // 3
                urls[label].append(f"http://www.imdb.com/title/tt{movie:07d}/usercomments")
        for label in ("pos", "neg"):
            (base / split / f"urls_{label}.txt").write_text("\n".join(urls[label]) + "\n")
    (base / "train" / "unsup").mkdir()
    (base / "train" / "unsup" / "0_0.txt").write_text("UNLABELLED never read")
    return base


@pytest.fixture(scope="session")
def imdb_archive(tmp_path_factory) -> Path:
    """A small aclImdb_v1.tar.gz (12 reviews per split and label) made by the test itself."""
    import tarfile

    root = tmp_path_factory.mktemp("imdb")
    base = write_imdb_folder(root)
    archive = root / "aclImdb_v1.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(base, arcname="aclImdb")
    return archive


# Three topics for the classify task. Training and test rows are different sentences made of the same topic words.
TOPICS = {
    "sport": ["match", "goal", "team", "league", "coach", "season"],
    "tech": ["software", "chip", "computer", "robot", "phone", "code"],
    "food": ["recipe", "cheese", "bread", "dinner", "soup", "spice"],
}
FILLER = ["the", "a", "new", "today", "big", "with", "and", "of"]


def topic_rows(n: int, seed: int) -> list[tuple[str, str]]:
    """n (headline, topic) rows, the topics in turn; each headline has 2-3 topic words among filler words."""
    import random

    rng = random.Random(seed)
    rows = []
    for i in range(n):
        topic = list(TOPICS)[i % 3]
        words = rng.sample(TOPICS[topic], 3)[: 2 + i % 2] + rng.sample(FILLER, 4)
        rng.shuffle(words)
        rows.append((" ".join(words).capitalize(), topic))
    return rows


def write_news_csv(path: Path, rows: list[tuple[str, str]]) -> Path:
    """A CSV with a UTF-8 BOM, `headline` and `topic` columns, and one headline holding a quoted newline."""
    import csv

    with open(path, "w", newline="", encoding="utf-8-sig") as fh:
        writer = csv.writer(fh)
        writer.writerow(["id", "headline", "topic"])
        for i, (headline, topic) in enumerate(rows):
            writer.writerow([i, headline.replace(" ", "\n", 1) if i == 0 else headline, topic])
    return path


@pytest.fixture(scope="session")
def news_csv(tmp_path_factory) -> tuple[Path, Path]:
    """(train.csv with 150 rows, test.csv with 30 other rows) of three string classes."""
    root = tmp_path_factory.mktemp("news")
    train = topic_rows(150, seed=1)
    seen = {headline for headline, _ in train}
    test = [row for row in topic_rows(200, seed=2) if row[0] not in seen][:30]
    return write_news_csv(root / "train.csv", train), write_news_csv(root / "test.csv", test)


def tiny_classify_config(news_csv, *overrides):
    """The classify_tiny pipeline on the news CSV fixture (separate test file), with overrides."""
    from tfseq.config import load_config

    train, test = news_csv
    return load_config("classify", "classify_tiny", [f"data.path={train}", f"data.test_path={test}",
                                                     "data.text_column=headline", "data.label_column=topic",
                                                     *overrides])


# Tagged sentences for the tag task: people, places and organisations in a few frames, BIO tags. The test file's
# names, places and organisations never occur in training (only their frames and capitals tell them apart).
TRAIN_PEOPLE = ["John Smith", "Mary", "Peter Jones", "Anna", "Paul Brown", "Laura", "Tom White", "Kate"]
TRAIN_PLACES = ["Paris", "London", "Berlin", "New York", "Rome", "Madrid"]
TRAIN_ORGS = ["Google", "Siemens", "Red Cross", "Acme Corp"]
TEST_PEOPLE = ["Oliver Stone", "Emma", "Hugo Marsh"]
TEST_PLACES = ["Lisbon", "Oslo", "Cape Town"]
TEST_ORGS = ["Nokia", "Blue Shield"]
FRAMES = ["{PER} lives in {LOC} .", "{PER} works for {ORG} in {LOC} .", "the weather in {LOC} is nice today .",
          "{ORG} hired {PER} last year .", "did {PER} visit {LOC} ?", "we met {PER} and {PER} at {ORG} ."]


def tagged_sentences(people, places, orgs, n: int, seed: int) -> list[list[tuple[str, str]]]:
    """n sentences of (token, BIO tag) pairs drawn from FRAMES."""
    import random

    rng, pools = random.Random(seed), {"PER": people, "LOC": places, "ORG": orgs}
    sentences = []
    for _ in range(n):
        pairs = []
        for word in rng.choice(FRAMES).split():
            if word.startswith("{"):
                kind = word[1:4]
                pairs += [(w, ("B-" if j == 0 else "I-") + kind) for j, w in enumerate(rng.choice(pools[kind]).split())]
            else:
                pairs.append((word, "O"))
        sentences.append(pairs)
    return sentences


def write_conll(path: Path, sentences) -> Path:
    """A CoNLL file: -DOCSTART-, then token POS-placeholder tag columns, a blank line between sentences."""
    lines = ["-DOCSTART- -X- O", ""]
    for pairs in sentences:
        lines += [f"{token} X {tag}" for token, tag in pairs] + [""]
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def tagged_files(tmp_path_factory) -> tuple[Path, Path]:
    """(train.conll: 120 sentences, test.conll: 30 sentences of unseen entities)."""
    root = tmp_path_factory.mktemp("tagged")
    return (write_conll(root / "train.conll", tagged_sentences(TRAIN_PEOPLE, TRAIN_PLACES, TRAIN_ORGS, 120, 1)),
            write_conll(root / "test.conll", tagged_sentences(TEST_PEOPLE, TEST_PLACES, TEST_ORGS, 30, 2)))


def tiny_tag_config(tagged_files, *overrides):
    """The tag_tiny pipeline on the tagged fixture (its test file as data.test_path)."""
    from tfseq.config import load_config

    train, test = tagged_files
    return load_config("tag", "tag_tiny", [f"data.path={train}", f"data.test_path={test}", *overrides])
