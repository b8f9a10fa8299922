"""Decoder-only language models: tokens in, the next token's logits out.

The models the language-model recipe (issue 17) builds on. Both predict token ``t+1``
from tokens ``<= t`` and have the decoder-only interface of :func:`seqtasks.decoding.
decode` (``encoder_token_ids=None`` with a prompt), so greedy, sampling and beam search
need no other code:

- ``model({"decoder_token_ids": ids})`` -> logits float32 ``(batch, length,
  vocabulary_size)``; ``ids`` int32 ``(batch, length)``, ``[START]`` first, right-padded
  with ``[PAD]`` = 0 (padding never changes an earlier position's logits);
- ``model.init_cache(None, max_length, batch_size=B)`` -> a tuple of tensors, batch
  first (``num_static_cache = 0``: beam search reorders all of them);
- ``model.decode_step(token_ids (B, 1), cache, index)`` -> ``(logits (B, V), cache)``:
  the next-token logits after the token at position ``index``; a ``[PAD]`` step leaves
  the cache unchanged (RNN: the state; Transformer: a padded position is never attended);
- ``model.cache_grows`` and ``model.grow_cache(cache, length)`` (Transformer): the cache's
  length is the output's, so beam search starts it small and grows it
  (:func:`seqtasks.decoding.cache_stages`).

Models:

- :class:`RNNLanguageModel`: stacked LSTM/GRU/SimpleRNN layers over word embeddings,
  dropout on the embeddings, between layers and before the softmax (Zaremba et al.
  2014, sec. 3; Mikolov et al. 2010 for the recurrent language model itself); or
  minGRU/minLSTM layers (Feng et al. 2024, sec. 3: trained with a scan over the whole
  window, decoded with their cached step); optionally a short causal convolution over the
  embeddings first (``conv_kernel_size``: the one before the Mamba block's scan, Gu & Dao
  2023, sec. 3.4), cached as the last ``kernel_size - 1`` embeddings.
- :class:`TransformerLanguageModel`: keras-hub ``TokenAndPositionEmbedding`` and
  ``TransformerDecoder`` blocks without cross-attention, causal self-attention
  (Radford et al. 2018's decoder-only arrangement of Vaswani et al. 2017, sec. 3).

``tie_embeddings=True`` uses the input embedding matrix as the output projection
(Press & Wolf 2017, "Using the Output Embedding to Improve Language Models", sec. 3),
which needs the last hidden width to equal the embedding width.

``num_sampled=K > 0`` trains with sampled softmax (:mod:`seqtasks.sampled_softmax`):
called with ``training=True`` and the targets as ``inputs["target_ids"]`` (int
``(batch, length)``), the model returns float32 ``(batch, length, 1 + K)`` corrected
logits whose column 0 is the target's (:class:`~seqtasks.losses.MaskedCrossEntropy` with
``num_sampled=K`` reads them); otherwise, and always at inference, the full
``(batch, length, vocabulary_size)`` logits.
"""

from __future__ import annotations

import keras
from keras import ops

from seqtasks.models.hub_decoder_step import block_step, check_block, empty_cache
from seqtasks.models.layers import MaskedConvolution, pad_positions
from seqtasks.models.min_rnn import MinGRU, MinLSTM
from seqtasks.models.min_rnn_block import MinRNNBlock
from seqtasks.sampled_softmax import log_uniform_candidates, output_rows, sampled_logits

LM_CELLS = ("lstm", "gru", "rnn", "mingru", "minlstm")
MIN_CELLS = {"mingru": MinGRU, "minlstm": MinLSTM}


def _check_tying(tie_embeddings: bool, width: int, embedding_dim: int) -> None:
    if tie_embeddings and width != embedding_dim:
        raise ValueError(
            "tie_embeddings needs the output width to equal embedding_dim; "
            f"Received: width={width}, embedding_dim={embedding_dim}"
        )


def _check_sampled(num_sampled: int, vocabulary_size: int) -> None:
    if num_sampled < 0 or (num_sampled and num_sampled >= vocabulary_size - 1):
        raise ValueError(
            "num_sampled must be 0 (full softmax) or smaller than the vocabulary size minus "
            f"one; Received: num_sampled={num_sampled}, vocabulary_size={vocabulary_size}"
        )


class _SampledSoftmaxMixin:
    """The training output of both language models (see the module docstring)."""

    def _init_sampled(self, num_sampled: int, vocabulary_size: int) -> None:
        _check_sampled(num_sampled, vocabulary_size)
        self.num_sampled = num_sampled
        self.sampler_seed = keras.random.SeedGenerator(0) if num_sampled else None

    def _logits(self, x, inputs, training):
        targets = inputs.get("target_ids") if isinstance(inputs, dict) else None
        if not (training and self.num_sampled and targets is not None):
            return self.output_layer(x)
        if not self.output_layer.built:
            self.output_layer(x[:, :1])
        kernel, bias = output_rows(self.output_layer)
        ids, log_expected = log_uniform_candidates(
            self.num_sampled, self.vocabulary_size, seed=self.sampler_seed
        )
        return sampled_logits(x, targets, kernel, bias, ids, log_expected)


@keras.saving.register_keras_serializable(package="seqtasks")
class TiedOutput(keras.layers.Layer):
    """Logits from the transposed input embedding matrix plus a bias (Press & Wolf 2017).

    Call: float ``(..., embedding_dim)`` -> float32 ``(..., vocabulary_size)``.
    """

    def __init__(self, embedding: keras.layers.Embedding, **kwargs):
        super().__init__(**kwargs)
        self.embedding = embedding

    def build(self, input_shape):
        self.bias = self.add_weight(
            shape=(self.embedding.input_dim,), initializer="zeros", name="bias"
        )

    def call(self, x):
        kernel = ops.cast(self.embedding.embeddings, x.dtype)
        return ops.cast(ops.matmul(x, ops.transpose(kernel)), "float32") + self.bias


@keras.saving.register_keras_serializable(package="seqtasks")
class RNNLanguageModel(_SampledSoftmaxMixin, keras.Model):
    """Stacked recurrent language model (see the module docstring).

    Args:
        vocabulary_size: int, tokens are in ``[0, vocabulary_size)``.
        embedding_dim: int, token embedding size (default 256).
        hidden_dim: int, units of each recurrent layer (default 512).
        num_layers: int, stacked recurrent layers (default 2).
        cell: ``"lstm"`` (default), ``"gru"``, ``"rnn"`` (SimpleRNN), ``"mingru"`` or
            ``"minlstm"`` (:mod:`seqtasks.models.min_rnn`).
        dropout: float, on the embeddings, between layers and before the output
            layer (default 0.2).
        tie_embeddings: bool, output projection = transposed input embeddings
            (needs ``hidden_dim == embedding_dim``; default False).
        residual_blocks: bool, ``mingru``/``minlstm`` only: stack
            :class:`~seqtasks.models.min_rnn_block.MinRNNBlock` (normalisation, residual
            connection, feed-forward network of ``4 * hidden_dim``) instead of plain
            layers (default False).
        num_sampled: int, sampled softmax classes in training (0, the default: the full
            softmax; see the module docstring).
        conv_kernel_size: int, > 0: a causal
            :class:`~seqtasks.models.layers.MaskedConvolution` of this many positions over
            the embeddings before the first recurrent layer, so that gates which read one
            input (minGRU) see the previous ``conv_kernel_size - 1`` tokens too; its cache
            is one more float tensor ``(batch_size, conv_kernel_size - 1, embedding_dim)``
            (default 0: none).

    Raises:
        ValueError: for another ``cell``, tying with different widths,
            ``residual_blocks`` with another cell, ``conv_kernel_size < 0``, or
            ``num_sampled >= vocabulary_size - 1``.
    """

    num_static_cache = 0
    cache_grows = False  # the state has no time axis
    encoder_input_name = None  # decoder-only

    def __init__(
        self,
        vocabulary_size: int,
        embedding_dim: int = 256,
        hidden_dim: int = 512,
        num_layers: int = 2,
        cell: str = "lstm",
        dropout: float = 0.2,
        tie_embeddings: bool = False,
        residual_blocks: bool = False,
        num_sampled: int = 0,
        conv_kernel_size: int = 0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self._init_sampled(num_sampled, vocabulary_size)
        if int(conv_kernel_size) < 0:
            raise ValueError(
                f"conv_kernel_size must be >= 0 (0: no convolution); "
                f"Received: conv_kernel_size={conv_kernel_size}"
            )
        self.conv_kernel_size = int(conv_kernel_size)
        if cell not in LM_CELLS:
            raise ValueError(f"cell must be one of {LM_CELLS}; Received: cell={cell!r}")
        if residual_blocks and cell not in MIN_CELLS:
            raise ValueError(
                f"residual_blocks applies to mingru and minlstm; Received: cell={cell!r}"
            )
        self.residual_blocks = residual_blocks
        _check_tying(tie_embeddings, hidden_dim, embedding_dim)
        self.vocabulary_size, self.embedding_dim = vocabulary_size, embedding_dim
        self.hidden_dim, self.num_layers, self.cell = hidden_dim, num_layers, cell
        self.dropout, self.tie_embeddings = dropout, tie_embeddings
        layer = {"lstm": keras.layers.LSTM, "gru": keras.layers.GRU, **MIN_CELLS}.get(
            cell, keras.layers.SimpleRNN
        )
        self.num_states = 2 if cell == "lstm" else 1
        self.embedding = keras.layers.Embedding(vocabulary_size, embedding_dim, name="embedding")
        self.convolution = (
            MaskedConvolution(self.conv_kernel_size, padding="causal", name="embedding_convolution")
            if self.conv_kernel_size
            else None
        )
        if residual_blocks:
            self.rnn_layers = [
                MinRNNBlock(
                    hidden_dim, cell, dropout=dropout, return_state=True, name=f"{cell}_{i}"
                )
                for i in range(num_layers)
            ]
        else:
            self.rnn_layers = [
                layer(hidden_dim, return_sequences=True, return_state=True, name=f"{cell}_{i}")
                for i in range(num_layers)
            ]
        self.dropouts = [keras.layers.Dropout(dropout) for _ in range(num_layers + 1)]
        self.output_layer = (
            TiedOutput(self.embedding, name="logits")
            if tie_embeddings
            else keras.layers.Dense(vocabulary_size, dtype="float32", name="logits")
        )

    def call(self, inputs, training=None):
        ids = inputs["decoder_token_ids"]
        mask = ops.not_equal(ids, 0)
        x = self.dropouts[0](self.embedding(ids), training=training)
        if self.convolution is not None:
            x = self.convolution(x, mask=mask)  # (B, T, E), causal
        for layer, dropout in zip(self.rnn_layers, self.dropouts[1:]):
            x, *_ = layer(x, mask=mask, training=training)
            x = dropout(x, training=training)
        # A plain op, not a layer: drops the Keras mask (the loss masks padding itself).
        return self._logits(ops.multiply(x, 1.0), inputs, training)

    def init_cache(self, encoder_inputs, max_length, batch_size=None):
        """Zero states: ``num_layers * num_states`` float ``(batch_size, hidden_dim)``,
        then, with ``conv_kernel_size``, the previous embeddings ``(batch_size,
        conv_kernel_size - 1, embedding_dim)`` (zeros: the causal padding)."""
        del encoder_inputs, max_length  # decoder-only; an RNN's cache does not grow
        zeros = ops.zeros((batch_size, self.hidden_dim), self.compute_dtype)
        states = tuple(zeros for _ in range(self.num_layers * self.num_states))
        if self.convolution is None:
            return states
        shape = (batch_size, self.conv_kernel_size - 1, self.embedding_dim)
        return states + (ops.zeros(shape, self.compute_dtype),)

    def decode_step(self, token_ids, cache, index):
        x = self.embedding(token_ids)  # (B, 1, E)
        is_pad = ops.equal(token_ids, 0)  # (B, 1): a [PAD] keeps the state
        new_cache = []
        if self.convolution is not None:
            window = ops.concatenate([cache[-1], ops.cast(x, cache[-1].dtype)], axis=1)
            x = self.convolution.step(window)  # (B, 1, E); window (B, K, E)
            kept = ops.where(is_pad[:, :, None], cache[-1], window[:, 1:, :])
            # a static (K-1, E) keeps the cache's shape fixed in graph loops (tf.while_loop)
            kept = ops.reshape(kept, (-1, self.conv_kernel_size - 1, self.embedding_dim))
            cache = cache[:-1]
        for i, layer in enumerate(self.rnn_layers):
            state = list(cache[i * self.num_states : (i + 1) * self.num_states])
            if self.cell in MIN_CELLS:  # the cached step, not a scan over one position
                y, h = layer.decode_step(x[:, 0, :], state[0])  # (B, H) each
                x, new_state = y[:, None, :], [h]
            else:
                x, *new_state = layer(x, initial_state=state)
            new_cache += [ops.where(is_pad, old, new) for old, new in zip(state, new_state)]
        if self.convolution is not None:
            new_cache.append(kept)
        return self.output_layer(x)[:, 0, :], tuple(new_cache)

    def freezable_parts(self) -> dict[str, list[str]]:
        """``embeddings``: the token embedding; ``encoder``: the convolution, if any, and
        every recurrent layer."""
        convolution = [self.convolution.name] if self.convolution is not None else []
        return {
            "embeddings": ["embedding"],
            "encoder": convolution + [layer.name for layer in self.rnn_layers],
        }

    def get_config(self):
        return {
            **super().get_config(),
            "vocabulary_size": self.vocabulary_size,
            "embedding_dim": self.embedding_dim,
            "hidden_dim": self.hidden_dim,
            "num_layers": self.num_layers,
            "cell": self.cell,
            "dropout": self.dropout,
            "tie_embeddings": self.tie_embeddings,
            "residual_blocks": self.residual_blocks,
            "num_sampled": self.num_sampled,
            "conv_kernel_size": self.conv_kernel_size,
        }


@keras.saving.register_keras_serializable(package="seqtasks")
class TransformerLanguageModel(_SampledSoftmaxMixin, keras.Model):
    """Decoder-only Transformer language model (see the module docstring).

    Args:
        vocabulary_size: int.
        sequence_length: int, the longest sequence (sizes the position embeddings).
        hidden_dim: int, ``d_model`` (default 256).
        intermediate_dim: int, feed-forward width (default 1024).
        num_heads: int (default 4).
        num_layers: int, decoder blocks (default 4).
        dropout: float (default 0.1).
        tie_embeddings: bool, output projection = transposed token embeddings (default False).
        num_sampled: int, sampled softmax classes in training (0, the default: the full
            softmax; see the module docstring).

    Raises:
        ValueError: if ``num_heads`` does not divide ``hidden_dim``, or
            ``num_sampled >= vocabulary_size - 1``.
    """

    num_static_cache = 0
    encoder_input_name = None  # decoder-only

    def __init__(
        self,
        vocabulary_size: int,
        sequence_length: int,
        hidden_dim: int = 256,
        intermediate_dim: int = 1024,
        num_heads: int = 4,
        num_layers: int = 4,
        dropout: float = 0.1,
        tie_embeddings: bool = False,
        num_sampled: int = 0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        import keras_hub

        self._init_sampled(num_sampled, vocabulary_size)
        if hidden_dim % num_heads:
            raise ValueError(
                "hidden_dim must be a multiple of num_heads; "
                f"Received: hidden_dim={hidden_dim}, num_heads={num_heads}"
            )
        self.vocabulary_size, self.sequence_length = vocabulary_size, sequence_length
        self.hidden_dim, self.intermediate_dim = hidden_dim, intermediate_dim
        self.num_heads, self.num_layers = num_heads, num_layers
        self.dropout, self.tie_embeddings = dropout, tie_embeddings
        self.embedding = keras_hub.layers.TokenAndPositionEmbedding(
            vocabulary_size, sequence_length, hidden_dim, name="embedding"
        )
        self.embedding_dropout = keras.layers.Dropout(dropout)
        self.blocks = [
            keras_hub.layers.TransformerDecoder(
                intermediate_dim, num_heads, dropout=dropout, name=f"decoder_{i}"
            )
            for i in range(num_layers)
        ]
        self.output_layer = (
            TiedOutput(self.embedding.token_embedding, name="logits")
            if tie_embeddings
            else keras.layers.Dense(vocabulary_size, dtype="float32", name="logits")
        )

    def call(self, inputs, training=None):
        ids = inputs["decoder_token_ids"]
        mask = ops.not_equal(ids, 0)
        x = self.embedding_dropout(self.embedding(ids), training=training)
        for block in self.blocks:
            x = block(x, decoder_padding_mask=mask, training=training)  # causal by default
        return self._logits(x, inputs, training)

    def init_cache(self, encoder_inputs, max_length, batch_size=None):
        """Self-attention keys and values of each block, filled one position per step:
        ``2 * num_layers`` float tensors ``(batch_size, num_heads, max_length, head_dim)``
        (head-major, :mod:`seqtasks.models.hub_decoder_step`)."""
        del encoder_inputs  # decoder-only
        dtype = self.blocks[0].compute_dtype
        cache = []
        for block in self.blocks:
            check_block(block, cross=False)
            cache.extend(empty_cache(block, batch_size, max_length, dtype))
        return tuple(cache)

    #: The self-attention cache's length is the output's: beam search grows it (grow_cache).
    cache_grows = True

    def grow_cache(self, cache, length):
        """``cache`` with its self-attention slots zero-padded to ``length`` positions."""
        return tuple(pad_positions(c, length) for c in cache)

    def decode_step(self, token_ids, cache, index):
        x = self.embedding(token_ids, start_index=index)  # (B, 1, D)
        updated = []
        for i, block in enumerate(self.blocks):
            x, keys, values = block_step(block, x, cache[2 * i], cache[2 * i + 1], index)
            updated.extend((keys, values))
        return self.output_layer(x)[:, 0, :], tuple(updated)

    def freezable_parts(self) -> dict[str, list[str]]:
        """``embeddings``: token and position embeddings; ``encoder``: every block."""
        return {"embeddings": ["embedding"], "encoder": [block.name for block in self.blocks]}

    def get_config(self):
        return {
            **super().get_config(),
            "vocabulary_size": self.vocabulary_size,
            "sequence_length": self.sequence_length,
            "hidden_dim": self.hidden_dim,
            "intermediate_dim": self.intermediate_dim,
            "num_heads": self.num_heads,
            "num_layers": self.num_layers,
            "dropout": self.dropout,
            "tie_embeddings": self.tie_embeddings,
            "num_sampled": self.num_sampled,
        }
