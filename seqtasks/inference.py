"""Calling an exported SavedModel's ``serving_default`` signature from Python; loading its
Keras models (fine-tuning)."""

from __future__ import annotations

import numpy as np

from seqtasks.errors import ExportError


def load_serving_fn(version_dir: str):
    """Load a SavedModel and return its ``serving_default`` concrete function.

    Raises:
        ExportError: if the SavedModel cannot be loaded or has no such signature.
    """
    import tensorflow as tf

    try:
        loaded = tf.saved_model.load(version_dir)
    except Exception as e:  # corrupt or incompatible SavedModel
        reason = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise ExportError(f"{version_dir}: cannot load the SavedModel: {reason}") from None
    if "serving_default" not in loaded.signatures:
        raise ExportError(f"{version_dir}: the SavedModel has no serving_default signature")
    fn = loaded.signatures["serving_default"]
    fn._seqtasks_loaded = loaded  # keep the trackable (tables, variables) alive
    return fn


def call_in_batches(
    fn, input_name: str, values, batch_size: int = 64, sort_key=None
) -> dict[str, np.ndarray]:
    """Run ``fn(**{input_name: batch})`` over ``values`` and concatenate the outputs.

    Args:
        fn: a signature function (keyword tensor inputs, dict of tensor outputs).
        input_name: the signature's input key, e.g. ``"text"``.
        values: a list (strings or bytes) or array of inputs.
        batch_size: inputs per call (default 64).
        sort_key: optional, e.g. ``len``: batch the inputs in ascending (stable)
            order of ``sort_key(value)``, so that texts of similar length share a
            call and little padding is computed (an export pads each call to
            its longest text). The outputs are returned in the order of
            ``values`` all the same. Default: batches in input order.

    Returns:
        Output name to a NumPy array whose first axis has ``len(values)`` rows,
        row ``i`` for ``values[i]``.
    """
    import tensorflow as tf

    order = np.arange(len(values))
    if sort_key is not None:
        order = np.argsort([sort_key(v) for v in values], kind="stable")
    chunks: dict[str, list[np.ndarray]] = {}
    for start in range(0, len(values), batch_size):
        rows = order[start : start + batch_size]
        if isinstance(values, np.ndarray):
            batch = tf.constant(values[rows])
        else:
            batch = tf.constant([values[i] for i in rows])
        for name, tensor in fn(**{input_name: batch}).items():
            chunks.setdefault(name, []).append(tensor.numpy())
    outputs = {name: np.concatenate(parts, axis=0) for name, parts in chunks.items()}
    if sort_key is not None:
        inverse = np.empty_like(order)
        inverse[order] = np.arange(len(order))
        outputs = {name: array[inverse] for name, array in outputs.items()}
    return outputs


def load_keras_model(path: str):
    """An export's Keras model file (``assets.extra/*.keras``), uncompiled.

    Files written before the seq2seq models and captioners were composed (registered
    classes ``seqtasks>RNNAttentionSeq2Seq``, ``TransformerSeq2Seq``, ``RNNCaptioner``,
    ``TransformerCaptioner``) come back converted to the current model, with the same
    weights (:mod:`seqtasks.models.legacy`).

    Raises:
        ExportError: one line naming the file, if it cannot be loaded.
    """
    import keras

    from seqtasks.models import legacy  # registers the pre-composition class names
    from seqtasks.models.object_sharing import serialized_objects_held

    try:
        with serialized_objects_held():  # no id() reuse in Keras's object sharing
            return legacy.upgrade(keras.saving.load_model(path, compile=False))
    except Exception as e:  # noqa: BLE001 - any failure means an unusable file
        raise ExportError(
            f"{path}: cannot load the Keras model ({type(e).__name__}: "
            f"{str(e).splitlines()[0] if str(e) else ''})"
        ) from None
