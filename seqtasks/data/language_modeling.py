"""Cutting token streams and documents into language-model training sequences.

The two ways of issue 17's language-model recipe (next-token prediction, the target
being the input shifted by one token):

- **stream** (one contiguous text, like tiny Shakespeare or the Penn Treebank):
  :func:`stream_split` holds out the contiguous tail for validation, so no validation
  window overlaps training text; :func:`stream_windows` cuts a stream into
  non-overlapping windows of ``sequence_length`` inputs, each token predicted once
  (the "truncated" setting of Zaremba et al. 2014, sec. 4.1, without carried state);
- **documents** (one record or line per document): :func:`document_windows` wraps each
  document in ``[START] ... [END]`` and cuts a long one into consecutive windows, so
  every token of every document (and its ``[END]``) is a target exactly once.

Inputs and targets are int32 NumPy arrays ``(N, sequence_length)``, right-padded with
``[PAD]`` = 0, which the masked loss never counts.
"""

from __future__ import annotations

import numpy as np

from seqtasks.tokens import END_ID, PAD_ID, START_ID


def stream_split(token_ids, validation_split: float) -> tuple[np.ndarray, np.ndarray]:
    """``(train, validation)``: the head and the contiguous tail of a token stream.

    Args:
        token_ids: int ``(T,)``, the whole text's tokens.
        validation_split: share of the tokens held out at the end, in ``[0, 1)``.

    Raises:
        ValueError: for a share outside ``[0, 1)``.
    """
    if not 0.0 <= validation_split < 1.0:
        raise ValueError(f"validation_split must be in [0, 1); Received: {validation_split}")
    token_ids = np.asarray(token_ids, np.int32)
    cut = len(token_ids) - int(round(len(token_ids) * validation_split))
    return token_ids[:cut], token_ids[cut:]


def stream_windows(
    token_ids, sequence_length: int, pad_last: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Non-overlapping windows of a stream, each starting afresh from ``[START]``.

    Window ``k`` predicts the ``L = sequence_length`` tokens ``x[k*L : (k+1)*L]`` from
    ``[START] x[k*L : (k+1)*L - 1]``: every token of the stream is a target exactly
    once, and a model always begins from ``[START]``, as generation and scoring do
    (an RNN's state is not carried between windows). A last window too short to fill
    is dropped (``N = T // L``), or with ``pad_last`` kept and right-padded with
    ``[PAD]`` (validation: every token scored, ``N = ceil(T / L)``).

    Returns:
        ``(inputs, targets)`` int32 ``(N, L)`` each.

    Raises:
        ValueError: if the stream has fewer than ``sequence_length`` tokens (not one window).
    """
    token_ids = np.asarray(token_ids, np.int32)
    if pad_last and len(token_ids) % sequence_length:
        missing = sequence_length - len(token_ids) % sequence_length
        token_ids = np.concatenate([token_ids, np.full(missing, PAD_ID, np.int32)])
    count = len(token_ids) // sequence_length
    if count < 1:
        raise ValueError(
            f"a text of {len(token_ids)} tokens is shorter than one window of "
            f"sequence_length={sequence_length} tokens"
        )
    targets = token_ids[: count * sequence_length].reshape(count, sequence_length)
    starts = np.full((count, 1), START_ID, np.int32)
    return np.concatenate([starts, targets[:, :-1]], axis=1), targets


def document_windows(documents, sequence_length: int) -> tuple[np.ndarray, np.ndarray]:
    """Each document as ``[START] tokens [END]``, cut into consecutive windows.

    A document of ``n`` tokens has ``n + 1`` targets (its tokens and ``[END]``); window
    ``k`` reads positions ``k*L .. k*L+L-1`` of ``[START] tokens`` and predicts the next
    token of each, so every target appears exactly once. Short windows are right-padded
    with ``[PAD]`` in inputs and targets alike.

    Args:
        documents: iterable of int token sequences (no ``[START]``/``[END]``).
        sequence_length: window length ``L`` in tokens, at least 1.

    Returns:
        ``(inputs, targets)`` int32 ``(N, L)``; ``N = sum(ceil((n + 1) / L))``.
    """
    inputs, targets = [], []
    for tokens in documents:
        sequence = np.concatenate([[START_ID], np.asarray(tokens, np.int32), [END_ID]])
        source, shifted = sequence[:-1], sequence[1:]  # [START] tokens -> tokens [END]
        for start in range(0, len(source), sequence_length):
            x = source[start : start + sequence_length]
            y = shifted[start : start + sequence_length]
            inputs.append(np.pad(x, (0, sequence_length - len(x)), constant_values=PAD_ID))
            targets.append(np.pad(y, (0, sequence_length - len(y)), constant_values=PAD_ID))
    if not inputs:
        return np.zeros((0, sequence_length), np.int32), np.zeros((0, sequence_length), np.int32)
    return np.stack(inputs).astype(np.int32), np.stack(targets).astype(np.int32)
