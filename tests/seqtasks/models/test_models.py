import logging

import keras
import numpy as np
import pytest

from seqtasks.models.classifier import build_text_classifier
from seqtasks.models.encoders import ENCODERS, cudnn_blockers
from seqtasks.models.layers import MaskedPooling

TOKENS = np.array([[5, 6, 7, 8, 9], [4, 3, 0, 0, 0], [9, 0, 0, 0, 0]], dtype="int32")


def tiny_classifier(kind, pooling="max", **kwargs):
    keras.utils.set_random_seed(0)
    return build_text_classifier(
        num_classes=3,
        vocabulary_size=10,
        sequence_length=16,
        kind=kind,
        pooling=pooling,
        embedding_dim=4,
        hidden_dim=3,
        num_heads=2,
        intermediate_dim=4,
        num_layers=2,
        dropout=0.1,
        **kwargs,
    )


@pytest.mark.parametrize("kind", ENCODERS)
@pytest.mark.parametrize("pooling", ["max", "mean", "final", "concat"])
def test_padding_never_changes_a_prediction(kind, pooling):
    model = tiny_classifier(kind, pooling)
    short = model.predict_on_batch(TOKENS)
    padded = model.predict_on_batch(np.pad(TOKENS, [(0, 0), (0, 11)]))
    assert short.shape == (3, 3) and short.dtype == np.float32
    np.testing.assert_allclose(short, padded, atol=1e-6)
    np.testing.assert_allclose(short.sum(axis=-1), 1.0, atol=1e-5)
    # A real token in place of padding does change the output, so the test can fail.
    changed = TOKENS.copy()
    changed[2, 1] = 4
    assert not np.allclose(model.predict_on_batch(changed)[2], short[2], atol=1e-6)


@pytest.mark.parametrize("kind", ["bilstm", "transformer"])
def test_concat_pooling_is_summary_max_and_mean(kind):
    model = tiny_classifier(kind, "concat")
    parts = keras.Model(
        model.input,
        [model.get_layer(n).output for n in ("concat_pooling", "max_pooling", "mean_pooling")],
    )
    concat, maximum, mean = (np.asarray(x) for x in parts.predict_on_batch(TOKENS))
    width = maximum.shape[-1]
    assert concat.shape == (3, 3 * width)
    np.testing.assert_allclose(concat[:, width : 2 * width], maximum)
    np.testing.assert_allclose(concat[:, 2 * width :], mean)
    assert not np.allclose(concat[:, :width], maximum)  # the summary is a third part


def test_all_padding_row_gives_finite_output():
    for kind in ENCODERS:
        out = tiny_classifier(kind).predict_on_batch(np.zeros((2, 1), "int32"))
        assert np.isfinite(out).all(), kind


def test_irnn_uses_relu_and_identity_recurrent_weights():
    model = tiny_classifier("rnn", activation="relu")
    layer = model.get_layer("rnn_0")
    assert layer.cell.activation is keras.activations.relu
    np.testing.assert_allclose(layer.cell.recurrent_kernel.numpy(), np.eye(3))


def test_gated_cells_keep_cudnn_settings():
    model = tiny_classifier("bilstm")
    cell = model.get_layer("bilstm_0").forward_layer.cell
    assert cell.activation is keras.activations.tanh
    assert cell.recurrent_activation is keras.activations.sigmoid
    assert cell.recurrent_dropout == 0 and cell.use_bias
    with pytest.raises(ValueError, match="applies to kind='rnn' only"):
        tiny_classifier("lstm", activation="relu")


def gated_rnns(model):
    """Every LSTM/GRU inside ``model`` (both directions of a Bidirectional)."""
    for layer in model._flatten_layers(include_self=False):  # Bidirectional's included
        if isinstance(layer, (keras.layers.LSTM, keras.layers.GRU)):
            yield layer


def test_every_gated_rnn_is_cudnn_eligible_by_default(caplog):
    from seqtasks.models.seq2seq import RNNAttentionSeq2Seq

    models = [tiny_classifier(kind) for kind in ("lstm", "gru", "bilstm")]
    for cell in ("lstm", "gru"):
        models.append(RNNAttentionSeq2Seq(11, 12, embedding_dim=4, hidden_dim=3, cell=cell))
    layers = [layer for model in models for layer in gated_rnns(model)]
    assert len(layers) == 2 + 2 + 4 + 3 + 3  # 2 layers per classifier, seq2seq: 2 + decoder
    assert [cudnn_blockers(layer) for layer in layers] == [[]] * len(layers)
    assert not [r for r in caplog.records if "cuDNN" in r.getMessage()]
    # The check can fail: a layer with recurrent dropout and no bias is not eligible.
    lstm = keras.layers.LSTM(2, recurrent_dropout=0.2, use_bias=False)
    assert cudnn_blockers(lstm) == ["recurrent_dropout=0.2", "use_bias=False"]
    assert cudnn_blockers(keras.layers.GRU(2, reset_after=False)) == ["reset_after=False"]


@pytest.mark.parametrize("kind, cell", [("bilstm", "LSTM"), ("gru", "GRU")])
def test_recurrent_dropout_warns_that_it_disables_cudnn(caplog, kind, cell):
    with caplog.at_level(logging.WARNING, logger="seqtasks.models.encoders"):
        tiny_classifier(kind, recurrent_dropout=0.2)
    warnings = [r.getMessage() for r in caplog.records if "cuDNN" in r.getMessage()]
    assert warnings == [
        f"config field 'recurrent_dropout'=0.2 disables the cuDNN kernel for {cell} on GPU; "
        "training falls back to the generic, several times slower kernel "
        "(recurrent_dropout=0 keeps it)"
    ]
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="seqtasks.models.encoders"):
        tiny_classifier(kind)
        tiny_classifier("rnn", recurrent_dropout=0.2)  # SimpleRNN: no cuDNN kernel to lose
    assert not [r for r in caplog.records if "cuDNN" in r.getMessage()]


def test_masked_pooling_exact_values():
    x = np.array([[[1.0, -2.0], [3.0, -4.0], [100.0, 100.0]]], "float32")
    mask = np.array([[True, True, False]])
    np.testing.assert_allclose(MaskedPooling("mean")(x, padding_mask=mask), [[2.0, -3.0]])
    np.testing.assert_allclose(MaskedPooling("max")(x, padding_mask=mask), [[3.0, -2.0]])
    np.testing.assert_allclose(
        MaskedPooling("max")(x, padding_mask=np.zeros((1, 3), bool)), [[0.0, 0.0]]
    )
    with pytest.raises(ValueError, match="Received: mode='sum'"):
        MaskedPooling("sum")


def test_model_saves_and_reloads(tmp_path):
    model = tiny_classifier("transformer")
    path = str(tmp_path / "m.keras")
    model.save(path)
    again = keras.saving.load_model(path)
    np.testing.assert_allclose(
        again.predict_on_batch(TOKENS), model.predict_on_batch(TOKENS), atol=1e-6
    )
