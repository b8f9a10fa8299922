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

from seqtasks.beam_search import beam_search, cache_stages  # noqa: F401 (re-exported)
from seqtasks.decoding_config import STRATEGIES, DecodingConfig  # noqa: F401 (re-exported)
from seqtasks.decoding_masks import (  # noqa: F401 (repeated_ngram_mask re-exported)
    _batch_size,
    _block_repeats,
    _forbid_end,
    _init_cache,
    _prompt_buffer,
    _suppress_special,
    repeated_ngram_mask,
)
from seqtasks.text import END_ID, PAD_ID


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
