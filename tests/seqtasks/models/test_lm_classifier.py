"""A classifier built over a language model's layers computes what the language model
computes (same weights, same states), and its last-state pooling ignores padding."""

import keras
import numpy as np
import pytest

from seqtasks.models.language_models import RNNLanguageModel, TransformerLanguageModel
from seqtasks.models.lm_classifier import (
    LastToken,
    classifier_from_language_model,
    language_model_kind,
)

IDS = np.array([[2, 5, 6, 7, 0, 0], [2, 9, 0, 0, 0, 0], [2, 4, 4, 8, 9, 3]], np.int32)


def _language_model(kind):
    if kind == "transformer":
        model = TransformerLanguageModel(
            40, 8, hidden_dim=8, intermediate_dim=16, num_heads=2, num_layers=2
        )
    else:
        cell, _, variant = kind.partition("-")
        model = RNNLanguageModel(
            40, 6, 10, num_layers=2, cell=cell, residual_blocks=variant == "block",
            conv_kernel_size=3 if variant == "conv" else 0,
        )  # fmt: skip
    model({"decoder_token_ids": np.ones((1, 2), np.int32)})
    return model


def _language_model_states(model, ids):
    """The last encoder layer's states of the language model itself, inference mode."""
    mask = ids != 0
    x = model.embedding(ids)
    if isinstance(model, TransformerLanguageModel):
        for block in model.blocks:
            x = block(x, decoder_padding_mask=mask)
    else:
        if model.convolution is not None:
            x = model.convolution(x, mask=mask)
        for layer in model.rnn_layers:
            x, *_ = layer(x, mask=mask)
    return np.asarray(x)


@pytest.mark.parametrize(
    "kind",
    ["lstm", "gru", "rnn", "transformer", "mingru", "minlstm", "minlstm-block", "mingru-conv"],
)
def test_the_encoder_is_the_language_models_with_its_weights(kind):
    lm = _language_model(kind)
    assert language_model_kind(lm) == kind.partition("-")[0]
    classifier = classifier_from_language_model(lm, num_classes=3, pooling="concat")
    last = "decoder_1" if kind == "transformer" else f"{kind.partition('-')[0]}_1"
    encoder = keras.Model(classifier.input, classifier.get_layer(last).output)
    ours, theirs = np.asarray(encoder(IDS)), _language_model_states(lm, IDS)
    real = IDS != 0
    np.testing.assert_allclose(ours[real], theirs[real], atol=1e-6)
    np.testing.assert_array_equal(
        classifier.get_layer("embedding").get_weights()[0], lm.embedding.get_weights()[0]
    )
    probabilities = np.asarray(classifier(IDS))
    assert probabilities.shape == (3, 3)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    # concat pooling: last state, max and mean side by side
    width = 8 if kind == "transformer" else 10
    assert classifier.get_layer("concat_pooling").output.shape[-1] == 3 * width


def test_training_the_classifier_leaves_the_language_model_as_it_was():
    lm = _language_model("lstm")
    before = [w.copy() for w in lm.get_weights()]
    classifier = classifier_from_language_model(lm, num_classes=2)
    classifier.compile(optimizer=keras.optimizers.Adam(0.1), loss="sparse_categorical_crossentropy")
    classifier.train_on_batch(IDS, np.array([0, 1, 0]))
    assert not np.array_equal(
        classifier.get_layer("embedding").get_weights()[0], lm.embedding.get_weights()[0]
    )
    for old, now in zip(before, lm.get_weights()):
        np.testing.assert_array_equal(old, now)


def test_last_token_takes_each_rows_last_real_position():
    states = np.arange(3 * 6 * 2, dtype="float32").reshape(3, 6, 2)
    out = np.asarray(LastToken()(states, IDS != 0))
    np.testing.assert_array_equal(out, states[[0, 1, 2], [3, 1, 5]])


def test_another_model_or_pooling_is_refused():
    with pytest.raises(ValueError, match="seqtasks language model"):
        language_model_kind(keras.Sequential([keras.layers.Dense(2)]))
    with pytest.raises(ValueError, match="pooling"):
        classifier_from_language_model(_language_model("gru"), num_classes=2, pooling="sum")
