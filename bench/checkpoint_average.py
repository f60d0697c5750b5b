"""A language-model run's last checkpoint scored twice on its held-out stream: with the trained weights and with
their average (`train.ema`), side by side, to see what the average adds at that point of training.

    python bench/checkpoint_average.py RUN_DIR

The checkpoint (weights, optimizer state and the average) is loaded into the run's compiled model; the stream
metrics are the trainer's (`LMTask.stream_metrics`), the average swapped in with `tfseq.averaging.averaged`. Works
on a finished or an unfinished run of train.ema > 0. Prints one JSON object.
"""
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parent.parent)]
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def main() -> None:
    if len(sys.argv) != 2 or sys.argv[1].startswith("-"):
        sys.exit(__doc__)
    import tensorflow as tf

    from tfseq import trainer
    from tfseq.averaging import averaged
    from tfseq.runs import RunFolder

    run = RunFolder(Path(sys.argv[1]))
    cfg = run.read_config()
    checkpoint = run.read_state().get("checkpoint")
    if not cfg.train.ema or not checkpoint:
        sys.exit(f"{run.path}: needs a language-model run with train.ema > 0 and a checkpoint")
    task = trainer.make_task(cfg)
    if not hasattr(task, "stream_metrics"):
        sys.exit(f"{run.path}: a {cfg.task} run has no held-out stream; give a language-model run")
    model = trainer._compiled_model(cfg, task, tf.distribute.get_strategy())
    model.load_weights(run.checkpoints / checkpoint)
    weights = task.stream_metrics(model)
    with averaged(model):
        average = task.stream_metrics(model)
    print(json.dumps({"run": str(run.path), "checkpoint": checkpoint, "ema": cfg.train.ema, "weights": weights,
                      "average": average, "date": time.strftime("%Y-%m-%d")}, indent=1))


if __name__ == "__main__":
    main()
