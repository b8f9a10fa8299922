"""Keras's object sharing during loads, guarded against ``id()`` reuse
(seqtasks/models/object_sharing.py): layers that build ``keras.layers.Bidirectional`` in
their ``__init__`` get new forward and backward copies whatever ids the allocator reuses,
and seqtasks' own load keeps every serialized object alive until it ends.

Keras's object-sharing scope (open during ``load_model``) keys objects by ``id()``. The
suite once failed on it, in a load that passes alone: a freed template's id came back.
Here every object gets the same id, so each serialization in the scope looks like one
already seen: the collision that reuse causes by chance, forced.
"""

from __future__ import annotations

import gc
import weakref

import keras
import pytest
from keras.src.saving import serialization_lib

from seqtasks.models.min_rnn_block import MinRNNBlock
from seqtasks.models.object_sharing import (
    build_bidirectional,
    object_sharing_paused,
    serialized_objects_held,
)
from seqtasks.models.token_encoders import BidirectionalRNNEncoder


@pytest.fixture
def one_id_for_every_object(monkeypatch):
    monkeypatch.setattr(serialization_lib, "id", lambda obj: 7, raising=False)
    with serialization_lib.ObjectSharingScope():
        yield


def _directions(wrapper):
    return wrapper.forward_layer, wrapper.backward_layer


def test_keras_bidirectional_itself_fails_under_the_forced_collision(one_id_for_every_object):
    # The hazard is Keras's: the plain wrapper takes its forward copy for the backward one.
    with pytest.raises(ValueError, match="different `go_backwards` value"):
        keras.layers.Bidirectional(keras.layers.GRU(3))


def test_layers_that_wrap_in_init_get_new_copies_under_the_forced_collision(
    one_id_for_every_object,
):
    blocks = [MinRNNBlock(4, bidirectional=True, name=f"b{i}") for i in range(3)]
    encoder = BidirectionalRNNEncoder(20, embedding_dim=4, hidden_dim=3, num_layers=2)
    wrappers = [b.rnn for b in blocks] + list(encoder.encoder_layers)
    wrappers.append(build_bidirectional(keras.layers.LSTM(3), name="plain"))
    copies = [layer for w in wrappers for layer in _directions(w)]
    assert [layer.go_backwards for layer in copies] == [False, True] * len(wrappers)
    assert len({id(layer) for layer in copies}) == len(copies)  # nothing reused


def test_the_enclosing_scope_is_untouched_and_restored_also_after_an_error():
    from keras.src.backend.common import global_state

    def config_map():
        return global_state.get_global_attribute("shared_objects/id_to_config_map")

    with serialization_lib.ObjectSharingScope():
        outer = config_map()
        build_bidirectional(keras.layers.GRU(3))
        assert outer == {}  # the copies' serializations were not recorded
        keras.layers.Bidirectional(keras.layers.GRU(3))
        assert len(outer) > 0  # as the plain wrapper's are
        with pytest.raises(ValueError, match="merge mode"):
            build_bidirectional(keras.layers.GRU(3), merge_mode="bad")
        with object_sharing_paused():
            assert config_map() is None
        assert config_map() is outer
    assert config_map() is None


def _serialize_a_layer() -> weakref.ref:
    layer = keras.layers.GRU(3)
    serialization_lib.serialize_keras_object(layer)
    return weakref.ref(layer)


def test_objects_serialized_during_a_held_load_stay_alive_until_the_outermost_block_ends():
    record = serialization_lib.record_object_after_serialization
    with serialization_lib.ObjectSharingScope(), serialized_objects_held():
        with serialized_objects_held():  # a nested block ending ends no hold
            pass
        with serialized_objects_held():
            inner = _serialize_a_layer()
        gc.collect()
        assert inner() is not None  # its id cannot come back while the load runs
        assert serialization_lib.record_object_after_serialization is not record
    assert serialization_lib.record_object_after_serialization is record
    gc.collect()
    assert inner() is None


def test_objects_serialized_outside_a_sharing_scope_are_not_held():
    with serialized_objects_held():
        outside = _serialize_a_layer()  # no ObjectSharingScope: Keras records nothing
        gc.collect()
        assert outside() is None
