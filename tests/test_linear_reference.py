"""The linear references in bench/ read exactly the split of the pipeline they stand beside."""
import sys
from pathlib import Path

import numpy as np

from conftest import write_imdb_folder
from tfseq import trainer
from tfseq.config import load_config

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
import linear_reference  # noqa: E402


def test_the_rating_reference_uses_the_pipelines_validation_carve(tmp_path):
    folder = str(write_imdb_folder(tmp_path, per_class=30))  # 10 training movies of 6 reviews each
    data, classes = linear_reference.splits("classify", folder, "imdb_rating")
    task = trainer.make_task(load_config("classify", "imdb_rating", [f"data.path={folder}"]))
    assert classes == list(task.classes)
    for name in ("train", "val", "test"):
        assert np.array_equal(data[name][1], task.encoded[name].labels), name
    # imdb_rating holds out 20% of the training movies (2 of 10), the classify task's default 10% (1).
    default, _ = linear_reference.splits("classify", folder, "classify_default")
    assert (len(data["val"][0]), len(default["val"][0])) == (12, 6)


def test_a_run_beside_the_reference_says_whether_it_trained_on_validation(tmp_path):
    (tmp_path / "metrics.json").write_text('{"test_accuracy": 0.5, "epochs": 2, "val_accuracy": 0.9}')
    (tmp_path / "config.toml").write_text('task = "classify"\n[data]\nfold_val = true\n')
    assert linear_reference.run_summary(str(tmp_path)) == {"test_accuracy": 0.5, "epochs": 2, "val_accuracy": 0.9,
                                                           "fold_val": True}
    (tmp_path / "config.toml").write_text('task = "classify"\n[data]\n')
    assert linear_reference.run_summary(str(tmp_path))["fold_val"] is False
