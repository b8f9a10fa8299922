"""Beam search for :mod:`seqtasks.decoding` (re-exported there): finished-hypothesis
bookkeeping, the GNMT length penalty (Wu et al. 2016, sec. 7, eq. 14), ``min_length``,
no-repeat n-gram blocking, prompts, and early settling of inputs no live hypothesis can
change. See :func:`beam_search`.
"""

from __future__ import annotations

from keras import ops

from seqtasks.decoding_masks import (
    _NEG_INF,
    _batch_size,
    _block_repeats,
    _forbid_end,
    _init_cache,
    _prompt_buffer,
    _start_buffer,
    _suppress_special,
)
from seqtasks.text import END_ID, PAD_ID


def _length_penalty(length, alpha: float):
    return ops.power((5.0 + ops.cast(length, "float32")) / 6.0, alpha)


def cache_stages(model, max_length: int, cache_chunk: int) -> list[int]:
    """The cache sizes beam search decodes with, in order: ``cache_chunk`` doubled while
    below ``max_length``, then ``max_length`` (``[max_length]`` when ``cache_chunk`` is 0,
    the model's cache does not grow with the output, as an RNN's state, or ``max_length``
    is a tensor).

    >>> class M: cache_grows = True
    >>> cache_stages(M(), 64, 16)
    [16, 32, 64]
    """
    if cache_chunk <= 0 or not getattr(model, "cache_grows", False):
        return [max_length]
    return _doublings(max_length, cache_chunk)


def _doublings(max_length, chunk: int) -> list:
    """``chunk`` doubled while below ``max_length``, then ``max_length`` (``[max_length]``
    when it is a tensor, known only when the graph runs)."""
    if not isinstance(max_length, int):
        return [max_length]
    sizes, size = [], chunk
    while size < max_length:
        sizes.append(size)
        size *= 2
    return sizes + [max_length]


def stage_limits(
    model, max_length: int, cache_chunk: int, compact: bool, compact_every: int = 0
) -> list[tuple]:
    """The loops of beam search: ``(cache size to grow to first, or None; index the loop
    stops at)`` each. A growing cache (:func:`cache_stages`) starts a loop at every size;
    with ``compact``, a model whose cache does not grow stops at the same points (the
    doublings of ``cache_chunk``, so finished inputs can leave the batch there), and every
    model also stops every ``compact_every`` positions in between, spaced at least an
    eighth of the cache size it is under (64: every 8; 256: every 32), so a long buffer
    does not trace a loop body every few positions (0: no stops in between). A
    ``max_length`` known only when the graph runs (a tensor) gives one loop.

    >>> class M: cache_grows = True
    >>> stage_limits(M(), 64, 16, compact=False)
    [(None, 17), (32, 33), (64, 64)]
    >>> class R: cache_grows = False
    >>> stage_limits(R(), 64, 16, compact=True)
    [(None, 17), (None, 33), (None, 64)]
    >>> stage_limits(M(), 40, 16, compact=True, compact_every=8)
    [(None, 9), (None, 17), (32, 25), (None, 33), (40, 40)]
    >>> [stop for _, stop in stage_limits(M(), 256, 16, compact=True, compact_every=8)]
    [9, 17, 25, 33, 41, 49, 57, 65, 81, 97, 113, 129, 161, 193, 225, 256]
    """
    sizes = cache_stages(model, max_length, cache_chunk)
    grows = len(sizes) > 1
    if not grows and compact and cache_chunk > 0:
        sizes = _doublings(max_length, cache_chunk)
    if not isinstance(max_length, int):  # known only when the graph runs: one loop
        return [(None, max_length)]
    # The step at `index` writes cache position index - 1; the buffer ends at max_length.
    stops = {size + 1 for size in sizes[:-1]}
    if compact and compact_every > 0:
        for low, high in zip([0] + sizes[:-1], sizes):
            spacing = max(compact_every, high // 8)
            stops.update(position + 1 for position in range(low + spacing, high, spacing))
    stops = sorted(stop for stop in stops if stop < max_length) + [max_length]
    loops, current = [], sizes[0]
    for stop in stops:
        # the smallest cache size holding the positions this loop writes (up to stop - 2)
        need = next((size for size in sizes if size >= stop - 1), sizes[-1])
        grow = need if grows and need > current else None
        current = max(current, need)
        loops.append((grow, stop))
    return loops


def _can_compact() -> bool:
    """Whether the number of inputs left can be known between loops: always, except
    under ``jax.jit`` (where every array is a tracer of a fixed shape)."""
    import keras

    if keras.backend.backend() != "jax":
        return True
    import jax

    return not isinstance(jax.numpy.zeros(()), jax.core.Tracer)


def _drop_finished(state, answer, inputs, out_tokens, out_scores, k: int, batch):
    """Write the answers of ``state``'s inputs into the outputs (all of them: those still
    decoding are overwritten later), then keep only the inputs with a live hypothesis.

    Returns ``(state, inputs, out_tokens, out_scores)``: the smaller state, the original
    index int32 ``(B',)`` of each input left, and the outputs so far ``(batch, max_length)``
    int32 and ``(batch,)`` float32.
    """
    tokens, scores = answer(state)
    if inputs is None:
        inputs = ops.arange(batch, dtype="int32")
        out_tokens, out_scores = tokens, scores
    else:
        where = ops.expand_dims(inputs, -1)
        out_tokens = ops.scatter_update(out_tokens, where, tokens)
        out_scores = ops.scatter_update(out_scores, where, scores)
    finished = state[4]
    live = ops.logical_not(ops.all(ops.reshape(finished, (-1, k)), axis=-1))  # (B,)
    keep = ops.cast(ops.nonzero(live)[0], "int32")  # positions in this state's batch
    rows = ops.reshape(keep[:, None] * k + ops.arange(k, dtype="int32")[None, :], (-1,))
    tokens, cache, index, log_probs, finished, lengths, best, fixed = state
    state = (
        ops.take(tokens, rows, axis=0),
        tuple(ops.take(c, rows, axis=0) for c in cache),
        index,
        ops.take(log_probs, rows),
        ops.take(finished, rows),
        ops.take(lengths, rows),
        tuple(ops.take(b, keep, axis=0) for b in best),
        ops.take(fixed, rows, axis=0),
    )
    return state, ops.take(inputs, keep), out_tokens, out_scores


def beam_search(
    model,
    encoder_token_ids,
    max_length: int,
    beam_size: int = 4,
    length_penalty: float = 0.6,
    prompt=None,
    min_length: int = 0,
    no_repeat_ngram_size: int = 0,
    early_stopping: bool = True,
    cache_chunk: int = 16,
    compact: bool = True,
    compact_every: int = 8,
):
    """Beam search with finished-hypothesis bookkeeping and the GNMT length penalty.

    Each step expands the ``k`` hypotheses of every input by every token and keeps
    the ``k`` best by ``log P / lp(length)``. A hypothesis that emits ``[END]``
    stays in the beam with its score frozen (its only continuation is ``[PAD]``
    at no cost) and is also recorded as the input's best finished hypothesis if
    it beats the previous one, so a finished hypothesis pushed out of the beam
    later is not lost. The search ends when every hypothesis in the beam has
    finished, or at ``max_length``; the answer is the best of the recorded
    finished hypotheses and the final beam.

    An input is settled early (``early_stopping``, default True) once no live
    hypothesis can beat its recorded one: log-probabilities only fall as tokens are
    added and ``lp`` is largest at the longest possible output, so a live hypothesis
    never ranks above ``log P / lp(max_length - 1)`` (``log P`` itself when
    ``length_penalty`` is 0). Its hypotheses are then closed, so one degenerate
    hypothesis no longer keeps a whole batch decoding to ``max_length``. The answer is
    the same as without it (the bound is exact); only the number of steps changes.

    The source is encoded once per input (not once per hypothesis) and its cache
    entries repeated for the ``k`` hypotheses.

    Args:
        model: a seq2seq model from :mod:`seqtasks.models.seq2seq` (or a model
            as :func:`decode` takes).
        encoder_token_ids: int32 ``(batch, source_length)``, right-padded with 0;
            None for a decoder-only model.
        max_length: buffer length, ``[START]`` and the prompt included.
        beam_size: hypotheses kept per input (1 gives greedy decoding).
        length_penalty: exponent alpha of ``lp(y) = ((5 + |y|) / 6) ** alpha``.
        prompt: as for :func:`decode`: its tokens are forced at no cost, and
            ``|y|`` counts the generated tokens only.
        min_length: ``[END]``'s log-probability is -inf for a hypothesis with fewer
            generated tokens (default 0: no constraint; fairseq's ``--min-len``).
        no_repeat_ngram_size: a token that would repeat an n-gram of this many tokens
            of its hypothesis has log-probability -inf (default 0: off).
        early_stopping: settle an input once no live hypothesis can beat its best
            finished one (default True; the outputs are the same either way).
        cache_chunk: for a model whose cache grows with the output (``cache_grows``:
            the Transformer decoders' self-attention keys/values), the cache starts with
            this many positions and doubles when full, up to ``max_length`` (default 16;
            0: the whole buffer from the start). The outputs are the same either way;
            short outputs decode faster (``bench/README.md``, issue 20).
        compact: between two loops (see :func:`stage_limits`: where the cache grows, at
            ``cache_chunk``, ``2 * cache_chunk``, ... positions for every model, and every
            ``compact_every`` positions in between), drop from the batch the inputs whose
            hypotheses have all finished or settled, as fairseq's generator does, so
            the steps after that run on the inputs still decoding only (default True;
            the outputs are the same either way). Needs the number of unfinished inputs
            to be known when the loop ends, so it is off under ``jax.jit``.
        compact_every: with ``compact``, also stop and drop finished inputs every this
            many positions between the cache's sizes, at least an eighth of the size
            apart (default 8: positions 8, 16, ..., 56 of a 64-token buffer; 0: only at
            the cache's sizes). More loops mean fewer rows decoded for inputs already
            done (+13% sentences/s at batch 32, -5% at batch 1, ``bench/README.md``), and
            a larger graph (one loop body per stop). The recipes' exports use the default.

    Returns:
        ``(token_ids int32 (batch, max_length), scores float32 (batch,))`` of the
        best hypothesis; ``scores`` is ``log P(y|x) / |y|``.
    """
    k = beam_size
    batch = _batch_size(encoder_token_ids, prompt)
    flat = batch * k
    stages = cache_stages(model, max_length, cache_chunk)  # the cache's sizes, smallest first
    if encoder_token_ids is None:  # a decoder-only model: zero states for every hypothesis
        cache = _init_cache(model, None, stages[0], flat)
    else:  # encode each source once, then repeat its cache for its k hypotheses: (B*K, ...)
        cache = _init_cache(model, encoder_token_ids, stages[0], batch)
        cache = tuple(ops.repeat(c, k, axis=0) for c in cache)
    static = getattr(model, "num_static_cache", 0)  # source-side entries, never reordered
    if prompt is not None:
        prompt = ops.repeat(ops.cast(prompt, "int32"), k, axis=0)
    tokens, fixed = _prompt_buffer(prompt, flat, max_length)
    forced_any = prompt is not None
    # Only hypothesis 0 is live at the start, so the first step does not pick k copies.
    first = ops.convert_to_tensor([[0.0] + [_NEG_INF] * (k - 1)], "float32")
    log_probs = ops.reshape(ops.broadcast_to(first, (batch, k)), (flat,))
    finished = ops.zeros((flat,), "bool")
    lengths = ops.zeros((flat,), "int32")
    # The best finished hypothesis of each input so far: ranking score, tokens, log P, length.
    best = (
        ops.full((batch,), 2 * _NEG_INF, "float32"),
        _start_buffer(batch, max_length),
        ops.zeros((batch,), "float32"),
        ops.ones((batch,), "int32"),
    )

    # lp at the longest possible output: the largest divisor a live hypothesis can get.
    longest_penalty = _length_penalty(max_length - 1, length_penalty)

    def cond(tokens, cache, index, log_probs, finished, lengths, best, fixed):
        return ops.logical_not(ops.all(finished))

    def body(tokens, cache, index, log_probs, finished, lengths, best, fixed):
        rows = ops.shape(tokens)[0]  # B*K of this stage (fewer once settled inputs leave)
        offsets = (ops.arange(rows, dtype="int32") // k) * k  # hypothesis 0 of each input
        previous = ops.slice(tokens, [0, index - 1], [rows, 1])  # (B*K, 1)
        logits, cache = model.decode_step(previous, cache, index - 1)
        step = ops.log_softmax(_suppress_special(logits), axis=-1)  # (B*K, V)
        if min_length > 0:  # masked after the softmax, as fairseq: scores stay the model's
            step = _forbid_end(step, lengths < min_length)
        step = _block_repeats(step, tokens, index, no_repeat_ngram_size)
        vocabulary = ops.shape(step)[-1]
        # A finished hypothesis has one continuation, [PAD], at no cost.
        only_pad = ops.where(ops.arange(vocabulary) == PAD_ID, 0.0, _NEG_INF)[None, :]
        step = ops.where(finished[:, None], only_pad, step)
        generated = ops.logical_not(finished)
        if forced_any:  # a prompt token is the only continuation, at no cost
            forced = ops.take(fixed, index, axis=1)  # (B*K,)
            given = ops.take(tokens, index, axis=1)
            only_given = ops.where(ops.arange(vocabulary)[None, :] == given[:, None], 0.0, _NEG_INF)
            step = ops.where(forced[:, None], only_given, step)
            generated = ops.logical_and(generated, ops.logical_not(forced))
        candidates = log_probs[:, None] + step  # (B*K, V)
        new_lengths = lengths + ops.cast(generated, "int32")
        ranking = candidates / _length_penalty(new_lengths, length_penalty)[:, None]
        ranking = ops.reshape(ranking, (-1, k * vocabulary))
        _, top = ops.top_k(ranking, k=k, sorted=True)  # (B, K)
        top = ops.reshape(top, (-1,))
        parent = offsets + top // vocabulary  # flat index of the parent hypothesis
        token = ops.cast(top % vocabulary, "int32")
        log_probs = ops.take(ops.reshape(candidates, (-1,)), parent * vocabulary + token)
        lengths = ops.take(new_lengths, parent)
        was_finished = ops.take(finished, parent)
        finished = ops.logical_or(was_finished, ops.equal(token, END_ID))
        tokens = ops.take(tokens, parent, axis=0)
        cache = tuple(c if i < static else ops.take(c, parent, axis=0) for i, c in enumerate(cache))
        tokens = ops.slice_update(tokens, [0, index], token[:, None])
        # Record hypotheses that finished at this step if they beat the input's best.
        score = log_probs / _length_penalty(lengths, length_penalty)
        just = ops.logical_and(finished, ops.logical_not(was_finished))
        score = ops.reshape(ops.where(just, score, 2 * _NEG_INF), (-1, k))
        which = ops.cast(ops.argmax(score, axis=-1), "int32")  # (B,)
        chosen = offsets[::k] + which
        better = ops.max(score, axis=-1) > best[0]
        best = (
            ops.where(better, ops.max(score, axis=-1), best[0]),
            ops.where(better[:, None], ops.take(tokens, chosen, axis=0), best[1]),
            ops.where(better, ops.take(log_probs, chosen), best[2]),
            ops.where(better, ops.take(lengths, chosen), best[3]),
        )
        if early_stopping and length_penalty >= 0:  # no live hypothesis can beat the record
            bound = ops.where(finished, 2 * _NEG_INF, log_probs / longest_penalty)
            settled = best[0] >= ops.max(ops.reshape(bound, (-1, k)), axis=-1)  # (B,)
            finished = ops.logical_or(finished, ops.repeat(settled, k))
        return tokens, cache, index + 1, log_probs, finished, lengths, best, fixed

    def answer(state):
        """The best hypothesis of each input of ``state``: tokens (B, max_length), scores (B,)."""
        tokens, _, _, log_probs, finished, lengths, best, _ = state
        # The final beam may hold unfinished hypotheses (max_length reached): compare
        # with the record.
        ranking = ops.reshape(log_probs / _length_penalty(lengths, length_penalty), (-1, k))
        offsets = ops.arange(ops.shape(ranking)[0], dtype="int32") * k
        which = ops.cast(ops.argmax(ranking, axis=-1), "int32")  # (B,)
        top = offsets + which
        # (not ops.max: Keras refuses the max of an empty tensor, and a batch can be empty)
        use_record = best[0] >= ops.take_along_axis(ranking, which[:, None], axis=-1)[:, 0]
        out_tokens = ops.where(use_record[:, None], best[1], ops.take(tokens, top, axis=0))
        out_log_probs = ops.where(use_record, best[2], ops.take(log_probs, top))
        out_lengths = ops.where(use_record, best[3], ops.take(lengths, top))
        return out_tokens, out_log_probs / ops.maximum(ops.cast(out_lengths, "float32"), 1.0)

    # The self-attention cache starts small and doubles when full (one loop per size), so
    # a batch whose outputs are short never attends over, copies or reorders the whole
    # buffer. Attention never reaches an empty slot (causal mask), so outputs are the same.
    # Between two loops, inputs whose hypotheses have all finished (or settled) leave the
    # batch: their answers are written out, and the next loop decodes the others only.
    compact = compact and _can_compact()
    limits = stage_limits(model, max_length, cache_chunk, compact, compact_every)
    state = (tokens, cache, ops.convert_to_tensor(1, "int32"), log_probs, finished, lengths, best,
             fixed)  # fmt: skip
    inputs = None  # the original index of each input of the batch; None: all, in order
    out_tokens = out_scores = None
    for i, (size, limit) in enumerate(limits):
        if i:
            if compact:
                state, inputs, out_tokens, out_scores = _drop_finished(
                    state, answer, inputs, out_tokens, out_scores, k, batch
                )
            if size is not None:  # grow the cache of the loop before to `size` positions
                tokens, cache, *rest = state
                state = (tokens, model.grow_cache(cache, size), *rest)
        state = ops.while_loop(
            lambda *s, limit=limit: ops.logical_and(s[2] < limit, cond(*s)),
            body,
            state,
            maximum_iterations=max_length - 1,
        )
    tokens, scores = answer(state)
    if inputs is None:
        return tokens, scores
    where = ops.expand_dims(inputs, -1)
    return (
        ops.scatter_update(out_tokens, where, tokens),
        ops.scatter_update(out_scores, where, scores),
    )
