"""Smoke runs of the entry points as a user runs them: separate processes, exit codes, stdout and stderr."""
import subprocess

import pytest

from conftest import PYTHON, ROOT


def tfseq(*args, stdin=None, timeout=300):
    return subprocess.run([PYTHON, "-m", *args], cwd=ROOT, capture_output=True, text=True, input=stdin,
                          timeout=timeout)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, small_book):
    run_dir = tmp_path_factory.mktemp("cli") / "run"
    done = tfseq("tfseq.train", "charlm", "--config", "pipelines/charlm_tiny.toml", "--data", str(small_book),
                 "--set", "data.start_marker=", "--epochs", "1", "--run-dir", str(run_dir))
    assert done.returncode == 0, done.stderr
    assert "loss: " in done.stdout and "val_loss: " in done.stdout  # the per-epoch progress line
    return run_dir


def test_train_then_sample_is_reproducible(tiny_run):
    args = ("tfseq.sample", str(tiny_run), "--prompt", "The island", "--length", "120", "--temperature", "0.8",
            "--seed", "1")
    first, second = tfseq(*args), tfseq(*args)
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith("The island") and len(first.stdout) >= 130
    assert first.stdout == second.stdout
    assert first.stderr.strip() == ""  # TensorFlow's start-up chatter is filtered


@pytest.mark.parametrize("args, message", [
    (("tfseq.train", "charlm", "--set", "model.unitz=3"), "unknown config key 'model.unitz'"),
    (("tfseq.train", "charlm", "--config", "nope"), "config file 'nope' not found"),
    (("tfseq.train", "charlm", "--epochs", "0"), "train.epochs = 0 must be greater than 0"),
    (("tfseq.train", "charlm", "--data", "missing.txt", "--run-dir", "/tmp/tfseq-never-made"),
     "corpus missing.txt does not exist; give a text file, a folder of .txt files"),
    (("tfseq.train", "charlm", "--epochs", "x"), "argument --epochs: invalid int value: 'x' (see --help)"),
    (("tfseq.sample", "/nonexistent/run"), "run folder /nonexistent/run does not exist"),
    (("tfseq.sample", "x", "--temperature", "-1"), "temperature = -1.0 must be >= 0"),
    (("tfseq.sample", "x", "--top-p", "1.5"), "top_p = 1.5 must be in (0, 1]"),
    (("tfseq.sample", "x", "--top-k", "-1"), "top_k = -1 must be >= 0"),
    (("tfseq.sample", "x", "--scale-factor", "0"), "--scale-factor 0.0 must be > 0"),
    (("tfseq.sample", "x", "--temperature", "1", "--scale-factor", "2"), "not allowed with argument"),
])
def test_user_errors_are_one_line_with_exit_code_2(args, message):
    done = tfseq(*args)
    assert done.returncode == 2, done.stderr
    assert message in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("args, message", [
    (("--prompt", "Ω island"), "not in the model's vocabulary: 'Ω'"),
    (("--prompt", ""), "the prompt is empty"),
    (("--length", "0"), "length = 0 must be between 1 and 10,000,000"),
])
def test_sample_refuses_bad_prompts_and_lengths(tiny_run, args, message):
    done = tfseq("tfseq.sample", str(tiny_run), *args)
    assert done.returncode == 2 and message in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_exported_generator_gives_the_same_text_without_tfseq(tiny_run, tmp_path):
    out = tmp_path / "generator"
    done = tfseq("tfseq.export", str(tiny_run), "--out", str(out))
    assert done.returncode == 0, done.stderr
    sampled = tfseq("tfseq.sample", str(tiny_run), "--prompt", "The island", "--length", "80", "--seed", "4",
                    "--temperature", "0.7", "--top-k", "20")
    script = (
        "import sys\n"
        "sys.modules['tfseq'] = None\n"
        "import tensorflow as tf\n"
        f"m = tf.saved_model.load({str(out)!r})\n"
        "r = m.generate(tf.constant(['The island']), tf.constant(80), tf.constant(0.7), tf.constant(20), "
        "tf.constant(1.0), tf.constant(4, tf.int64))\n"
        "sys.stdout.write(r['text'].numpy()[0].decode())\n"
    )
    bare = subprocess.run([PYTHON, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert bare.returncode == 0, bare.stderr
    assert bare.stdout == sampled.stdout.rstrip("\n") and len(bare.stdout) == len("The island") + 80
    from_savedmodel = tfseq("tfseq.sample", str(out), "--prompt", "The island", "--length", "80", "--seed", "4",
                            "--scale-factor", str(1 / 0.7), "--top-k", "20")
    assert from_savedmodel.stdout == sampled.stdout
    stop = sampled.stdout[30:32]
    cut_run = tfseq("tfseq.sample", str(tiny_run), "--prompt", "The island", "--length", "80", "--seed", "4",
                    "--temperature", "0.7", "--top-k", "20", "--stop", stop)
    cut_saved = tfseq("tfseq.sample", str(out), "--prompt", "The island", "--length", "80", "--seed", "4",
                      "--temperature", "0.7", "--top-k", "20", "--stop", stop)
    assert cut_run.stdout == cut_saved.stdout and len(cut_run.stdout) <= 31
    several = tfseq("tfseq.sample", str(tiny_run), "--prompt", "The island", "--prompt", "Cyrus", "--length", "40",
                    "--num-samples", "2", "--temperature", "0")
    texts = several.stdout.rstrip("\n").split("\n\n")
    assert several.returncode == 0 and len(texts) == 4 and texts[0] == texts[1] and texts[2].startswith("Cyrus")
    refused = tfseq("tfseq.sample", str(out), "--prompt", "Ω")
    assert refused.returncode == 2 and "refused the prompt: prompt character not in the vocabulary" in refused.stderr


def test_predict_refuses_a_charlm_run(tiny_run):
    done = tfseq("tfseq.predict", str(tiny_run), "a review")
    assert done.returncode == 2
    assert "is a charlm run, which python -m tfseq.predict cannot use; use python -m tfseq.sample with it" in done.stderr


@pytest.mark.parametrize("module", ["tfseq.train", "tfseq.sample", "tfseq.export", "tfseq.predict", "tfseq.ensemble"])
def test_help_explains_every_option(module):
    import importlib

    done = tfseq(module, "--help")
    assert done.returncode == 0
    parser = importlib.import_module(module).build_parser()
    help_text = " ".join(done.stdout.split())
    for action in parser._actions:
        if action.dest == "help":
            continue
        name = action.option_strings[-1] if action.option_strings else (action.metavar or action.dest)
        assert action.help and len(action.help) > 15, (module, name)  # a sentence, not a placeholder
        assert name in help_text and " ".join(action.help.split()[:4]).replace("%(default)s", "") in help_text, \
            (module, name)
    if module == "tfseq.train":
        from tfseq.tasks.registry import TASKS

        for name, spec in TASKS.items():  # every task, with what it trains and what --data takes
            assert f"{name}: {' '.join(spec.summary.split()[:3])}" in help_text and spec.default_pipeline in help_text
