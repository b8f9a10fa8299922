"""How often an export traces its endpoints: a `tf.function` with the endpoint's input
signature is saved as it is (no second trace outside the SavedModel's save), and a run's
generator is shared by evaluation and export (`Prepared.reuse`)."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from seqtasks.export import _traced_for, save_serving_archive
from seqtasks.recipe import Prepared

SPEC = [tf.TensorSpec([None], tf.string, name="text")]


class Lengths(tf.Module):
    """Raw strings in, their lengths in bytes (times a tracked weight) out."""

    def __init__(self):
        super().__init__()
        self.scale = tf.Variable(2.0)
        self.traces = 0
        self.serving_function = tf.function(self.serve, input_signature=SPEC)

    def serve(self, text):
        self.traces += 1  # Python side effect: runs once per trace
        return {"length": tf.cast(tf.strings.length(text), tf.float32) * self.scale}


def test_a_traced_function_is_saved_with_one_more_trace_for_the_saved_model(tmp_path):
    module = Lengths()
    module.serving_function(tf.constant(["ab"]))  # e.g. evaluation
    assert module.traces == 1
    save_serving_archive(str(tmp_path / "m"), [module], module.serving_function, SPEC)
    # The SavedModel's save traces in its own context once; no wrapper traces it again.
    assert module.traces == 2
    loaded = tf.saved_model.load(str(tmp_path / "m")).signatures["serving_default"]
    assert list(loaded.structured_input_signature[1]) == ["text"]
    out = loaded(text=tf.constant(["abc", ""]))["length"].numpy()
    np.testing.assert_array_equal(out, [6.0, 0.0])


def test_a_plain_function_is_wrapped_and_traced_by_keras(tmp_path):
    module = Lengths()
    save_serving_archive(str(tmp_path / "m"), [module], module.serve, SPEC)
    assert module.traces >= 2
    loaded = tf.saved_model.load(str(tmp_path / "m")).signatures["serving_default"]
    np.testing.assert_array_equal(loaded(text=tf.constant(["abcd"]))["length"].numpy(), [8.0])


def test_traced_for_compares_structure_shapes_dtypes_and_names():
    module = Lengths()
    assert _traced_for(module.serving_function, SPEC)
    assert _traced_for(module.serving_function, (SPEC[0],))
    assert not _traced_for(module.serve, SPEC)  # not a tf.function
    assert not _traced_for(tf.function(module.serve), SPEC)  # no input signature
    for other in (
        tf.TensorSpec([None], tf.string, name="inputs"),
        tf.TensorSpec([None, 1], tf.string, name="text"),
        tf.TensorSpec([None], tf.int32, name="text"),
    ):
        assert not _traced_for(module.serving_function, [other])
    assert not _traced_for(module.serving_function, [*SPEC, SPEC[0]])


def test_prepared_reuse_builds_once_per_model():
    prepared = Prepared(train=None, validation=None, info={}, metadata={})
    built = []

    def build():
        built.append(object())
        return built[-1]

    first, second = object(), object()
    a = prepared.reuse("generator", first, build)
    assert prepared.reuse("generator", first, build) is a and len(built) == 1
    b = prepared.reuse("generator", second, build)  # another model: built anew
    assert b is not a and len(built) == 2
    assert prepared.reuse("other", second, build) is not b and len(built) == 3
    assert "built" not in repr(prepared)
