"""tf.distribute for the trainers: picking a strategy, the chief, sharding, and two Keras 3.15 multi-worker fixes.

Keras 3.15's `fit` under MultiWorkerMirroredStrategy fails twice on a plain model (tensorflow/tensorflow#72388):
it averages the first *input* batch across workers to build the model, which fails for integer ids, and it
averages each step's scalar logs with `axis=0`, which fails for scalars ("Invalid reduction dimension 0 for input
with 0 dimensions"). `patch_keras_multiworker` fixes the second in this process only; `build_before_fit` avoids
the first. Both are applied only for train.strategy = "multiworker".
"""
from __future__ import annotations

import json
import os

import keras

from tfseq.errors import UserError


def make_strategy(name: str):
    """The tf.distribute strategy a config names.

    Args:
        name: "default" (one device), "mirrored" (all local GPUs, or the logical devices configured) or
            "multiworker" (the cluster in the TF_CONFIG environment variable).
    """
    import tensorflow as tf

    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multiworker":
        if "TF_CONFIG" not in os.environ:
            raise UserError("train.strategy = 'multiworker' needs the TF_CONFIG environment variable naming the "
                            "cluster and this worker (see README: Scaling out)")
        check_tf_config(os.environ["TF_CONFIG"])
        patch_keras_multiworker()
        return tf.distribute.MultiWorkerMirroredStrategy()
    return tf.distribute.get_strategy()


def check_tf_config(text: str) -> None:
    """Refuses a TF_CONFIG that names no cluster or no task of it, with the reason in one line."""
    try:
        config = json.loads(text)
        cluster, task = config["cluster"], config["task"]
        members = cluster.get(task["type"]) if task["type"] in ("worker", "chief") else None
        index = task.get("index", 0)
        addresses = [a for role in ("chief", "worker") for a in cluster.get(role, [])]
        ok = isinstance(cluster.get("worker", []), list) and isinstance(members, list) and \
            type(index) is int and 0 <= index < len(members) and \
            all(isinstance(a, str) and a.rpartition(":")[2].isdigit() and a.rpartition(":")[0] for a in addresses)
    except (ValueError, KeyError, TypeError, AttributeError):
        ok = False
    if not ok:
        raise UserError("TF_CONFIG must be JSON like {\"cluster\": {\"worker\": [\"host:port\", ...]}, \"task\": "
                        "{\"type\": \"worker\", \"index\": N}} with an integer N < the number of workers and "
                        "addresses host:port (a \"chief\" task needs a \"chief\" list in the cluster); got "
                        f"{text[:80]!r}")


def is_chief(strategy) -> bool:
    """Whether this process writes the run folder: the chief, worker 0 without a chief, or a lone process."""
    resolver = getattr(strategy.extended, "_cluster_resolver", None)
    if resolver is None or not resolver.cluster_spec().as_dict():
        return True
    if "chief" in resolver.cluster_spec().as_dict():
        return resolver.task_type == "chief"
    return resolver.task_type == "worker" and resolver.task_id == 0


def worker_index(strategy) -> int:
    """This process's index among the workers (0 for a lone process)."""
    resolver = getattr(strategy.extended, "_cluster_resolver", None)
    return int(resolver.task_id or 0) if resolver is not None and resolver.cluster_spec().as_dict() else 0


def worker_sum(strategy):
    """A function that adds up float64 vectors over all workers: every worker calls it with its own vector, in the
    same order, and gets the total. With one worker it returns its input.

    The trainer uses it to give every worker the chief's decisions (the chief's values plus the others' zeros):
    the epoch to resume from, the checkpoint's weights, the time used, whether to stop.
    """
    import numpy as np
    import tensorflow as tf

    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return lambda values: np.asarray(values, np.float64)
    local_replicas = len(strategy.extended.worker_devices)

    def total(values):
        # Each of a worker's local replicas holds the worker's vector once: divide them out of the sum.
        mine = tf.constant(np.asarray(values, np.float64))
        per_replica = strategy.experimental_distribute_values_from_function(lambda context: mine)
        return strategy.reduce("SUM", per_replica, axis=None).numpy() / local_replicas

    return total


def shard_by_data(dataset):
    """The dataset with element-wise auto-sharding across workers (our datasets are not read from files)."""
    import tensorflow as tf

    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)


def build_before_fit(model: keras.Model, strategy, batch) -> None:
    """Builds the compiled model from a local batch, so that `fit` under MultiWorkerMirroredStrategy need not.

    Keras 3.15's `fit` builds a distributed model from its first batch by averaging that batch across workers
    (`strategy.reduce("MEAN", ...)`), which fails for integer token ids under MultiWorkerMirroredStrategy ("Attempt
    to convert a value (PerReplica...) to a Tensor"). Building from one local batch here, then skipping that step,
    gives the same variables.
    """
    with strategy.scope():
        model._symbolic_build(data_batch=batch)
    model._maybe_symbolic_build = lambda iterator=None, data_batch=None: None


def patch_keras_multiworker() -> None:
    """Makes Keras average each step's scalar logs across workers with axis=None instead of axis=0."""
    from keras.src.backend.tensorflow import trainer as tf_trainer

    if getattr(tf_trainer.reduce_per_replica, "_tfseq", False):
        return
    original = tf_trainer.reduce_per_replica

    def reduce_per_replica(values, strategy, reduction):
        if reduction in ("auto", "mean") and tf_trainer._collective_all_reduce_multi_worker(strategy):
            return keras.tree.map_structure(lambda v: strategy.reduce("MEAN", v, axis=None), values)
        return original(values, strategy, reduction)

    reduce_per_replica._tfseq = True
    tf_trainer.reduce_per_replica = reduce_per_replica
