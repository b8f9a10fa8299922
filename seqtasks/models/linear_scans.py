"""The scans behind :mod:`seqtasks.models.min_rnn`: the recurrence ``h_t = a_t * h_{t-1} +
b_t`` over a whole sequence, as a log-space associative scan (:func:`log_linear_scan`,
Feng et al. 2024, appendix) or a loop of elementwise steps with the recurrence's own
adjoint as its gradient (:func:`linear_scan`), the positive activations ``g``/``log_g``,
and which scan ``scan="auto"`` takes on this device (``keras.ops`` only, any backend).
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
