"""The three tokenizers of the language-model recipe: characters, words, WordPiece.

Every tokenizer is a ``tf.Module`` with one interface, usable in ``tf.data``
and inside an exported SavedModel (lookup tables and keras-hub layers are
tracked attributes, the methods are ``tf.function`` s)::

    kind: str               "char" | "word" | "wordpiece"
    vocabulary_size: int    ids lie in [0, vocabulary_size), the reserved ids
                            [PAD]=0, [UNK]=1, [START]=2, [END]=3 first
    vocabulary_file: str    the vocabulary it was built from
    __call__(text)          tf.string (B,) -> int32 RaggedTensor (B, None); no
                            [START]/[END], no truncation, unknown units -> [UNK]
    detokenize(token_ids)   int (B, T) dense or ragged -> tf.string (B,); stops at
                            the first [END], drops [PAD]/[START], [UNK] -> a marker

(What per-character and per-word figures divide by does not depend on the
tokenizer: ``seqtasks.data.lm_pipeline.count_units``.)

* ``char`` (:class:`CharTokenizer`): code points split by keras-hub's
  ``UnicodeCodepointTokenizer`` mapped to a compact learned vocabulary, or
  (``char_unit="byte"``) UTF-8 bytes from keras-hub's ``ByteTokenizer``, id = byte + 4.
* ``word`` (:class:`WordTokenizer`): words and punctuation marks as tokens.
* ``wordpiece`` (:class:`WordPieceTokenizer`): :class:`seqtasks.subword.SubwordTokenizer`
  (WordPiece: Schuster & Nakajima 2012; Wu et al. 2016) without truncation.

With ``lowercase`` (char) or ``wordpiece``, the SavedModel holds tensorflow-text ops:
``import tensorflow_text`` before loading it.
"""

from __future__ import annotations

import collections
import logging
import os

import numpy as np
import tensorflow as tf

from seqtasks.signature_module import SignatureModule
from seqtasks.subword import DETOKENIZE_RULES, SubwordTokenizer, learn_vocabulary
from seqtasks.text import _PUNCTUATION, read_vocabulary, write_vocabulary
from seqtasks.tokens import END_ID, PAD_ID, RESERVED_TOKENS, START_ID, UNK_ID

log = logging.getLogger(__name__)

TOKENIZERS = ("char", "word", "wordpiece")
CHAR_UNITS = ("codepoint", "byte")
REPLACEMENT_CHARACTER = 0xFFFD  # what char detokenize writes for [UNK] and invalid UTF-8
_BYTE_UNITS = [str(b) for b in range(256)]


def _content_ids(token_ids) -> tf.RaggedTensor:
    """int32 ragged ids up to the first ``[END]``, without ``[PAD]``/``[START]``."""
    if not isinstance(token_ids, tf.RaggedTensor):
        token_ids = tf.RaggedTensor.from_tensor(tf.convert_to_tensor(token_ids))
    token_ids = tf.cast(token_ids, tf.int32)
    before_end = tf.equal(tf.cumsum(tf.cast(tf.equal(token_ids, END_ID), tf.int32), axis=1), 0)
    keep = before_end & tf.not_equal(token_ids, PAD_ID) & tf.not_equal(token_ids, START_ID)
    return tf.ragged.boolean_mask(token_ids, keep)


class _LMTokenizer(SignatureModule):
    kind: str
    vocabulary_size: int
    vocabulary_file: str



def _char_splitter(lowercase: bool, char_unit: str):
    """keras-hub's code point or byte tokenizer: tf.string (B,) -> int32 ragged (B, None)."""
    import keras_hub

    if char_unit == "byte":
        return keras_hub.tokenizers.ByteTokenizer(lowercase=lowercase, dtype="int32")
    return keras_hub.tokenizers.UnicodeCodepointTokenizer(lowercase=lowercase, dtype="int32")


def _read_char_vocabulary(path: str, char_unit: str) -> list[int]:
    """The code points (or bytes) of a char vocabulary file, in id order from id 4."""
    lines = read_vocabulary(path)
    units = lines[len(RESERVED_TOKENS) :]
    codepoints = [int(u) if u.isdecimal() and int(u) <= 0x10FFFF else -1 for u in units]
    if lines[:4] != list(RESERVED_TOKENS) or -1 in codepoints or len(set(codepoints)) < len(units):
        raise ValueError(f"{path}: expected {RESERVED_TOKENS}, then a distinct code point a line")
    if char_unit == "byte" and units != _BYTE_UNITS:
        raise ValueError(f"{path}: not a byte vocabulary (the values 0 to 255 after [END])")
    return codepoints


class CharTokenizer(_LMTokenizer):
    """Characters (Unicode code points) or UTF-8 bytes to ids and back.

    Args:
        vocabulary_file: the 4 reserved tokens on lines 1-4, then one decimal code
            point (or byte value) per line, line number = id (:func:`learn_tokenizer`).
        lowercase: case-fold the text first (keras-hub's ``lowercase``: tensorflow-text
            ``case_fold_utf8``; default ``False``).
        char_unit: ``"codepoint"`` (default): keras-hub's ``UnicodeCodepointTokenizer``
            (invalid UTF-8 -> U+FFFD), then a ``tf.lookup.StaticHashTable`` (unseen
            characters -> ``[UNK]``); ``"byte"``: keras-hub's ``ByteTokenizer``, id = byte + 4.

    ``detokenize`` writes U+FFFD for ``[UNK]`` and for invalid UTF-8 byte sequences.

    Raises:
        ValueError: a malformed file; with ``"byte"``, a file other than the 256 bytes.
    """

    kind = "char"

    def __init__(
        self, vocabulary_file: str, *, lowercase: bool = False, char_unit: str = "codepoint"
    ):
        super().__init__()
        codepoints = _read_char_vocabulary(vocabulary_file, char_unit)
        self.vocabulary_file = vocabulary_file
        self.vocabulary_size = len(RESERVED_TOKENS) + len(codepoints)
        self.lowercase = lowercase
        self.char_unit = char_unit
        self.splitter = _char_splitter(lowercase, char_unit)
        reserved = [b"", chr(REPLACEMENT_CHARACTER).encode(), b"", b""]
        if char_unit == "byte":
            self._pieces = reserved + [bytes([b]) for b in codepoints]
        else:
            self._pieces = reserved + [chr(c).encode("utf-8", "surrogatepass") for c in codepoints]
            ids = np.arange(len(RESERVED_TOKENS), self.vocabulary_size, dtype=np.int32)
            self.table = tf.lookup.StaticHashTable(
                tf.lookup.KeyValueTensorInitializer(
                    tf.constant(codepoints, tf.int32), tf.constant(ids, tf.int32)
                ),
                default_value=UNK_ID,
            )

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def __call__(self, text: tf.Tensor) -> tf.RaggedTensor:
        units = self.splitter(text)  # int32 (B, None) code points or bytes
        if self.char_unit == "byte":
            return units + len(RESERVED_TOKENS)
        return self.table.lookup(units)

    @tf.function(reduce_retracing=True)
    def detokenize(self, token_ids) -> tf.Tensor:
        ids = _content_ids(token_ids)
        size = self.vocabulary_size  # ids out of range (a model's garbage) read as [UNK]
        ids = tf.ragged.map_flat_values(lambda i: tf.where((i >= 0) & (i < size), i, UNK_ID), ids)
        text = tf.strings.reduce_join(tf.gather(tf.constant(self._pieces), ids), axis=1)
        return tf.strings.unicode_transcode(
            text, "UTF-8", "UTF-8", errors="replace", replacement_char=REPLACEMENT_CHARACTER
        )


def _split_words(text: tf.Tensor, lowercase: bool) -> tf.RaggedTensor:
    """tf.string (B,) -> ragged words (B, None): control characters and Unicode
    separators are spaces, every punctuation mark or symbol but the apostrophe
    is a word (:mod:`seqtasks.text`'s rule, without its forced lower-casing)."""
    if lowercase:
        text = tf.strings.lower(text, encoding="utf-8")
    text = tf.strings.regex_replace(text, r"[\p{Cc}\p{Z}]", " ")
    return tf.strings.split(tf.strings.regex_replace(text, _PUNCTUATION, r" \1 "))


class WordTokenizer(_LMTokenizer):
    """Words and punctuation marks to ids and back.

    ``"Whither, sir?"`` -> ``Whither , sir ?``; apostrophes stay inside words (``know't``,
    ``'tis``). ``detokenize`` joins words with single spaces and applies
    :data:`seqtasks.subword.DETOKENIZE_RULES` (no space before ``. , ! ? ; : % ) ] }``,
    none after ``( [ {``, hyphens and apostrophes between letters re-attached), ``"[UNK]"``
    for unknown words. A round trip keeps ordinary sentences; whitespace runs and line
    breaks become one space, ``a - b`` becomes ``a-b``.

    Args:
        vocabulary_file: one word per line, line number = id, reserved tokens
            first (:func:`seqtasks.text.write_vocabulary`); a SavedModel asset
            (``tf.lookup.TextFileInitializer``).
        lowercase: lower-case the text first (``tf.strings.lower``; default ``False``).
    """

    kind = "word"

    def __init__(self, vocabulary_file: str, *, lowercase: bool = False):
        super().__init__()
        self.vocabulary_file = vocabulary_file
        self.vocabulary_size = len(read_vocabulary(vocabulary_file))
        self.lowercase = lowercase
        line, number = tf.lookup.TextFileIndex.WHOLE_LINE, tf.lookup.TextFileIndex.LINE_NUMBER
        self.table = tf.lookup.StaticHashTable(
            tf.lookup.TextFileInitializer(vocabulary_file, tf.string, line, tf.int64, number),
            default_value=UNK_ID,
        )
        self.words = tf.lookup.StaticHashTable(
            tf.lookup.TextFileInitializer(vocabulary_file, tf.int64, number, tf.string, line),
            default_value=RESERVED_TOKENS[UNK_ID],
        )

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def __call__(self, text: tf.Tensor) -> tf.RaggedTensor:
        return tf.cast(self.table.lookup(_split_words(text, self.lowercase)), tf.int32)

    @tf.function(reduce_retracing=True)
    def detokenize(self, token_ids) -> tf.Tensor:
        words = self.words.lookup(tf.cast(_content_ids(token_ids), tf.int64))
        text = tf.strings.reduce_join(words, axis=1, separator=" ")
        for pattern, replacement in DETOKENIZE_RULES:
            text = tf.strings.regex_replace(text, pattern, replacement)
        return text


class WordPieceTokenizer(_LMTokenizer):
    """WordPiece ids (Schuster & Nakajima 2012; Wu et al. 2016): an adapter over
    :class:`seqtasks.subword.SubwordTokenizer` (keras-hub's ``WordPieceTokenizer``).

    ``__call__`` is its ``untruncated`` (whole texts), ``detokenize`` its ``detokenize``
    (punctuation re-attached by ``DETOKENIZE_RULES``, ``"[UNK]"`` for unknown pieces).

    Args:
        vocabulary_file: pieces, one per line, reserved tokens first
            (:func:`seqtasks.subword.learn_vocabulary`).
        lowercase: lower-case the text first (default ``False``).
    """

    kind = "wordpiece"

    def __init__(self, vocabulary_file: str, *, lowercase: bool = False):
        super().__init__()
        # sequence_length only limits SubwordTokenizer's truncating methods, not used here.
        self.subword = SubwordTokenizer(vocabulary_file, 2**31 - 1, lowercase)
        self.vocabulary_file = vocabulary_file
        self.vocabulary_size = self.subword.vocabulary_size
        self.lowercase = lowercase

    def __call__(self, text: tf.Tensor) -> tf.RaggedTensor:
        return self.subword.untruncated(text)

    def detokenize(self, token_ids) -> tf.Tensor:
        return self.subword.detokenize(token_ids)


def _check(kind: str, char_unit: str) -> None:
    if kind not in TOKENIZERS:
        raise ValueError(f"kind: expected one of {', '.join(TOKENIZERS)}; received: {kind!r}")
    if char_unit not in CHAR_UNITS:
        raise ValueError(
            f"char_unit: expected one of {', '.join(CHAR_UNITS)}; received: {char_unit!r}"
        )


def load_tokenizer(kind: str, path: str, *, lowercase: bool = False, char_unit: str = "codepoint"):
    """The tokenizer ``kind`` (one of :data:`TOKENIZERS`) of the vocabulary file ``path``.

    ``char_unit`` (``"codepoint"`` or ``"byte"``) matters for ``char`` only.

    Raises:
        ValueError: an unknown ``kind`` or ``char_unit``, or a malformed char vocabulary.
    """
    _check(kind, char_unit)
    if kind == "char":
        return CharTokenizer(path, lowercase=lowercase, char_unit=char_unit)
    if kind == "word":
        return WordTokenizer(path, lowercase=lowercase)
    return WordPieceTokenizer(path, lowercase=lowercase)


def _counts(texts: list[str], split) -> collections.Counter:
    """How often each unit of ``split`` (tf.string (B,) -> ragged (B, None)) occurs in ``texts``."""
    counts: collections.Counter = collections.Counter()
    batches = tf.data.Dataset.from_tensor_slices(tf.constant(list(texts), tf.string)).batch(1024)
    for units in batches.map(split):
        values, numbers = np.unique(units.flat_values.numpy(), return_counts=True)
        counts.update(dict(zip(values.tolist(), numbers.tolist())))
    return counts


def learn_tokenizer(
    kind: str,
    path: str,
    texts: list[str],
    *,
    vocabulary_size: int,
    lowercase: bool = False,
    min_frequency: int = 1,
    char_unit: str = "codepoint",
):
    """Learn a vocabulary of ``kind`` from ``texts``, write it to ``path``, return its tokenizer.

    If ``path`` exists it is reused and ``texts`` ignored (resuming, fine-tuning). The
    file is written atomically (a temporary file, then ``os.replace``). ``char``: code
    points by descending frequency, ties by code point (``"byte"``: the 256 bytes, nothing
    learned); ``word``: words by descending frequency, ties by their UTF-8 bytes;
    ``wordpiece``: :func:`seqtasks.subword.learn_vocabulary` (tensorflow-text's learner).

    Args:
        kind: one of :data:`TOKENIZERS`.
        path: vocabulary file to write (or reuse).
        texts: raw training texts.
        vocabulary_size: the most ids, the 4 reserved ones included (>= 5);
            fewer when the texts have fewer units.
        lowercase: lower-case before learning and tokenizing (default ``False``).
        min_frequency: units seen fewer times are left out (default 1).
        char_unit: ``"codepoint"`` (default) or ``"byte"``, for ``char``.

    Raises:
        ValueError: an unknown ``kind``/``char_unit``, ``vocabulary_size`` < 5,
            ``min_frequency`` < 1, or (char, word) no unit seen ``min_frequency`` times.
    """
    _check(kind, char_unit)
    if vocabulary_size < len(RESERVED_TOKENS) + 1:
        raise ValueError(f"vocabulary_size: expected an integer >= 5; received: {vocabulary_size}")
    if min_frequency < 1:
        raise ValueError(f"min_frequency: expected an integer >= 1; received: {min_frequency}")
    if os.path.isfile(path):
        log.info("reusing the %s vocabulary %s", kind, path)
    elif kind == "wordpiece":
        tokens = learn_vocabulary(
            texts, vocabulary_size, lowercase=lowercase, min_frequency=min_frequency
        )
        write_vocabulary(tokens, path)
    elif kind == "char" and char_unit == "byte":
        write_vocabulary(list(RESERVED_TOKENS) + _BYTE_UNITS, path)
    else:
        split = _char_splitter(lowercase, char_unit) if kind == "char" else None
        counts = _counts(texts, split or (lambda text: _split_words(text, lowercase)))
        ranked = sorted((-n, unit) for unit, n in counts.items() if n >= min_frequency)
        units = [unit for _, unit in ranked[: vocabulary_size - len(RESERVED_TOKENS)]]
        if not units:
            raise ValueError(
                f"no {'character' if kind == 'char' else 'word'} occurs {min_frequency} or "
                "more times in the training text; give more text or lower min_frequency"
            )
        units = [str(u) for u in units] if kind == "char" else [u.decode() for u in units]
        write_vocabulary(list(RESERVED_TOKENS) + units, path)
    return load_tokenizer(kind, path, lowercase=lowercase, char_unit=char_unit)
