import dataclasses

import pytest
from conftest import ROOT

from tfseq.config import (PIPELINES_DIR, ModelConfig, RunConfig, apply_override, config_from_dict, default_config,
                          dumps_toml, load_config)
from tfseq.errors import UserError
import tomllib


@pytest.mark.parametrize("path", sorted(PIPELINES_DIR.glob("*.toml")), ids=lambda p: p.stem)
def test_every_pipeline_loads_and_round_trips(path):
    task = tomllib.loads(path.read_text())["task"]
    cfg = load_config(task, str(path))
    assert cfg.pipeline == path.stem
    again = config_from_dict(tomllib.loads(dumps_toml(cfg)), "round trip")
    assert again == cfg


def test_default_pipeline_and_overrides():
    cfg = load_config("charlm", None, ["model.cell=lstm", "train.learning_rate=2e-3", "model.bidirectional=false",
                                       "data.start_marker='CHAPTER I'", "train.epochs=3"])
    assert cfg.pipeline == "charlm_quick"
    assert (cfg.model.cell, cfg.train.learning_rate, cfg.train.epochs) == ("lstm", 2e-3, 3)
    assert cfg.data.start_marker == "CHAPTER I"


def test_every_field_has_a_default_and_a_comment():
    import inspect
    import re

    from tfseq.config import SampleConfig, TrainConfig
    from tfseq.tasks.registry import TASKS

    sections = [RunConfig, ModelConfig, TrainConfig, SampleConfig] + [spec.data for spec in TASKS.values()]
    for section in sections:
        assert dataclasses.fields(section), section
        for f in dataclasses.fields(section):
            assert f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING, f.name
            owner = next(c for c in section.__mro__ if f.name in getattr(c, "__annotations__", {}))
            line = re.search(rf"^    {f.name}: [^\n]*$", inspect.getsource(owner), re.MULTILINE)
            assert line and re.search(r" = .*  # \w.{10,}", line.group(0)), (section.__name__, f.name)
        section()  # every field's default is valid on its own


@pytest.mark.parametrize("override, message", [
    ("model.unitz=3", "unknown config key 'model.unitz' in --set; [model] allows: cell, units,"),
    ("modle.units=3", "unknown config section 'modle'"),
    ("model.units=abc", "config key model.units in --set must be an integer, got 'abc'"),
    ("model.bidirectional=maybe", "model.bidirectional in --set must be true or false"),
    ("units=3", "must look like section.key=value"),
    ("train.epochs=0", "train.epochs = 0 must be greater than 0"),
    ("model.dropout=1.0", "model.dropout = 1.0 is out of range; allowed: [0.0, 1.0)"),
    ("model.cell=transformer", "model.cell = 'transformer' is not allowed; choose one of: lstm, gru, simplernn"),
    ("train.batch_size=-4", "train.batch_size = -4 must be greater than 0"),
    ("model.bidirectional=true", "cannot be used with head = 'next_token'"),
    ("model.bigram_buckets=1024", "model.bigram_buckets and model.token_dropout are for classifiers"),
    ("train.monitor=val_accuracy", "train.monitor = 'val_accuracy' is not measured by task charlm; choose one of: val_loss"),
    ("train.monitor=accuracy", "train.monitor = 'accuracy' is not measured by task charlm; choose one of: val_loss"),
    ("data.start_marker=caf\udce9", "data.start_marker = 'caf\\udce9' is not valid UTF-8 text"),
    ("train.seed=4294967296", "train.seed = 4294967296 is out of range; allowed: 0 to 4294967295"),
    ("train.clipnorm=nan", "train.clipnorm = nan must be a finite number"),
    ("model.ngram_scale=0", "model.ngram_scale = 0.0 is out of range; allowed: (0.0, inf)"),
    ("model.ngram_prior=nb", "model.ngram_prior = 'nb' scales the n-gram linear model, which is off: set "
                             "model.ngram_buckets"),
    ("model.ngram_prior=svm", "model.ngram_prior = 'svm' is not allowed; choose one of: none, nb"),
    ("model.ngram_hash=md5", "model.ngram_hash = 'md5' is not allowed; choose one of: mixed, fnv"),
    ("model.ngram_dropout=1", "model.ngram_dropout = 1.0 is out of range; allowed: [0.0, 1.0)"),
    ("model.ngram_min_count=0", "model.ngram_min_count = 0 is out of range; allowed: [1, inf)"),
    ("model.ngram_min_count=2", "model.ngram_min_count = 2 zeroes rare n-grams through the naive-Bayes ratios: set "
                                "model.ngram_prior = \"nb\" too"),
    ("model.mask_zero=true", "model.mask_zero = true cannot be used with head = 'next_token'"),
])
def test_bad_overrides_name_the_key(override, message):
    with pytest.raises(UserError) as err:
        load_config("charlm", "charlm_tiny", [override])
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_bad_pipeline_files(tmp_path):
    bad_type = tmp_path / "bad_type.toml"
    bad_type.write_text('task = "charlm"\n[model]\nunits = "many"\n')
    with pytest.raises(UserError, match=r"model.units in .*bad_type.toml must be an integer, got 'many'"):
        load_config("charlm", str(bad_type))
    wrong_task = tmp_path / "wrong_task.toml"
    wrong_task.write_text('task = "sentiment"\n')
    with pytest.raises(UserError, match="is a 'sentiment' pipeline"):
        load_config("charlm", str(wrong_task))
    broken = tmp_path / "broken.toml"
    broken.write_text("[model\n")
    with pytest.raises(UserError, match="is not valid TOML"):
        load_config("charlm", str(broken))
    with pytest.raises(UserError, match="config file 'nope' not found.*known pipelines: .*charlm_quick"):
        load_config("charlm", "nope")


def test_dump_escapes_strings_that_toml_needs_escaped():
    cfg = default_config("charlm")
    cfg.data.start_marker = 'He said "hi"\n\\ end'
    apply_override(cfg, "train.max_minutes=inf")
    again = config_from_dict(tomllib.loads(dumps_toml(cfg)), "round trip")
    assert again.data.start_marker == cfg.data.start_marker
    assert again.train.max_minutes == float("inf")


@pytest.mark.parametrize("name", ["charlm_tiny", "sentiment_imdb_tiny"])
def test_a_config_written_by_an_earlier_tfseq_matches_the_same_command_today(name):
    # Run folders keep their config.toml: a field whose default changes would make the same command start a new run
    # instead of resuming the interrupted one. These files were written by tfseq before issue 14.
    from tfseq.runs import config_differences

    old = config_from_dict(tomllib.loads((ROOT / "tests" / "data" / f"config_0.1_{name}.toml").read_text()), name)
    assert config_differences(old, load_config(old.task, old.pipeline)) == []
