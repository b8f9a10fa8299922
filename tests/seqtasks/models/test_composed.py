"""Translation models and captioners are one composed class: encoder layer + decoder layer."""

import keras
import numpy as np
import pytest

from seqtasks.models.captioning import RNNCaptioner, TransformerCaptioner
from seqtasks.models.composed import EncoderDecoder
from seqtasks.models.decoders import RNNAttentionDecoder, TransformerDecoderStack
from seqtasks.models.feature_encoders import PooledFeatureEncoder, TransformerFeatureEncoder
from seqtasks.models.seq2seq import RNNAttentionSeq2Seq, TransformerSeq2Seq
from seqtasks.models.token_encoders import BidirectionalRNNEncoder, TransformerTokenEncoder

SOURCE = np.array([[5, 6, 7, 8], [9, 4, 0, 0]], np.int32)
FEATURES = np.random.default_rng(0).normal(size=(2, 4, 5)).astype(np.float32)
TARGET = np.array([[2, 4, 5, 6], [2, 7, 0, 0]], np.int32)
TINY = {"hidden_dim": 8, "dropout": 0.0}


def build(kind):
    keras.utils.set_random_seed(0)
    if kind == "transformer":
        model = TransformerSeq2Seq(
            12, 13, 10, intermediate_dim=8, num_heads=2, num_layers=1, **TINY
        )
    elif kind.startswith("rnn"):
        cell = "gru" if kind == "rnn" else kind.split("-")[1]
        model = RNNAttentionSeq2Seq(12, 13, embedding_dim=6, cell=cell, **TINY)
    elif kind == "caption-transformer":
        model = TransformerCaptioner(
            13, 10, num_positions=4, intermediate_dim=8, num_heads=2, num_layers=1,
            num_encoder_layers=1, **TINY,
        )  # fmt: skip
    else:
        attention, cell = kind.split("-")[1], "lstm"
        if attention.startswith("min"):  # a minimal recurrence with additive attention
            attention, cell = "additive", attention
        model = RNNCaptioner(13, embedding_dim=6, cell=cell, attention=attention, **TINY)
    source = FEATURES if kind.startswith("caption") else SOURCE
    model({model.encoder_input_name: source, "decoder_token_ids": TARGET})
    return model, {model.encoder_input_name: source, "decoder_token_ids": TARGET}


KINDS = {
    "transformer": (TransformerTokenEncoder, TransformerDecoderStack, "encoder_token_ids", 3),
    "rnn": (BidirectionalRNNEncoder, RNNAttentionDecoder, "encoder_token_ids", 2),
    "rnn-mingru": (BidirectionalRNNEncoder, RNNAttentionDecoder, "encoder_token_ids", 2),
    "caption-transformer": (
        TransformerFeatureEncoder,
        TransformerDecoderStack,
        "image_features",
        3,
    ),
    "caption-none": (PooledFeatureEncoder, RNNAttentionDecoder, "image_features", 2),
    "caption-additive": (PooledFeatureEncoder, RNNAttentionDecoder, "image_features", 2),
    "caption-minlstm": (PooledFeatureEncoder, RNNAttentionDecoder, "image_features", 2),
}


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_each_model_composes_an_encoder_with_a_shared_decoder(kind):
    encoder_class, decoder_class, input_name, static = KINDS[kind]
    model, inputs = build(kind)
    assert type(model) is EncoderDecoder
    assert type(model.encoder) is encoder_class and type(model.decoder) is decoder_class
    assert model.encoder_input_name == input_name and model.num_static_cache == static
    logits = np.asarray(model(inputs))
    assert logits.shape == (2, 4, 13) and logits.dtype == np.float32
    # The old layer names, the word embedding first; get_layer finds nested layers.
    names = [layer.name for layer in model.layers]
    assert names[0] == "target_embedding" and names[-1] == "logits"
    assert model.get_layer("logits") is model.decoder.output_dense
    assert set(model.freezable_parts()["encoder"]) <= set(names)


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_config_nests_both_halves_and_round_trips(kind, tmp_path):
    model, inputs = build(kind)
    config = model.get_config()
    assert config["encoder"]["registered_name"] == f"seqtasks>{type(model.encoder).__name__}"
    assert config["decoder"]["registered_name"] == f"seqtasks>{type(model.decoder).__name__}"
    clone = EncoderDecoder.from_config(config)
    clone(inputs)
    clone.set_weights(model.get_weights())
    np.testing.assert_allclose(np.asarray(clone(inputs)), np.asarray(model(inputs)), atol=1e-6)
    path = str(tmp_path / "model.keras")
    model.save(path)
    again = keras.saving.load_model(path, compile=False)
    assert [layer.name for layer in again.layers] == [layer.name for layer in model.layers]
    np.testing.assert_allclose(np.asarray(again(inputs)), np.asarray(model(inputs)), atol=1e-6)


def test_translation_and_captioning_share_the_decoder_class():
    translation, _ = build("rnn")  # GRU: one state, one bridge
    captioner, _ = build("caption-additive")  # LSTM: h and c, two bridges
    assert type(translation.decoder) is type(captioner.decoder)
    names = [layer.name for layer in translation.decoder.parts()]
    assert names[:3] == ["target_embedding", "bridge_0", "decoder"]
    names = [layer.name for layer in captioner.decoder.parts()]
    assert names[:4] == ["target_embedding", "bridge_0", "bridge_1", "decoder"]
    assert translation.decoder.units == 16 and captioner.decoder.units == 8  # 2H vs H


def test_unknown_cell_and_attention_are_refused():
    with pytest.raises(ValueError, match="cell must be one of"):
        RNNAttentionSeq2Seq(5, 5, cell="rnn")
    with pytest.raises(ValueError, match="attention must be one of"):
        RNNCaptioner(5, attention="dot")
    with pytest.raises(ValueError, match="hidden_dim must be a multiple of num_heads"):
        TransformerCaptioner(5, 4, 4, hidden_dim=6, num_heads=4)
