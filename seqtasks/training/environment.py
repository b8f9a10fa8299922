"""What a run sets up in its process: seeds and op determinism, and what the backend
allows (SavedModel exports need TensorFlow); peak memory for the metrics."""

from __future__ import annotations

import logging
import resource

import keras

log = logging.getLogger("seqtasks.training")  # one logger name for the package


def writes_savedmodels() -> bool:
    """Whether the Keras backend can write a TensorFlow SavedModel: only TensorFlow's can;
    on JAX or PyTorch, :func:`train` keeps ``<run_dir>/model.keras`` instead."""
    return keras.backend.backend() == "tensorflow"


# TensorFlow's global seed when --seed is 0 (see seed_everything).
_GLOBAL_SEED_FOR_ZERO = 2**31 - 2  # nonzero modulo 2**31 - 1, as TensorFlow truncates it


def seed_everything(seed: int, deterministic: bool = True) -> None:
    """Seed Python, NumPy and the backend; make TensorFlow ops deterministic.

    ``deterministic=False`` (config ``jit_compile=true``) leaves TensorFlow's op
    determinism off: under it Keras never compiles with XLA.
    """
    keras.utils.set_random_seed(seed)
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        if seed == 0:
            # TensorFlow cannot seed an op from a tensor (the per-epoch tf.data shuffle,
            # seqtasks.data.pipeline) under the global seed 0: random_seed.get_seed tests
            # ``(0, op_seed) == (0, 0)`` in Python. Seed 0 gets another global seed;
            # Keras' initialisers and dropout keep Keras' own seed 0.
            tf.random.set_seed(_GLOBAL_SEED_FOR_ZERO)
        if deterministic:
            tf.config.experimental.enable_op_determinism()
        else:
            # No public API turns it off again (Keras reads this module too).
            from tensorflow.python.framework import config as tf_config

            tf_config.disable_op_determinism()
            log.warning(
                "config field 'jit_compile'=true turns TensorFlow's op determinism off "
                "(Keras runs no XLA under it): runs are not bit-for-bit reproducible"
            )


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MiB (Linux: ru_maxrss is KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
