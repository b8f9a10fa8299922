"""Word-level text vectorization that runs in tf.data and inside the exported graph.

One :class:`WordVectorizer` object turns raw strings into token ids. Training
maps it over a ``tf.data`` pipeline; the export tracks the very same object, so
the SavedModel's serving graph tokenizes exactly as training did and never
calls Python code from this repository.

Reserved ids (shared by every seqtasks vocabulary)::

    [PAD] = 0   padding (masked out by every model)
    [UNK] = 1   out-of-vocabulary word
    [START] = 2, [END] = 3   sequence boundaries for generation recipes

The vocabulary is a UTF-8 text file, one token per line, line number = id. In
the export it is a SavedModel asset (``assets/vocabulary.txt``).
"""

from __future__ import annotations

import collections
from collections.abc import Iterable

import tensorflow as tf

from seqtasks.io import write_text_atomic
from seqtasks.signature_module import SignatureModule
from seqtasks.tokens import (  # noqa: F401  (re-exported)
    END,
    END_ID,
    PAD,
    PAD_ID,
    RESERVED_TOKENS,
    START,
    START_ID,
    UNK,
    UNK_ID,
)

# Characters other than letters, digits, combining marks, whitespace and the
# apostrophe become tokens of their own ("great!" -> "great !").
_PUNCTUATION = r"([^\pL\pN\pM\s'])"


def standardize(text: tf.Tensor) -> tf.Tensor:
    """Lower-case, turn HTML line breaks, control characters and Unicode
    separators into spaces, space out punctuation.

    Tokens therefore never contain a line break of any kind, so a vocabulary
    file holds exactly one token per line.

    Args:
        text: tf.string tensor of any shape.

    Returns:
        tf.string tensor of the same shape.
    """
    text = tf.strings.lower(text, encoding="utf-8")
    text = tf.strings.regex_replace(text, r"<br\s*/?>|[\p{Cc}\p{Z}]", " ")
    return tf.strings.regex_replace(text, _PUNCTUATION, r" \1 ")


def split_words(text: tf.Tensor) -> tf.RaggedTensor:
    """Standardize and split on whitespace.

    Args:
        text: tf.string ``(batch,)``.

    Returns:
        tf.string RaggedTensor ``(batch, None)`` of words.
    """
    return tf.strings.split(standardize(text))


def build_vocabulary(
    texts: Iterable[str], vocabulary_size: int, min_frequency: int = 1, batch_size: int = 2048
) -> list[str]:
    """Most frequent words of ``texts``, after the reserved tokens.

    Ties are broken alphabetically so the vocabulary is deterministic.

    Args:
        texts: training texts (raw, as read from the data).
        vocabulary_size: total size including the 4 reserved tokens; must be > 4.
        min_frequency: drop words seen fewer times than this (default 1).
        batch_size: texts tokenized per TensorFlow call (memory vs. speed).

    Returns:
        ``[PAD], [UNK], [START], [END]`` followed by up to
        ``vocabulary_size - 4`` words.

    Raises:
        ValueError: if ``vocabulary_size`` <= 4.
    """
    if vocabulary_size <= len(RESERVED_TOKENS):
        raise ValueError(
            f"vocabulary_size must be > {len(RESERVED_TOKENS)}; received: {vocabulary_size}"
        )
    counts: collections.Counter[bytes] = collections.Counter()
    batch: list[str] = []
    for text in texts:
        batch.append(text)
        if len(batch) == batch_size:
            counts.update(split_words(tf.constant(batch)).flat_values.numpy().tolist())
            batch = []
    if batch:
        counts.update(split_words(tf.constant(batch)).flat_values.numpy().tolist())
    reserved = {t.encode() for t in RESERVED_TOKENS}
    ranked = sorted(
        (item for item in counts.items() if item[1] >= min_frequency and item[0] not in reserved),
        key=lambda item: (-item[1], item[0]),
    )
    words = [w.decode("utf-8") for w, _ in ranked[: vocabulary_size - len(RESERVED_TOKENS)]]
    return list(RESERVED_TOKENS) + words


def write_vocabulary(tokens: list[str], path: str) -> str:
    """Write one token per line (UTF-8) atomically; return ``path``."""
    return write_text_atomic(path, "\n".join(tokens) + "\n")


def read_vocabulary(path: str) -> list[str]:
    """Read a vocabulary file written by :func:`write_vocabulary`.

    Lines are split on ``\n`` only, as TensorFlow's ``TextFileInitializer``
    does, so ids read here match ids inside the graph.
    """
    with open(path, encoding="utf-8") as f:
        return f.read().removesuffix("\n").split("\n")


class WordVectorizer(SignatureModule):
    """Raw strings to int32 word ids, right-padded with ``[PAD]`` = 0.

    The lookup table is initialised from ``vocabulary_file``; when this module
    is saved with ``tf.saved_model.save`` the file becomes an asset.

    Args:
        vocabulary_file: path of a vocabulary written by :func:`write_vocabulary`
            (first four lines are the reserved tokens).
        sequence_length: keep at most this many tokens per text (the first
            ones); longer texts are truncated.

    Call arguments:
        text: tf.string ``(batch,)`` of raw text.

    Returns (``__call__``):
        int32 RaggedTensor ``(batch, None)`` with at most ``sequence_length``
        ids per row; unknown words map to ``[UNK]`` = 1.

    Example:
        >>> vectorizer = WordVectorizer("vocabulary.txt", sequence_length=8)
        >>> vectorizer.pad(vectorizer(tf.constant(["A great film!", ""])))
        <tf.Tensor: shape=(2, 4), dtype=int32, ...>
    """

    def __init__(self, vocabulary_file: str, sequence_length: int, name: str | None = None):
        super().__init__(name=name)
        self.sequence_length = int(sequence_length)
        self.vocabulary_size = len(read_vocabulary(vocabulary_file))
        initializer = tf.lookup.TextFileInitializer(
            vocabulary_file,
            key_dtype=tf.string,
            key_index=tf.lookup.TextFileIndex.WHOLE_LINE,
            value_dtype=tf.int64,
            value_index=tf.lookup.TextFileIndex.LINE_NUMBER,
        )
        self.table = tf.lookup.StaticHashTable(initializer, default_value=UNK_ID)

    def __call__(self, text: tf.Tensor) -> tf.RaggedTensor:
        words = split_words(text)[:, : self.sequence_length]
        return tf.cast(self.table.lookup(words), tf.int32)

    @staticmethod
    def pad(token_ids: tf.RaggedTensor) -> tf.Tensor:
        """Right-pad ragged ids to the longest row (at least 1 column).

        An all-empty batch becomes ``(batch, 1)`` of ``[PAD]`` so every model
        still gets a time axis; the padding mask hides it.

        Returns:
            int32 ``(batch, max(1, longest_row))``.
        """
        dense = token_ids.to_tensor(default_value=PAD_ID)  # (B, longest)
        missing = tf.maximum(1 - tf.shape(dense)[1], 0)
        return tf.pad(dense, [[0, 0], [0, missing]], constant_values=PAD_ID)


def call_by_length(fn, token_ids: tf.RaggedTensor, width: int, rows: int = 32) -> tf.Tensor:
    """``fn`` over the rows of ``token_ids`` grouped by length, outputs in input order.

    The rows are sorted by length (stable) and ``fn`` runs on consecutive
    chunks of ``rows`` rows, each right-padded (:meth:`WordVectorizer.pad`) to
    its own longest row, so a batch of texts of very different lengths
    computes little padding: the inference-time counterpart of the length
    buckets used in training (``tf.data.Dataset.bucket_by_sequence_length``).
    Exact for models whose output for a row does not depend on the other rows
    or on the padding (masked models). Graph-safe (a ``tf.while_loop``).

    Args:
        fn: maps int32 ``(chunk, T)`` ids to float32 ``(chunk, width)`` outputs.
        token_ids: int32 ragged ``(batch, None)`` ids.
        width: the size of ``fn``'s last output axis.
        rows: rows per call of ``fn`` (default 32).

    Returns:
        float32 ``(batch, width)``: row ``i`` is ``fn``'s output for ``token_ids[i]``.
    """
    order = tf.cast(tf.argsort(token_ids.row_lengths(), stable=True), tf.int32)
    ordered = tf.gather(token_ids, order)
    count = (tf.shape(order)[0] + rows - 1) // rows
    outputs = tf.TensorArray(
        tf.float32, size=count, infer_shape=False, element_shape=tf.TensorShape([None, width])
    )

    def step(i, outputs):
        chunk = WordVectorizer.pad(ordered[i * rows : (i + 1) * rows])
        return i + 1, outputs.write(i, fn(chunk))

    _, outputs = tf.while_loop(lambda i, _: i < count, step, (tf.constant(0), outputs))
    # An empty batch has no chunk: concat() of nothing is (0, width).
    stacked = tf.cond(count > 0, outputs.concat, lambda: tf.zeros([0, width], tf.float32))
    return tf.gather(stacked, tf.math.invert_permutation(order))


def out_of_vocabulary(vectorizer: WordVectorizer, texts: list[str], batch: int = 1024) -> dict:
    """How many of the words of ``texts`` (all of them, not only the first
    ``sequence_length``) are missing from ``vectorizer``'s vocabulary.

    For a :class:`~seqtasks.lm_transfer.LanguageModelVectorizer`, its tokenizer's
    ``[UNK]`` tokens among all its tokens (``distinct`` is then ``None``).

    Returns:
        ``{"share": float, "tokens": n_oov, "total": n_tokens, "distinct": n_distinct_oov}``.
    """
    oov = total = 0
    distinct: set[bytes] = set()
    if not hasattr(vectorizer, "table"):  # a language model's tokenizer: count [UNK] ids
        for i in range(0, len(texts), batch):
            ids = vectorizer.tokenizer(tf.constant(texts[i : i + batch])).flat_values.numpy()
            oov += int((ids == UNK_ID).sum())
            total += len(ids)
        share = oov / total if total else 0.0
        return {"share": round(share, 4), "tokens": oov, "total": total, "distinct": None}
    for i in range(0, len(texts), batch):
        words = split_words(tf.constant(texts[i : i + batch])).flat_values  # (N,) string
        missing = tf.equal(vectorizer.table.lookup(words), UNK_ID).numpy()
        oov += int(missing.sum())
        total += len(missing)
        distinct.update(words.numpy()[missing].tolist())
    share = oov / total if total else 0.0
    return {"share": round(share, 4), "tokens": oov, "total": total, "distinct": len(distinct)}
