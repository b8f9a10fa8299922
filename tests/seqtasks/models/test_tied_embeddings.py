"""Three-way tied embeddings of the Transformer seq2seq model (``tie_embeddings``): one
variable for the source embedding, the target embedding and the output layer, kept
through a save/load round trip; and the config that asks for it."""

import os

import keras
import numpy as np
import pytest
from keras import ops

from seqtasks.models.seq2seq import TransformerSeq2Seq

V, L = 50, 8


def _model(tie):
    model = TransformerSeq2Seq(V, V, L, hidden_dim=16, intermediate_dim=32, num_heads=2,
                               num_layers=1, dropout=0.0, tie_embeddings=tie)  # fmt: skip
    model(_inputs())
    return model


def _inputs():
    rng = np.random.default_rng(0)
    return {
        "encoder_token_ids": rng.integers(1, V, size=(2, L)).astype("int32"),
        "decoder_token_ids": np.array([[2, 5, 9, 0, 0, 0, 0, 0], [2, 7, 7, 8, 0, 0, 0, 0]]),
    }


def _embedding_variables(model):
    return [w for w in model.weights if w.path.endswith("token_embedding/embeddings")]


def test_one_variable_serves_source_target_and_output():
    tied, untied = _model(True), _model(False)
    source = tied.encoder.source_embedding.token_embedding.embeddings
    target = tied.decoder.target_embedding.token_embedding.embeddings
    assert source is target
    assert len(_embedding_variables(tied)) == 1 and len(_embedding_variables(untied)) == 2
    assert tied.decoder.output_dense is None
    # Parameters: untied has a second V x D matrix and a V x D + V output layer more.
    assert untied.count_params() - tied.count_params() == 2 * V * 16 + V
    # The output layer is the transposed embedding: logits = h E^T.
    inputs = _inputs()
    encoded = tied.encoder.encode(inputs["encoder_token_ids"])
    x = tied.decoder.target_embedding(inputs["decoder_token_ids"])
    mask = ops.not_equal(inputs["decoder_token_ids"], 0)
    h = tied.decoder._blocks(x, encoded[0], encoded[1], mask, tied.decoder.decoder_layers)
    want = np.asarray(h) @ np.asarray(source).T
    np.testing.assert_allclose(np.asarray(tied(inputs)), want, rtol=1e-5, atol=1e-5)


def test_a_gradient_step_moves_the_shared_matrix_through_all_three_uses():
    model = _model(True)
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="sparse_categorical_crossentropy")
    before = np.array(model.encoder.source_embedding.token_embedding.embeddings)
    inputs = _inputs()
    model.train_on_batch(inputs, np.roll(inputs["decoder_token_ids"], -1, axis=1))
    after_source = np.asarray(model.encoder.source_embedding.token_embedding.embeddings)
    after_target = np.asarray(model.decoder.target_embedding.token_embedding.embeddings)
    np.testing.assert_array_equal(after_source, after_target)
    # Rows of source-only tokens change too: the output layer's gradient reaches every row.
    assert np.abs(after_source - before).max() > 0


def test_tying_survives_a_save_load_round_trip(tmp_path):
    model = _model(True)
    path = os.path.join(tmp_path, "tied.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert loaded.share_embeddings and loaded.decoder.tie_embeddings
    source = loaded.encoder.source_embedding.token_embedding.embeddings
    assert source is loaded.decoder.target_embedding.token_embedding.embeddings
    np.testing.assert_array_equal(
        np.asarray(source), np.asarray(model.encoder.source_embedding.token_embedding.embeddings)
    )
    np.testing.assert_allclose(
        np.asarray(loaded(_inputs())), np.asarray(model(_inputs())), rtol=1e-6, atol=1e-6
    )


def test_tying_two_vocabulary_sizes_is_refused():
    with pytest.raises(ValueError, match="share_embeddings needs"):
        TransformerSeq2Seq(V, V + 1, L, hidden_dim=16, num_heads=2, tie_embeddings=True)


@pytest.mark.parametrize(
    "fields", [{"shared_vocabulary": False}, {"model": "rnn-attention", "shared_vocabulary": True}]
)
def test_the_config_needs_the_transformer_and_a_shared_vocabulary(fields):
    from seqtasks.errors import ConfigError
    from tasks import get_recipe

    recipe = get_recipe("translation")
    assert recipe.make_config(tie_embeddings=True, shared_vocabulary=True).tie_embeddings
    with pytest.raises(ConfigError, match="'tie_embeddings' needs model=transformer"):
        recipe.make_config(tie_embeddings=True, **fields)
