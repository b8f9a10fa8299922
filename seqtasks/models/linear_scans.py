"""The scans behind :mod:`seqtasks.models.min_rnn`: the recurrence ``h_t = a_t * h_{t-1} +
b_t`` over a whole sequence, as a log-space associative scan (:func:`log_linear_scan`,
Feng et al. 2024, appendix) or, in its gated form ``h_t = (1 - z_t) h_{t-1} + z_t c_t``,
a loop of elementwise steps over time-major tensors with the recurrence's own adjoint as
its gradient (:func:`gated_scan`), the positive activations ``g``/``log_g``,
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


@ops.custom_gradient
def g(x):
    """The paper's positive candidate activation: ``x + 0.5`` (x >= 0), ``sigmoid(x)`` (x < 0).

    Its gradient (1, or ``s (1 - s)`` with ``s = sigmoid(x)``) is written out: one
    ``sigmoid`` for both, where differentiating the ``where`` of both branches costs
    several full-size operations more.
    """
    s = ops.sigmoid(x)
    positive = x >= 0

    def grad(*args, upstream=None):
        if upstream is None:
            (upstream,) = args
        return upstream * ops.where(positive, 1.0, s * (1.0 - s))

    return ops.where(positive, x + 0.5, s), grad


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


def gated_scan(z, c, h0=None):
    """All states of ``h_t = (1 - z_t) h_{t-1} + z_t c_t``, time-major, by a loop over time.

    The form both minimal recurrences take (minGRU: ``z`` its update gate; minLSTM: its
    normalised input gate, since ``f'_t = 1 - i'_t``). The loop (``keras.ops.scan``) makes
    ``UNROLL`` steps ``h <- h + z (c - h)`` per iteration over time-major tensors, so
    nothing is transposed. The gradient is not the loop's automatic one but the
    recurrence's own adjoint, one reverse loop of the same kind: ``G_t = dL/dh_t +
    (1 - z_{t+1}) G_{t+1}``, ``dL/dz_t = G_t (c_t - h_{t-1})``, ``dL/dc_t = G_t z_t``,
    ``dL/dh_0 = (1 - z_1) G_1`` (bench/README.md: for the earlier batch-major form of this
    loop, 2.3-2.9x faster on a 2-core CPU than differentiating the loop).

    Args:
        z: float32 ``(T, batch, units)``, the gate in [0, 1] (0 at a padded step: the
            identity map).
        c: float32 ``(T, batch, units)``, the candidate state.
        h0: float32 ``(batch, units)``; ``None`` for zeros.

    Returns:
        float32 ``(T, batch, units)``: ``h_t`` for t = 1..T.
    """
    if h0 is None:
        h0 = ops.zeros((ops.shape(z)[1], z.shape[2]), "float32")
    return _gated_scan(z, c, h0)


@ops.custom_gradient
def _gated_scan(z, c, h0):
    units = z.shape[2]
    steps, batch = ops.shape(z)[0], ops.shape(z)[1]
    blocks, pad = _blocks(steps)

    def forward(previous, x):  # carry and output: the block's states (Keras' scan wants
        h = previous[-1]  # them the same shape)
        states = []
        for j in range(UNROLL):
            h = h + x[j, :, :units] * (x[j, :, units:] - h)
            states.append(h)
        states = ops.stack(states)
        return states, states

    start = ops.zeros((UNROLL, 1, 1), h0.dtype) + h0[None]  # (UNROLL, B, U), last = h0
    _, h = ops.scan(forward, start, _time_blocks(ops.concatenate([z, c], -1), pad, blocks))
    h = ops.reshape(h, (blocks * UNROLL, batch, units))[:steps]

    def grad(*args, upstream=None):
        if upstream is None:
            (upstream,) = args

        def backward(carry, x):  # carry: (G of the block's steps, z of its first step)
            total, z_next = carry[0][0], carry[1]
            totals = [None] * UNROLL
            for j in reversed(range(UNROLL)):
                total = x[j, :, units:] + (1.0 - z_next) * total
                z_next = x[j, :, :units]
                totals[j] = total
            totals = ops.stack(totals)
            return (totals, z_next), (totals, z_next)

        zero = ops.zeros_like(h0)
        start = (ops.zeros((UNROLL, 1, 1), h0.dtype) + zero[None], zero)
        coefficients = _time_blocks(ops.concatenate([z, upstream], -1), pad, blocks)
        _, (totals, _) = ops.scan(backward, start, coefficients, reverse=True)
        total = ops.reshape(totals, (blocks * UNROLL, batch, units))[:steps]  # G_t
        h_prev = ops.concatenate([h0[None], h[:-1]], axis=0)
        return total * (c - h_prev), total * z, (1.0 - z[0]) * total[0]

    return h, grad


def _blocks(steps):
    """``(blocks, pad)``: loop iterations of ``UNROLL`` steps for ``steps``, and the
    identity steps appended to fill the last one."""
    pad = (-steps) % UNROLL
    return (steps + pad) // UNROLL, pad


def _time_blocks(x, pad, blocks):
    """Time-major ``x`` (T, B, W) as ``(blocks, UNROLL, B, W)``, padded with zeros (z = 0:
    identity steps; an upstream gradient of 0) to a whole number of blocks."""
    if not (isinstance(pad, int) and pad == 0):  # a static multiple of UNROLL needs no copy
        x = ops.concatenate([x, ops.zeros((pad, ops.shape(x)[1], x.shape[2]), x.dtype)], 0)
    return ops.reshape(x, (blocks, UNROLL, ops.shape(x)[1], x.shape[2]))


def _compose(earlier, later):
    """The map ``h -> a2 (a1 h + b1) + b2`` of two steps, in log space."""
    la1, lb1 = earlier
    la2, lb2 = later
    return la1 + la2, ops.logaddexp(la2 + lb1, lb2)
