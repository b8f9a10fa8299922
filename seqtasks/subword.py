"""Subword tokenization (WordPiece) for generation recipes, in tf.data and in the graph.

WordPiece (Schuster & Nakajima 2012; Wu et al. 2016, sec. 4.1) splits rare
words into known pieces (``Fahrrad`` -> ``Fahr ##rad``), so a few thousand
tokens cover a language with almost no ``[UNK]``. The vocabulary is learned
from the training text with the steps of keras-hub's
``compute_word_piece_vocabulary`` (with a settable minimum frequency) and
applied with keras-hub's ``WordPieceTokenizer`` (tensorflow-text ops: a
SavedModel using it needs ``import tensorflow_text`` before loading).

Ids follow the seqtasks contract: ``[PAD]`` = 0, ``[UNK]`` = 1, ``[START]`` = 2,
``[END]`` = 3, then the learned pieces.

WordPiece splits punctuation off words and its detokenizer joins tokens with
spaces (``Fahrrad , „ schnell “ !``). :meth:`SubwordTokenizer.detokenize`
therefore re-attaches punctuation with a few documented rules
(:data:`DETOKENIZE_RULES`), so outputs read as normal text; on Multi30k val
they give back the original sentence exactly for most lines (the exact share
is measured in ``tests/test_subword.py``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

import tensorflow as tf

from seqtasks.choices import DEFAULT_MIN_FREQUENCY  # noqa: F401 (re-exported)
from seqtasks.progress import track
from seqtasks.signature_module import SignatureModule
from seqtasks.text import END_ID, PAD_ID, RESERVED_TOKENS, START_ID, UNK_ID, read_vocabulary

log = logging.getLogger(__name__)

# (pattern, replacement) applied in order by SubwordTokenizer.detokenize (RE2 syntax).
DETOKENIZE_RULES = (
    (r" ([.,!?;:%)\]}“”»])", r"\1"),  # no space before closing punctuation
    (r"([(\[{¿¡„«]) ", r"\1"),  # no space after opening punctuation
    # Hyphenated words and contractions (weiß-braune, Tarn-T-Shirt, man's): one side per rule,
    # so chains of hyphens are joined too.
    (r"([\pL\pN]) ([-'’])", r"\1\2"),
    (r"([-'’]) ([\pL\pN])", r"\1\2"),
)


def learn_vocabulary(
    texts: Iterable[str],
    vocabulary_size: int,
    *,
    lowercase: bool = False,
    min_frequency: int = DEFAULT_MIN_FREQUENCY,
) -> list[str]:
    """Learn a WordPiece vocabulary from ``texts`` with tensorflow-text's learner.

    The steps are keras-hub's ``compute_word_piece_vocabulary``: the text is
    split into words exactly as :class:`SubwordTokenizer` (keras-hub's
    ``WordPieceTokenizer``) splits it, words are counted, and the learner of
    tensorflow-text (``wordpiece_tokenizer_learner_lib.learn``, the algorithm of
    BERT's vocabulary, Devlin et al. 2019) picks the pieces. The one difference
    is ``min_frequency``, the learner's ``lower_thresh``, which keras-hub fixes
    at its default of 10: a word seen fewer times is never a token of its own,
    so on a few thousand sentences most words would be split into letters.
    With the default the result is keras-hub's, token for token (tested).

    Args:
        texts: training sentences.
        vocabulary_size: upper bound on the number of tokens, reserved ones
            included; the learner may return fewer when they cover the text.
        lowercase: lower-case before learning (default ``False``).
        min_frequency: a piece must occur at least this often to be learned
            (default 10, tensorflow-text's; 2 suits a few thousand sentences).

    Returns:
        ``[PAD], [UNK], [START], [END]`` followed by the learned tokens.

    Raises:
        ValueError: if ``min_frequency`` < 1.
    """
    from keras_hub.src.tokenizers.word_piece_tokenizer import pretokenize
    from tensorflow_text.tools.wordpiece_vocab import wordpiece_tokenizer_learner_lib as learner

    if min_frequency < 1:
        raise ValueError(f"min_frequency: expected an integer >= 1; received: {min_frequency}")
    texts = list(texts)
    words = (
        tf.data.Dataset.from_tensor_slices(tf.constant(texts, tf.string))
        .batch(1000)
        .map(lambda text: pretokenize(text, lowercase, False, True, True))
    )
    batches = -(-len(texts) // 1000)
    counts = learner.count_words(
        track(words, "learning a WordPiece vocabulary: counting words", batches, "batches")
    )
    log.info("learning WordPiece pieces from %d distinct words", len(counts))
    vocabulary = learner.learn(
        counts,
        vocab_size=vocabulary_size,
        reserved_tokens=list(RESERVED_TOKENS),
        lower_thresh=min_frequency,
        include_joiner_token=True,
        joiner="##",
    )[:vocabulary_size]
    if vocabulary[: len(RESERVED_TOKENS)] != list(RESERVED_TOKENS):
        raise RuntimeError(f"the learner did not put the reserved tokens first: {vocabulary[:4]}")
    return vocabulary


class SubwordTokenizer(SignatureModule):
    """Raw strings to WordPiece ids and back; graph-safe, exportable.

    Args:
        vocabulary_file: vocabulary written by :func:`seqtasks.text.write_vocabulary`
            from :func:`learn_vocabulary` (reserved tokens first).
        sequence_length: keep at most this many tokens per sentence (the first
            ones), ``[START]``/``[END]`` included when :meth:`with_boundaries`
            adds them.
        lowercase: lower-case input text (default ``False``).

    Call arguments:
        text: tf.string ``(batch,)``.

    Returns (``__call__``):
        int32 RaggedTensor ``(batch, None)`` of at most ``sequence_length`` ids.
    """

    def __init__(self, vocabulary_file: str, sequence_length: int, lowercase: bool = False):
        super().__init__()
        import keras_hub

        self.sequence_length = int(sequence_length)
        self.vocabulary_file = vocabulary_file
        self.vocabulary = read_vocabulary(vocabulary_file)
        self.vocabulary_size = len(self.vocabulary)
        self.tokenizer = keras_hub.tokenizers.WordPieceTokenizer(
            vocabulary=self.vocabulary,
            lowercase=lowercase,
            oov_token=RESERVED_TOKENS[1],
            special_tokens=list(RESERVED_TOKENS),
            dtype="int32",
        )

    @tf.function
    def __call__(self, text: tf.Tensor) -> tf.RaggedTensor:
        return self.tokenizer(text)[:, : self.sequence_length]

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def untruncated(self, text: tf.Tensor) -> tf.RaggedTensor:
        """All ids of each text (no ``sequence_length`` limit), int32 ``(batch, None)``."""
        return self.tokenizer(text)

    @tf.function
    def with_boundaries(self, text: tf.Tensor) -> tf.RaggedTensor:
        """``[START] ids [END]``, truncated so the whole fits ``sequence_length``."""
        ids = self.tokenizer(text)[:, : self.sequence_length - 2]
        batch = tf.shape(ids.row_lengths())[0]
        start = tf.fill([batch, 1], tf.constant(START_ID, tf.int32))
        end = tf.fill([batch, 1], tf.constant(END_ID, tf.int32))
        return tf.concat([start, ids, end], axis=1)

    @tf.function
    def detokenize(self, token_ids: tf.Tensor) -> tf.Tensor:
        """Ids back to text: stop at the first ``[END]``, drop ``[PAD]``/``[START]``, rejoin.

        Args:
            token_ids: int ``(batch, length)`` (dense, e.g. decoder output) or ragged.

        Returns:
            tf.string ``(batch,)``.
        """
        if not isinstance(token_ids, tf.RaggedTensor):
            token_ids = tf.RaggedTensor.from_tensor(token_ids)
        token_ids = tf.cast(token_ids, tf.int32)
        is_end = tf.cast(tf.equal(token_ids, END_ID), tf.int32)
        before_end = tf.equal(tf.cumsum(is_end, axis=1), 0)  # True up to the first [END]
        keep = before_end & tf.not_equal(token_ids, PAD_ID) & tf.not_equal(token_ids, START_ID)
        text = self.tokenizer.detokenize(tf.ragged.boolean_mask(token_ids, keep))
        for pattern, replacement in DETOKENIZE_RULES:
            text = tf.strings.regex_replace(text, pattern, replacement)
        return text


def learned_tokenizer(
    path: str,
    texts: list[str],
    vocabulary_size: int,
    sequence_length: int,
    *,
    lowercase: bool = False,
    min_frequency: int = DEFAULT_MIN_FREQUENCY,
) -> SubwordTokenizer:
    """The :class:`SubwordTokenizer` of the vocabulary file ``path``, learned from ``texts``
    first (:func:`learn_vocabulary`, then written) unless the file is there already (a run
    evaluated again from its checkpoint, or fine-tuning with the export's vocabulary)."""
    import os

    from seqtasks.text import write_vocabulary

    if not os.path.isfile(path):
        tokens = learn_vocabulary(
            texts, vocabulary_size, lowercase=lowercase, min_frequency=min_frequency
        )
        write_vocabulary(tokens, path)
    return SubwordTokenizer(path, sequence_length, lowercase)


def subword_coverage(tokenizer: SubwordTokenizer, texts: list[str], batch: int = 4096) -> dict:
    """How well ``tokenizer``'s fixed WordPiece vocabulary covers ``texts``.

    A WordPiece vocabulary has no out-of-vocabulary words in the usual sense:
    an unseen word is split into known pieces, and only a word with no
    spelling in the vocabulary (e.g. an unseen character) becomes ``[UNK]``.
    So the fit of a vocabulary to new text shows in two numbers: the share of
    ``[UNK]`` tokens, and the mean pieces per word (it rises when the text
    has many words the vocabulary never saw whole). Words are WordPiece's
    (punctuation marks count as words); all tokens count, not only the first
    ``sequence_length``.

    Returns:
        ``{"share": unk / tokens, "unknown": n_unk, "tokens": n_tokens,
        "words": n_words, "split_words": share of words not kept whole (split
        or [UNK]), "pieces_per_word": tokens / words}`` (shares and ratios
        rounded to 4 digits; 0.0 for no text).
    """
    import numpy as np

    continuation = np.array([token.startswith("##") for token in tokenizer.vocabulary])
    unknown = tokens = words = split = 0
    for start in range(0, len(texts), batch):
        ids = tokenizer.untruncated(tf.constant(texts[start : start + batch], tf.string))
        flat = ids.flat_values.numpy()
        if not flat.size:
            continue
        follows = continuation[flat]  # (N,) True for "##piece" tokens
        starts = ~follows
        # A word is split when its first piece is followed by a "##" piece (never across
        # sentences: a sentence starts with a word's first piece).
        split_here = starts[:-1] & follows[1:]
        unknown += int((flat == UNK_ID).sum())
        tokens += int(flat.size)
        words += int(starts.sum())
        split += int(split_here.sum()) + int(((flat == UNK_ID) & starts).sum())
    return {
        "share": round(unknown / tokens, 4) if tokens else 0.0,
        "unknown": unknown,
        "tokens": tokens,
        "words": words,
        "split_words": round(split / words, 4) if words else 0.0,
        "pieces_per_word": round(tokens / words, 4) if words else 0.0,
    }


# Fine-tuning warns when more of the new data's subword tokens than this are [UNK], or when
# its words split into this many times the pieces per word of the original training data.
UNK_WARNING = 0.05
PIECES_PER_WORD_WARNING = 1.5
# ... or, for captions, when more of their words than this are not whole vocabulary tokens.
SPLIT_WORDS_WARNING = 0.2


def report_coverage(what: str, coverage: dict, training_pieces_per_word: float | None) -> None:
    """Log how a fixed WordPiece vocabulary covers new text (:func:`subword_coverage`'s
    ``coverage``); a warning above :data:`UNK_WARNING` ``[UNK]`` or
    :data:`PIECES_PER_WORD_WARNING` times the training data's pieces per word."""
    message = "%s: %.1f%% of the new data's %d subword tokens are [UNK]; %.2f pieces per word"
    args = [what, 100 * coverage["share"], coverage["tokens"], coverage["pieces_per_word"]]
    if training_pieces_per_word:
        message += " (training data: %.2f)"
        args.append(training_pieces_per_word)
    poor = coverage["share"] > UNK_WARNING or bool(
        training_pieces_per_word
        and coverage["pieces_per_word"] > PIECES_PER_WORD_WARNING * training_pieces_per_word
    )
    if poor:
        log.warning(
            message + " (above %d%% [UNK] or %.1fx the training pieces per word: the vocabulary "
            "fits this text poorly; consider training from scratch with `train`)",
            *args,
            round(100 * UNK_WARNING),
            PIECES_PER_WORD_WARNING,
        )
    else:
        log.info(message, *args)


def report_word_coverage(coverage: dict) -> None:
    """Log which share of new captions' words a fixed vocabulary keeps whole
    (``coverage`` from :func:`subword_coverage` plus ``training_pieces_per_word``); a
    warning above :data:`SPLIT_WORDS_WARNING`."""
    message = (
        "%.1f%% of the new captions' %d words are not whole vocabulary tokens (%.1f%% of "
        "their subword tokens are [UNK]); %.2f pieces per word"
    )
    args = [
        100 * coverage["split_words"],
        coverage["words"],
        100 * coverage["share"],
        coverage["pieces_per_word"],
    ]
    if coverage.get("training_pieces_per_word"):
        message += " (training data: %.2f)"
        args.append(coverage["training_pieces_per_word"])
    if coverage["split_words"] > SPLIT_WORDS_WARNING:
        log.warning(
            message + " (above %d%%: the vocabulary fits these captions poorly; consider "
            "training from scratch with `train`)",
            *args,
            round(100 * SPLIT_WORDS_WARNING),
        )
    else:
        log.info(message, *args)
