"""MaskedConvolution: the residual convolution over embeddings (``conv_kernel_size``) that
padding never reaches, its values, its saved form and the config's checks."""

import keras
import numpy as np
import pytest

from seqtasks.errors import ConfigError
from seqtasks.models.classifier import build_text_classifier
from seqtasks.models.layers import MaskedConvolution
from tasks.sentiment_config import SentimentConfig

RNG = np.random.default_rng(0)


def test_values_are_x_plus_silu_of_the_centred_convolution_of_the_masked_input():
    x = RNG.normal(size=(2, 6, 3)).astype("float32")
    mask = np.array([[1, 1, 1, 1, 1, 1], [1, 1, 1, 0, 0, 0]], bool)
    layer = MaskedConvolution(3)
    y = np.asarray(layer(x, mask=mask))
    kernel, bias = (np.asarray(w) for w in layer.conv.weights)  # (3, 3, 3), (3,)
    masked = np.pad(x * mask[..., None], [(0, 0), (1, 1), (0, 0)])  # "same" for width 3
    conv = np.stack([np.einsum("btc,tcd->bd", masked[:, t : t + 3], kernel) for t in range(6)], 1)
    silu = (conv + bias) / (1 + np.exp(-(conv + bias)))
    np.testing.assert_allclose(y, x + silu * mask[..., None], atol=1e-5)
    np.testing.assert_array_equal(y[1, 3:], x[1, 3:])  # padded steps: x itself, unread
    causal = MaskedConvolution(3, padding="causal")  # reads no later position
    np.testing.assert_allclose(causal(x[:, :4]), np.asarray(causal(x))[:, :4], atol=1e-6)
    assert not np.allclose(layer(x[:, :4]), np.asarray(layer(x))[:, :4], atol=1e-6)
    # step: one causal position from the window of the kernel_size inputs ending there
    full = np.asarray(causal(x))
    padded = np.pad(x, [(0, 0), (2, 0), (0, 0)])  # the causal padding, as a zero cache
    for t in range(6):
        np.testing.assert_allclose(causal.step(padded[:, t : t + 3]), full[:, t : t + 1], atol=1e-5)


@pytest.mark.parametrize("kind", ["bimingru", "minlstm", "lstm"])
def test_a_classifier_with_it_ignores_padding_and_round_trips(tmp_path, kind):
    keras.utils.set_random_seed(1)
    model = build_text_classifier(
        num_classes=2, vocabulary_size=50, sequence_length=20, kind=kind,
        embedding_dim=6, hidden_dim=4, conv_kernel_size=3, dropout=0.1,
    )  # fmt: skip
    assert model.get_layer("embedding_convolution").kernel_size == 3
    ids = np.array([[5, 6, 7, 8, 0], [9, 3, 0, 0, 0]], "int32")
    probabilities = np.asarray(model(ids))
    longer = np.concatenate([ids, np.zeros((2, 6), "int32")], axis=1)
    np.testing.assert_allclose(model(longer), probabilities, atol=1e-5)
    changed = ids.copy()
    changed[1, 2] = 4  # a real token where padding was: the answer moves
    assert not np.allclose(np.asarray(model(changed))[1], probabilities[1], atol=1e-6)
    path = str(tmp_path / "model.keras")
    model.save(path)
    reloaded = keras.saving.load_model(path)
    np.testing.assert_allclose(reloaded(ids), probabilities, atol=1e-6)
    assert reloaded.get_layer("embedding_convolution").get_config()["padding"] == "same"


def test_mistakes():
    with pytest.raises(ValueError, match="`kernel_size` must be >= 1. Received: kernel_size=0"):
        MaskedConvolution(0)
    with pytest.raises(ValueError, match="`padding` must be 'same' or 'causal'"):
        MaskedConvolution(3, padding="valid")
    same, causal = MaskedConvolution(3), MaskedConvolution(3, padding="causal")
    x = np.ones((1, 3, 2))
    same(x), causal(x)
    with pytest.raises(ValueError, match="`step` needs padding='causal'"):
        same.step(x)
    with pytest.raises(ValueError, match=r"`window` must hold kernel_size=3 positions"):
        causal.step(np.ones((1, 4, 2)))
    with pytest.raises(ValueError, match="`conv_kernel_size` applies to recurrent kinds"):
        build_text_classifier(
            num_classes=2, vocabulary_size=50, sequence_length=20, kind="transformer",
            embedding_dim=4, num_heads=2, conv_kernel_size=3,
        )  # fmt: skip
    with pytest.raises(ConfigError, match="config field 'conv_kernel_size': applies to recurrent"):
        SentimentConfig(model="transformer", conv_kernel_size=3).check()


@pytest.mark.parametrize("residual_blocks", [False, True])
def test_a_mixed_precision_model_loads_and_runs_under_float32(tmp_path, residual_blocks):
    """The convolution's (and a residual block's) sublayers keep their layer's dtype
    policy, not the global one at load time."""
    ids = np.array([[5, 6, 7, 0], [9, 3, 0, 0]], "int32")
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = build_text_classifier(
            num_classes=2, vocabulary_size=50, sequence_length=20, kind="bimingru",
            embedding_dim=6, hidden_dim=4, conv_kernel_size=3,
            residual_blocks=residual_blocks, intermediate_dim=8,
        )  # fmt: skip
        expected = np.asarray(model(ids), "float32")
        model.save(tmp_path / "model.keras")
    finally:
        keras.mixed_precision.set_global_policy("float32")
    reloaded = keras.saving.load_model(tmp_path / "model.keras")
    conv = reloaded.get_layer("embedding_convolution")
    assert conv.conv.dtype_policy.name == conv.dtype_policy.name == "mixed_float16"
    if residual_blocks:
        block = reloaded.get_layer("bimingru_0")
        assert block.ffn_in.dtype_policy.name == block.norm1.dtype_policy.name == "mixed_float16"
    np.testing.assert_allclose(np.asarray(reloaded(ids), "float32"), expected, atol=1e-3)
