"""The residual block minGRU/minLSTM layers are stacked in for language modelling.

Feng et al. 2024 ("Were RNNs All We Needed?", arXiv 2410.01201) stack their minimal
recurrences for language modelling the way Transformer blocks are stacked: normalise,
recur, add the input back, then a position-wise feed-forward network with its own
normalisation and residual connection (the pre-normalisation arrangement of Xiong et al.
2020 for Transformers). :class:`MinRNNBlock` is that block, one layer with the interface
of :class:`~seqtasks.models.min_rnn.MinRNN` (``return_sequences``, ``return_state``,
masking, a cached step), so a model stacks plain layers or blocks the same way. With
``bidirectional=True`` (classifiers' encoders) the recurrence is
``keras.layers.Bidirectional`` of the cell and the block is ``2 * units`` wide.
"""

from __future__ import annotations

import keras
from keras import ops

from seqtasks.models.min_rnn import MinGRU, MinLSTM
from seqtasks.models.object_sharing import build_bidirectional

CELLS = {"mingru": MinGRU, "minlstm": MinLSTM}


@keras.saving.register_keras_serializable(package="seqtasks")
class MinRNNBlock(keras.layers.Layer):
    """``x + MinRNN(LayerNorm(x))``, then ``y + FFN(LayerNorm(y))``.

    Args:
        units: int, the recurrent state and the block's output width (per direction).
        cell: ``"mingru"`` (default) or ``"minlstm"``.
        intermediate_dim: int, hidden width of the feed-forward network (default
            ``4 * width``); GELU between its two Dense layers.
        dropout: float, on the recurrence's and the feed-forward network's outputs
            before each residual addition (default 0).
        return_sequences: bool, every position's output ``(batch, T, width)`` or the
            last one (default ``True``).
        return_state: bool, also return the recurrence's last state ``(batch, width)``
            (bidirectional: the forward state after the last real step and the backward
            state after the first, concatenated).
        bidirectional: bool, run the cell in both directions (``keras.layers.Bidirectional``,
            outputs concatenated); the block's width is then ``2 * units`` (default
            ``False``: width ``units``). A bidirectional block has no ``decode_step``.

    Call arguments:
        sequences: float ``(batch, T, input_dim)``; an ``input_dim`` other than
            the width is projected by a Dense layer on the residual path.
        initial_state: ``None`` or ``[h0]``, float ``(batch, units)``, >= 0
            (unidirectional only).
        mask: bool ``(batch, T)``; padded steps leave the recurrent state unchanged.

    Raises:
        ValueError: for another ``cell``, or an ``initial_state`` with ``bidirectional``.
    """

    def __init__(
        self,
        units: int,
        cell: str = "mingru",
        intermediate_dim: int | None = None,
        dropout: float = 0.0,
        return_sequences: bool = True,
        return_state: bool = False,
        bidirectional: bool = False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if cell not in CELLS:
            raise ValueError(f"`cell` must be one of {tuple(CELLS)}. Received: cell={cell!r}")
        self.units, self.cell = int(units), cell
        self.bidirectional = bool(bidirectional)
        self.width = 2 * self.units if self.bidirectional else self.units
        self.intermediate_dim = int(intermediate_dim or 4 * self.width)
        self.dropout = dropout
        self.return_sequences, self.return_state = return_sequences, return_state
        policy = {"dtype": self.dtype_policy}  # the block's, also when loaded under another
        self.norm1 = keras.layers.LayerNormalization(epsilon=1e-5, name="norm1", **policy)
        rnn = CELLS[cell](
            self.units, return_sequences=True, return_state=True, name="rnn", **policy
        )
        self.rnn = build_bidirectional(rnn, name="rnn", **policy) if self.bidirectional else rnn
        self.norm2 = keras.layers.LayerNormalization(epsilon=1e-5, name="norm2", **policy)
        self.ffn_in = keras.layers.Dense(
            self.intermediate_dim, activation="gelu", name="ffn_in", **policy
        )
        self.ffn_out = keras.layers.Dense(self.width, name="ffn_out", **policy)
        self.drop = keras.layers.Dropout(dropout, **policy)
        self.projection = None
        self.supports_masking = True

    def build(self, input_shape):
        if input_shape[-1] != self.width:
            self.projection = keras.layers.Dense(
                self.width, use_bias=False, name="projection", dtype=self.dtype_policy
            )
            self.projection.build(input_shape)
        self.norm1.build(input_shape)
        self.rnn.build(input_shape)
        inner = (*input_shape[:-1], self.width)
        self.norm2.build(inner)
        self.ffn_in.build(inner)
        self.ffn_out.build((*input_shape[:-1], self.intermediate_dim))

    def _residual(self, x):
        return x if self.projection is None else self.projection(x)

    def _feed_forward(self, y, training=None):
        return y + self.drop(self.ffn_out(self.ffn_in(self.norm2(y))), training=training)

    def call(self, sequences, initial_state=None, mask=None, training=None):
        if self.bidirectional:
            if initial_state is not None:
                raise ValueError(f"{self.name}: a bidirectional block takes no initial_state")
            states, forward, backward = self.rnn(
                self.norm1(sequences), mask=mask, training=training
            )
            last = ops.concatenate([forward, backward], axis=-1)  # (B, 2 * units)
        else:
            states, last = self.rnn(
                self.norm1(sequences), initial_state=initial_state, mask=mask, training=training
            )
        y = self._residual(sequences) + self.drop(states, training=training)
        y = self._feed_forward(y, training)  # (B, T, width)
        output = y if self.return_sequences else y[:, -1, :]
        return (output, last) if self.return_state else output

    def decode_step(self, inputs, state):
        """One position: ``inputs`` float ``(batch, input_dim)``, ``state`` ``(batch, units)``
        -> ``(output (batch, units), new state (batch, units))``.

        Raises:
            ValueError: for a bidirectional block (it reads the whole sequence)."""
        if self.bidirectional:
            raise ValueError(f"{self.name}: a bidirectional block has no step mode")
        h = self.rnn.step(self.norm1(inputs), state)
        y = self._feed_forward(self._residual(inputs) + h)
        return y, h

    def compute_mask(self, inputs, mask=None):
        out = mask if self.return_sequences else None
        return [out, None] if self.return_state else out

    def compute_output_shape(self, sequences_shape, initial_state_shape=None):
        batch, steps = sequences_shape[0], sequences_shape[1]
        output = (batch, steps, self.width) if self.return_sequences else (batch, self.width)
        return (output, (batch, self.width)) if self.return_state else output

    def get_config(self):
        return {
            **super().get_config(),
            "units": self.units,
            "cell": self.cell,
            "intermediate_dim": self.intermediate_dim,
            "dropout": self.dropout,
            "return_sequences": self.return_sequences,
            "return_state": self.return_state,
            "bidirectional": self.bidirectional,
        }
