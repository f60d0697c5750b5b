"""The tag task: CoNLL / JSON-lines data to a bidirectional tagger with a character CNN, masked loss and metrics,
per-tag and chunk scores, token/TAG predictions and a served `serve(text) -> {tokens, tags, lengths}`."""
import json
import subprocess

import pytest

from conftest import PYTHON, tiny_tag_config
from tfseq import trainer
from tfseq.errors import UserError


def test_char_ids_hash_the_first_and_last_eight_code_points_of_long_words():
    import tensorflow as tf

    from tfseq.data.tag_encoding import char_ids

    ids = char_ids(tf.constant(["ab", "abcdefghijklmnopqrstuvwxyz", "é"])).numpy()
    assert ids.shape == (3, 16)
    assert ids[0].tolist() == [1 + 97, 1 + 98] + [0] * 14
    # a..h, then s..z: the middle of a long word is skipped.
    assert ids[1].tolist() == [1 + c for c in range(97, 105)] + [1 + c for c in range(115, 123)]
    assert ids[2].tolist() == [1 + 0xE9] + [0] * 15


def test_the_vocabulary_comes_from_training_tokens_and_lowercases_as_serving_does():
    from tfseq.data.tag_encoding import TagEncoder, build_tag_vocab

    vocab = build_tag_vocab(["The", "the", "ÉCOLE", "cat", "The"], lowercase=True, min_count=2)
    assert vocab.tokens == ["the"] and vocab.tokenizer == "split_lower"
    words, chars = TagEncoder(build_tag_vocab(["The", "ÉCOLE"], lowercase=True)).encode_flat(["THE", "école", "x"],
                                                                                              with_chars=True)
    assert words.tolist() == [1, 2, 3] and chars.shape == (3, 16)  # 3: unknown


def test_a_tagger_learns_a_tiny_set_by_heart_with_the_loss_masked_to_real_tokens(tagged_files, tmp_path):
    cfg = tiny_tag_config(tagged_files, "train.epochs=25", "data.limit=12", "model.units=32")
    run = trainer.train(cfg, str(tmp_path / "run"))
    metrics = json.loads(run.metrics.read_text())
    history = run.read_history()
    assert history[-1]["accuracy"] > 0.99 and history[-1]["loss"] < 0.1
    for key in ("val_accuracy", "test_accuracy", "test_f1_non_O", "test_macro_f1_non_O", "test_chunk_f1"):
        assert 0.0 <= metrics[key] <= 1.0, key
    assert metrics["tags"][0] == "O" and set(metrics["tags"]) <= {"O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG",
                                                                  "I-ORG"}
    assert (run.path / "confusion.json").is_file() and (run.path / "confusion.png").is_file()


def test_padding_and_neighbours_do_not_change_a_sentences_tags(tagged_files, tmp_path):
    from tfseq.tagging import tag_texts

    run = trainer.train(tiny_tag_config(tagged_files, "train.epochs=1"), str(tmp_path / "run"))
    texts = ["Emma lives in Oslo .", "did Hugo Marsh visit the beautiful old city of Cape Town last year ?", ""]
    together = tag_texts(run.path, texts)
    alone = [tag_texts(run.path, [t]) for t in texts]
    assert together.tags == [a.tags[0] for a in alone]
    assert together.tokens[2] == [] and together.tokens[0] == ["Emma", "lives", "in", "Oslo", "."]


def test_predict_prints_token_tag_pairs_for_a_run_and_its_export(tagged_files, tmp_path):
    run = trainer.train(tiny_tag_config(tagged_files, "train.epochs=1"), str(tmp_path / "run"))
    exported = subprocess.run([PYTHON, "-m", "tfseq.export", str(run.path)], capture_output=True, text=True,
                              timeout=300)
    assert exported.returncode == 0, exported.stderr
    outputs = []
    for source in (run.path, run.path / "savedmodel"):
        done = subprocess.run([PYTHON, "-m", "tfseq.predict", str(source), "Emma lives in Oslo ."],
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        outputs.append(done.stdout)
    pairs = outputs[0].split()
    assert [p.rsplit("/", 1)[0] for p in pairs] == ["Emma", "lives", "in", "Oslo", "."]
    assert all(p.rsplit("/", 1)[1] in {"O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG", "I-ORG"} for p in pairs)
    assert outputs[0] == outputs[1]
    done = subprocess.run([PYTHON, "-m", "tfseq.predict", str(run.path), "--json", "a b"], capture_output=True,
                          text=True, timeout=300)
    row = json.loads(done.stdout)
    assert row["tokens"] == ["a", "b"] and len(row["tags"]) == 2 and row["text"] == "a b"
    # A SavedModel whose tfseq.json does not name its head (or has none) is still known as a tagger, by loading it.
    from tfseq.tagging import is_tagger

    record = run.path / "savedmodel" / "tfseq.json"
    assert json.loads(record.read_text())["head"] == "per_token" and is_tagger(run.path / "savedmodel")
    record.write_text(json.dumps({"task": "tag"}))
    assert is_tagger(run.path / "savedmodel")
    record.unlink()
    assert is_tagger(run.path / "savedmodel")


def test_an_unknown_words_spelling_is_part_of_the_data_fingerprint(tmp_path):
    from conftest import write_conll
    from tfseq.config import load_config
    from tfseq.tasks.tag import TagTask

    rows = [[("the", "O"), ("cat", "O"), ("Zorg", "B-PER")], [("the", "O"), ("Zorg", "B-PER")]] * 5
    prints = []
    for rare in ("Quib", "Quox"):  # seen once: outside the vocabulary (min_count 2), known by its characters only
        path = write_conll(tmp_path / f"{rare}.conll", rows + [[("a", "O"), (rare, "B-PER")]])
        cfg = load_config("tag", "tag_tiny", [f"data.path={path}", "data.min_count=2", "data.carve=last"])
        task = TagTask(cfg)
        assert rare not in task.vocab.tokens
        prints.append(task.fingerprint())
    assert prints[0] != prints[1]


def test_a_jsonl_file_trains_with_a_carved_test_split(tmp_path):
    from conftest import TRAIN_ORGS, TRAIN_PEOPLE, TRAIN_PLACES, tagged_sentences
    from tfseq.config import load_config

    path = tmp_path / "data.jsonl"
    rows = tagged_sentences(TRAIN_PEOPLE, TRAIN_PLACES, TRAIN_ORGS, 40, 3)
    path.write_text("\n".join(json.dumps({"tokens": [t for t, _ in r], "tags": [g for _, g in r]}) for r in rows))
    run = trainer.train(load_config("tag", "tag_tiny", [f"data.path={path}", "train.epochs=1"]),
                        str(tmp_path / "run"))
    metrics = json.loads(run.metrics.read_text())
    assert metrics["test_sentences"] == 8 and "random" in metrics["validation"]


@pytest.mark.parametrize("overrides, message", [
    (["model.mask_zero=false"], "head = 'per_token' needs model.mask_zero = true"),
    (["model.head=multiclass"], "task tag trains model.head = 'per_token'"),
    (["train.class_weight=balanced"], "train.class_weight = 'balanced' is for classifiers"),
    (["data.carve=middle"], "data.carve = 'middle' is not allowed; choose one of: random, last"),
])
def test_bad_tag_settings_are_refused_with_the_setting_named(tagged_files, overrides, message):
    with pytest.raises(UserError, match=message.replace("(", r"\(").replace(")", r"\)")):
        tiny_tag_config(tagged_files, *overrides)


def test_char_features_are_refused_outside_taggers():
    from tfseq.config import load_config

    with pytest.raises(UserError, match="model.char_features is for taggers"):
        load_config("charlm", "charlm_tiny", ["model.char_features=8"])


def test_train_tag_without_data_says_what_to_give(tmp_path):
    done = subprocess.run([PYTHON, "-m", "tfseq.train", "tag", "--run-dir", str(tmp_path / "r")],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 2 and "no data given: pass --data FILE" in done.stderr


def test_a_test_tag_unknown_to_training_is_scored_as_wrong(tagged_files, tmp_path):
    from conftest import TEST_ORGS, TEST_PEOPLE, TEST_PLACES, tagged_sentences, write_conll

    rows = tagged_sentences(TEST_PEOPLE, TEST_PLACES, TEST_ORGS, 10, 5)
    rows[0] = [(t, "B-MISC") for t, _ in rows[0]]
    test = write_conll(tmp_path / "test.conll", rows)
    run = trainer.train(tiny_tag_config((tagged_files[0], test), "train.epochs=1"), str(tmp_path / "run"))
    metrics = json.loads(run.metrics.read_text())
    assert "B-MISC" not in metrics["tags"]
    # The B-MISC sentence's tokens are all wrong, whatever the model says.
    assert metrics["test_accuracy"] <= 1 - len(rows[0]) / sum(len(r) for r in rows) + 1e-9


def test_truecasing_imdb_is_scored_on_the_test_reviews_and_on_non_initial_words(imdb_archive, tmp_path):
    from conftest import TEST_ONLY_WORD
    from tfseq.config import load_config

    cfg = load_config("tag", "tag_tiny", [f"data.path={imdb_archive}", "data.derive=truecase", "train.epochs=1"])
    run = trainer.train(cfg, str(tmp_path / "run"))
    metrics = json.loads(run.metrics.read_text())
    assert metrics["validation"].startswith(f"test: the test sentences of {imdb_archive}")
    from tfseq.tasks.tag import TagTask

    task = TagTask(cfg)  # the word only test reviews have reaches the test split, never training or validation
    assert any(TEST_ONLY_WORD in s for s in task.splits["test"].tokens)
    assert not any(TEST_ONLY_WORD in s for part in ("train", "val") for s in task.splits[part].tokens)
    assert 0 <= metrics["test_accuracy_non_initial"] <= 1 and set(metrics["tags"]) <= {"lower", "Title", "UPPER",
                                                                                       "mixed"}
