"""The classify task: any labelled texts -> a k-class classifier, as a new user would try it: a CSV with string
classes, predict --json, per-class metrics; folder, IMDb-rating and TFDS sources; splits; and bad input."""
import json
import subprocess

import numpy as np
import pytest

from conftest import PYTHON, ROOT, TOPICS, tiny_classify_config, topic_rows, write_news_csv
from tfseq import trainer
from tfseq.config import load_config
from tfseq.errors import UserError


@pytest.fixture(scope="module")
def news_run(news_csv, tmp_path_factory):
    cfg = tiny_classify_config(news_csv, "train.epochs=6")
    return trainer.train(cfg, str(tmp_path_factory.mktemp("classify") / "run"))


def test_a_three_class_csv_run_learns_and_reports_per_class_scores(news_run):
    metrics = json.loads(news_run.metrics.read_text())
    assert json.loads(news_run.classes.read_text())["classes"] == ["food", "sport", "tech"] == metrics["classes"]
    assert metrics["test_accuracy"] >= 0.9 and metrics["test_macro_f1"] >= 0.9, metrics
    assert metrics["test_texts"] == 30 and metrics["test_texts_seen_in_training"] == 0
    assert set(metrics["test_per_class"]) == {"food", "sport", "tech"}
    assert sum(c["support"] for c in metrics["test_per_class"].values()) == 30
    assert "test_auc" not in metrics and "test_mae" not in metrics  # two classes only; names are not numbers
    confusion = json.loads(news_run.confusion.read_text())
    assert confusion["matrix"] == metrics["test_confusion"] and sum(map(sum, confusion["matrix"])) == 30
    assert news_run.confusion_plot.read_bytes()[:4] == b"\x89PNG"


def test_predict_json_gives_every_class_by_name(news_run):
    done = subprocess.run([PYTHON, "-m", "tfseq.predict", str(news_run.path), "--json", "The coach of the team",
                           "cheese soup"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    assert [r["label"] for r in rows] == ["sport", "food"]
    for row in rows:
        assert set(row["probabilities"]) == {"food", "sport", "tech"}
        assert row["probability"] == max(row["probabilities"].values())
        assert abs(sum(row["probabilities"].values()) - 1) < 1e-4
    plain = subprocess.run([PYTHON, "-m", "tfseq.predict", str(news_run.path), "robot phone"], cwd=ROOT,
                           capture_output=True, text=True, timeout=300)
    assert plain.returncode == 0 and plain.stdout.startswith("tech\t"), plain.stderr


def test_a_sentiment_config_cannot_ask_for_a_multiclass_head():
    # The defect that started issue 14: this trained a binary loss against a 5-unit softmax.
    with pytest.raises(UserError, match="task sentiment trains model.head = 'binary', got 'multiclass'"):
        load_config("sentiment", "imdb_tiny", ["model.head=multiclass", "model.num_classes=5"])


def test_heads_and_class_counts_must_agree_with_the_data(news_csv, tmp_path):
    with pytest.raises(UserError, match=r"model.head = 'binary' needs two classes; the data has 3 \(food, sport, "
                                        r"tech\): set model.head = 'multiclass'"):
        trainer.train(tiny_classify_config(news_csv, "model.head=binary"), str(tmp_path / "a"))
    with pytest.raises(UserError, match="model.num_classes = 4, but the data has 3 classes"):
        trainer.train(tiny_classify_config(news_csv, "model.num_classes=4"), str(tmp_path / "b"))
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()  # a refused run leaves nothing


def test_bad_data_is_refused_in_one_line(news_csv, tmp_path):
    train, test = news_csv
    cases = {
        "data.text_column=title": "has no column 'title'; its columns are: id, headline, topic",
        "data.label_column=kind": "has no column 'kind'; its columns are: id, headline, topic",
    }
    for override, message in cases.items():
        with pytest.raises(UserError, match=message):
            trainer.train(tiny_classify_config(news_csv, override), str(tmp_path / "run"))
    one_class = write_news_csv(tmp_path / "one.csv", [(h, "sport") for h, _ in topic_rows(30, 3)])
    with pytest.raises(UserError, match="has a single class \\('sport'\\) in its training texts"):
        trainer.train(tiny_classify_config((one_class, test)), str(tmp_path / "run"))
    unseen = write_news_csv(tmp_path / "unseen.csv", topic_rows(6, 4) + [("Stock markets fall", "finance")])
    with pytest.raises(UserError, match="the test texts have label 'finance', which no training text has"):
        trainer.train(tiny_classify_config((train, unseen)), str(tmp_path / "run"))
    empty = tmp_path / "empty.csv"
    empty.write_text("headline,topic\n,sport\n,tech\n", encoding="utf-8")
    with pytest.raises(UserError, match="headline"):
        trainer.train(tiny_classify_config((empty, test)), str(tmp_path / "run"))
    assert not (tmp_path / "run").exists()


def test_carves_are_stratified_and_groups_stay_whole(tmp_path):
    from tfseq.tasks.classify import ClassifyTask

    rows = topic_rows(90, 5)
    path = tmp_path / "grouped.csv"
    with open(path, "w", encoding="utf-8") as fh:
        fh.write("headline,topic,source\n" + "".join(f"{h},{t},s{i % 9}\n" for i, (h, t) in enumerate(rows)))
    cfg = load_config("classify", "classify_tiny", [f"data.path={path}", "data.text_column=headline",
                                                    "data.label_column=topic", "data.val_fraction=0.25"])
    splits, classes, note = ClassifyTask(cfg).read_splits()
    assert [len(splits[s]) for s in ("train", "val", "test")] == [54, 18, 18]  # 20% test, then 25% of the rest
    for part in splits.values():
        assert np.bincount(part.labels).tolist() == [len(part) // 3] * 3  # each class in its proportion
    cfg.data.group_column = "source"
    splits, _, note = ClassifyTask(cfg).read_splits()
    assert not set(splits["train"].groups) & set(splits["val"].groups)
    assert note.startswith("validation: all texts of 2 of 7 groups")  # 2 of the 9 went to the test carve first


def test_a_folder_of_class_subfolders_trains(tmp_path):
    root = tmp_path / "folders"
    for topic in TOPICS:
        (root / topic).mkdir(parents=True)
    for i, (headline, topic) in enumerate(topic_rows(60, 6)):
        (root / topic / f"{i}.txt").write_text(headline, encoding="utf-8")
    cfg = load_config("classify", "classify_tiny", [f"data.path={root}", "train.epochs=1"])
    run = trainer.train(cfg, str(tmp_path / "run"))
    assert run.read_classes() == ["food", "sport", "tech"]


def test_imdb_star_ratings_are_ordinal_classes(imdb_archive, tmp_path):
    # imdb_rating's additions to the recurrent model: the n-gram logits and balanced class weights, trained together
    cfg = load_config("classify", "classify_tiny", [f"data.path={imdb_archive}", "data.labels=rating",
                                                    "train.epochs=1", "model.ngram_buckets=64", "model.ngram_scale=10",
                                                    "train.class_weight=balanced"])
    run = trainer.train(cfg, str(tmp_path / "run"))
    metrics = json.loads(run.metrics.read_text())
    assert metrics["classes"] == ["2", "8"]  # the fixture's reviews have 2 and 8 stars
    assert "test_mae" in metrics and "test_auc" in metrics and "all texts of" in metrics["validation"]
    with pytest.raises(UserError, match="data.labels = 'rating' reads the star ratings in the IMDb archive's file"):
        trainer.train(load_config("classify", "classify_tiny", ["data.path=news.csv", "data.labels=rating"]),
                      str(tmp_path / "other"))


def test_balanced_class_weights_train_a_skewed_csv(tmp_path):
    rows = topic_rows(120, 7)
    skewed = [row for i, row in enumerate(rows) if row[1] != "food" or i % 4 == 0]
    path = write_news_csv(tmp_path / "skewed.csv", skewed)
    cfg = load_config("classify", "classify_tiny", [f"data.path={path}", "data.text_column=headline",
                                                    "data.label_column=topic", "train.class_weight=balanced",
                                                    "train.epochs=1"])
    run = trainer.train(cfg, str(tmp_path / "run"))
    assert json.loads(run.metrics.read_text())["epochs"] == 1
    with pytest.raises(UserError, match="train.class_weight = 'balanced' is for classifiers"):
        load_config("charlm", "charlm_tiny", ["train.class_weight=balanced"])


def test_a_tfds_dataset_by_name(tmp_path):
    import tensorflow_datasets as tfds

    cfg = load_config("classify", "classify_tiny", ["data.path=tfds:ag_news_subset", "data.text_column=description",
                                                    "train.epochs=1", "data.val_fraction=0.2"])
    with tfds.testing.mock_data(num_examples=40):
        run = trainer.train(cfg, str(tmp_path / "run"))
    # mock_data draws labels among the dataset's four ClassLabel names; the classes are those drawn, by name.
    classes = run.read_classes()
    assert set(classes) <= {"World", "Sports", "Business", "Sci/Tech"} and len(classes) >= 2
    assert classes == sorted(classes)


def test_folder_layouts_a_user_may_give(tmp_path):
    # pos/ and neg/ class folders without IMDb's files are class folders, not the IMDb archive.
    root = tmp_path / "reviews"
    for split, rows in (("train", topic_rows(40, 8)), ("test", topic_rows(12, 9))):
        for i, (headline, topic) in enumerate(rows):
            label = "pos" if topic == "sport" else "neg"
            (root / split / label).mkdir(parents=True, exist_ok=True)
            (root / split / label / f"{topic}{i}.txt").write_text(headline, encoding="utf-8")
    cfg = load_config("classify", "classify_tiny", [f"data.path={root}", "train.epochs=1"])
    run = trainer.train(cfg, str(tmp_path / "run"))
    metrics = json.loads(run.metrics.read_text())
    assert metrics["classes"] == ["neg", "pos"] and metrics["test_texts"] == 12
    (root / "val" / "pos").mkdir(parents=True)
    with pytest.raises(UserError, match="holds train/ beside test, val: a folder of class folders either has one "
                                        "subfolder per class, or exactly train/ and test/"):
        trainer.train(cfg, str(tmp_path / "other"))


def test_groups_stay_whole_in_the_test_carve_and_test_files_need_no_group_column(news_csv, tmp_path):
    from tfseq.tasks.classify import ClassifyTask

    rows = topic_rows(90, 10)
    path = tmp_path / "grouped.csv"
    with open(path, "w", encoding="utf-8") as fh:
        fh.write("headline,topic,author\n" + "".join(f"{h},{t},a{i % 10}\n" for i, (h, t) in enumerate(rows)))
    base = [f"data.path={path}", "data.text_column=headline", "data.label_column=topic", "data.group_column=author"]
    splits, _, _ = ClassifyTask(load_config("classify", "classify_tiny", base)).read_splits()
    groups = {name: set(part.groups) for name, part in splits.items()}
    assert not groups["train"] & groups["test"] and not groups["train"] & groups["val"] and groups["test"]
    # The separate test file has no author column: it is never carved, so it needs none.
    splits, _, _ = ClassifyTask(load_config("classify", "classify_tiny", base + [
        f"data.test_path={news_csv[1]}"])).read_splits()
    assert len(splits["test"]) == 30
    with pytest.raises(UserError, match="data.group_column = 'author' names a column of a table"):
        ClassifyTask(load_config("classify", "classify_tiny", [f"data.path={tmp_path}", "data.group_column=author"]))


def test_an_unmasked_multiclass_model_serves_each_text_alone(news_csv, tmp_path):
    import tensorflow as tf

    from tfseq.serving import classify, export_run

    cfg = tiny_classify_config(news_csv, "train.epochs=1", "model.mask_zero=false", "model.pooling=last")
    run = trainer.train(cfg, str(tmp_path / "run"))
    texts = ["The coach", "soup and bread with cheese today " * 5, ""]
    together = classify(run.path, texts).probabilities
    alone = np.concatenate([classify(run.path, [t]).probabilities for t in texts])
    np.testing.assert_allclose(together, alone, rtol=1e-5, atol=1e-6)
    loaded = tf.saved_model.load(str(export_run(run.path, tmp_path / "exported")))  # kept: serve needs its variables
    served = loaded.serve(tf.constant(texts))
    np.testing.assert_allclose(served["probabilities"].numpy(), alone, rtol=1e-5, atol=1e-6)
    assert [label.decode() for label in served["label"].numpy()] == [["food", "sport", "tech"][i]
                                                                    for i in alone.argmax(1)]
    assert [c.decode() for c in loaded.classes().numpy()] == ["food", "sport", "tech"]
    from_savedmodel = classify(tmp_path / "exported", texts)  # predict's path for a SavedModel
    assert from_savedmodel.classes == ["food", "sport", "tech"] and not from_savedmodel.binary
    np.testing.assert_allclose(from_savedmodel.probabilities, alone, rtol=1e-5, atol=1e-6)


def test_a_run_without_its_class_list_is_refused_by_name(news_run, tmp_path):
    import shutil

    from tfseq.runs import load_trained

    copy = tmp_path / "copy"
    shutil.copytree(news_run.path, copy)
    (copy / "classes.json").unlink()
    with pytest.raises(UserError, match="classes.json is missing: the run's class names are lost"):
        load_trained(copy)


def test_an_interrupted_classify_run_resumes_to_the_same_weights_and_refuses_changed_data(news_csv, tmp_path,
                                                                                           monkeypatch):
    import shutil

    train, test_rows = news_csv
    data, test = tmp_path / "train.csv", tmp_path / "test.csv"
    shutil.copy(train, data)
    shutil.copy(test_rows, test)
    # With the n-gram model and its naive-Bayes ratios: they come back from the checkpoint with the weights.
    cfg = tiny_classify_config((data, test), "train.epochs=3", "model.ngram_buckets=64", "model.ngram_prior=nb")
    straight = json.loads(trainer.train(cfg, str(tmp_path / "straight")).metrics.read_text())
    original = trainer.RunCheckpoint.on_epoch_end

    def killed_after_epoch_1(self, epoch, logs=None):
        original(self, epoch, logs)
        if epoch == 0:
            raise KeyboardInterrupt

    monkeypatch.setattr(trainer.RunCheckpoint, "on_epoch_end", killed_after_epoch_1)
    with pytest.raises(KeyboardInterrupt):
        trainer.train(cfg, str(tmp_path / "resumed"))
    monkeypatch.setattr(trainer.RunCheckpoint, "on_epoch_end", original)
    # The same rows with one class renamed in both files: the same texts and the same class ids, other names.
    for path in (data, test):
        path.write_text(path.read_text(encoding="utf-8-sig").replace(",food\n", ",cooking\n"), encoding="utf-8")
    with pytest.raises(UserError, match="was trained on other data"):
        trainer.train(cfg, str(tmp_path / "resumed"))
    shutil.copy(train, data)
    shutil.copy(test_rows, test)
    resumed = json.loads(trainer.train(cfg, str(tmp_path / "resumed")).metrics.read_text())
    assert resumed["weights_sha256"] == straight["weights_sha256"] and resumed["epochs"] == 3


def test_the_naive_bayes_prior_comes_from_the_training_texts_and_is_saved_with_the_run(news_csv, tmp_path, capsys):
    from tfseq.models.ngram_prior import naive_bayes_ratios
    from tfseq.runs import load_trained
    from tfseq.tasks.classify import ClassifyTask

    cfg = tiny_classify_config(news_csv, "train.epochs=1", "model.ngram_buckets=512", "model.ngram_prior=nb",
                               "model.ngram_min_count=2")
    run = trainer.train(cfg, str(tmp_path / "run"))
    out = capsys.readouterr().out
    assert "n-gram prior: naive-Bayes log-count ratios of " in out and " buckets in 2 or more training texts" in out
    bag = load_trained(run.path).model.get_layer("ngrams")
    assert bag.hash == "mixed"
    task = ClassifyTask(cfg)
    expected = naive_bayes_ratios(bag, task.encoded["train"], task.num_classes, min_count=2)
    assert expected.shape == (512, 3) and np.ptp(expected) > 1.0
    np.testing.assert_allclose(bag.ratios.embeddings.numpy(), expected, rtol=1e-6)
    every = naive_bayes_ratios(bag, task.encoded["train"], task.num_classes)
    assert (~expected.any(axis=1)).sum() > (~every.any(axis=1)).sum()  # the buckets of one training text only
    # Not the validation texts': they differ from the training texts, and so do their ratios.
    assert not np.allclose(naive_bayes_ratios(bag, task.encoded["val"], task.num_classes, min_count=2), expected)
    # A run saved before model.ngram_hash existed reads as fnv, the hash its weights were trained with.
    config = run.path / "config.toml"
    config.write_text("".join(line for line in config.read_text().splitlines(True)
                              if not line.startswith("ngram_hash")))
    assert load_trained(run.path).model.get_layer("ngrams").hash == "fnv"


def test_limit_keeps_a_stratified_sample_per_split(news_csv):
    from tfseq.tasks.classify import ClassifyTask

    splits, _, _ = ClassifyTask(tiny_classify_config(news_csv, "data.limit=12")).read_splits()
    for part in splits.values():
        assert len(part) == 12 and np.bincount(part.labels).tolist() == [4, 4, 4]


def test_fold_val_trains_on_the_validation_texts_too_for_a_fixed_epoch_count(news_csv, tmp_path, monkeypatch):
    from tfseq.tasks.classify import ClassifyTask

    plain_task = ClassifyTask(tiny_classify_config(news_csv))
    plain = plain_task.encoded
    cfg = tiny_classify_config(news_csv, "data.fold_val=true", "train.epochs=2")
    folded = ClassifyTask(cfg)
    # Other training data: a run folder of one is refused when resumed as the other.
    again = ClassifyTask(tiny_classify_config(news_csv)).fingerprint()
    assert folded.fingerprint() != plain_task.fingerprint() == again
    assert len(folded.encoded["train"].labels) == len(plain["train"].labels) + len(plain["val"].labels)
    assert np.array_equal(folded.encoded["val"].labels, plain["val"].labels)
    assert np.array_equal(folded.encoded["test"].labels, plain["test"].labels)
    legends = []
    plot = trainer.plot_history
    monkeypatch.setattr(trainer, "plot_history",
                        lambda rows, run, label: legends.append(label) or plot(rows, run, label))
    run = trainer.train(cfg, str(tmp_path / "run"))
    metrics = json.loads(run.metrics.read_text())
    assert metrics["epochs"] == 2 and "best_epoch" not in metrics
    assert "folded into training" in metrics["validation"]
    # The learning curve does not call training texts plain "validation" either.
    assert legends == ["validation texts (trained on: data.fold_val)"] and run.plot.exists()
    assert plain_task.val_label == "validation"
    with pytest.raises(UserError, match="set train.early_stopping = 0 and train.epochs to the best epoch"):
        tiny_classify_config(news_csv, "data.fold_val=true", "train.early_stopping=1")


def test_the_command_line_refuses_a_missing_column_with_exit_2(news_csv, tmp_path):
    done = subprocess.run([PYTHON, "-m", "tfseq.train", "classify", "--data", str(news_csv[0]), "--set",
                           "data.text_column=title", "--run-dir", str(tmp_path / "run")], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 2 and done.stderr.strip() == (
        f"error: {news_csv[0]} has no column 'title'; its columns are: id, headline, topic; set data.text_column")
    assert not (tmp_path / "run").exists()
