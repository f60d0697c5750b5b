"""One harness for every registered task: train one epoch on a tiny fixture, reload the run, export it, and serve
the SavedModel in a process where tfseq cannot be imported; the served answers equal the reloaded run's."""
import json
import subprocess
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pytest

from conftest import PYTHON, TEST_POSITIVE, tiny_charlm_config, tiny_classify_config, tiny_tag_config
from tfseq import trainer
from tfseq.config import load_config
from tfseq.tasks.registry import TASKS

PROMPTS = ["The island", "Cyrus"]
GENERATE = dict(length=20, temperature=0.0, top_k=0, top_p=1.0, seed=0)


@dataclass
class Case:
    """How the harness drives one task.

    Args:
        config: request -> the run's config (one epoch on a fixture).
        inputs: what to send to the model.
        in_process: (run folder, inputs) -> answers, from the reloaded run.
        bare: Python that loads the SavedModel at `path` and prints the answers to `inputs` as JSON (tfseq blocked).
    """

    config: Callable
    inputs: list
    in_process: Callable
    bare: str


def classifier_answers(run, texts):
    from tfseq.serving import classify

    return classify(run, texts).probabilities.tolist()


def generated(run, prompts):
    from tfseq.config import SampleConfig
    from tfseq.generation.generate import sample_run

    options = SampleConfig(GENERATE["temperature"], GENERATE["top_k"], GENERATE["top_p"], GENERATE["seed"])
    return sample_run(run, prompts, GENERATE["length"], options).texts


def tag_answers(run, texts):
    from tfseq.tagging import tag_texts

    found = tag_texts(run, texts)
    return [[f"{token}/{tag}" for token, tag in zip(tokens, tags)] for tokens, tags in zip(found.tokens, found.tags)]


SERVE = "print(json.dumps(m.serve(tf.constant(inputs))['probabilities'].numpy().tolist()))"
CASES = {
    "charlm": Case(lambda request: tiny_charlm_config(request.getfixturevalue("small_book"), epochs=1,
                                                      steps_per_epoch=2),
                   PROMPTS, generated,
                   "out = m.generate(tf.constant(inputs), {length}, {temperature}, {top_k}, {top_p}, {seed})\n"
                   "print(json.dumps([t.decode() for t in out['text'].numpy()]))".format(**GENERATE)),
    # The lm case also carries model.fast_gru (a FastGRU with recurrent dropout) through export and serving.
    "lm": Case(lambda request: load_config("lm", "wordlm_tiny", [f"data.path={request.getfixturevalue('small_book')}",
                                                                  "train.epochs=1", "model.cell=gru",
                                                                  "model.fast_gru=true", "model.recurrent_dropout=0.1"]),
               ["The island", "Zzyzx the", "the cat"], generated,
               "out = m.generate(tf.constant(inputs), {length}, {temperature}, {top_k}, {top_p}, {seed})\n"
               "print(json.dumps([t.decode() for t in out['text'].numpy()]))".format(**GENERATE)),
    "sentiment": Case(lambda request: load_config("sentiment", "imdb_tiny", [
        f"data.path={request.getfixturevalue('imdb_archive')}", "data.limit=0", "train.epochs=1",
        "data.val_fraction=0.25"]), TEST_POSITIVE[:3] + ["", "zzz"], classifier_answers, SERVE),
    # The classify case also carries the word LM's tokenizer and the n-gram logits (with their naive-Bayes
    # ratios) through export and serving.
    "classify": Case(lambda request: tiny_classify_config(request.getfixturevalue("news_csv"), "train.epochs=1",
                                                          "data.tokenizer=words_lower", "model.ngram_buckets=256",
                                                          "model.ngram_prior=nb"),
                     ["The coach of the team", "soup and bread", "", "robot"], classifier_answers, SERVE),
    "tag": Case(lambda request: tiny_tag_config(request.getfixturevalue("tagged_files"), "train.epochs=1"),
                ["Emma lives in Oslo .", "", "did Hugo Marsh visit Cape Town ?"], tag_answers,
                "out = m.serve(tf.constant(inputs))\n"
                "print(json.dumps([[f'{t.decode()}/{g.decode()}' for t, g in zip(ts[:n], gs[:n])] for ts, gs, n in "
                "zip(out['tokens'].numpy(), out['tags'].numpy(), out['lengths'].numpy())]))"),
}


def test_every_registered_task_has_a_harness_case():
    assert set(CASES) == set(TASKS)


@pytest.mark.parametrize("name", sorted(TASKS))
def test_task_trains_reloads_exports_and_serves_without_tfseq(name, request, tmp_path):
    from tfseq.runs import load_trained
    from tfseq.serving import export_run

    case = CASES[name]
    run = trainer.train(case.config(request), str(tmp_path / "run"))
    assert json.loads(run.metrics.read_text())["epochs"] == 1
    trained = load_trained(run.path)
    assert trained.cfg == case.config(request) and trained.vocab == run.read_vocab()
    out = export_run(run.path, tmp_path / "exported")
    script = ("import sys, json\nsys.modules['tfseq'] = None\nimport tensorflow as tf\n"
              f"m = tf.saved_model.load({str(out)!r})\ninputs = json.loads(sys.stdin.read())\n" + case.bare)
    bare = subprocess.run([PYTHON, "-c", script], cwd=tmp_path, capture_output=True, text=True,
                          input=json.dumps(case.inputs), timeout=300)
    assert bare.returncode == 0, bare.stderr[-2000:]
    served = json.loads(bare.stdout.strip().splitlines()[-1])
    expected = case.in_process(run.path, case.inputs)
    if isinstance(expected[0], str) or isinstance(expected[0][0], str):  # texts, or token/TAG pairs
        assert served == expected
    else:
        np.testing.assert_allclose(served, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", sorted(TASKS))
def test_a_bad_config_is_refused_before_tensorflow_is_imported(name):
    # TensorFlow and Keras are made unimportable: the registry, every task module and the config checks must not
    # need them, and the refusal must come first.
    script = ("import sys\nsys.modules['tensorflow'] = sys.modules['keras'] = None\n"
              "from tfseq.train import main\nmain(sys.argv[1:])\n")
    done = subprocess.run([PYTHON, "-c", script, name, "--set", "model.units=0"], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 2 and done.stderr.strip() == "error: model.units = 0 must be greater than 0", done.stderr
    helped = subprocess.run([PYTHON, "-c", script, "--help"], capture_output=True, text=True, timeout=120)
    assert helped.returncode == 0 and f"{name}: " in helped.stdout
