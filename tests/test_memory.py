"""tfseq.models.memory: parameter formulas against Keras' counts, activation bytes by hand, the sizes a plan chooses,
and the estimate against the memory one training step really takes on a CPU."""
import json
import os
import resource
import subprocess

import keras
import pytest

from conftest import PYTHON, ROOT
from tfseq.config import default_config, dumps_toml
from tfseq.data.text import CharVocab, save_vocab
from tfseq.errors import UserError
from tfseq.models.factory import parameter_count
from tfseq.models.memory import estimate_memory, layer_parameters, make_plan, plan_summary


def config(task: str, batch_size: int = 4, **model):
    """A checked RunConfig of `task` with these model fields."""
    cfg = default_config(task)
    for key, value in model.items():
        setattr(cfg.model, key, value)
    cfg.train.batch_size = batch_size
    cfg.check()
    return cfg


LANGUAGE_MODELS = [dict(cell=cell, layers=layers, units=7, embedding_dim=5)
                   for cell in ("lstm", "gru", "simplernn") for layers in (1, 2, 3)]
LANGUAGE_MODELS += [dict(cell="lstm", layers=2, units=6, embedding_dim=4, tie_embeddings=True, dropout=0.1),
                    dict(cell="gru", units=5, embedding_dim=3, embedding_dropout=0.2, recurrent_dropout=0.1)]
CLASSIFIERS = [dict(cell=cell, layers=layers, bidirectional=True, units=6, embedding_dim=5, pooling="max_mean",
                    hidden_units=4, head="multiclass", num_classes=5, mask_zero=True)
               for cell in ("lstm", "gru", "simplernn") for layers in (1, 3)]
CLASSIFIERS += [dict(cell="gru", units=4, embedding_dim=6, bigram_buckets=50, token_dropout=0.1, head="binary",
                     mask_zero=True, pooling=pooling) for pooling in ("last", "mean", "max")]
CLASSIFIERS += [dict(cell="lstm", units=3, embedding_dim=2, layers=2, dropout=0.3, embedding_dropout=0.1,
                     head="multiclass", num_classes=3, hidden_units=7)]
CLASSIFIERS += [dict(cell="gru", units=4, embedding_dim=3, bidirectional=True, mask_zero=True, pooling="max_mean",
                     head=head, num_classes=4, ngram_buckets=40) for head in ("binary", "multiclass")]

TAGGERS = [dict(cell=cell, units=6, embedding_dim=5, char_features=chars, layers=2, num_classes=4)
           for cell in ("lstm", "gru") for chars in (0, 7)]


@pytest.mark.parametrize("task, model", [("charlm", m) for m in LANGUAGE_MODELS] +
                         [("classify", m) for m in CLASSIFIERS] + [("tag", m) for m in TAGGERS])
def test_formulas_equal_keras_counts(task, model):
    cfg = config(task, **model)
    estimate = estimate_memory(make_plan(cfg, vocab_size=17, time_steps=5))
    for layer in estimate.layers:
        assert layer.source == "formula", layer.name
        assert layer.params == layer.keras_params, layer.name
        assert layer.weight_bytes == 4 * layer.params
        assert layer.optimizer_bytes == 12 * layer.params
    totals = estimate.totals
    assert totals["params"] == totals["keras_params"] == parameter_count(cfg.model, 17, cfg.model.num_classes)


def test_formulas_of_layer_kinds_the_factory_does_not_use():
    inputs = keras.Input((None, 6))
    made = [keras.layers.Conv1D(8, 3, groups=2), keras.layers.Conv1D(4, 5, use_bias=False),
            keras.layers.GRU(5, reset_after=False), keras.layers.LSTM(3, use_bias=False),
            keras.layers.Dense(2, use_bias=False), keras.layers.LayerNormalization()]
    for layer in made:
        layer(inputs)
    assert [layer_parameters(layer) for layer in made[:5]] == [3 * 3 * 8 + 8, 5 * 6 * 4, 3 * 5 * (6 + 5 + 1),
                                                               4 * 3 * (6 + 3), 6 * 2]
    assert [layer_parameters(layer) for layer in made[:5]] == [layer.count_params() for layer in made[:5]]
    assert layer_parameters(made[5]) is None  # no formula: the summary shows Keras' count, marked as such


def test_activation_bytes_by_hand():
    """LSTM 8 units, embedding 4, 10 ids, batch 2 x 3 steps: every tensor counted, in float32 and mixed."""
    cfg = config("charlm", batch_size=2, cell="lstm", units=8, embedding_dim=4)
    estimate = estimate_memory(make_plan(cfg, vocab_size=10, time_steps=3))
    by_layer = {layer.name: layer.activation_bytes for layer in estimate.layers}
    # ids int32; embedding 2x3x4; LSTM 3 steps x 2 x (4 gates x 8 + h 8 + c 8); logits 2x3x10 and their gradient
    assert by_layer == {"ids": 2 * 3 * 4, "embedding": 2 * 3 * 4 * 4, "rnn_0": 3 * 2 * (32 + 8 + 8) * 4,
                        "logits": 2 * 2 * 3 * 10 * 4}
    assert [layer.output_shape for layer in estimate.layers] == [[2, 3], [2, 3, 4], [2, 3, 8], [2, 3, 10]]
    params = 10 * 4 + 4 * 8 * (4 + 8 + 1) + 8 * 10 + 10
    assert estimate.totals == {"params": params, "keras_params": params, "weight_bytes": 4 * params,
                               "optimizer_bytes": 12 * params, "activation_bytes": 1752,
                               "total_bytes": 16 * params + 1752}
    cfg.train.mixed_precision = True
    mixed = estimate_memory(make_plan(cfg, vocab_size=10, time_steps=3))
    assert mixed.activation_dtype == "float16"
    assert [layer.activation_bytes for layer in mixed.layers] == [24, 48, 576, 480]  # the logits stay float32


def test_bidirectional_tied_and_dropout_tensors():
    cfg = config("classify", batch_size=2, cell="gru", units=4, embedding_dim=3, bidirectional=True,
                 embedding_dropout=0.1, dropout=0.2, head="binary", mask_zero=True, pooling="mean")
    layers = {layer.name: layer for layer in estimate_memory(make_plan(cfg, vocab_size=9, time_steps=5)).layers}
    rnn = {term["tensor"]: term["bytes"] for term in layers["rnn_0"].activations}
    assert rnn == {"forward gate activations (3 gates)": 5 * 2 * 12 * 4, "forward hidden state h per step": 160,
                   "backward gate activations (3 gates)": 480, "backward hidden state h per step": 160,
                   "concatenated output": 2 * 5 * 8 * 4}
    assert [t["shape"] for t in layers["embedding_dropout"].activations] == [[2, 5, 3], [2, 1, 3]]
    assert [t["shape"] for t in layers["dropout_0"].activations] == [[2, 5, 8], [2, 5, 8]]
    assert layers["rnn_0"].cell == "GRU" and layers["rnn_0"].cudnn == []
    tied = config("charlm", batch_size=2, cell="lstm", units=4, embedding_dim=3, tie_embeddings=True,
                  recurrent_dropout=0.1)
    layers = {layer.name: layer for layer in estimate_memory(make_plan(tied, vocab_size=9, time_steps=5)).layers}
    assert [t["shape"] for t in layers["embedding"].activations] == [[2, 5, 3], [2, 5, 9]]  # ids in, tied logits out
    assert [t["tensor"] for t in layers["logits"].activations] == ["output", "loss gradient"]
    assert layers["rnn_0"].cudnn == ["recurrent_dropout = 0.1 (set model.recurrent_dropout = 0 and regularise with "
                                     "model.dropout)"]


def test_a_huge_config_is_summarised_without_allocating_its_weights():
    cfg = config("charlm", cell="lstm", units=4096, embedding_dim=4096, layers=2)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    estimate = estimate_memory(make_plan(cfg, vocab_size=100_000, time_steps=10))
    with keras.StatelessScope():  # closing a scope initialises pending variables: ours must not be pending
        pass
    grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) * 1024
    assert estimate.totals["params"] > 600_000_000  # 2.4 GB of float32 weights, had they been made
    assert grown < 300 * 2**20


@pytest.mark.parametrize("pipeline, sizes, expected", [
    ("charlm_tiny", {}, {"time_steps": (32, "data.seq_len"), "vocab_size": (100, "assumed")}),
    ("classify_tiny", {}, {"time_steps": (64, "data.max_length = 64"),
                           "vocab_size": (2002, "at most data.max_tokens = 2000 + 2 reserved ids"),
                           "num_classes": (2, "assumed")}),
    ("imdb_tiny", {}, {"time_steps": (160, "data.max_length = 150 padded to a multiple of data.pad_multiple = 16"),
                       "vocab_size": (5002, "at most data.max_tokens = 5000 + 2 reserved ids")}),
    ("classify_tiny", {"time_steps": 7, "vocab_size": 30, "num_classes": 4},
     {"time_steps": (7, "--time-steps"), "vocab_size": (30, "--vocab-size"), "num_classes": (4, "--num-classes")}),
])
def test_plan_sizes_and_their_sources(pipeline, sizes, expected):
    plan = plan_summary(config=pipeline, **sizes)
    assert {key: (getattr(plan, key), plan.sources[key]) for key in plan.sources} == expected
    assert len(plan.notes) == sum(source == "assumed" for _, source in expected.values())


def test_plan_of_a_run_folder_reads_its_vocabulary(tmp_path):
    cfg = config("charlm", cell="gru", units=8, embedding_dim=4)
    (tmp_path / "config.toml").write_text(dumps_toml(cfg))
    save_vocab(CharVocab(list("abcdefg")), tmp_path / "vocab.json")
    plan = plan_summary(str(tmp_path), overrides=["train.batch_size=3"])
    assert (plan.vocab_size, plan.sources["vocab_size"], plan.batch_size) == (7, "the run's vocab.json", 3)
    assert plan_summary(str(tmp_path), vocab_size=50).vocab_size == 50


@pytest.mark.parametrize("kwargs, message", [
    ({"config": "charlm_tiny", "time_steps": -1}, "--time-steps -1 is out of range; allowed: 1 to 2147483647"),
    ({"config": "charlm_tiny", "vocab_size": 1}, "--vocab-size 1 is out of range; allowed: 2 to"),
    ({"config": "charlm_tiny", "overrides": ["model.unitz=3"]}, "unknown config key 'model.unitz'"),
    ({"run": "/nonexistent/run"}, "run folder /nonexistent/run does not exist"),
    ({}, "give a run folder or --config FILE"),
])
def test_plan_refusals(kwargs, message):
    with pytest.raises(UserError, match=message.replace("(", r"\(").replace(")", r"\)")):
        plan_summary(**kwargs)


def test_a_pipeline_without_a_task_line_is_refused(tmp_path):
    path = tmp_path / "no_task.toml"
    path.write_text("[model]\nunits = 8\n")
    with pytest.raises(UserError, match="no_task.toml names no task; add a line such as task = "):
        plan_summary(config=str(path))


# One training step of each model in a fresh process: RSS after building the model and Adam's state, and the peak
# RSS of a second step (the first traces the step function: its graph memory is no activation). glibc is told to
# mmap every block from 4 KiB and to trim its heap, so memory freed by the first step goes back to the system and
# the second step's peak shows what it allocates (otherwise it reuses the first step's freed heap, unseen).
MEASURE = r"""
import json, sys
import numpy as np
import keras
from tfseq.config import default_config
from tfseq.models.factory import build_model
from tfseq.models.heads import get_head
from tfseq.models.memory import estimate_memory, make_plan
from tfseq.trainer import make_optimizer

def status(key):
    return next(int(line.split()[1]) * 1024 for line in open("/proc/self/status") if line.startswith(key))

for task, model, batch, steps, vocab, classes in json.loads(sys.argv[1]):
    cfg = default_config(task)
    cfg.model.__dict__.update(model)
    cfg.train.batch_size = batch
    cfg.check()
    estimate = estimate_memory(make_plan(cfg, vocab_size=vocab, time_steps=steps, num_classes=classes))
    rng = np.random.default_rng(0)
    x = rng.integers(1, vocab, (batch, steps)).astype("int32")
    y = rng.integers(0, vocab, (batch, steps)) if cfg.model.head == "next_token" else rng.integers(0, classes, batch)
    start = status("VmRSS")
    net = build_model(cfg.model, vocab, classes)
    net.compile(optimizer=make_optimizer(cfg.train, 10), loss=get_head(cfg.model.head).loss())
    net.optimizer.build(net.trainable_variables)
    built = status("VmRSS")
    net.train_on_batch(x, y)
    open("/proc/self/clear_refs", "w").write("5")  # resets VmHWM to the current RSS
    before = status("VmRSS")
    net.train_on_batch(x, y)
    measured = built - start + status("VmHWM") - before
    print(json.dumps({"model": f"{task} {model['cell']}", "estimate": estimate.totals["total_bytes"],
                      "measured": measured}))
"""


def test_estimate_against_the_memory_of_one_training_step_on_a_cpu():
    """The ratio measured / estimated must lie in [0.5, 3]. The estimate counts what a fused (cuDNN-like) kernel
    keeps per step; TensorFlow's step-by-step loop on a CPU keeps more intermediates (tanh(c), the recurrent
    products, mask selects: about 2x for a masked bidirectional GRU), while a language model's memory is mostly its
    logits and their gradient, which the estimate counts exactly. Seen here: about 0.8 for the language model and 1.8
    for the classifier, steady from run to run."""
    models = [
        ("charlm", {"cell": "lstm", "units": 256, "embedding_dim": 64}, 64, 100, 2000, 0),
        ("classify", {"cell": "gru", "units": 128, "embedding_dim": 64, "bidirectional": True, "mask_zero": True,
                      "pooling": "max_mean", "head": "multiclass", "num_classes": 4}, 64, 200, 2000, 4),
    ]
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "4096", "MALLOC_TRIM_THRESHOLD_": "0", "TF_CPP_MIN_LOG_LEVEL": "3",
           "TF_NUM_INTRAOP_THREADS": "1"}
    done = subprocess.run([PYTHON, "-c", MEASURE, json.dumps(models)], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    for line in done.stdout.splitlines():
        found = json.loads(line)
        ratio = found["measured"] / found["estimate"]
        print(f"{found['model']}: estimated {found['estimate'] / 2**20:.1f} MiB, measured "
              f"{found['measured'] / 2**20:.1f} MiB, ratio {ratio:.2f}")
        assert 0.5 <= ratio <= 3, found
    assert len(done.stdout.splitlines()) == len(models)
