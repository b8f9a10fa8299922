"""The exportable generator of the language-model recipe: prompts in, continuations out.

:class:`LanguageModelGenerator` turns a decoder-only model
(:mod:`seqtasks.models.language_models`) and a tokenizer into three SavedModel signatures:
``serving_default`` (decoding with the export's baked-in options), ``generate`` (sampling
with settings given row by row: requests batched together each get what they would get
alone) and ``score`` (the log-likelihood and perplexity of texts of any length).

Seeded sampling is stateless: the draw for row ``i``'s ``j``-th generated token is the
Gumbel-max trick (``argmax(logits / T + g)``, ``g = -log(-log(u))``; Gumbel 1954,
Maddison et al. 2014) with ``u = stateless_uniform([V], seed=(seed_i ^ hash(prompt_i), j))``
(Philox), so it depends on nothing but the row's seed, prompt and ``j``: not on the batch, its size, the
other rows, the machine or the process. Top-p is nucleus sampling (Holtzman et al.
2020, "The Curious Case of Neural Text Degeneration", sec. 3.1).

Everything is TensorFlow ops or the model's own code, traced without autograph (as
``keras.export.ExportArchive`` traces), so an export loads with TensorFlow alone.
"""

from __future__ import annotations

import functools

import tensorflow as tf

from seqtasks.decoding import DecodingOptions, decode, make_sampler, sequence_scores
from seqtasks.signature_module import SignatureModule
from seqtasks.tokens import END_ID, PAD_ID, START_ID

MODES = ("stream", "documents")
_NEG = -1e9
PROMPT_SPEC = tf.TensorSpec([None], tf.string, name="prompt")
GENERATE_SIGNATURE = [PROMPT_SPEC] + [
    tf.TensorSpec([None], dtype, name=name)
    for name, dtype in (("max_length", tf.int32), ("temperature", tf.float32),
                        ("top_k", tf.int32), ("top_p", tf.float32), ("seed", tf.int64))
]  # fmt: skip
SCORE_SIGNATURE = [tf.TensorSpec([None], tf.string, name="text")]


def _row_slices(values, starts, width):
    """``values[i, starts[i] : starts[i] + width]`` for every row, zero past the end:
    ``(B, T)`` -> ``(B, width)``."""
    index = starts[:, None] + tf.range(width)[None, :]
    inside = index < tf.shape(values)[1]
    picked = tf.gather(values, tf.minimum(index, tf.shape(values)[1] - 1), batch_dims=1)
    return tf.where(inside, picked, tf.zeros_like(picked))


def gumbel_noise(seeds, steps, vocabulary):
    """float32 ``(B, V)`` standard Gumbel noise; row ``i`` is a function of
    ``(seeds[i], steps[i])`` alone (stateless Philox draws, one row at a time)."""
    pairs = tf.stack([tf.cast(seeds, tf.int64), tf.cast(steps, tf.int64)], axis=1)

    def row(pair):
        return tf.random.stateless_uniform([vocabulary], pair, 1e-20, 1.0, alg="philox")

    uniform = tf.map_fn(row, pairs, fn_output_signature=tf.float32)
    return -tf.math.log(-tf.math.log(uniform))


def draw(logits, temperature, top_k, top_p, noise):
    """One token per row, int32 ``(B,)``, from float32 ``logits (B, V)``: each row's logits
    divided by its ``temperature`` (``<= 0``: greedy), sorted descending, cut to the first
    ``top_k`` (0: all) and the smallest prefix whose tempered probability reaches ``top_p``
    (1.0: all; the most probable token is always kept); the token is the argmax of the kept
    logits plus Gumbel ``noise``: an exact draw from the renormalised distribution."""
    greedy = temperature <= 0.0
    temperature = tf.where(greedy, 1.0, temperature)
    top_k = tf.where(greedy, 1, top_k)
    scaled = logits / temperature[:, None]
    order = tf.argsort(scaled, axis=1, direction="DESCENDING", stable=True)
    ranked = tf.gather(scaled, order, batch_dims=1)
    rank = tf.range(tf.shape(logits)[1])[None, :]
    before = tf.cumsum(tf.nn.softmax(ranked, axis=1), axis=1, exclusive=True)
    keep = ((top_k[:, None] <= 0) | (rank < top_k[:, None])) & (before < top_p[:, None])
    keep = keep | (rank == 0)
    noisy = ranked + tf.gather(noise, order, batch_dims=1)
    choice = tf.argmax(tf.where(keep, noisy, -float("inf")), axis=1, output_type=tf.int32)
    return tf.gather(order, choice, batch_dims=1)


def repeated_ngram_tokens(tokens, index, size: int, vocabulary):
    """bool ``(B, V)``: the tokens that, placed at position ``index`` of ``tokens`` (int32
    ``(B, T)``), would repeat an n-gram of ``size`` tokens already in ``tokens[:, :index]``
    (no-repeat n-gram blocking: Paulus et al. 2018, sec. 2.5; fairseq's and Hugging Face's
    ``no_repeat_ngram_size``). ``[PAD]`` never counts as a token of an n-gram."""
    if size == 1:
        seen = tf.one_hot(tokens, vocabulary, on_value=True, off_value=False, dtype=tf.bool)
        before = tf.range(tf.shape(tokens)[1])[None, :, None] < index
        return tf.reduce_any(seen & before & (tokens != PAD_ID)[..., None], axis=1)
    tokens = tf.pad(tokens, [[0, 0], [0, tf.maximum(0, size - tf.shape(tokens)[1])]])
    frames = tf.signal.frame(tokens, size, 1, axis=1)  # (B, T - size + 1, size)
    begin = tf.maximum(index - size + 1, 0)
    prefix = tf.slice(tokens, tf.stack([0, begin]), tf.stack([tf.shape(tokens)[0], size - 1]))
    starts = tf.range(tf.shape(frames)[1])
    match = tf.reduce_all(tf.equal(frames[:, :, :-1], prefix[:, None, :]), axis=2)
    match &= (starts <= index - size)[None, :] & (index >= size - 1)
    match &= tf.reduce_all(frames != PAD_ID, axis=2)
    banned = tf.one_hot(frames[:, :, -1], vocabulary, on_value=True, off_value=False, dtype=tf.bool)
    return tf.reduce_any(banned & match[..., None], axis=1)


def _empty_batch_safe(**outputs):
    """Decorator of a batch method: an empty batch gives empty outputs (``name=(dtype,
    rank)``) instead of running the model (which cannot run on zero rows)."""

    def wrap(method):
        @functools.wraps(method)
        def guarded(self, first, *rest):
            empty = {name: tf.zeros([0] * rank, dtype) for name, (dtype, rank) in outputs.items()}
            return tf.cond(tf.size(first) > 0, lambda: method(self, first, *rest), lambda: empty)

        return guarded

    return wrap


class LanguageModelGenerator(SignatureModule):
    """Prompts -> continuations, scores and likelihoods with a decoder-only model; exportable.

    Args:
        model: an ``RNNLanguageModel`` or ``TransformerLanguageModel``.
        tokenizer: a ``tf.Module``: ``__call__(tf.string (B,))`` -> int32 ragged ``(B, None)``,
            ``detokenize(int32 (B, T))`` -> ``tf.string (B,)``, ``vocabulary_size``.
        options: :class:`~seqtasks.decoding.DecodingOptions` of ``serve`` (greedy, beam or
            sample; ``min_length`` also holds in ``generate``).
        max_length: the most tokens generated after the prompt, ``[END]`` included
            (``generate``'s default for a row whose ``max_length`` is ``<= 0``). The
            token buffer is ``P + max_length`` long (``P``: ``[START]`` and the prompt),
            capped at :attr:`context_limit` for a Transformer.
        sequence_length: the training window length ``L`` (``score`` windows with it).
        mode: ``"documents"`` (trained on ``[START] tokens [END]``) or ``"stream"``
            (windows ``[START] x[s .. s+L-2]`` -> ``x[s .. s+L-1]``, no ``[END]``).
        no_repeat_ngram_size: greedy decoding and sampling never generate a token that
            repeats an n-gram of this many tokens of the row (prompt included); 0 (default)
            blocks nothing (:func:`repeated_ngram_tokens`).

    Raises:
        ValueError: for another ``mode``, ``max_length < 1``, or a ``sequence_length``
            beyond a Transformer's context.
    """

    score_chunk = 64  # windows per Transformer pass in ``score`` (bounds the logits' memory)

    def __init__(self, model, tokenizer, options: DecodingOptions, *, max_length: int,
                 sequence_length: int, mode: str, no_repeat_ngram_size: int = 0):  # fmt: skip
        super().__init__()
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}; Received: mode={mode!r}")
        if max_length < 1:
            raise ValueError(f"max_length must be >= 1; Received: max_length={max_length}")
        if no_repeat_ngram_size and options.strategy == "beam":
            raise ValueError("no_repeat_ngram_size applies to greedy decoding and sampling, not "
                             "beam search")  # fmt: skip
        self.no_repeat_ngram_size = int(no_repeat_ngram_size)
        self.model, self.tokenizer, self.options, self.mode = model, tokenizer, options, mode
        self.max_length, self.sequence_length = int(max_length), int(sequence_length)
        if not 1 <= self.sequence_length <= (self.context_limit or self.sequence_length):
            raise ValueError(f"sequence_length must be in [1, {self.context_limit}] (the model's "
                             f"context); Received: sequence_length={sequence_length}")  # fmt: skip
        # Greedy: keras-hub's seedless GreedySampler in decode(); sampling: the stateless loop
        # below; beam search: decode()'s own. No sampler seed state to track.
        self.sampler = make_sampler(options) if options.strategy == "greedy" else None
        self.serving_function, self.generate_function, self.score_function = (
            tf.function(method, input_signature=signature, autograph=False)
            for method, signature in ((self.serve, [PROMPT_SPEC]),
                                      (self.generate, GENERATE_SIGNATURE),
                                      (self.score, SCORE_SIGNATURE))
        )  # fmt: skip

    @property
    def context_limit(self) -> int | None:
        """Positions the model can attend to: a Transformer's ``sequence_length`` (its
        position embeddings), None (unbounded) for a recurrent model."""
        limit = getattr(self.model, "sequence_length", None)
        return None if limit is None else int(limit)

    @property
    def prompt_limit(self) -> int | None:
        """The most prompt tokens kept (the last ones): ``context_limit - 2`` for a
        Transformer, so ``[START]``, the prompt and at least one new token fit; None for a
        recurrent model (its state carries any length)."""
        return None if self.context_limit is None else self.context_limit - 2

    def prompt_ids(self, prompt):
        """tf.string ``(B,)`` -> int32 ``(B, P)``: ``[START]`` and the prompt's last
        :attr:`prompt_limit` tokens, right-padded with ``[PAD]`` (an empty prompt:
        ``[START]`` alone)."""
        tokens = tf.cast(self.tokenizer(prompt), tf.int32)
        if self.prompt_limit is not None:
            tokens = tokens[:, -self.prompt_limit :] if self.prompt_limit > 0 else tokens[:, :0]
        start = tf.fill(tf.stack([tokens.nrows(out_type=tf.int32), 1]), START_ID)
        return tf.concat([start, tokens.to_tensor(PAD_ID)], axis=1)

    def continuation_text(self, prompt_ids, generated):
        """The continuation as it reads after its prompt: tf.string ``(B,)``.

        Characters concatenate, so a character tokenizer's continuation is its own
        detokenization. Words and WordPiece pieces are joined by spaces and punctuation
        rules, so the continuation is the detokenized prompt and continuation together with
        the detokenized prompt taken off its front: a new word starts with its space
        (``"This movie"`` -> ``" was"``), a ``##`` piece and a full stop with none. A row
        where the prompt's text is not a prefix of the whole (a rule that rewrote across
        the boundary) falls back to the continuation's own detokenization.

        Args:
            prompt_ids: int32 ``(B, P)``: ``[START]``, the prompt's tokens, ``[PAD]``.
            generated: int32 ``(B, N)``: the new tokens, ``[END]``/``[PAD]`` after them.
        """
        alone = self.tokenizer.detokenize(generated)
        if getattr(self.tokenizer, "kind", None) == "char":
            return alone
        generated = tf.cast(generated, tf.int32)
        before = self.tokenizer.detokenize(prompt_ids)  # [START] and [PAD] are dropped
        whole = self.tokenizer.detokenize(tf.concat([prompt_ids, generated], axis=1))
        cut = tf.strings.length(before)
        prefixed = tf.equal(tf.strings.substr(whole, tf.zeros_like(cut), cut), before)
        rest = tf.strings.substr(whole, cut, tf.maximum(tf.strings.length(whole) - cut, 0))
        return tf.where(prefixed, rest, alone)

    def _buffer(self, ids, steps):
        """Prompt lengths, per-row end positions ``(B,)`` and the buffer length."""
        starts = tf.reduce_sum(tf.cast(tf.not_equal(ids, PAD_ID), tf.int32), axis=1)
        ends = starts + steps
        if self.context_limit is not None:
            ends = tf.minimum(ends, self.context_limit)
        return starts, ends, tf.maximum(tf.reduce_max(ends), tf.shape(ids)[1])

    def sample(self, ids, steps, temperature, top_k, top_p, seeds):
        """The stateless sampling loop of ``generate`` (and of ``serve`` when sampling): the
        prompt's tokens ``ids`` (int32 ``(B, P)``) go through the step cache one position at
        a time, then each row draws up to ``steps`` tokens with its own settings (``(B,)``,
        as :meth:`generate` takes them) until ``[END]``.

        Returns:
            ``(tokens int32 (B, T), log_probs float32 (B, T), starts int32 (B,))``: the
            buffer (``[PAD]`` after a row's end), each generated token's log-probability
            (0 elsewhere), and where each row's generation begins.
        """
        batch = tf.shape(ids)[0]
        starts, ends, length = self._buffer(ids, steps)
        tokens = tf.pad(ids, [[0, 0], [0, length - tf.shape(ids)[1]]])
        log_probs = tf.zeros(tf.shape(tokens), tf.float32)
        cache = self.model.init_cache(None, length, batch_size=batch)
        positions = tf.range(length)[None, :]
        min_length = self.options.min_length

        def body(index, tokens, log_probs, cache, done):
            logits, cache = self.model.decode_step(tokens[:, index - 1 : index], cache, index - 1)
            vocabulary = tf.range(tf.shape(logits)[1])[None, :]  # [PAD], [START]: never (decode())
            special = tf.equal(vocabulary, PAD_ID) | tf.equal(vocabulary, START_ID)
            logits = tf.where(special, _NEG, tf.cast(logits, tf.float32))
            step = index - starts  # generated tokens before this position (< 0: the prompt)
            blocked = tf.equal(vocabulary, END_ID) & (step < min_length)[:, None]
            if self.no_repeat_ngram_size:
                blocked |= repeated_ngram_tokens(
                    tokens, index, self.no_repeat_ngram_size, tf.shape(logits)[1]
                )
            allowed = tf.where(blocked, _NEG, logits)
            noise = gumbel_noise(seeds, step, tf.shape(logits)[1])
            token = draw(allowed, temperature, top_k, top_p, noise)
            generating = (step >= 0) & tf.logical_not(done) & (index < ends)
            token = tf.where(generating, token, tf.where(step < 0, tokens[:, index], PAD_ID))
            picked = tf.gather(tf.nn.log_softmax(logits), token, batch_dims=1)
            here = positions == index
            tokens = tf.where(here, token[:, None], tokens)
            log_probs = tf.where(here & generating[:, None], picked[:, None], log_probs)
            done = done | (generating & tf.equal(token, END_ID)) | (index + 1 >= ends)
            return index + 1, tokens, log_probs, cache, done

        def cond(index, tokens, log_probs, cache, done):
            return tf.logical_not(tf.reduce_all(done))

        start = (tf.constant(1), tokens, log_probs, cache, tf.zeros([batch], tf.bool))
        _, tokens, log_probs, _, _ = tf.while_loop(cond, body, start, maximum_iterations=length - 1)
        return tokens, log_probs, starts

    def _continuations(self, tokens, starts):
        """The generated part of each row, int32 ``(B, N)``, and its length ``(B,)``."""
        counts = tf.reduce_sum(tf.cast(tf.not_equal(tokens, PAD_ID), tf.int32), axis=1) - starts
        return _row_slices(tokens, starts, tf.reduce_max(counts)), counts

    @_empty_batch_safe(text=(tf.string, 1), score=(tf.float32, 1), tokens=(tf.int32, 1),
                       token_log_probs=(tf.float32, 2))  # fmt: skip
    def generate(self, prompt, max_length, temperature, top_k, top_p, seed):
        """Sample a continuation of each prompt with its own settings (signature ``generate``).

        Args:
            prompt: tf.string ``(B,)``.
            max_length: int32 ``(B,)``, tokens generated at most, ``[END]`` included
                (``<= 0``: the generator's ``max_length``); a Transformer also stops at
                its context.
            temperature: float32 ``(B,)``, ``> 0`` (``<= 0``: greedy).
            top_k: int32 ``(B,)``, keep the k most probable tokens (0: all).
            top_p: float32 ``(B,)``, keep the smallest most-probable set of tempered
                probability ``>= top_p`` (1.0: all; Holtzman et al. 2020).
            seed: int64 ``(B,)``: the same prompt, settings and seed give the same text in
                any batch; the noise is drawn from ``seed`` XOR a hash of the prompt
                (FarmHash, ``tf.strings.to_hash_bucket_fast``), so other prompts with the
                same seed draw other noise.

        Returns:
            ``{"text": tf.string (B,)`` the continuation (not the prompt), ``"score":
            float32 (B,)`` its mean log-probability per token, ``"tokens": int32 (B,)``
            generated tokens (``[END]`` included), ``"token_log_probs": float32 (B, N)``
            each token's log-probability under the model (untempered, unfiltered,
            ``[PAD]``/``[START]`` excluded from the softmax), 0-padded``}``.
        """
        steps = tf.where(max_length > 0, max_length, self.max_length)
        ids = self.prompt_ids(prompt)
        # The prompt's hash goes into the seed: rows with one seed but other prompts draw
        # other noise (else a recurrent model, forgetting its prompt, would converge on the
        # same text), and a row's draws still depend on its own prompt and seed alone.
        seed = tf.bitwise.bitwise_xor(
            tf.cast(seed, tf.int64), tf.strings.to_hash_bucket_fast(prompt, 2**62)
        )
        tokens, log_probs, starts = self.sample(ids, steps, temperature, top_k, top_p, seed)
        generated, counts = self._continuations(tokens, starts)
        token_log_probs = _row_slices(log_probs, starts, tf.shape(generated)[1])
        score = tf.reduce_sum(token_log_probs, axis=1) / tf.cast(tf.maximum(counts, 1), tf.float32)
        return {"text": self.continuation_text(ids, generated), "score": score, "tokens": counts,
                "token_log_probs": token_log_probs}  # fmt: skip

    @_empty_batch_safe(text=(tf.string, 1), score=(tf.float32, 1))
    def serve(self, prompt):
        """tf.string ``(B,)`` -> ``{"text": tf.string (B,), "score": float32 (B,)}`` with the
        baked-in options (signature ``serving_default``): up to ``max_length`` new tokens
        (``[END]`` included) after each prompt; ``text`` is the continuation only, ``score``
        the mean log-probability per generated token (as :func:`~seqtasks.decoding.decode`).

        Sampling runs :meth:`sample` (as ``generate`` with the options on every row; the
        options' seed on every row, or a fresh random seed per row when it is None).
        Greedy and beam search run :func:`~seqtasks.decoding.decode` over the batch's
        buffer; a row with a shorter prompt than the longest is cut at its own
        ``max_length`` and rescored (for beam search, the search saw the longer buffer).
        """
        batch = tf.shape(prompt)[0]
        steps = tf.fill([batch], self.max_length)
        o, fill = self.options, functools.partial(tf.fill, [batch])
        if o.strategy == "sample" or self.no_repeat_ngram_size:  # greedy: temperature 0
            seed = fill(tf.constant(o.seed, tf.int64)) if o.seed is not None else (
                tf.random.uniform([batch], 0, 2**62, tf.int64))  # fmt: skip
            temperature = float(o.temperature) if o.strategy == "sample" else 0.0
            out = self.generate(prompt, steps, fill(temperature), fill(o.top_k),
                                fill(float(o.top_p)), seed)  # fmt: skip
            return {"text": out["text"], "score": out["score"]}
        ids = self.prompt_ids(prompt)
        starts, ends, length = self._buffer(ids, steps)
        tokens, scores = decode(self.model, None, o, length, self.sampler, prompt=ids)
        positions = tf.range(tf.shape(tokens)[1])[None, :]
        cut = tf.where(positions < ends[:, None], tokens, PAD_ID)
        fixed = (positions < starts[:, None]) | (positions >= ends[:, None])  # not scored
        scores = tf.cond(
            tf.reduce_all(tf.equal(cut, tokens)),
            lambda: tf.cast(scores, tf.float32),
            lambda: tf.cast(sequence_scores(self.model, None, cut, fixed), tf.float32),
        )
        generated, _ = self._continuations(cut, starts)
        return {"text": self.continuation_text(ids, generated), "score": scores}

    @_empty_batch_safe(log_likelihood=(tf.float32, 1), tokens=(tf.int32, 1),
                       perplexity=(tf.float32, 1))  # fmt: skip
    def score(self, text):
        """Teacher-forced likelihood of whole texts (signature ``score``).

        Documents mode scores ``[START] tokens [END]`` (every token and ``[END]`` is a
        target); stream mode ``[START] tokens`` (every token, no ``[END]``). Nothing is
        truncated: a recurrent model reads each text in one pass; a Transformer reads
        consecutive windows of ``sequence_length`` targets as training cut them
        (documents: the input sequence cut every L positions, later windows without
        ``[START]``; stream: ``[START]`` and the window's first L-1 targets), summed per
        text. The log-softmax is the model's full one (its training loss). An empty text
        scores ``[END]`` alone (documents) or nothing (stream: 0 tokens, log-likelihood 0,
        perplexity 1).

        Args:
            text: tf.string ``(B,)``.

        Returns:
            ``{"log_likelihood": float32 (B,), "tokens": int32 (B,)`` targets counted,
            ``"perplexity": float32 (B,)`` ``exp(-log_likelihood / max(tokens, 1))}``.
        """
        tokens = tf.cast(self.tokenizer(text), tf.int32)
        rows = tokens.nrows(out_type=tf.int32)
        start, pad = tf.fill(tf.stack([rows, 1]), START_ID), tf.zeros(tf.stack([rows, 2]), tf.int32)
        sequence = tf.concat([start, tokens.to_tensor(PAD_ID), pad], axis=1)
        if self.mode == "documents":  # [END] after each text's last token
            end = tf.cast(tokens.row_lengths(), tf.int32)[:, None] + 1
            sequence = tf.where(tf.range(tf.shape(sequence)[1])[None, :] == end, END_ID, sequence)
        inputs, targets = sequence[:, :-1], sequence[:, 1:]
        inputs = tf.where(tf.equal(targets, PAD_ID), PAD_ID, inputs)
        if self.context_limit is None:
            log_likelihood = tf.reduce_sum(self._target_log_probs(inputs, targets), axis=1)
        else:
            log_likelihood = self._windowed(inputs, targets, rows)
        count = tf.reduce_sum(tf.cast(tf.not_equal(targets, PAD_ID), tf.int32), axis=1)
        return {
            "log_likelihood": log_likelihood,
            "tokens": count,
            "perplexity": tf.exp(-log_likelihood / tf.cast(tf.maximum(count, 1), tf.float32)),
        }

    def _target_log_probs(self, inputs, targets):
        """float32 ``(N, T)`` log p(target | inputs), 0 where the target is ``[PAD]``."""
        logits = tf.cast(self.model({"decoder_token_ids": inputs}, training=False), tf.float32)
        picked = tf.gather(tf.nn.log_softmax(logits), targets, batch_dims=2)
        return tf.where(tf.equal(targets, PAD_ID), 0.0, picked)

    def _windowed(self, inputs, targets, rows):
        """Sum per row of the windowed log-likelihood, float32 ``(B,)``."""
        size = self.sequence_length
        windows = (tf.shape(targets)[1] + size - 1) // size
        pad = [[0, 0], [0, windows * size - tf.shape(targets)[1]]]
        inputs = tf.reshape(tf.pad(inputs, pad), [-1, size])
        targets = tf.reshape(tf.pad(targets, pad), [-1, size])
        if self.mode == "stream":  # each window begins afresh from [START]
            start = tf.fill(tf.stack([tf.shape(targets)[0], 1]), START_ID)
            inputs = tf.concat([start, targets[:, :-1]], axis=1)
            inputs = tf.where(tf.equal(targets, PAD_ID), PAD_ID, inputs)
        owner = tf.repeat(tf.range(rows), windows)
        used = tf.reduce_any(tf.not_equal(targets, PAD_ID), axis=1)
        inputs, targets, owner = (tf.boolean_mask(t, used) for t in (inputs, targets, owner))
        count, chunk = tf.shape(targets)[0], self.score_chunk
        chunks = (count + chunk - 1) // chunk
        extra = [[0, chunks * chunk - count], [0, 0]]
        inputs = tf.reshape(tf.pad(inputs, extra), [chunks, chunk, size])
        targets = tf.reshape(tf.pad(targets, extra), [chunks, chunk, size])
        sums = tf.map_fn(lambda pair: tf.reduce_sum(self._target_log_probs(*pair), axis=1),
                         (inputs, targets), fn_output_signature=tf.TensorSpec([chunk], tf.float32),
                         parallel_iterations=1)  # fmt: skip
        return tf.math.unsorted_segment_sum(tf.reshape(sums, [-1])[:count], owner, rows)

    def generate_all(self, prompts: list[str], batch_size: int = 32):
        """``(texts, scores)`` of a list of prompts, ``batch_size`` at a time, through the
        traced :meth:`serve` (the export's ``serving_default``)."""
        texts, scores = [], []
        for start in range(0, len(prompts), batch_size):
            out = self.serving_function(tf.constant(prompts[start : start + batch_size]))
            texts.extend(t.decode("utf-8", errors="replace") for t in out["text"].numpy())
            scores.extend(float(s) for s in out["score"].numpy())
        return texts, scores

    def signatures(self) -> dict:
        """``{"generate": (function, input_signature), "score": (...)}``, the
        ``extra_endpoints`` of :func:`seqtasks.export.save_serving_archive` (the traced
        functions, so an export reuses the graphs already run in memory)."""
        return {"generate": (self.generate_function, GENERATE_SIGNATURE),
                "score": (self.score_function, SCORE_SIGNATURE)}  # fmt: skip
