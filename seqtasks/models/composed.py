"""One encoder-decoder model class for translation and captioning: an encoder layer
(:mod:`seqtasks.models.token_encoders` or :mod:`seqtasks.models.feature_encoders`)
composed with a decoder layer (:mod:`seqtasks.models.decoders`).

Interface (all tensors are backend tensors, written with ``keras.ops``), the one
:mod:`seqtasks.decoding`, training, export and the plots rely on:

- ``model({model.encoder_input_name: x, "decoder_token_ids": y_in})`` -> logits
  float32 ``(batch, target_length, vocabulary_size)``: teacher forcing, the decoder
  sees the true previous tokens. ``encoder_input_name`` is ``"encoder_token_ids"``
  (int32 ``(batch, source_length)``, right-padded with 0) for translation and
  ``"image_features"`` (float32 ``(batch, positions, dim)``) for captioning;
  ``y_in`` is int32, starts with ``[START]``, right-padded with 0.
- ``model.encode(x)`` -> ``(encoder_outputs (batch, source_length, dim),
  encoder_padding_mask bool (batch, source_length))``.
- ``model.init_cache(x, max_length)`` -> a tuple of tensors whose first axis is the
  batch. The first ``model.num_static_cache`` entries depend only on the source
  (encoder states, mask, precomputed cross-attention keys/values); beam search
  reorders only the others (per-hypothesis state).
- ``model.decode_step(token_ids (batch, 1), cache, index)`` -> ``(logits (batch,
  vocabulary_size), cache)``: the next-token distribution after the token at position
  ``index``, reusing the cache (Transformer: keys/values of every layer; RNN: the state).
- ``model.cache_grows`` / ``model.grow_cache(cache, length)``: a Transformer decoder's
  self-attention cache is as long as the output, so beam search starts it small and
  zero-pads it when full (:func:`seqtasks.decoding.cache_stages`); False for an RNN.
- ``model.cross_attention(x, y_in)`` -> float32 ``(batch, target_length,
  source_length)``, the attention weights of the (last) decoder layer, for plots; None
  for a decoder without attention (Show and Tell).
- ``model.freezable_parts()`` -> ``{"encoder": [...], "embeddings": [...]}``, layer
  names for :func:`seqtasks.models.seq2seq.freeze`.
- ``model.layers``: the encoder's and decoder's own layers (``target_embedding``,
  ``source_embedding``, ``encoder_0``, ``bridge_0``, ``decoder_0``, ``logits``, ...), the
  word embedding first as the models before composition listed them, so ``get_layer``,
  ``freeze`` and the fine-tuning reports see the same names.
"""

from __future__ import annotations

import keras

# Imported for their registration: deserializing a model deserializes its two halves.
from seqtasks.models import decoders, feature_encoders, token_encoders  # noqa: F401


@keras.saving.register_keras_serializable(package="seqtasks")
class EncoderDecoder(keras.Model):
    """An encoder layer and a decoder layer behind the seqtasks model interface.

    Args:
        encoder: a token encoder (translation) or feature encoder (captioning): a layer
            with ``encode(x, training)`` -> ``(outputs, mask, summaries)``,
            ``input_name``, ``parts()`` and ``model_parts(model)``.
        decoder: an :class:`~seqtasks.models.decoders.RNNAttentionDecoder` or
            :class:`~seqtasks.models.decoders.TransformerDecoderStack`.
        share_embeddings: bool, the encoder's source token embedding is the decoder's
            target token embedding (one variable; a joint source-target vocabulary;
            Transformer token encoder and decoder only; Press & Wolf 2017, sec. 3;
            Vaswani et al. 2017, sec. 3.4). Default False.
        **kwargs: ``keras.Model`` arguments (``name``, ``dtype``, ...).

    Raises:
        ValueError: ``share_embeddings`` with layers that have no token embeddings of
            one size.
    """

    def __init__(self, encoder, decoder, share_embeddings: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.share_embeddings = bool(share_embeddings)
        if self.share_embeddings:
            source = getattr(getattr(encoder, "source_embedding", None), "token_embedding", None)
            target = getattr(getattr(decoder, "target_embedding", None), "token_embedding", None)
            if source is None or target is None or source.input_dim != target.input_dim:
                raise ValueError(
                    "share_embeddings needs a Transformer token encoder and decoder with one "
                    f"vocabulary; Received: encoder={type(encoder).__name__}, "
                    f"decoder={type(decoder).__name__}"
                )
            # Before either is built: one ReversibleEmbedding, one variable, in both.
            encoder.source_embedding.token_embedding = target
        self.encoder = encoder
        self.decoder = decoder

    @property
    def encoder_input_name(self) -> str:
        """The key of the encoder input in ``call``'s dict."""
        return self.encoder.input_name

    @property
    def num_static_cache(self) -> int:
        """Leading cache entries that depend only on the source (never reordered)."""
        return self.decoder.num_static_cache

    @property
    def layers(self) -> list:
        """The word embedding, the encoder's layers, then the rest of the decoder's."""
        if getattr(self, "decoder", None) is None:  # during __init__
            return []
        word, *rest = self.decoder.parts()
        return [word, *self.encoder.parts(), *rest]

    @property
    def encoder_layers(self) -> list:
        """The encoder's stacked blocks (RNN layers or ``TransformerEncoder`` blocks)."""
        return self.encoder.encoder_layers

    @property
    def decoder_layers(self) -> list:
        """The Transformer decoder's blocks (AttributeError for an RNN decoder)."""
        return self.decoder.decoder_layers

    def call(self, inputs, training=None):
        encoded = self.encoder.encode(inputs[self.encoder_input_name], training=training)
        return self.decoder.decode(inputs["decoder_token_ids"], encoded, training=training)

    def encode(self, encoder_input, training=None):
        outputs, mask, _ = self.encoder.encode(encoder_input, training=training)
        return outputs, mask

    def init_cache(self, encoder_input, max_length):
        return self.decoder.init_cache(self.encoder.encode(encoder_input), max_length)

    @property
    def cache_grows(self) -> bool:
        """Whether the cache's length is the output's (a Transformer decoder): see
        :func:`seqtasks.decoding.cache_stages`."""
        return getattr(self.decoder, "cache_grows", False)

    def grow_cache(self, cache, length):
        return self.decoder.grow_cache(cache, length)

    def decode_step(self, token_ids, cache, index):
        return self.decoder.decode_step(token_ids, cache, index)

    def cross_attention(self, encoder_input, decoder_token_ids):
        return self.decoder.cross_attention(decoder_token_ids, self.encoder.encode(encoder_input))

    def freezable_parts(self) -> dict[str, list[str]]:
        """The layers of each part fine-tuning can freeze (see the encoder's
        ``model_parts``: :func:`~seqtasks.models.token_encoders.text_parts` or
        :func:`~seqtasks.models.feature_encoders.image_parts`)."""
        return self.encoder.model_parts(self)

    def get_config(self):
        return {
            **super().get_config(),
            "encoder": keras.saving.serialize_keras_object(self.encoder),
            "decoder": keras.saving.serialize_keras_object(self.decoder),
            "share_embeddings": self.share_embeddings,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        encoder = keras.saving.deserialize_keras_object(config.pop("encoder"))
        decoder = keras.saving.deserialize_keras_object(config.pop("decoder"))
        return cls(encoder, decoder, **config)
