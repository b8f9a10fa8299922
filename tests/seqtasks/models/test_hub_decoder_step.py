"""The head-major cached step equals keras-hub's own cached call of the same block."""

import numpy as np
import pytest

from seqtasks.models.hub_decoder_step import (
    ATTENTION_ATTRIBUTES,
    BLOCK_ATTRIBUTES,
    block_step,
    check_block,
    empty_cache,
    encoder_keys_values,
)
from seqtasks.models.layers import pad_positions

D, HEADS, POSITIONS = 8, 2, 6
ENCODER_MASK = np.array([[1, 1, 1, 1], [1, 1, 0, 0]], bool)  # row 2: 2 padded positions


def make_block(normalize_first: bool, cross: bool, dropout: float = 0.1):
    """A built block. With dropout > 0 (the recipes' 0.1) keras's MultiHeadAttention
    attends with einsums and a masked Softmax layer; with 0 through
    ``ops.dot_product_attention``: the step must equal both at inference."""
    import keras
    import keras_hub

    keras.utils.set_random_seed(0)
    block = keras_hub.layers.TransformerDecoder(
        16, HEADS, dropout=dropout, normalize_first=normalize_first
    )
    rng = np.random.default_rng(1)
    x = rng.normal(size=(2, 5, D)).astype("float32")
    encoder = rng.normal(size=(2, 4, D)).astype("float32") if cross else None
    block(x, encoder)  # builds the sublayers
    return block, x, encoder


def hub_steps(block, x, encoder):
    """keras-hub's own cached call, one position at a time: outputs (B, T, D) and the
    final stacked cache (B, 2, positions, H, Dh)."""
    from keras import ops

    cache = ops.zeros((2, 2, POSITIONS, HEADS, D // HEADS))
    kwargs = {}
    if encoder is not None:
        empty = ops.zeros((2, 2, 4, HEADS, D // HEADS))
        _, _, cross = block(
            x[:, :1], encoder, encoder_padding_mask=ENCODER_MASK,
            self_attention_cache=ops.zeros((2, 2, 2, HEADS, D // HEADS)),
            self_attention_cache_update_index=0, cross_attention_cache=empty,
            cross_attention_cache_update_index=0,
        )  # fmt: skip
        kwargs = {"cross_attention_cache": cross, "cross_attention_cache_update_index": None}
    outputs = []
    for index in range(x.shape[1]):
        result = block(
            x[:, index : index + 1], encoder, encoder_padding_mask=ENCODER_MASK,
            self_attention_cache=cache, self_attention_cache_update_index=index, **kwargs,
        )  # fmt: skip
        out, cache = result[0], result[1]
        outputs.append(np.asarray(out))
    return np.concatenate(outputs, axis=1), np.asarray(cache)


def fast_steps(block, x, encoder):
    keys, values = empty_cache(block, 2, POSITIONS, "float32")
    cross = encoder_keys_values(block, encoder) if encoder is not None else None
    outputs = []
    for index in range(x.shape[1]):
        out, keys, values = block_step(
            block, x[:, index : index + 1], keys, values, index, cross=cross,
            encoder_mask=ENCODER_MASK,
        )  # fmt: skip
        outputs.append(np.asarray(out))
    return np.concatenate(outputs, axis=1), np.asarray(keys), np.asarray(values)


@pytest.mark.parametrize("dropout", [0.1, 0.0])
@pytest.mark.parametrize("normalize_first", [False, True], ids=["post-norm", "pre-norm"])
@pytest.mark.parametrize("cross", [True, False], ids=["cross-attention", "decoder-only"])
def test_block_step_equals_keras_hub_cached_call(normalize_first, cross, dropout):
    block, x, encoder = make_block(normalize_first, cross, dropout)
    expected, cache = hub_steps(block, x, encoder)
    got, keys, values = fast_steps(block, x, encoder)
    assert got.shape == (2, 5, D) and keys.shape == (2, HEADS, POSITIONS, D // HEADS)
    np.testing.assert_allclose(got, expected, atol=1e-5)
    # the same keys and values, head-major: (B, 2, L, H, Dh) -> (B, H, L, Dh)
    np.testing.assert_allclose(keys, cache[:, 0].transpose(0, 2, 1, 3), atol=1e-6)
    np.testing.assert_allclose(values, cache[:, 1].transpose(0, 2, 1, 3), atol=1e-6)
    assert np.abs(keys[:, :, 5:]).max() == 0.0  # positions not decoded yet stay empty
    # ... and the same as the whole sequence through keras-hub's uncached (training) call
    whole = block(x, encoder, encoder_padding_mask=ENCODER_MASK if cross else None)
    np.testing.assert_allclose(got, np.asarray(whole), atol=1e-5)


def test_block_step_takes_a_tensor_index_inside_a_graph():
    import tensorflow as tf

    block, x, encoder = make_block(False, True)
    expected, keys, values = fast_steps(block, x, encoder)
    cross = encoder_keys_values(block, encoder)

    @tf.function
    def step(h, keys, values, index):  # index: an int32 scalar tensor, as in beam search
        return block_step(block, h, keys, values, index, cross=cross, encoder_mask=ENCODER_MASK)

    keys, values = empty_cache(block, 2, POSITIONS, "float32")
    outputs = []
    for index in range(x.shape[1]):
        out, keys, values = step(x[:, index : index + 1], keys, values, tf.constant(index))
        outputs.append(np.asarray(out))
    np.testing.assert_allclose(np.concatenate(outputs, axis=1), expected, atol=1e-6)


def test_a_padded_source_position_changes_nothing():
    block, x, encoder = make_block(False, True)
    changed = encoder.copy()
    changed[1, 2:] = 100.0  # row 2's padded positions
    got, _, _ = fast_steps(block, x, encoder)
    again, _, _ = fast_steps(block, x, changed)
    np.testing.assert_allclose(again, got, atol=1e-6)


def test_pad_positions_grows_a_head_major_cache_keeping_its_slots():
    cache = np.arange(2 * HEADS * 3 * 4, dtype="float32").reshape(2, HEADS, 3, 4)
    grown = np.asarray(pad_positions(cache, 5))
    assert grown.shape == (2, HEADS, 5, 4)
    np.testing.assert_array_equal(grown[:, :, :3], cache)
    assert np.abs(grown[:, :, 3:]).max() == 0.0


@pytest.mark.parametrize("name", BLOCK_ATTRIBUTES + ("_cross_attention_layer_norm",))
def test_check_block_names_a_private_attribute_keras_hub_renamed(monkeypatch, name):
    block, _, _ = make_block(False, True)
    monkeypatch.delattr(block, name)
    with pytest.raises(AttributeError, match=f"no attribute '{name}'.*keras-hub 0.32.0"):
        check_block(block)


def test_check_block_names_a_renamed_attention_attribute(monkeypatch):
    block, _, _ = make_block(False, True)
    name = ATTENTION_ATTRIBUTES[0]
    monkeypatch.delattr(block._self_attention_layer, name)
    with pytest.raises(AttributeError, match=f"_self_attention_layer has no attribute '{name}'"):
        check_block(block)
    check_block(make_block(False, False)[0], cross=False)  # no cross-attention: not needed
