"""Minimal recurrences trained with a parallel scan: ``MinGRU`` and ``MinLSTM``.

Feng, Tung, Ahmed, Bengio & Hajimirsadeghi 2024, "Were RNNs All We Needed?"
(arXiv 2410.01201), section 3: drop the previous state from every gate of the GRU and
the LSTM, and the recurrence becomes linear in the state,

    h_t = a_t * h_{t-1} + b_t          (a_t, b_t computed from x_t alone),

so a whole sequence is one associative scan over the maps ``h -> a_t h + b_t`` instead of
T dependent steps:

- minGRU (sec. 3.1): ``z_t = sigmoid(W_z x_t)``, ``a_t = 1 - z_t``, ``b_t = z_t * g(W_h x_t)``;
- minLSTM (sec. 3.2): ``f_t = sigmoid(W_f x_t)``, ``i_t = sigmoid(W_i x_t)``, normalised
  to ``f'_t = f_t / (f_t + i_t)`` and ``i'_t = i_t / (f_t + i_t)`` (time-independent
  scale), ``a_t = f'_t``, ``b_t = i'_t * g(W_h x_t)``.

``g(x) = x + 0.5`` for ``x >= 0`` and ``sigmoid(x)`` otherwise keeps the candidate state
positive, so the scan runs in log space (appendix B, "log-space" versions): each step is
the pair ``(log a_t, log b_t)`` and two maps compose as ``(la1 + la2, logaddexp(la2 + lb1,
lb2))``: products of many gates never underflow and no cumulative sum of log gates is
subtracted from another (the cancellation of the ``cumsum`` form on long sequences).
States are therefore positive: ``h_t > 0``.

Three modes share one set of weights:

- **whole sequence** (``__call__``), by one of two scans chosen with ``scan``:
  ``associative`` (the paper's parallel mode: a log-space associative scan inside chunks
  of 64 steps, :func:`log_linear_scan`) or ``sequential`` (the same recurrence as a loop
  of elementwise steps in linear space over time-major tensors, :func:`gated_scan`: no
  matrix product in the loop, unlike an LSTM; both layers have the gated form
  ``h_t = (1 - z_t) h_{t-1} + z_t c_t``, minLSTM's ``f'_t`` being ``1 - i'_t``).
  ``auto`` (default) takes ``sequential`` on a CPU, where it measured 2.8-5x faster
  under TensorFlow and JAX (``bench/min_rnn_throughput.py``), and on the TensorFlow
  backend; ``associative`` on a JAX or PyTorch accelerator (GPU/TPU).
  Both run in float32 whatever the compute dtype;
- **step** (:meth:`MinRNN.step`): one token, for cached decoding, computed in the linear
  space the paper's sequential algorithms use;
- **masking**: a padded step is the identity map (``a = 1``, ``b = 0``), so it leaves the
  state unchanged and padding never changes an output of a real step.
"""

from __future__ import annotations

import keras
from keras import ops

from seqtasks.models.linear_scans import (  # noqa: F401 (gated_scan, log_linear_scan re-exported)
    LOG_ZERO,
    SCANS,
    TINY,
    _on_accelerator,
    g,
    gated_scan,
    log_g,
    log_linear_scan,
)


class MinRNN(keras.layers.Layer):
    """Shared machinery of :class:`MinGRU` and :class:`MinLSTM` (use those).

    Args:
        units: int, size of the state ``h``.
        return_sequences: bool, return every step's state ``(batch, T, units)`` instead
            of the last one ``(batch, units)`` (default ``False``).
        return_state: bool, also return the last state (default ``False``).
        go_backwards: bool, read the sequence from its end; with ``return_sequences``
            the states come in that reversed order, as Keras RNN layers return them
            (``Bidirectional`` flips them back). Default ``False``.
        stateful: must be ``False`` (kept for ``keras.layers.Bidirectional``, which
            compares it across directions).
        zero_output_for_mask: bool, padded steps output zeros instead of the carried
            state when returning sequences (``Bidirectional`` sets it). Default ``False``.
        dropout: float in [0, 1), dropout on the inputs while training (default 0).
        scan: how a whole sequence is computed: ``auto`` (default), ``sequential`` or
            ``associative`` (see the module docstring); the weights and results are the
            same (float32 round-off apart).
        use_bias: bool (default ``True``).
        kernel_initializer, bias_initializer, kernel_regularizer, bias_regularizer:
            as in ``keras.layers.Dense`` for the gate and candidate projections.

    Call arguments:
        sequences: float ``(batch, T, input_dim)``.
        initial_state: ``None`` (zeros) or a list of one float ``(batch, units)``
            tensor, >= 0 for the ``associative`` scan (its states are positive; the
            states these layers compute always are).
        mask: bool ``(batch, T)``, ``False`` at padded steps (the Keras mask of
            ``Embedding(mask_zero=True)`` is used when not given).
        training: bool, enables ``dropout``.

    Raises:
        ValueError: for ``stateful=True``, ``units < 1``, ``dropout`` outside [0, 1) or
            another ``scan``.
    """

    num_gates = 0  # projections of x_t: gates and the candidate state

    def __init__(
        self,
        units: int,
        return_sequences: bool = False,
        return_state: bool = False,
        go_backwards: bool = False,
        stateful: bool = False,
        zero_output_for_mask: bool = False,
        dropout: float = 0.0,
        scan: str = "auto",
        use_bias: bool = True,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        kernel_regularizer=None,
        bias_regularizer=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if stateful:
            raise ValueError(f"{type(self).__name__} does not support stateful=True")
        if units < 1:
            raise ValueError(f"`units` must be >= 1. Received: units={units}")
        if not 0 <= dropout < 1:
            raise ValueError(f"`dropout` must be in [0, 1). Received: dropout={dropout}")
        if scan not in SCANS:
            raise ValueError(f"`scan` must be one of {SCANS}. Received: scan={scan!r}")
        self.units, self.scan = int(units), scan
        self.return_sequences, self.return_state = return_sequences, return_state
        self.go_backwards, self.stateful = go_backwards, stateful
        self.zero_output_for_mask = zero_output_for_mask
        self.dropout, self.use_bias = dropout, use_bias
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)
        self.bias_regularizer = keras.regularizers.get(bias_regularizer)
        self.input_dropout = keras.layers.Dropout(dropout) if dropout else None
        self.supports_masking = True

    @property
    def state_size(self):
        return self.units

    @property
    def states(self):
        """``None``: not stateful (``keras.layers.Bidirectional`` reads it)."""
        return None

    def build(self, input_shape):
        input_dim = input_shape[-1]
        self.kernel = self.add_weight(
            shape=(input_dim, self.num_gates * self.units),
            initializer=self.kernel_initializer,
            regularizer=self.kernel_regularizer,
            name="kernel",
        )
        self.bias = (
            self.add_weight(
                shape=(self.num_gates * self.units,),
                initializer=self.bias_initializer,
                regularizer=self.bias_regularizer,
                name="bias",
            )
            if self.use_bias
            else None
        )

    def _project(self, x, training=None):
        if self.input_dropout is not None:
            x = self.input_dropout(x, training=training)
        k = ops.matmul(x, ops.cast(self.kernel, x.dtype))
        if self.bias is not None:
            k = k + ops.cast(self.bias, x.dtype)
        return ops.cast(k, "float32")  # the scan runs in float32 under mixed precision

    def log_coefficients(self, k):
        """``(log a, log b)`` float32 ``(..., units)`` from the projections ``k`` (..., G*units)."""
        raise NotImplementedError

    def gate_and_candidate(self, k):
        """``(z, c)`` float32 ``(..., units)``: the gated form's ``h = (1 - z) h + z c``
        (linear space, the paper's sequential form; :meth:`step` and the sequential scan)."""
        raise NotImplementedError

    def call(self, sequences, initial_state=None, mask=None, training=None):
        if self.go_backwards:
            sequences = ops.flip(sequences, axis=1)
            if mask is not None:
                mask = ops.flip(mask, axis=1)
        real = None if mask is None else ops.expand_dims(ops.cast(mask, "bool"), -1)  # (B, T, 1)
        h0 = None
        if initial_state is not None:
            (h0,) = initial_state if isinstance(initial_state, (list, tuple)) else [initial_state]
            h0 = ops.cast(h0, "float32")
        if self.resolved_scan() == "sequential":  # time-major from the (narrower) inputs on
            k = self._project(ops.transpose(sequences, (1, 0, 2)), training)  # (T, B, G*U)
            z, c = self.gate_and_candidate(k)
            if real is not None:  # a padded step is the identity map: z = 0
                z = ops.where(ops.transpose(real, (1, 0, 2)), z, 0.0)
            states = gated_scan(z, c, h0)  # (T, B, U) float32
            last = ops.cast(states[-1], self.compute_dtype)
            if self.return_sequences:
                states = ops.transpose(states, (1, 0, 2))
            return self._outputs(states, last, real, mask)
        log_a, log_b = self.log_coefficients(self._project(sequences, training))  # (B, T, U)
        if real is not None:
            log_a, log_b = ops.where(real, log_a, 0.0), ops.where(real, log_b, LOG_ZERO)
        log_h0 = None if h0 is None else ops.log(ops.maximum(h0, TINY))
        states = ops.exp(log_linear_scan(log_a, log_b, log_h0))  # (B, T, U) float32
        last = ops.cast(states[:, -1, :], self.compute_dtype)
        return self._outputs(states, last, real, mask)

    def _outputs(self, states, last, real, mask):
        """The call's result from all states (B, T, U) float32 (read only when returning
        sequences) and the last one (padded steps carry the state: the last real one)."""
        if self.return_sequences:
            output = ops.cast(states, self.compute_dtype)
            if self.zero_output_for_mask and mask is not None:
                output = output * ops.cast(real, output.dtype)
        else:
            output = last
        if self.return_state:
            return output, last
        return output

    def resolved_scan(self) -> str:
        """``sequential`` or ``associative``: what ``scan`` (``auto`` included) runs."""
        if self.scan != "auto":
            return self.scan
        return "associative" if _on_accelerator() else "sequential"

    def step(self, inputs, state):
        """One recurrence step, for cached decoding.

        Args:
            inputs: float ``(batch, input_dim)``, x_t.
            state: float ``(batch, units)``, h_{t-1} (zeros before the first step).

        Returns:
            float ``(batch, units)``: h_t, equal to the parallel mode's state at step t.
        """
        z, c = self.gate_and_candidate(self._project(inputs))
        h = ops.cast(state, "float32")
        return ops.cast(h + z * (c - h), self.compute_dtype)

    def decode_step(self, inputs, state):
        """:meth:`step` as ``(output, new state)``, the interface of
        :class:`~seqtasks.models.min_rnn_block.MinRNNBlock` (here both are ``h_t``)."""
        h = self.step(inputs, state)
        return h, h

    def compute_mask(self, inputs, mask=None):
        if not self.return_sequences or mask is None:
            return [None, None] if self.return_state else None
        mask = ops.flip(mask, axis=1) if self.go_backwards else mask
        return [mask, None] if self.return_state else mask

    def compute_output_shape(self, sequences_shape, initial_state_shape=None):
        batch, steps = sequences_shape[0], sequences_shape[1]
        output = (batch, steps, self.units) if self.return_sequences else (batch, self.units)
        if self.return_state:
            return output, (batch, self.units)
        return output

    def get_config(self):
        return {
            **super().get_config(),
            "units": self.units,
            "return_sequences": self.return_sequences,
            "return_state": self.return_state,
            "go_backwards": self.go_backwards,
            "stateful": self.stateful,
            "zero_output_for_mask": self.zero_output_for_mask,
            "dropout": self.dropout,
            "scan": self.scan,
            "use_bias": self.use_bias,
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            "bias_initializer": keras.initializers.serialize(self.bias_initializer),
            "kernel_regularizer": keras.regularizers.serialize(self.kernel_regularizer),
            "bias_regularizer": keras.regularizers.serialize(self.bias_regularizer),
        }


@keras.saving.register_keras_serializable(package="seqtasks")
class MinGRU(MinRNN):
    """minGRU (Feng et al. 2024, sec. 3.1; log-space form of appendix B).

    ``z_t = sigmoid(W_z x_t + b_z)``, ``h~_t = g(W_h x_t + b_h)``,
    ``h_t = (1 - z_t) * h_{t-1} + z_t * h~_t``. Arguments, call and shapes as in
    :class:`MinRNN`; ``MinGRU(units, return_sequences=False, go_backwards=False, ...)``
    reads like ``keras.layers.GRU``. Weights: ``kernel (input_dim, 2 * units)`` and
    ``bias (2 * units,)``, gate first.
    """

    num_gates = 2

    def log_coefficients(self, k):
        k_z, k_h = ops.split(k, 2, axis=-1)
        log_z = -ops.softplus(-k_z)  # log sigmoid(k_z)
        return -ops.softplus(k_z), log_z + log_g(k_h)  # log(1 - z), log(z * h~)

    def gate_and_candidate(self, k):
        k_z, k_h = ops.split(k, 2, axis=-1)
        return ops.sigmoid(k_z), g(k_h)


@keras.saving.register_keras_serializable(package="seqtasks")
class MinLSTM(MinRNN):
    """minLSTM (Feng et al. 2024, sec. 3.2; log-space form of appendix B).

    ``f_t = sigmoid(W_f x_t + b_f)``, ``i_t = sigmoid(W_i x_t + b_i)``,
    ``f'_t, i'_t = f_t / (f_t + i_t), i_t / (f_t + i_t)``, ``h~_t = g(W_h x_t + b_h)``,
    ``h_t = f'_t * h_{t-1} + i'_t * h~_t``. There is no separate cell state or output
    gate: ``return_state`` gives ``h`` only. Weights: ``kernel (input_dim, 3 * units)``
    (forget, input, candidate) and ``bias (3 * units,)``.
    """

    num_gates = 3

    def log_coefficients(self, k):
        k_f, k_i, k_h = ops.split(k, 3, axis=-1)
        diff = ops.softplus(-k_f) - ops.softplus(-k_i)  # log i - log f
        return -ops.softplus(diff), -ops.softplus(-diff) + log_g(k_h)  # log f', log(i' h~)

    def gate_and_candidate(self, k):
        k_f, k_i, k_h = ops.split(k, 3, axis=-1)
        diff = ops.softplus(-k_f) - ops.softplus(-k_i)  # log i - log f
        return ops.sigmoid(diff), g(k_h)  # i' (f' = 1 - i'), h~
