"""Loading ``.keras`` files written before the models were composed (deprecated formats).

Until commit 7e8929e the models were the classes ``seqtasks>RNNAttentionSeq2Seq``,
``seqtasks>TransformerSeq2Seq``, ``seqtasks>RNNCaptioner`` and
``seqtasks>TransformerCaptioner``, each holding every layer itself. Keras 3 stores a
subclassed model's weights by the attribute path of each layer (``target_embedding/...``,
``decoder_layers/transformer_decoder/...``, ``layers/dense_3/...``: a model's ``layers``
list is walked too, its entries named by class), so those files cannot load into the
:class:`~seqtasks.models.composed.EncoderDecoder`, whose layers sit under ``encoder/``
and ``decoder/``.

The four old names stay registered here as loaders. Each builds the current model from
the old config and exposes the current model's layers (the same objects) under the old
attribute names, in the old creation order, so Keras reads every weight of the file
into the current model's layers; :func:`upgrade` then returns the current model.
:func:`seqtasks.inference.load_keras_model` calls it. Keras' own
``keras.saving.load_model`` returns the loader, which predicts (``call``) but has none
of the rest of the interface: load through ``load_keras_model``.

Tested with files the old code wrote (``tests/fixtures/legacy_models``).
"""

from __future__ import annotations

import keras

from seqtasks.models import captioning, seq2seq


class _Current:
    """Holds the converted model out of sight of Keras' attribute walk (which would
    otherwise look for the converted model's own paths in the old file)."""

    __slots__ = ("model",)

    def __init__(self, model):
        self.model = model


class _LegacyLoader(keras.Model):
    """The layout of a pre-composition model over a current model's layers."""

    def _adopt(self, current) -> None:
        self._current = _Current(current)

    def build_from_config(self, config):
        self._current.model.build_from_config(config)
        self.built = True

    def call(self, inputs, training=None):
        return self._current.model(inputs, training=training)

    def upgrade(self):
        """The current :class:`~seqtasks.models.composed.EncoderDecoder` (same weights)."""
        return self._current.model


def upgrade(model):
    """``model`` itself, or the current model a pre-composition loader filled."""
    return model.upgrade() if isinstance(model, _LegacyLoader) else model


@keras.saving.register_keras_serializable(package="seqtasks", name="RNNAttentionSeq2Seq")
class LegacyRNNAttentionSeq2Seq(_LegacyLoader):
    """Loader of ``seqtasks>RNNAttentionSeq2Seq`` files (deprecated)."""

    def __init__(self, source_vocabulary_size, target_vocabulary_size, embedding_dim=256,
                 hidden_dim=256, num_layers=1, cell="lstm", attention="additive",
                 dropout=0.2, **kwargs):  # fmt: skip
        super().__init__(**kwargs)
        current = seq2seq.RNNAttentionSeq2Seq(
            source_vocabulary_size, target_vocabulary_size, embedding_dim, hidden_dim,
            num_layers, cell, attention, dropout, **kwargs,
        )  # fmt: skip
        self._adopt(current)
        encoder, decoder = current.encoder, current.decoder
        self.target_embedding = decoder.target_embedding
        self.source_embedding = encoder.source_embedding
        self.encoder_layers = list(encoder.encoder_layers)
        self.bridge = list(decoder.bridge)
        self.decoder_rnn = decoder.decoder_rnn
        self.source_attention = decoder.source_attention
        self.attentional = decoder.attentional
        self.embedding_dropout = encoder.embedding_dropout
        self.output_dropout = decoder.output_dropout
        self.output_dense = decoder.output_dense


@keras.saving.register_keras_serializable(package="seqtasks", name="TransformerSeq2Seq")
class LegacyTransformerSeq2Seq(_LegacyLoader):
    """Loader of ``seqtasks>TransformerSeq2Seq`` files (deprecated)."""

    def __init__(self, source_vocabulary_size, target_vocabulary_size, sequence_length,
                 hidden_dim=256, intermediate_dim=512, num_heads=4, num_layers=3,
                 dropout=0.1, **kwargs):  # fmt: skip
        super().__init__(**kwargs)
        current = seq2seq.TransformerSeq2Seq(
            source_vocabulary_size, target_vocabulary_size, sequence_length, hidden_dim,
            intermediate_dim, num_heads, num_layers, dropout, **kwargs,
        )  # fmt: skip
        self._adopt(current)
        encoder, decoder = current.encoder, current.decoder
        self.target_embedding = decoder.target_embedding
        self.embedding_dropout = decoder.embedding_dropout
        self.source_embedding = encoder.source_embedding
        self.encoder_layers = list(encoder.encoder_layers)
        self.decoder_layers = list(decoder.decoder_layers)
        self.output_dense = decoder.output_dense


@keras.saving.register_keras_serializable(package="seqtasks", name="RNNCaptioner")
class LegacyRNNCaptioner(_LegacyLoader):
    """Loader of ``seqtasks>RNNCaptioner`` files (deprecated)."""

    def __init__(self, vocabulary_size, embedding_dim=256, hidden_dim=512, cell="lstm",
                 attention="additive", dropout=0.3, **kwargs):  # fmt: skip
        super().__init__(**kwargs)
        current = captioning.RNNCaptioner(
            vocabulary_size, embedding_dim, hidden_dim, cell, attention, dropout, **kwargs
        )
        self._adopt(current)
        encoder, decoder = current.encoder, current.decoder
        self.target_embedding = decoder.target_embedding
        if encoder.feature_projection is not None:
            self.feature_projection = encoder.feature_projection
        self.feature_dropout = encoder.feature_dropout
        self.bridge = list(decoder.bridge)
        self.decoder_rnn = decoder.decoder_rnn
        self.source_attention = decoder.source_attention
        self.attentional = decoder.attentional
        self.embedding_dropout = decoder.embedding_dropout
        self.output_dropout = decoder.output_dropout
        self.output_dense = decoder.output_dense


@keras.saving.register_keras_serializable(package="seqtasks", name="TransformerCaptioner")
class LegacyTransformerCaptioner(_LegacyLoader):
    """Loader of ``seqtasks>TransformerCaptioner`` files (deprecated)."""

    def __init__(self, vocabulary_size, sequence_length, num_positions, hidden_dim=256,
                 intermediate_dim=1024, num_heads=4, num_layers=2, num_encoder_layers=0,
                 dropout=0.1, **kwargs):  # fmt: skip
        super().__init__(**kwargs)
        current = captioning.TransformerCaptioner(
            vocabulary_size, sequence_length, num_positions, hidden_dim, intermediate_dim,
            num_heads, num_layers, num_encoder_layers, dropout, **kwargs,
        )  # fmt: skip
        self._adopt(current)
        encoder, decoder = current.encoder, current.decoder
        self.target_embedding = decoder.target_embedding
        self.embedding_dropout = decoder.embedding_dropout
        self.feature_projection = encoder.feature_projection
        self.feature_norm = encoder.feature_norm
        self.position_embedding = encoder.position_embedding
        self.encoder_layers = list(encoder.encoder_layers)
        self.decoder_layers = list(decoder.decoder_layers)
        self.output_dense = decoder.output_dense
