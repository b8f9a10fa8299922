"""Keras's object sharing during ``load_model``, made safe from ``id()`` reuse.

While ``keras.saving.load_model`` runs, Keras keeps an object-sharing scope open
(``keras.src.saving.serialization_lib.ObjectSharingScope``): an object serialized during
the load is recorded by its ``id()``, and a later serialization of an object with the same
id is marked as shared, so its deserialization hands back the object already made for it.
The scope keeps ids, not objects. ``keras.layers.Bidirectional(layer)`` serializes
``layer`` twice during a load (to make its forward and backward copies). If an object
serialized earlier in the load has been freed (say, the initializers of an earlier
template), a new template can get its id: the wrapper then takes its forward copy for the
backward one (``_verify_layer_config``: "Forward layer and backward layer should have
different `go_backwards` value ... forward_layer.go_backwards False,
backward_layer.go_backwards=False"); if the freed object was an earlier template, both
copies are that wrapper's backward layer (True/True). Whether it happens depends on what
the memory allocator reuses: the same load passes alone and fails after other work in the
process (seen in the test suite, Keras 3.15.1; the layers a load reads from the file are
not concerned).

Two guards:

- :func:`build_bidirectional`, for layers that wrap a cell in their ``__init__``
  (:class:`~seqtasks.models.min_rnn_block.MinRNNBlock`, the seq2seq RNN encoder): the
  wrapper is built with the scope paused, so its copies are always new layers, also when
  the file is loaded with ``keras.saving.load_model`` directly.
- :func:`serialized_objects_held`, around seqtasks' own load
  (:func:`seqtasks.inference.load_keras_model`): every object serialized in the scope stays
  alive until the load ends, so no id can come back. This also covers Keras's own
  ``Bidirectional.from_config`` in the functional classifiers (``bilstm``, ``bimingru``
  ...), but only through that function: a stacked bidirectional classifier loaded with
  ``keras.saving.load_model`` directly is exposed as Keras leaves it.
"""

from __future__ import annotations

import contextlib
import threading

import keras
from keras.src.backend.common import global_state
from keras.src.saving import serialization_lib

# The two maps ObjectSharingScope keeps in Keras's global state (None: no scope open).
_SHARING_MAPS = ("shared_objects/id_to_obj_map", "shared_objects/id_to_config_map")


@contextlib.contextmanager
def object_sharing_paused():
    """Within the block, serialization neither records nor reuses shared objects; the
    enclosing scope (if any) is restored afterwards, also on an error."""
    saved = [global_state.get_global_attribute(key) for key in _SHARING_MAPS]
    try:
        for key in _SHARING_MAPS:
            global_state.set_global_attribute(key, None)
        yield
    finally:
        for key, value in zip(_SHARING_MAPS, saved):
            global_state.set_global_attribute(key, value)


def build_bidirectional(layer: keras.layers.Layer, **kwargs) -> keras.layers.Bidirectional:
    """``keras.layers.Bidirectional(layer, **kwargs)``, safe to call while a model loads.

    Args:
        layer: an RNN layer with ``go_backwards`` in its config (the forward template).
        **kwargs: ``keras.layers.Bidirectional``'s other arguments (``merge_mode``,
            ``name``, ``dtype``, ...).

    Returns:
        The wrapper, whose forward and backward layers are new copies of ``layer``.

    Raises:
        ValueError: as ``keras.layers.Bidirectional`` does (e.g. a bad ``merge_mode``).
    """
    with object_sharing_paused():
        return keras.layers.Bidirectional(layer, **kwargs)


_LOCAL = threading.local()  # .held: this thread's live objects, in its outermost block
_LOCK = threading.Lock()
_BLOCKS = 0  # open blocks in all threads; Keras's function is patched while any is open
_RECORD = serialization_lib.record_object_after_serialization  # Keras's own


def _record_and_hold(obj, config):
    _RECORD(obj, config)
    held = getattr(_LOCAL, "held", None)
    if held is not None and global_state.get_global_attribute(_SHARING_MAPS[1]) is not None:
        held.append(obj)  # recorded by id in an open scope: keep the id taken


@contextlib.contextmanager
def serialized_objects_held():
    """Within the block, every object Keras records in an open object-sharing scope stays
    alive until the block ends (the outermost block, when they nest). Each thread holds its
    own objects; Keras's recording function is patched while any block is open in any
    thread and restored when the last one ends, also on an error."""
    global _BLOCKS
    outermost = getattr(_LOCAL, "held", None) is None
    if outermost:
        _LOCAL.held = []
    with _LOCK:
        _BLOCKS += 1
        serialization_lib.record_object_after_serialization = _record_and_hold
    try:
        yield
    finally:
        with _LOCK:
            _BLOCKS -= 1
            if not _BLOCKS:
                serialization_lib.record_object_after_serialization = _RECORD
        if outermost:
            _LOCAL.held = None
