"""How often an export traces its endpoints: a `tf.function` with the endpoint's input
signature is saved with the graph it has traced, a plain function is traced once, a
`SignatureModule` keeps its functions out of the SavedModel's save (which would trace them
again), and a run's generator is shared by evaluation and export (`Prepared.reuse`)."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from seqtasks.export import _traced_for, save_serving_archive
from seqtasks.recipe import Prepared
from seqtasks.signature_module import SignatureModule

SPEC = [tf.TensorSpec([None], tf.string, name="text")]


class Lengths(tf.Module):
    """Raw strings in, their lengths in bytes (times a tracked weight, plus a looked-up
    bonus) out; ``upper`` is a tf.function without an input signature, called inside the
    serving function's graph (as the tokenizers' functions are)."""

    def __init__(self):
        super().__init__()
        self.scale = tf.Variable(2.0)
        self.bonus = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(["a"], [5.0]), default_value=0.0
        )
        self.traces = 0
        self.upper_traces = 0
        self.serving_function = tf.function(self.serve, input_signature=SPEC)

    def serve(self, text):
        self.traces += 1  # Python side effect: runs once per trace
        length = tf.cast(tf.strings.length(self.upper(text)), tf.float32)
        return {"length": length * self.scale + self.bonus.lookup(text)}

    @tf.function
    def upper(self, text):
        self.upper_traces += 1
        return tf.strings.upper(text)


class SignatureLengths(SignatureModule, Lengths):
    """The same module as a SignatureModule."""


def _served(path, texts):
    loaded = tf.saved_model.load(path).signatures["serving_default"]
    assert list(loaded.structured_input_signature[1]) == ["text"]
    return loaded(text=tf.constant(texts))["length"].numpy()


@pytest.mark.parametrize("module_class, traces", [(Lengths, 2), (SignatureLengths, 1)])
def test_the_saved_models_save_traces_a_tf_modules_function_again(tmp_path, module_class, traces):
    module = module_class()
    module.serving_function(tf.constant(["ab"]))  # e.g. evaluation
    assert module.traces == 1
    concrete = module.serving_function.get_concrete_function()
    tf.saved_model.save(module, str(tmp_path / "m"), signatures={"serving_default": concrete})
    # tf.saved_model.save traces a function attribute again in its own context (its trace
    # cache key includes the save's variable policy); a SignatureModule hides it.
    assert module.traces == traces
    np.testing.assert_array_equal(_served(str(tmp_path / "m"), ["abc", "", "a"]), [6, 0, 7])


@pytest.mark.parametrize("module_class, upper_traces", [(Lengths, 2), (SignatureLengths, 1)])
def test_an_export_traces_the_endpoint_once_and_a_signature_modules_functions_once(
    tmp_path, module_class, upper_traces
):
    module = module_class()
    module.serving_function(tf.constant(["ab"]))  # e.g. evaluation
    assert (module.traces, module.upper_traces) == (1, 1)
    save_serving_archive(str(tmp_path / "m"), [module], module.serving_function, SPEC)
    # The endpoint is saved with the graph it has: never traced again.
    assert module.traces == 1
    # Keras's walk for lookup tables lists a tf.Module's functions, which traces `upper`
    # again outside the serving graph; a SignatureModule hides it.
    assert module.upper_traces == upper_traces
    np.testing.assert_array_equal(_served(str(tmp_path / "m"), ["abc", "", "a"]), [6, 0, 7])
    # The functions are back on the module after the save.
    assert "serving_function" in vars(module) and "upper" not in vars(module)
    assert module.upper(tf.constant(["ab"])).numpy().tolist() == [b"AB"]


def test_a_plain_function_is_traced_once(tmp_path):
    module = SignatureLengths()
    save_serving_archive(str(tmp_path / "m"), [module], module.serve, SPEC)
    assert module.traces == 1
    np.testing.assert_array_equal(_served(str(tmp_path / "m"), ["abcd"]), [8.0])


def test_a_signature_module_checkpoints_as_a_tf_module(tmp_path):
    module = SignatureLengths()
    module.scale.assign(3.0)
    path = tf.train.Checkpoint(module=module).write(str(tmp_path / "ckpt"))
    other = Lengths()
    tf.train.Checkpoint(module=other).read(path).assert_consumed()
    assert other.scale.numpy() == 3.0


def test_a_signature_input_without_a_name_is_refused(tmp_path):
    module = SignatureLengths()
    unnamed = [tf.TensorSpec([None], tf.string)]
    with pytest.raises(ValueError, match="'serving_default': every input needs a name"):
        save_serving_archive(str(tmp_path / "m"), [module], module.serve, unnamed)
    assert module.traces == 0 and not (tmp_path / "m").exists()


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
