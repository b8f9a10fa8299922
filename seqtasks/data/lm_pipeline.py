"""From texts to language-model batches: tokenize, cut into windows, batch with tf.data.

The TensorFlow half of :mod:`seqtasks.data.language_modeling` (which cuts token ids
into windows with NumPy): :func:`tokenize_texts` runs a tokenizer of
:mod:`seqtasks.lm_tokenizers` over many texts in batches, :func:`stream_ids` over one
long text, :func:`lm_windows` cuts either into training windows, and :func:`lm_batches`
makes the ``({"decoder_token_ids": x}, y)`` batches ``fit`` trains on (teacher forcing:
``y`` is ``x`` shifted by one token).
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from seqtasks.data.language_modeling import document_windows, stream_windows

# Characters per piece when a long stream is tokenized (cut after a newline).
STREAM_PIECE = 100_000


def tokenize_texts(tokenizer, texts: list[str], batch_size: int = 512) -> list[np.ndarray]:
    """The token ids of each text (no ``[START]``/``[END]``), int32 arrays in order."""
    ids: list[np.ndarray] = []
    for start in range(0, len(texts), batch_size):
        ragged = tokenizer(tf.constant(texts[start : start + batch_size]))
        values, lengths = ragged.flat_values.numpy(), ragged.row_lengths().numpy()
        ids.extend(np.split(values.astype(np.int32), np.cumsum(lengths)[:-1]))
    return ids


def stream_pieces(text: str, size: int = STREAM_PIECE) -> list[str]:
    """``text`` cut after a newline every ``size`` characters or so (pieces join back to it)."""
    pieces, start = [], 0
    while start < len(text):
        end = text.find("\n", start + size)
        end = len(text) if end < 0 else end + 1
        pieces.append(text[start:end])
        start = end
    return pieces


def stream_ids(tokenizer, text: str) -> np.ndarray:
    """The token ids of one long text, int32 ``(T,)``, tokenized piece by piece
    (:func:`stream_pieces`: cut after newlines, so no word is split)."""
    ids = tokenize_texts(tokenizer, stream_pieces(text), batch_size=16)
    return np.concatenate(ids) if ids else np.zeros((0,), np.int32)


def lm_windows(
    ids, mode: str, sequence_length: int, validation: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Windows of a stream (``ids`` int ``(T,)``) or of documents (a list of id arrays):
    :func:`~seqtasks.data.language_modeling.stream_windows` (``validation``: the last,
    short window is padded and kept, so every token is scored) or
    :func:`~seqtasks.data.language_modeling.document_windows`."""
    if mode == "stream":
        return stream_windows(ids, sequence_length, pad_last=validation)
    return document_windows(ids, sequence_length)


def lm_batches(
    inputs: np.ndarray,
    targets: np.ndarray,
    batch_size: int,
    shuffle: bool,
    seed: int = 0,
    with_targets: bool = False,
) -> tf.data.Dataset:
    """``({"decoder_token_ids": int32 (B, L)}, int32 (B, L))`` batches, reshuffled each
    epoch (seeded) when ``shuffle``; ``with_targets`` also puts the targets in the inputs
    as ``"target_ids"`` (what a sampled softmax model reads in training)."""
    features = {"decoder_token_ids": inputs}
    if with_targets:
        features["target_ids"] = targets
    ds = tf.data.Dataset.from_tensor_slices((features, targets))
    if shuffle:
        ds = ds.shuffle(len(inputs), seed=seed, reshuffle_each_iteration=True)
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def count_units(texts: list[str]) -> dict[str, int]:
    """``{"characters", "words"}`` of raw texts: code points and whitespace-separated words,
    the units per-character and per-word NLL are normalised by."""
    return {
        "characters": sum(len(text) for text in texts),
        "words": sum(len(text.split()) for text in texts),
    }
