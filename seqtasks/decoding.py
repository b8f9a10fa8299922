"""Autoregressive decoding: greedy, beam search, sampling, with an optional prompt.

The same code decodes translations (the encoder input is source token ids),
captions (the encoder input is image features, see
:mod:`seqtasks.models.captioning`) and the output of decoder-only models (no
encoder input: ``encoder_inputs=None``, the batch size comes from the prompt):
only the batch axis of the encoder input is used here; the model's
``init_cache`` does the rest.

A *prompt* (int32 ``(batch, prompt_length)``, ``[START]`` first, right-padded
with ``[PAD]``) gives the tokens every output of its row begins with: they are
fed through the model's step cache as they are, never sampled and never scored;
generation continues after each row's last prompt token and stops at ``[END]``.

All strategies run in a ``keras.ops.while_loop`` over a fixed-size token
buffer, so they trace once into a graph (the translation export runs beam
search inside the SavedModel) and use the model's step cache: each step feeds
only the newest token (see :mod:`seqtasks.models.seq2seq` for the interface).

- **greedy** and **sampling** (temperature, top-k, top-p / nucleus, Holtzman
  et al. 2020) use keras-hub's samplers (``GreedySampler``, ``RandomSampler``,
  ``TopKSampler``, ``TopPSampler``); their ``score`` is computed afterwards by
  one teacher-forced pass over the generated tokens.
- **beam search** is implemented here because keras-hub's ``BeamSampler`` keeps
  extending hypotheses after ``[END]`` and has no length penalty. Finished
  hypotheses keep their score; hypotheses are ranked by
  ``log P(y|x) / lp(y)`` with the GNMT length penalty
  ``lp(y) = ((5 + |y|) / 6) ** length_penalty`` (Wu et al. 2016, sec. 7,
  eq. 14; ``length_penalty=0`` ranks by raw log-probability).

Every strategy returns ``(token_ids, scores)``: int32 ``(batch, max_length)``
starting with ``[START]`` (everything after the first ``[END]`` is padding or
ignored by detokenization) and float32 ``(batch,)`` ``scores``, the
length-normalised log-probability ``log P(y|x) / |y|`` of each output, ``|y|``
counting the generated tokens including ``[END]``. ``[PAD]`` and ``[START]``
are never generated (their logits are masked in every strategy).

``min_length`` (default 1 in :class:`DecodingOptions`) is the number of tokens
every strategy generates before ``[END]`` may be emitted: until then ``[END]``'s
logit is masked, so an undertrained model whose most probable first token is
``[END]`` still says something instead of returning an empty string (fairseq's
``--min-len``, Hugging Face's ``min_length`` / ``MinLengthLogitsProcessor``).
Beam search masks ``[END]``'s log-probability after the softmax, as fairseq does,
so scores stay the model's; sampling draws from the renormalised rest. The prompt's
tokens do not count; ``min_length=0`` is the behaviour without the constraint.

``no_repeat_ngram_size=n`` (default 0: off) makes every token impossible that would
complete an n-gram already in the output (the prompt and ``[START]`` included): no-repeat
n-gram blocking (Paulus et al. 2018, sec. 2.5; fairseq's and Hugging Face's
``no_repeat_ngram_size``), masked like ``min_length`` in every strategy.
"""

from __future__ import annotations

import dataclasses

from keras import ops

from seqtasks.decoding_config import STRATEGIES, DecodingConfig  # noqa: F401 (re-exported)
from seqtasks.text import END_ID, PAD_ID, START_ID

_NEG_INF = -1e9


@dataclasses.dataclass(frozen=True)
class DecodingOptions:
    """How to decode.

    Attributes:
        strategy: ``"greedy"``, ``"beam"`` or ``"sample"`` (default ``"beam"``).
        beam_size: hypotheses kept per input by beam search (default 4).
        length_penalty: GNMT length-penalty exponent alpha (default 0.6).
        temperature: sampling temperature (default 1.0).
        top_k: sample among the k most probable tokens (0 = all, default).
        top_p: sample within the smallest set of tokens of this total
            probability (1.0 = all, default).
        seed: sampling seed (``None``: unseeded).
        min_length: generated tokens before ``[END]`` may be emitted (default 1;
            0 = no constraint).
        no_repeat_ngram_size: no n-gram of this many tokens twice in an output
            (default 0 = off).

    Raises:
        ValueError: for an unknown strategy, ``beam_size < 1``, ``min_length < 0`` or
            ``no_repeat_ngram_size < 0``.
    """

    strategy: str = "beam"
    beam_size: int = 4
    length_penalty: float = 0.6
    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0
    seed: int | None = None
    min_length: int = 1
    no_repeat_ngram_size: int = 0

    def __post_init__(self):
        if self.strategy not in STRATEGIES:
            raise ValueError(
                f"strategy must be one of {STRATEGIES}; Received: strategy={self.strategy!r}"
            )
        if self.beam_size < 1:
            raise ValueError(f"beam_size must be >= 1; Received: beam_size={self.beam_size}")
        if self.min_length < 0:
            raise ValueError(f"min_length must be >= 0; Received: min_length={self.min_length}")
        if self.no_repeat_ngram_size < 0:
            raise ValueError(
                "no_repeat_ngram_size must be >= 0; Received: "
                f"no_repeat_ngram_size={self.no_repeat_ngram_size}"
            )


def options_from_config(config) -> DecodingOptions:
    """:class:`DecodingOptions` of a config with :class:`DecodingConfig` fields and ``seed``."""
    return DecodingOptions(
        strategy=config.decoding,
        beam_size=config.beam_size,
        length_penalty=config.length_penalty,
        temperature=config.temperature,
        top_k=config.top_k,
        top_p=config.top_p,
        seed=config.seed,
        min_length=getattr(config, "min_length", 1),
        no_repeat_ngram_size=getattr(config, "no_repeat_ngram_size", 0),
    )


def stored_options(stored: dict | None) -> DecodingOptions:
    """:class:`DecodingOptions` from an export's ``metadata["decoding"]`` (unknown keys ignored;
    a missing key takes its default, e.g. ``min_length`` 1 for exports older than it)."""
    fields = {f.name for f in dataclasses.fields(DecodingOptions)}
    return DecodingOptions(**{k: v for k, v in (stored or {}).items() if k in fields})


def make_sampler(options: DecodingOptions, vocabulary_size: int | None = None):
    """The keras-hub sampler for greedy or sampling ``options`` (None for beam search).

    Create it once and pass it to :func:`decode` when decoding runs in an
    exported graph: a seeded sampler holds a seed variable that the export must
    track. ``top_k`` is capped at ``vocabulary_size`` when given.
    """
    import keras_hub

    samplers = keras_hub.samplers
    top_k = min(options.top_k, vocabulary_size) if vocabulary_size else options.top_k
    if options.strategy == "beam":
        return None
    if options.strategy == "greedy":
        return samplers.GreedySampler()
    if options.top_p < 1.0:
        return samplers.TopPSampler(
            p=options.top_p, k=top_k or None, seed=options.seed, temperature=options.temperature
        )
    if top_k > 0:
        return samplers.TopKSampler(k=top_k, seed=options.seed, temperature=options.temperature)
    return samplers.RandomSampler(seed=options.seed, temperature=options.temperature)


def decode(
    model, encoder_token_ids, options: DecodingOptions, max_length: int, sampler=None, prompt=None
):
    """Decode a batch with ``options``.

    Args:
        model: a seq2seq model from :mod:`seqtasks.models.seq2seq`, a captioner
            from :mod:`seqtasks.models.captioning`, or a decoder-only model
            (``init_cache(None, max_length, batch_size=B)``, ``decode_step``, and
            ``call({"decoder_token_ids": ...})``).
        encoder_token_ids: the encoder input, batch first: int32 ``(batch,
            source_length)`` right-padded with 0 for translation, float32
            ``(batch, positions, dim)`` image features for captioning; None for a
            decoder-only model (then ``prompt`` is required).
        options: the strategy and its settings.
        max_length: buffer length (``[START]`` and the prompt included).
        sampler: a sampler from :func:`make_sampler` (made here when None).
        prompt: int32 ``(batch, prompt_length)``, ``[START]`` first, right-padded
            with 0, ``prompt_length <= max_length``; default ``[START]`` alone.

    Returns:
        ``(token_ids int32 (batch, max_length), scores float32 (batch,))``; the
        outputs begin with their prompt, and ``scores`` cover the generated tokens.

    Raises:
        ValueError: no encoder input and no prompt.
    """
    if encoder_token_ids is None and prompt is None:
        raise ValueError("a decoder-only model needs a prompt; Received: prompt=None")
    if options.strategy == "beam":
        return beam_search(
            model,
            encoder_token_ids,
            max_length,
            options.beam_size,
            options.length_penalty,
            prompt=prompt,
            min_length=options.min_length,
            no_repeat_ngram_size=options.no_repeat_ngram_size,
        )
    sampler = sampler or make_sampler(options)
    token_ids = sample(
        model,
        sampler,
        encoder_token_ids,
        max_length,
        prompt=prompt,
        min_length=options.min_length,
        no_repeat_ngram_size=options.no_repeat_ngram_size,
    )
    fixed = None if prompt is None else _prompt_buffer(prompt, None, max_length)[1]
    return token_ids, sequence_scores(model, encoder_token_ids, token_ids, fixed)


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


def sample(
    model,
    sampler,
    encoder_token_ids,
    max_length: int,
    prompt=None,
    min_length: int = 0,
    no_repeat_ngram_size: int = 0,
):
    """Generate with a keras-hub sampler, feeding one token per step through the cache
    (the prompt's tokens too: they are kept, not sampled). ``[END]`` is impossible until
    ``min_length`` tokens follow the prompt (default 0: no constraint), and so is a token
    completing a repeated n-gram of ``no_repeat_ngram_size`` tokens (default 0: off)."""
    batch = _batch_size(encoder_token_ids, prompt)
    prompt, mask = _prompt_buffer(prompt, batch, max_length)
    cache = _init_cache(model, encoder_token_ids, max_length, batch)
    fixed_count = ops.sum(ops.cast(mask, "int32"), axis=1)  # (B,) [START] + prompt tokens

    def next(prompt, cache, index):
        token = ops.slice(prompt, [0, index - 1], [batch, 1])  # (B, 1) previous token
        logits, cache = model.decode_step(token, cache, index - 1)
        logits = _suppress_special(logits)
        if min_length > 0:  # tokens generated before position `index`: index - fixed_count
            logits = _forbid_end(logits, index - fixed_count < min_length)
        logits = _block_repeats(logits, prompt, index, no_repeat_ngram_size)
        return logits, None, cache

    token_ids = sampler(
        next, prompt, cache=cache, index=1, mask=mask, stop_token_ids=[END_ID], model=model
    )
    return pad_after_end(token_ids, mask)


def pad_after_end(token_ids, fixed):
    """``token_ids`` int32 ``(B, L)`` with every token after a row's first generated
    ``[END]`` set to ``[PAD]``. keras-hub's samplers stop when every row has ended, so a row
    that ended earlier keeps sampling until then; ``fixed`` bool ``(B, L)`` marks the
    prompt's positions, whose tokens are never an end."""
    token_ids = ops.cast(token_ids, "int32")
    is_end = ops.logical_and(ops.equal(token_ids, END_ID), ops.logical_not(fixed))
    is_end = ops.cast(is_end, "int32")
    after = ops.cumsum(is_end, axis=1) - is_end  # > 0 strictly after the first [END]
    return ops.where(after > 0, ops.zeros_like(token_ids), token_ids)


def sequence_scores(model, encoder_token_ids, token_ids, fixed=None):
    """Length-normalised log-probability of decoded outputs (one teacher-forced pass).

    Args:
        encoder_token_ids: the encoder input, or None for a decoder-only model.
        token_ids: int32 ``(batch, length)`` starting with ``[START]``; tokens
            after the first ``[END]`` are ignored.
        fixed: bool ``(batch, length)``, True at the prompt's positions (not
            scored); None: only ``[START]`` is fixed.

    Returns:
        float32 ``(batch,)``: ``sum log p(y_t | y_<t, x) / |y|`` over the
        generated tokens up to and including the first ``[END]``.
    """
    token_ids = ops.cast(token_ids, "int32")
    inputs, targets = token_ids[:, :-1], token_ids[:, 1:]
    is_end = ops.cast(ops.equal(targets, END_ID), "int32")
    # Keep tokens up to and including the first [END].
    keep = ops.cast(ops.equal(ops.cumsum(is_end, axis=1) - is_end, 0), "float32")
    # Positions after [END] are fed as padding so they cannot affect earlier ones.
    inputs = ops.where(
        ops.concatenate([ops.ones_like(keep[:, :1]), keep[:, :-1]], axis=1) > 0, inputs, PAD_ID
    )
    if fixed is not None:  # the prompt's tokens are given, not generated
        keep = keep * ops.cast(ops.logical_not(fixed[:, 1:]), "float32")
    if encoder_token_ids is None:
        logits = model({"decoder_token_ids": inputs}, training=False)
    else:
        name = getattr(model, "encoder_input_name", "encoder_token_ids")
        logits = model({name: encoder_token_ids, "decoder_token_ids": inputs}, training=False)
    log_probs = ops.log_softmax(_suppress_special(logits), axis=-1)
    token_log_probs = ops.take_along_axis(log_probs, targets[..., None], axis=-1)[..., 0]
    total = ops.sum(token_log_probs * keep, axis=1)
    return total / ops.maximum(ops.sum(keep, axis=1), 1.0)


def _length_penalty(length, alpha: float):
    return ops.power((5.0 + ops.cast(length, "float32")) / 6.0, alpha)


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

    Returns:
        ``(token_ids int32 (batch, max_length), scores float32 (batch,))`` of the
        best hypothesis; ``scores`` is ``log P(y|x) / |y|``.
    """
    k = beam_size
    batch = _batch_size(encoder_token_ids, prompt)
    flat = batch * k
    # Every input's source (and prompt) is repeated for its k hypotheses: (B*K, ...).
    repeated = None if encoder_token_ids is None else ops.repeat(encoder_token_ids, k, axis=0)
    cache = _init_cache(model, repeated, max_length, flat)
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
    offsets = ops.repeat(ops.arange(batch, dtype="int32") * k, k)  # (B*K,) hypothesis 0 of each
    # The best finished hypothesis of each input so far: ranking score, tokens, log P, length.
    best = (
        ops.full((batch,), 2 * _NEG_INF, "float32"),
        _start_buffer(batch, max_length),
        ops.zeros((batch,), "float32"),
        ops.ones((batch,), "int32"),
    )

    # lp at the longest possible output: the largest divisor a live hypothesis can get.
    longest_penalty = _length_penalty(max_length - 1, length_penalty)

    def cond(tokens, cache, index, log_probs, finished, lengths, best):
        return ops.logical_not(ops.all(finished))

    def body(tokens, cache, index, log_probs, finished, lengths, best):
        previous = ops.slice(tokens, [0, index - 1], [flat, 1])  # (B*K, 1)
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
        ranking = ops.reshape(ranking, (batch, k * vocabulary))
        _, top = ops.top_k(ranking, k=k, sorted=True)  # (B, K)
        top = ops.reshape(top, (flat,))
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
        score = ops.reshape(ops.where(just, score, 2 * _NEG_INF), (batch, k))
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
            settled = best[0] >= ops.max(ops.reshape(bound, (batch, k)), axis=-1)  # (B,)
            finished = ops.logical_or(finished, ops.repeat(settled, k))
        return tokens, cache, index + 1, log_probs, finished, lengths, best

    tokens, _, _, log_probs, finished, lengths, best = ops.while_loop(
        cond,
        body,
        (tokens, cache, ops.convert_to_tensor(1, "int32"), log_probs, finished, lengths, best),
        maximum_iterations=max_length - 1,
    )
    # The final beam may hold unfinished hypotheses (max_length reached): compare with the record.
    ranking = ops.reshape(log_probs / _length_penalty(lengths, length_penalty), (batch, k))
    top = offsets[::k] + ops.cast(ops.argmax(ranking, axis=-1), "int32")  # (B,)
    use_record = best[0] >= ops.max(ranking, axis=-1)
    out_tokens = ops.where(use_record[:, None], best[1], ops.take(tokens, top, axis=0))
    out_log_probs = ops.where(use_record, best[2], ops.take(log_probs, top))
    out_lengths = ops.where(use_record, best[3], ops.take(lengths, top))
    scores = out_log_probs / ops.maximum(ops.cast(out_lengths, "float32"), 1.0)
    return out_tokens, scores
