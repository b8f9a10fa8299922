"""The masks and buffers every decoding strategy shares (:mod:`seqtasks.decoding`,
:mod:`seqtasks.beam_search`): special tokens, ``min_length``, no-repeat n-gram blocking,
the token buffer with its prompt, and the model's first cache. ``keras.ops`` only.
"""

from __future__ import annotations

from keras import ops

from seqtasks.text import END_ID, PAD_ID, START_ID

_NEG_INF = -1e9


def _suppress_special(logits):
    """Logits float32 ``(..., V)`` with ``[PAD]`` and ``[START]`` made impossible.

    A decoder never has to emit them, and a generated ``[PAD]`` would be masked
    out when fed back, so every strategy and the rescoring exclude both.
    """
    logits = ops.cast(logits, "float32")
    vocabulary = ops.shape(logits)[-1]
    special = ops.logical_or(ops.arange(vocabulary) == PAD_ID, ops.arange(vocabulary) == START_ID)
    return ops.where(special, _NEG_INF, logits)


def _forbid_end(logits, forbid):
    """``logits`` float32 ``(batch, V)`` with ``[END]`` made impossible where ``forbid``
    (bool ``(batch,)``): the ``min_length`` constraint."""
    is_end = (ops.arange(ops.shape(logits)[-1]) == END_ID)[None, :]
    return ops.where(ops.logical_and(is_end, forbid[:, None]), _NEG_INF, logits)


def repeated_ngram_mask(tokens, index, size: int, vocabulary):
    """bool ``(N, V)``: the tokens that, placed at position ``index`` of ``tokens``, would
    complete an n-gram of ``size`` tokens already in ``tokens[:, :index]``.

    Args:
        tokens: int32 ``(N, T)`` token buffer with a static ``T``; ``[PAD]`` never counts
            as a token of an n-gram.
        index: int32 scalar, the position being generated (``1 <= index < T``).
        size: int >= 1, the n-gram length (1: no token twice).
        vocabulary: int or scalar tensor ``V``.

    Returns:
        bool ``(N, V)``, True for the blocked tokens (no-repeat n-gram blocking, Paulus
        et al. 2018, sec. 2.5).
    """
    tokens = ops.cast(tokens, "int32")
    rows, length = ops.shape(tokens)[0], tokens.shape[1]
    count = length - size + 1  # n-grams that fit in the buffer
    if count <= 0:
        return ops.zeros((rows, vocabulary), "bool")
    frames = ops.stack([tokens[:, j : j + count] for j in range(size)], axis=2)  # (N, C, n)
    starts = ops.arange(count, dtype="int32")
    match = ops.all(ops.not_equal(frames, PAD_ID), axis=2)  # (N, C)
    # An n-gram that ends before `index` and whose first n - 1 tokens equal the last n - 1.
    match = ops.logical_and(match, (starts <= index - size)[None, :])
    if size > 1:
        begin = ops.maximum(index - size + 1, 0)
        prefix = ops.slice(tokens, [0, begin], [rows, size - 1])  # (N, n - 1)
        same = ops.all(ops.equal(frames[:, :, :-1], prefix[:, None, :]), axis=2)
        match = ops.logical_and(match, same)
    row_ids = ops.broadcast_to(ops.arange(rows, dtype="int32")[:, None], (rows, count))
    indices = ops.stack([ops.reshape(row_ids, (-1,)), ops.reshape(frames[:, :, -1], (-1,))], 1)
    hits = ops.scatter(indices, ops.reshape(ops.cast(match, "float32"), (-1,)), (rows, vocabulary))
    return hits > 0


def _block_repeats(logits, tokens, index, size: int):
    """``logits`` float32 ``(N, V)`` with :func:`repeated_ngram_mask`'s tokens made impossible
    (unchanged when ``size`` is 0)."""
    if not size:
        return logits
    blocked = repeated_ngram_mask(tokens, index, size, ops.shape(logits)[-1])
    return ops.where(blocked, _NEG_INF, logits)


def _start_buffer(batch, max_length):
    """int32 ``(batch, max_length)``: ``[START]`` then padding."""
    start = ops.full((batch, 1), START_ID, "int32")
    return ops.concatenate([start, ops.zeros((batch, max_length - 1), "int32")], axis=1)


def _prompt_buffer(prompt, batch, max_length):
    """The token buffer int32 ``(batch, max_length)`` and its fixed positions, bool
    ``(batch, max_length)``: ``[START]`` and the prompt's tokens (``prompt`` None:
    ``[START]`` alone, for ``batch`` rows)."""
    if prompt is None:
        tokens = _start_buffer(batch, max_length)
    else:
        prompt = ops.cast(prompt, "int32")
        tokens = ops.pad(prompt, [[0, 0], [0, max_length - ops.shape(prompt)[1]]])
    first = ops.arange(max_length) == 0
    return tokens, ops.logical_or(ops.not_equal(tokens, PAD_ID), first[None, :])


def _batch_size(encoder_token_ids, prompt):
    return ops.shape(encoder_token_ids if encoder_token_ids is not None else prompt)[0]


def _init_cache(model, encoder_token_ids, max_length, batch):
    if encoder_token_ids is None:  # a decoder-only model
        return model.init_cache(None, max_length, batch_size=batch)
    return model.init_cache(encoder_token_ids, max_length)
