"""The keras-hub attention-score adapter: a masked softmax, and a clear error on a rename."""

import numpy as np
import pytest

from seqtasks.models.hub_attention import PRIVATE_ATTRIBUTES, decoder_cross_attention_scores
from seqtasks.models.seq2seq import TransformerSeq2Seq

SOURCE = np.array([[5, 6, 7, 8], [9, 4, 0, 0]], np.int32)  # row 2: 2 padded positions
TARGET = np.array([[2, 4, 5], [2, 6, 0]], np.int32)


def last_block_inputs():
    import keras

    keras.utils.set_random_seed(0)
    model = TransformerSeq2Seq(
        12, 12, sequence_length=10, hidden_dim=8, intermediate_dim=8, num_heads=2,
        num_layers=1, dropout=0.0,
    )  # fmt: skip
    model({"encoder_token_ids": SOURCE, "decoder_token_ids": TARGET})
    outputs, mask = model.encode(SOURCE)
    x = model.decoder.target_embedding(TARGET)
    return model, (model.decoder_layers[-1], x, outputs, TARGET != 0, mask)


def test_adapter_scores_are_a_softmax_over_the_unmasked_source():
    model, args = last_block_inputs()
    scores = np.asarray(decoder_cross_attention_scores(*args))
    assert scores.shape == (2, 2, 3, 4)  # (batch, heads, target, source)
    np.testing.assert_allclose(scores.sum(-1), 1.0, atol=1e-5)
    assert np.abs(scores[1, :, :, 2:]).max() < 1e-6  # padded source positions get nothing
    assert scores[0].min() > 0 and np.ptp(scores[0]) > 1e-4  # not a constant
    weights = np.asarray(model.cross_attention(SOURCE, TARGET))  # one block: the same scores
    np.testing.assert_allclose(weights, scores.mean(1), atol=1e-6)


@pytest.mark.parametrize("name", PRIVATE_ATTRIBUTES)
def test_adapter_names_a_private_attribute_keras_hub_renamed(monkeypatch, name):
    _, args = last_block_inputs()
    monkeypatch.delattr(args[0], name)
    with pytest.raises(AttributeError, match=f"no attribute '{name}'.*keras-hub 0.32.0"):
        decoder_cross_attention_scores(*args)
