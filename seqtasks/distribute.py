"""Data-parallel training on ``tf.distribute``: the ``--strategy`` of ``train``.

Strategies (``--strategy``, default ``auto``):

``one-device``
    ``tf.distribute.OneDeviceStrategy`` on the first GPU, else the CPU.
``mirrored``
    ``tf.distribute.MirroredStrategy``: synchronous data parallelism over the
    GPUs of one host (the CPU when there is none). Keras ``fit`` runs under
    the strategy's scope and splits every batch across the devices, so
    ``batch_size`` is the global batch.
``multi-worker``
    ``tf.distribute.MultiWorkerMirroredStrategy``: synchronous data
    parallelism over several processes or hosts, with collective all-reduce
    of the gradients. The cluster comes from TensorFlow's own convention, the
    ``TF_CONFIG`` environment variable of every process (TF guide
    "Multi-worker training with Keras", section "Multi-worker
    configuration"). With Keras 3.15 and TensorFlow 2.21, ``model.fit``
    fails under this strategy with two workers (keras-team/keras#20585), so
    :func:`distributed_fit` trains instead with TensorFlow's documented
    custom-training path: a ``tf.function`` train step run by
    ``strategy.run`` on each replica (TF guide "Custom training loop with
    Keras and MultiWorkerMirroredStrategy"), driving the same Keras
    callbacks as ``fit``.
``auto``
    ``multi-worker`` when ``TF_CONFIG`` names more than one task,
    ``mirrored`` when more than one GPU is visible, else no strategy (Keras'
    default: one device).

Under ``multi-worker`` the training data is sharded per worker: every worker
builds the same seeded, shuffled, length-bucketed batches of an epoch and
keeps every ``replicas``-th batch (``tf.data.Dataset.shard``), so each
replica trains on whole batches of ``batch_size`` examples and the global
batch is ``replicas * batch_size``; all workers take the same number of
steps (the epoch's batch count divided by the replicas; at most
``replicas - 1`` batches of an epoch are left out). Validation is sharded the
same way and its loss summed across workers, so every worker makes the same
early-stopping and learning-rate decisions. Worker 0 is the chief: it alone
writes the run directory (config, checkpoints, logs, resume state), the
export and ``metrics.json``; the other workers work in a temporary folder
that is removed at the end. An interrupted multi-worker run resumes from an
explicit ``run_dir`` that every worker sees: the chief continues it and the
other workers restore its saved state read-only; all of them check before the
first step that they start at the same epoch with the same weights.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from typing import Any

from seqtasks.errors import ConfigError, DataError

log = logging.getLogger(__name__)

STRATEGIES = ("auto", "one-device", "mirrored", "multi-worker")


@dataclasses.dataclass
class Distribution:
    """The chosen strategy and this process's place in the cluster.

    Attributes:
        name: the strategy actually used: ``none``, ``one-device``,
            ``mirrored`` or ``multi-worker``.
        strategy: the ``tf.distribute.Strategy``, or None for Keras' default.
        workers: number of worker processes (1 unless ``multi-worker``).
        worker_index: this process's task index in ``TF_CONFIG`` (0: the chief).
        replicas: replicas in sync over all workers (devices that each take a batch slice).
    """

    name: str
    strategy: Any = None
    workers: int = 1
    worker_index: int = 0
    replicas: int = 1

    @property
    def is_chief(self) -> bool:
        """Whether this process writes the run directory and the export."""
        return self.worker_index == 0

    def scope(self):
        """The strategy's scope (build and compile models in it), or a no-op context."""
        import contextlib

        return self.strategy.scope() if self.strategy is not None else contextlib.nullcontext()

    def describe(self) -> dict:
        """JSON-able summary recorded in ``config.json`` and ``metrics.json``."""
        return {
            "strategy": self.name,
            "workers": self.workers,
            "worker_index": self.worker_index,
            "replicas": self.replicas,
        }


def read_tf_config() -> tuple[int, int]:
    """``(tasks, task_index)`` from the ``TF_CONFIG`` environment variable; ``(1, 0)`` if unset.

    Counts the ``chief`` and ``worker`` tasks of ``cluster``; the index of a
    ``worker`` task is shifted by one when the cluster has a ``chief``.

    Raises:
        ConfigError: ``TF_CONFIG`` is not JSON of the documented form
            (``{"cluster": {"worker": ["host:port", ...]}, "task": {"type": "worker",
            "index": 0}}``).
    """
    raw = os.environ.get("TF_CONFIG", "").strip()
    if not raw:
        return 1, 0
    expected = (
        'expected {"cluster": {"worker": ["host:port", ...]}, "task": {"type": "worker", '
        '"index": N}}'
    )
    try:
        spec = json.loads(raw)
        cluster, task = spec["cluster"], spec["task"]
        chiefs = list(cluster.get("chief", []))
        workers = list(cluster.get("worker", []))
        kind, index = task["type"], int(task["index"])
    except (ValueError, KeyError, TypeError, AttributeError):
        raise ConfigError(f"environment variable TF_CONFIG: not valid; {expected}") from None
    if kind not in ("chief", "worker"):
        raise ConfigError(
            f"environment variable TF_CONFIG: task type {kind!r} is not supported; "
            "expected 'worker' (or 'chief')"
        )
    count = len(chiefs) if kind == "chief" else len(workers)
    if not 0 <= index < count:
        raise ConfigError(
            f"environment variable TF_CONFIG: task index {index} is out of range for "
            f"{count} {kind} address(es)"
        )
    return len(chiefs) + len(workers), index + (len(chiefs) if kind == "worker" else 0)


def choose(name: str = "auto") -> Distribution:
    """The :class:`Distribution` for ``--strategy name`` (see the module docstring).

    Raises:
        ConfigError: an unknown name; a strategy under a backend other than
            TensorFlow; ``multi-worker`` without ``TF_CONFIG``; a bad ``TF_CONFIG``.
    """
    import keras

    if name not in STRATEGIES:
        raise ConfigError(f"--strategy: {name!r} is not one of {', '.join(STRATEGIES)}")
    tasks, index = read_tf_config()
    if keras.backend.backend() != "tensorflow":
        if name != "auto" or tasks > 1:
            raise ConfigError(
                f"--strategy {name}: tf.distribute strategies need KERAS_BACKEND=tensorflow "
                f"(this is {keras.backend.backend()})"
            )
        return Distribution("none")
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")  # (logical devices would start TF)
    if name == "auto":
        name = "multi-worker" if tasks > 1 else "mirrored" if len(gpus) > 1 else "none"
    if name == "none":
        return Distribution("none")
    if name == "one-device":
        device = "/gpu:0" if gpus else "/cpu:0"
        return Distribution(name, tf.distribute.OneDeviceStrategy(device))
    if name == "mirrored":
        strategy = tf.distribute.MirroredStrategy()
        return Distribution(name, strategy, replicas=strategy.num_replicas_in_sync)
    if tasks < 2:
        raise ConfigError(
            "--strategy multi-worker: set TF_CONFIG in every worker's environment to a cluster "
            'of two or more tasks, e.g. {"cluster": {"worker": ["host1:12345", "host2:12345"]}, '
            '"task": {"type": "worker", "index": 0}}'
        )
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    return Distribution(
        name, strategy, workers=tasks, worker_index=index, replicas=strategy.num_replicas_in_sync
    )


def count_batches(dataset) -> int:
    """Number of batches in one pass of ``dataset`` (iterates it; token ids are cached)."""
    import numpy as np

    return int(dataset.reduce(np.int64(0), lambda n, _: n + 1))


class _Steps:
    """The compiled train and validation steps of :func:`distributed_fit`."""

    def __init__(self, model, distribution: Distribution):
        import tensorflow as tf

        strategy = distribution.strategy
        replicas = distribution.replicas

        def train_replica(x, y):
            with tf.GradientTape() as tape:
                y_pred = model(x, training=True)
                # Under a strategy, Keras losses come divided by the replicas (Keras'
                # scale_loss_for_distribution) and the optimizer sums the replicas'
                # gradients: together, the gradient of the mean loss.
                loss = model.compute_loss(x=x, y=y, y_pred=y_pred, training=True)
                scaled = model.optimizer.scale_loss(loss)  # mixed precision's loss scale
            variables = model.trainable_variables
            gradients = tape.gradient(scaled, variables)
            model.optimizer.apply_gradients(zip(gradients, variables))
            return loss * replicas

        @tf.function
        def train_step(iterator):
            losses = strategy.run(train_replica, args=next(iterator))
            return strategy.reduce(tf.distribute.ReduceOp.MEAN, losses, axis=None)

        @tf.function
        def validation_step(x, y):  # run outside the strategy's scope: an unscaled loss
            y_pred = model(x, training=False)
            return model.compute_loss(x=x, y=y, y_pred=y_pred, training=False)

        local = len(strategy.extended.worker_devices)

        @tf.function
        def all_sum(values):
            def contribute():  # once per worker: its first local replica
                replica = tf.distribute.get_replica_context().replica_id_in_sync_group
                return tf.where(replica % local == 0, values, tf.zeros_like(values))

            per_replica = strategy.run(contribute)
            return strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica, axis=None)

        self.train_step = train_step
        self.validation_step = validation_step
        self.all_sum = all_sum


def _shards(dataset, distribution: Distribution, steps: int):
    """This worker's batches of a ``dataset`` epoch: every replica's ``steps`` whole batches."""
    import tensorflow as tf

    strategy = distribution.strategy
    local = strategy.extended.worker_devices
    take = steps * len(local)

    def per_worker(context):
        options = tf.data.Options()
        options.experimental_distribute.auto_shard_policy = (
            tf.data.experimental.AutoShardPolicy.OFF  # sharded here, by whole batches
        )
        shard = dataset.shard(context.num_input_pipelines, context.input_pipeline_id)
        return shard.take(take).with_options(options)

    return strategy.distribute_datasets_from_function(per_worker)


def _check_same_start(model, distribution: Distribution, steps: _Steps, initial_epoch: int):
    """Check that every worker starts at the same epoch with the same weights.

    Raises:
        ConfigError: they differ (a resumed run whose saved state not every worker sees).
    """
    import numpy as np
    import tensorflow as tf

    checksum = float(sum(np.sum(w, dtype=np.float64) for w in model.get_weights()))
    mine = np.array([initial_epoch, checksum, 1.0])
    total = steps.all_sum(tf.constant(mine, tf.float64)).numpy()
    workers = total[2]
    if total[0] != initial_epoch * workers or not np.isclose(
        total[1], checksum * workers, rtol=1e-9, atol=1e-9
    ):
        raise ConfigError(
            f"config field 'run_dir': worker {distribution.worker_index} starts at epoch "
            f"{initial_epoch + 1} with other weights than the rest of the cluster; to resume a "
            "multi-worker run, every worker needs the chief's --run-dir (a shared folder)"
        )


def distributed_fit(
    model,
    distribution: Distribution,
    train,
    validation,
    *,
    epochs: int,
    initial_epoch: int = 0,
    callbacks: list | None = None,
    verbose: int = 2,
) -> dict[str, list[float]]:
    """Train ``model`` (built and compiled in ``distribution.scope()``) like ``model.fit``.

    Each epoch: the callbacks' ``on_epoch_begin`` (which sets the data epoch
    for the shuffle), then the epoch's batches sharded across the workers
    (see the module docstring), one ``strategy.run`` train step per global
    step, then the validation loss (examples-weighted mean over the
    validation batches of every worker) and ``on_epoch_end`` with ``loss``
    and ``val_loss``. The recipe's other metrics are not logged per epoch;
    its validation metrics are computed after training as usual.

    Args:
        model: a compiled Keras model whose variables were created under the strategy.
        distribution: a ``multi-worker`` (or ``mirrored``) :class:`Distribution`.
        train, validation: ``tf.data`` datasets of ``(inputs, targets)`` batches.
        epochs, initial_epoch: as for ``fit``.
        callbacks: Keras callbacks, called as ``fit`` calls them.
        verbose: 0 silent, 1 progress bar, 2 one line per epoch.

    Returns:
        The per-epoch ``loss`` and ``val_loss`` of this call.

    Raises:
        DataError: an epoch has fewer batches than there are replicas.
    """
    import keras
    import numpy as np
    import tensorflow as tf

    with distribution.scope():  # optimizer slots must be created under the strategy
        if not model.optimizer.built:
            model.optimizer.build(model.trainable_variables)
    steps = _Steps(model, distribution)
    callback_list = keras.callbacks.CallbackList(
        callbacks,
        add_history=True,
        add_progbar=verbose != 0,
        model=model,
        verbose=verbose,
        epochs=epochs,
        steps=None,
    )
    model.stop_training = False
    history: dict[str, list[float]] = {"loss": [], "val_loss": []}
    callback_list.on_train_begin()  # a resumed run restores its saved state here
    _check_same_start(model, distribution, steps, initial_epoch)
    logs: dict[str, float] = {}
    replicas = distribution.replicas
    for epoch in range(initial_epoch, epochs):
        callback_list.on_epoch_begin(epoch)
        total = count_batches(train)  # the same on every worker: same seed, same epoch
        per_replica = total // replicas
        if per_replica == 0:
            raise DataError(
                f"training data: {total} batch(es) per epoch cannot feed {replicas} replicas; "
                "use more data or a smaller batch_size"
            )
        iterator = iter(_shards(train, distribution, per_replica))
        losses = []
        for step in range(per_replica):
            callback_list.on_train_batch_begin(step)
            loss = float(steps.train_step(iterator))
            losses.append(loss)
            callback_list.on_train_batch_end(step, {"loss": float(np.mean(losses))})
        weighted, count = 0.0, 0.0
        shard = validation.shard(distribution.workers, distribution.worker_index)
        for x, y in shard:
            size = float(tf.shape(tf.nest.flatten(y)[0])[0])
            weighted += float(steps.validation_step(x, y)) * size
            count += size
        weighted, count = (float(v) for v in steps.all_sum(tf.constant([weighted, count])))
        logs = {"loss": float(np.mean(losses)), "val_loss": weighted / max(count, 1.0)}
        history["loss"].append(logs["loss"])
        history["val_loss"].append(logs["val_loss"])
        callback_list.on_epoch_end(epoch, logs)
        if model.stop_training:
            break
    callback_list.on_train_end(logs)
    return history
