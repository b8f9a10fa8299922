"""A text classifier that starts from a pretrained language model (``train sentiment
--init-from``): the language model's embeddings and recurrent layers or Transformer blocks,
then pooling and a new classification head.

The transfer of Dai & Le 2015 ("Semi-supervised Sequence Learning", sec. 2: an LSTM
initialised from a language model, then trained on the labelled task) and of ULMFiT (Howard
& Ruder 2018, sec. 3.2-3.3: the language model's encoder, concat pooling of the last hidden
state with the max and mean over time, a new head). The encoder keeps the language model's
direction: a left-to-right LSTM/GRU/SimpleRNN, or causal Transformer blocks.

Layer names (:data:`HEAD_LAYERS` of :mod:`seqtasks.models.classifier` for the head) let
``freeze`` and fine-tuning treat the model as any :func:`~seqtasks.models.classifier.
build_text_classifier` model: ``embedding``, the language model's
``embedding_convolution`` if it has one, then ``lstm_0``, ``lstm_1``, ... (the cell of the
language model) or ``decoder_0``, ..., then the pooling, ``head_dropout`` and
``probabilities``.
"""

from __future__ import annotations

import keras
from keras import ops

from seqtasks.models.classifier import output_layer
from seqtasks.models.language_models import RNNLanguageModel, TransformerLanguageModel
from seqtasks.models.layers import MaskedPooling


@keras.saving.register_keras_serializable(package="seqtasks")
class LastToken(keras.layers.Layer):
    """The state at each row's last real (non-padding) position.

    Call arguments:
        inputs: float ``(batch_size, sequence_length, hidden_dim)``.
        padding_mask: bool ``(batch_size, sequence_length)``, ``True`` for real tokens
            (right padding).

    Returns:
        float ``(batch_size, hidden_dim)``; an all-padding row gives position 0's state.
    """

    def call(self, inputs, padding_mask):
        lengths = ops.sum(ops.cast(padding_mask, "int32"), axis=1)  # (B,)
        last = ops.maximum(lengths - 1, 0)[:, None, None]  # (B, 1, 1)
        return ops.take_along_axis(inputs, last, axis=1)[:, 0, :]  # (B, D)

    def compute_mask(self, inputs, mask=None):
        return None

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[2])


def language_model_kind(language_model) -> str:
    """``lstm``, ``gru``, ``rnn`` or ``transformer``: the architecture of a language model of
    :mod:`seqtasks.models.language_models`.

    Raises:
        ValueError: for any other model.
    """
    if isinstance(language_model, RNNLanguageModel):
        return language_model.cell
    if isinstance(language_model, TransformerLanguageModel):
        return "transformer"
    raise ValueError(
        f"expected a seqtasks language model (RNNLanguageModel or TransformerLanguageModel); "
        f"received: {type(language_model).__name__}"
    )


def classifier_from_language_model(
    language_model,
    *,
    num_classes: int,
    pooling: str = "concat",
    dropout: float = 0.3,
    multi_label: bool = False,
    name: str = "text_classifier",
) -> keras.Model:
    """A classifier whose embeddings and encoder are copies of ``language_model``'s.

    The token ids start with ``[START]`` as in the language model's training windows
    (:class:`seqtasks.lm_transfer.LanguageModelVectorizer` adds it). The language model's
    output layer is not used; the head is new.

    Args:
        language_model: a built :class:`~seqtasks.models.language_models.RNNLanguageModel`
            or :class:`~seqtasks.models.language_models.TransformerLanguageModel`; its weights
            are copied, the model itself is left as it is.
        num_classes: labels (>= 2, or >= 1 with ``multi_label``).
        pooling: ``concat`` (default: the last real position's state, max and mean over
            time side by side, ``(B, 3D)``; ULMFiT sec. 3.3), ``final`` (the last state),
            ``max`` or ``mean``.
        dropout: before the output layer (default 0.3); the encoder keeps the language
            model's own dropout rate between its layers.
        multi_label: one sigmoid per label instead of a softmax (default ``False``).

    Returns:
        A functional ``keras.Model``: int32 ``token_ids`` ``(batch_size, T)`` right-padded
        with 0 -> float32 ``(batch_size, num_classes)`` from a Dense layer ``probabilities``.
        A Transformer reads at most the language model's ``sequence_length`` positions.

    Raises:
        ValueError: for another model or an unknown ``pooling``.
    """
    kind = language_model_kind(language_model)
    if pooling not in ("concat", "final", "max", "mean"):
        raise ValueError(
            f"`pooling` must be one of concat, final, max, mean. Received: pooling={pooling!r}"
        )
    token_ids = keras.Input(shape=(None,), dtype="int32", name="token_ids")
    padding_mask = ops.not_equal(token_ids, 0)  # (B, T)
    copies = []  # (new layer, language model's layer)
    if kind == "transformer":
        import keras_hub

        old = language_model.embedding
        embedding = keras_hub.layers.TokenAndPositionEmbedding.from_config(old.get_config())
        x = embedding(token_ids)
        x = keras.layers.Dropout(language_model.dropout, name="embedding_dropout")(x)
        copies.append((embedding, old))
        for block in language_model.blocks:
            new = keras_hub.layers.TransformerDecoder.from_config(block.get_config())
            x = new(x, decoder_padding_mask=padding_mask)  # causal, as in pretraining
            copies.append((new, block))
    else:
        old = language_model.embedding
        embedding = keras.layers.Embedding(
            old.input_dim, old.output_dim, mask_zero=True, name="embedding"
        )
        x = embedding(token_ids)
        x = keras.layers.Dropout(language_model.dropout, name="embedding_dropout")(x)
        copies.append((embedding, old))
        if language_model.convolution is not None:  # causal, as in pretraining
            old = language_model.convolution
            convolution = type(old).from_config(old.get_config())
            x = convolution(x)  # (B, T, E); the Embedding's mask zeroes padded steps
            copies.append((convolution, old))
        for i, layer in enumerate(language_model.rnn_layers):
            config = {**layer.get_config(), "return_state": False, "return_sequences": True}
            new = type(layer).from_config(config)
            x = new(x)  # the Embedding's mask skips padding
            if i < len(language_model.rnn_layers) - 1:
                x = keras.layers.Dropout(language_model.dropout, name=f"dropout_{i}")(x)
            copies.append((new, layer))
    sequence = x  # (B, T, D)
    summary = LastToken(name="last_state")(sequence, padding_mask)  # (B, D)
    if pooling == "final":
        x = summary
    elif pooling == "concat":
        x = keras.layers.Concatenate(name="concat_pooling")(
            [
                summary,
                MaskedPooling("max", name="max_pooling")(sequence, padding_mask=padding_mask),
                MaskedPooling("mean", name="mean_pooling")(sequence, padding_mask=padding_mask),
            ]
        )  # (B, 3D)
    else:
        x = MaskedPooling(pooling, name=f"{pooling}_pooling")(
            sequence, padding_mask=padding_mask
        )  # (B, D)
    if dropout > 0:
        x = keras.layers.Dropout(dropout, name="head_dropout")(x)
    probabilities = output_layer(num_classes, multi_label)(x)  # (B, C)
    model = keras.Model(token_ids, probabilities, name=name)
    for new, old in copies:
        new.set_weights(old.get_weights())
    return model
