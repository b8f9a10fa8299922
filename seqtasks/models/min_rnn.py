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
  of elementwise steps in linear space, :func:`linear_scan`: no matrix product in the
  loop, unlike an LSTM). ``auto`` (default) takes ``sequential`` on a CPU, where it
  measured 2.8-5x faster under TensorFlow and JAX (``bench/min_rnn_throughput.py``), and
  on the TensorFlow backend; ``associative`` on a JAX or PyTorch accelerator (GPU/TPU).
  Both run in float32 whatever the compute dtype;
- **step** (:meth:`MinRNN.step`): one token, for cached decoding, computed in the linear
  space the paper's sequential algorithms use;
- **masking**: a padded step is the identity map (``a = 1``, ``b = 0``), so it leaves the
  state unchanged and padding never changes an output of a real step.
"""

from __future__ import annotations

import keras
from keras import ops

SCANS = ("auto", "sequential", "associative")


def _on_accelerator() -> bool:
    """Whether a JAX or PyTorch backend computes on a GPU/TPU (``scan="auto"``)."""
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        return jax.default_backend() != "cpu"
    if backend == "torch":
        import torch

        return torch.cuda.is_available()
    return False  # TensorFlow: the sequential scan (measured on CPU only)
LOG_ZERO = -1e30  # log(0) for a padded step's b; finite, so logaddexp never sees inf - inf
TINY = 1e-30  # the smallest initial state taken to the log (states are >= 0)


def g(x):
    """The paper's positive candidate activation: ``x + 0.5`` (x >= 0), ``sigmoid(x)`` (x < 0)."""
    return ops.where(x >= 0, x + 0.5, ops.sigmoid(x))


def log_g(x):
    """``log(g(x))`` computed without overflow: ``log(x + 0.5)`` or ``-softplus(-x)``."""
    return ops.where(x >= 0, ops.log(ops.relu(x) + 0.5), -ops.softplus(-x))


def log_linear_scan(log_a, log_b, log_h0=None, chunk_size: int = 64):
    """All states of ``h_t = a_t h_{t-1} + b_t`` from log coefficients, by a chunked scan.

    The sequence is cut into chunks of ``chunk_size`` steps (the last one padded with
    identity steps): an associative scan inside every chunk at once (static length, so
    it also runs where the sequence length is only known at run time, as in a
    TensorFlow SavedModel), then one sequential pass over the chunks' composed maps
    (``T / chunk_size`` steps) gives each chunk its starting state.

    Args:
        log_a: float32 ``(batch, T, units)``, ``log a_t`` (<= 0 for the gates here).
        log_b: float32 ``(batch, T, units)``, ``log b_t``.
        log_h0: float32 ``(batch, units)``, ``log h_0``; ``None`` for ``h_0 = 0``.
        chunk_size: int, steps per chunk (default 64; a shorter sequence of static
            length is one chunk).

    Returns:
        float32 ``(batch, T, units)``: ``log h_t`` for t = 1..T.
    """
    steps = ops.shape(log_a)[1]
    if isinstance(steps, int):
        chunk_size = max(1, min(chunk_size, steps))
    pad = (-steps) % chunk_size
    batch, units = ops.shape(log_a)[0], log_a.shape[2]
    identity_a = ops.zeros((batch, pad, units), "float32")
    log_a = ops.concatenate([log_a, identity_a], axis=1)
    log_b = ops.concatenate([log_b, identity_a + LOG_ZERO], axis=1)
    chunks = (steps + pad) // chunk_size
    log_a = ops.reshape(log_a, (batch, chunks, chunk_size, units))
    log_b = ops.reshape(log_b, (batch, chunks, chunk_size, units))
    inner = ops.associative_scan(_compose, (log_a, log_b), axis=2)  # within every chunk
    # TensorFlow's scan loses the static rank when the length of time is dynamic.
    inner_a, inner_b = (ops.reshape(x, (batch, chunks, chunk_size, units)) for x in inner)

    def carry(state, chunk):  # state: log h at the end of the previous chunk, (B, U)
        chunk_a, chunk_b = ops.split(chunk, 2, axis=-1)
        return ops.logaddexp(chunk_a + state, chunk_b), state

    start = ops.full((batch, units), LOG_ZERO, "float32") if log_h0 is None else log_h0
    # Each chunk's composed map, time-major, one tensor (Keras' TensorFlow scan cannot
    # check several inputs of dynamic length): (chunks, B, 2U).
    totals = ops.transpose(
        ops.concatenate([inner_a[:, :, -1], inner_b[:, :, -1]], axis=-1), (1, 0, 2)
    )
    _, starts = ops.scan(carry, start, totals)  # (chunks, B, U): log h entering each chunk
    starts = ops.transpose(starts, (1, 0, 2))[:, :, None, :]  # (B, chunks, 1, U)
    log_h = ops.logaddexp(inner_a + starts, inner_b)  # (B, chunks, chunk_size, U)
    return ops.reshape(log_h, (batch, chunks * chunk_size, units))[:, :steps]


UNROLL = 4  # recurrence steps per loop iteration of the sequential scan (measured best)


def linear_scan(a, b, h0=None):
    """All states of ``h_t = a_t h_{t-1} + b_t`` by a loop over time, with its gradient.

    The loop (``keras.ops.scan``) makes ``UNROLL`` steps per iteration. The gradient is not
    the loop's automatic one but the recurrence's own adjoint, one reverse loop of the same
    kind: ``G_t = dL/dh_t + a_{t+1} G_{t+1}``, ``dL/db_t = G_t``, ``dL/da_t = G_t h_{t-1}``,
    ``dL/dh_0 = a_1 G_1`` (forward and backward of the scan alone: 2.3-2.9x faster on a
    2-core CPU than differentiating the loop; bench/README.md).

    Args:
        a, b: float32 ``(batch, T, units)``.
        h0: float32 ``(batch, units)``; ``None`` for zeros.

    Returns:
        float32 ``(batch, T, units)``: ``h_t`` for t = 1..T.
    """
    if h0 is None:
        h0 = ops.zeros((ops.shape(a)[0], a.shape[2]), "float32")
    return _linear_scan(a, b, h0)


@ops.custom_gradient
def _linear_scan(a, b, h0):
    h = _recurrence_loop(a, b, h0)

    def grad(*args, upstream=None):
        if upstream is None:
            (upstream,) = args
        a_next = ops.concatenate([a[:, 1:], ops.zeros_like(a[:, :1])], axis=1)  # a_{t+1}
        total = _recurrence_loop(a_next, upstream, ops.zeros_like(h0), reverse=True)  # G_t
        h_prev = ops.concatenate([h0[:, None, :], h[:, :-1]], axis=1)
        return total * h_prev, total, a[:, 0] * total[:, 0]

    return h, grad


def _recurrence_loop(a, b, h0, reverse=False):
    """``h_t = a_t h_{t-1} + b_t`` (``reverse``: ``h_t = a_t h_{t+1} + b_t`` from the end)."""
    batch, steps, units = ops.shape(a)[0], ops.shape(a)[1], a.shape[2]
    pad = (-steps) % UNROLL
    a = ops.concatenate([a, ops.ones((batch, pad, units), a.dtype)], axis=1)  # identity steps
    b = ops.concatenate([b, ops.zeros((batch, pad, units), b.dtype)], axis=1)
    if reverse:
        a, b = ops.flip(a, axis=1), ops.flip(b, axis=1)
    blocks = (steps + pad) // UNROLL
    # One time-major input, (blocks, UNROLL, B, 2U): Keras' TensorFlow scan cannot check
    # several inputs of dynamic length.
    coefficients = ops.transpose(
        ops.reshape(ops.concatenate([a, b], -1), (batch, blocks, UNROLL, 2 * units)),
        (1, 2, 0, 3),
    )

    def block_step(previous, x):  # carry and output: the block's UNROLL states (Keras' scan
        h = previous[-1]  # wants them the same shape)
        states = []
        for j in range(UNROLL):
            h = x[j, :, :units] * h + x[j, :, units:]
            states.append(h)
        states = ops.stack(states)
        return states, states

    start = ops.zeros((UNROLL, 1, 1), h0.dtype) + h0[None]  # (UNROLL, B, U), last = h0
    _, states = ops.scan(block_step, start, coefficients)  # (blocks, UNROLL, B, U)
    h = ops.transpose(ops.reshape(states, (blocks * UNROLL, batch, units)), (1, 0, 2))
    if reverse:
        h = ops.flip(h, axis=1)
    return h[:, :steps]


def _compose(earlier, later):
    """The map ``h -> a2 (a1 h + b1) + b2`` of two steps, in log space."""
    la1, lb1 = earlier
    la2, lb2 = later
    return la1 + la2, ops.logaddexp(la2 + lb1, lb2)


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

    def coefficients(self, k):
        """``(a, b)`` in linear space for :meth:`step` (the paper's sequential form)."""
        raise NotImplementedError

    def call(self, sequences, initial_state=None, mask=None, training=None):
        if self.go_backwards:
            sequences = ops.flip(sequences, axis=1)
            if mask is not None:
                mask = ops.flip(mask, axis=1)
        k = self._project(sequences, training)  # (B, T, G*U) float32
        real = None if mask is None else ops.expand_dims(ops.cast(mask, "bool"), -1)  # (B, T, 1)
        h0 = None
        if initial_state is not None:
            (h0,) = initial_state if isinstance(initial_state, (list, tuple)) else [initial_state]
            h0 = ops.cast(h0, "float32")
        if self.resolved_scan() == "sequential":
            a, b = self.coefficients(k)
            if real is not None:  # a padded step is the identity map: a = 1, b = 0
                a, b = ops.where(real, a, 1.0), ops.where(real, b, 0.0)
            states = linear_scan(a, b, h0)  # (B, T, U) float32
        else:
            log_a, log_b = self.log_coefficients(k)
            if real is not None:
                log_a, log_b = ops.where(real, log_a, 0.0), ops.where(real, log_b, LOG_ZERO)
            log_h0 = None if h0 is None else ops.log(ops.maximum(h0, TINY))
            states = ops.exp(log_linear_scan(log_a, log_b, log_h0))
        states = ops.cast(states, self.compute_dtype)
        last = states[:, -1, :]  # padded steps carry the state, so this is the last real one
        if self.return_sequences:
            output = states
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
        a, b = self.coefficients(self._project(inputs))
        h = a * ops.cast(state, "float32") + b
        return ops.cast(h, self.compute_dtype)

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

    def coefficients(self, k):
        k_z, k_h = ops.split(k, 2, axis=-1)
        z = ops.sigmoid(k_z)
        return 1.0 - z, z * g(k_h)


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

    def coefficients(self, k):
        k_f, k_i, k_h = ops.split(k, 3, axis=-1)
        diff = ops.softplus(-k_f) - ops.softplus(-k_i)
        return ops.sigmoid(-diff), ops.sigmoid(diff) * g(k_h)  # f', i' * h~
