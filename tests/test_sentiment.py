"""The sentiment slice end to end on a small archive the tests make: train, metrics, export, predict."""
import json
import subprocess

import numpy as np
import pytest

from conftest import PYTHON, ROOT, NEGATIVE, POSITIVE, TEST_ONLY_WORD, TEST_POSITIVE
from tfseq import trainer
from tfseq.config import load_config


@pytest.fixture(scope="module")
def sentiment_run(imdb_archive, tmp_path_factory):
    cfg = load_config("sentiment", "imdb_tiny", [f"data.path={imdb_archive}", "data.limit=0", "train.epochs=12",
                                                  "train.learning_rate=2e-2", "data.val_fraction=0.25"])
    return trainer.train(cfg, str(tmp_path_factory.mktemp("sentiment") / "run"))


def test_sentiment_run_learns_and_reports_test_metrics(sentiment_run):
    metrics = json.loads(sentiment_run.metrics.read_text())
    for key in ("test_accuracy", "test_loss", "test_auc", "val_accuracy", "test_true_positives",
                "test_false_negatives"):
        assert key in metrics, key
    assert metrics["test_reviews"] == 24
    assert metrics["test_true_positives"] + metrics["test_false_negatives"] == 12
    assert metrics["test_accuracy"] >= 0.9, metrics  # unseen test sentences made of the training reviews' words
    assert metrics["test_reviews_seen_in_training"] == 0 and metrics["test_accuracy_unseen"] == metrics["test_accuracy"]
    from tfseq.data.text import load_vocab

    assert TEST_ONLY_WORD not in load_vocab(sentiment_run.vocab).tokens
    assert "validation: all reviews of" in metrics["validation"]
    assert [r["epoch"] for r in sentiment_run.read_history()][:1] == [1]
    assert sentiment_run.plot.is_file()


def test_predict_from_the_run_folder_and_from_stdin(sentiment_run):
    done = subprocess.run([PYTHON, "-m", "tfseq.predict", str(sentiment_run.path), POSITIVE[0], NEGATIVE[0], "--json"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    assert [r["label"] for r in rows] == ["positive", "negative"] and rows[0]["text"] == POSITIVE[0]
    after_option = subprocess.run([PYTHON, "-m", "tfseq.predict", str(sentiment_run.path), "--threshold", "0.5",
                                   NEGATIVE[0]], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert after_option.returncode == 0 and after_option.stdout.startswith("negative\t"), after_option.stderr
    piped = subprocess.run([PYTHON, "-m", "tfseq.predict", str(sentiment_run.path)], cwd=ROOT, capture_output=True,
                           text=True, input=f"{POSITIVE[1]}\n{NEGATIVE[1]}\n", timeout=300)
    assert piped.returncode == 0, piped.stderr
    assert [line.split("\t")[0] for line in piped.stdout.splitlines()] == ["positive", "negative"]


def test_exported_savedmodel_answers_raw_strings_without_tfseq(sentiment_run, tmp_path):
    from tfseq.serving import classify

    out = tmp_path / "exported"
    done = subprocess.run([PYTHON, "-m", "tfseq.export", str(sentiment_run.path), "--out", str(out)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    reviews = POSITIVE + NEGATIVE + ["", "<br />", "unknownword " * 3, "x" * 5000]
    in_process = classify(sentiment_run.path, reviews).probabilities[:, 1]
    # A bare process: tfseq is made unimportable, only TensorFlow is used.
    script = (
        "import sys, json\n"
        "sys.modules['tfseq'] = None\n"
        "import tensorflow as tf\n"
        f"m = tf.saved_model.load({str(out)!r})\n"
        "texts = json.loads(sys.stdin.read())\n"
        "print(json.dumps(m.serve(tf.constant(texts))['probability'].numpy().tolist()))\n"
    )
    bare = subprocess.run([PYTHON, "-c", script], cwd=tmp_path, capture_output=True, text=True,
                          input=json.dumps(reviews), timeout=300)
    assert bare.returncode == 0, bare.stderr
    np.testing.assert_allclose(json.loads(bare.stdout.strip().splitlines()[-1]), in_process, rtol=1e-5, atol=1e-6)
    served = subprocess.run([PYTHON, "-m", "tfseq.predict", str(out), POSITIVE[2], "--json"], cwd=ROOT,
                            capture_output=True, text=True, timeout=300)
    assert served.returncode == 0 and json.loads(served.stdout)["label"] == "positive"


def test_sample_and_predict_refuse_runs_of_the_other_task(sentiment_run):
    done = subprocess.run([PYTHON, "-m", "tfseq.sample", str(sentiment_run.path)], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 2
    assert "is a sentiment run, which python -m tfseq.sample cannot use; use python -m tfseq.predict with it" in done.stderr


def test_predict_reads_stdin_as_people_write_it_and_flags_unknown_texts(sentiment_run):
    def predict(stdin: bytes, *args):
        return subprocess.run([PYTHON, "-m", "tfseq.predict", str(sentiment_run.path), *args], cwd=ROOT,
                              capture_output=True, input=stdin, timeout=300)

    crlf = predict(("\ufeff" + POSITIVE[1] + "\r\n\r\n  \r\n" + NEGATIVE[1] + "\r\nqqq zzz\r\n").encode(), "--json")
    assert crlf.returncode == 0, crlf.stderr
    rows = [json.loads(line) for line in crlf.stdout.decode().splitlines()]
    assert [r["text"] for r in rows] == [POSITIVE[1], NEGATIVE[1], "qqq zzz"]  # BOM, CR and blank lines gone
    assert rows[0]["known_tokens"] > 0 and rows[2]["known_tokens"] == 0
    plain = predict(b"qqq zzz\n")
    assert plain.returncode == 0 and plain.stdout.decode().rstrip().endswith("(no known word)")
    assert "1 text(s) have no word in the model's vocabulary" in plain.stderr.decode()
    bad = predict(b"fine review\n\xff\xfe broken\n")
    assert bad.returncode == 2 and bad.stderr.decode().strip() == \
        "error: stdin is not UTF-8: byte 0xff at offset 12 (line 2) cannot be decoded; re-encode it as UTF-8"


@pytest.fixture(scope="module")
def unmasked_run(imdb_archive, tmp_path_factory):
    cfg = load_config("sentiment", "imdb_tiny", [f"data.path={imdb_archive}", "data.limit=0", "train.epochs=2",
                                                  "data.val_fraction=0.25", "model.mask_zero=false",
                                                  "model.bigram_buckets=0"])
    return trainer.train(cfg, str(tmp_path_factory.mktemp("unmasked") / "run"))


def test_a_model_that_reads_padding_scores_each_text_alone_everywhere(unmasked_run, imdb_archive, tmp_path):
    from tfseq.data import imdb
    from tfseq.serving import classify, export_run

    short, long = TEST_POSITIVE[2], " ".join(NEGATIVE * 8)
    alone = classify(unmasked_run.path, [short]).probabilities[:, 1]
    together = classify(unmasked_run.path, [long, short, ""]).probabilities[:, 1]
    np.testing.assert_allclose(together[1], alone[0], rtol=1e-5, atol=1e-6)
    out = export_run(unmasked_run.path, tmp_path / "exported")
    script = (
        "import sys, json\n"
        "sys.modules['tfseq'] = None\n"
        "import tensorflow as tf\n"
        f"m = tf.saved_model.load({str(out)!r})\n"
        f"a = m.serve(tf.constant([{short!r}]))['probability'].numpy().tolist()\n"
        f"b = m.serve(tf.constant([{long!r}, {short!r}]))['probability'].numpy().tolist()\n"
        "e = m.serve(tf.zeros([0], tf.string))['probability'].numpy().tolist()\n"
        "print(json.dumps([a, b, e]))\n"
    )
    bare = subprocess.run([PYTHON, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert bare.returncode == 0, bare.stderr[-2000:]
    a, b, e = json.loads(bare.stdout.strip().splitlines()[-1])
    np.testing.assert_allclose([b[1], a[0]], [alone[0], alone[0]], rtol=1e-5, atol=1e-6)
    assert e == []
    # Evaluation scores each test review as serving does: the same accuracy as classify() review by review.
    test = imdb.read_source(str(imdb_archive))[0]["test"]
    probs = classify(unmasked_run.path, test.texts).probabilities[:, 1]
    metrics = json.loads(unmasked_run.metrics.read_text())
    assert metrics["test_accuracy"] == np.mean((probs >= 0.5) == (test.labels == 1))
