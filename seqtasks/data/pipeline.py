"""tf.data input pipelines shared by the recipes.

Text is vectorized inside the pipeline (once: the token ids are cached),
shuffled in an order that depends only on the seed and the epoch number (see
:func:`shuffle_each_epoch`), and batched by length so little compute goes to
padding: :func:`token_batches` groups examples into buckets of similar
length (``tf.data.Dataset.bucket_by_sequence_length``, geometric boundaries
from :func:`bucket_boundaries`) and pads each batch to its bucket's boundary,
which keeps the number of distinct batch shapes bounded. Padding is on the right, which the cuDNN RNN kernels
require.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from seqtasks.text import WordVectorizer

_data_epoch: tf.Variable | None = None


def data_epoch() -> tf.Variable:
    """The epoch number that :func:`shuffle_each_epoch` pipelines shuffle for.

    One int64 variable per process. :func:`seqtasks.training.train` sets it
    at the start of every epoch, before ``fit`` opens that epoch's iterator;
    outside ``train`` it stays where it was (0 at first).
    """
    global _data_epoch
    if _data_epoch is None:
        with tf.init_scope():
            _data_epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="data_epoch")
    return _data_epoch


def shuffle_each_epoch(ds: tf.data.Dataset, size: int, seed: int) -> tf.data.Dataset:
    """``ds`` (``size`` elements) in an order that depends only on ``seed`` and the epoch.

    The shuffle seed is derived from ``seed`` and :func:`data_epoch` when an
    iterator starts, so epoch ``k`` has the same order in an uninterrupted
    run and in a run resumed at epoch ``k`` by a fresh process. (With
    ``reshuffle_each_iteration=True`` the order of a pass depends on how many
    iterators the process made before, which a resumed run cannot reproduce.)
    Every pass of one epoch number has the same order.

    TensorFlow cannot seed an op from a tensor under the global seed 0
    (``keras.utils.set_random_seed(0)``): iterating then raises
    ``OperatorNotAllowedInGraphError``. :func:`seqtasks.training.environment.seed_everything`
    (the driver's seeding) gives seed 0 another TensorFlow global seed; seed the same way
    when building these pipelines outside the driver.
    """
    epoch = data_epoch()

    def shuffled(_):
        return ds.shuffle(
            size, seed=seed * 1_000_003 + epoch.read_value(), reshuffle_each_iteration=False
        )

    return (
        tf.data.Dataset.range(1)
        .flat_map(shuffled)
        .apply(tf.data.experimental.assert_cardinality(size))
    )


def split_indices(
    n: int,
    validation_split: float,
    seed: int,
    groups: Sequence[str] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """A seeded split of ``range(n)`` into training and validation indices.

    Without ``groups`` it is a random carve by example. With ``groups`` it is a
    grouped carve: whole groups (IMDB's movies, a corpus' speakers or documents) are
    held out, so no group has examples on both sides and validation measures what
    held-out data (new movies) will see. Examples sharing a group are correlated (a
    movie's reviews share names and plot words, and often a verdict), so a random
    carve over them overestimates accuracy on new groups and selects models on the
    wrong signal (Kohavi 1995 on cross-validation; scikit-learn's
    ``GroupShuffleSplit`` does the same). The groups are permuted with ``seed`` and
    taken in that order until the validation side holds at least
    ``round(n * validation_split)`` examples, so its size may exceed that by less
    than the largest group.

    Args:
        n: number of examples.
        validation_split: share held out for validation, in ``[0, 1)``; at
            least one example (one group) is held out when it is > 0 and ``n`` >= 2
            (two groups).
        seed: the permutation's seed.
        groups: each example's group (``len(groups) == n``), or ``None`` for a
            random carve by example (also used when there are fewer than two groups).

    Returns:
        ``(train_indices, validation_indices)``, each sorted ascending (int64).

    Raises:
        ValueError: ``groups`` does not have ``n`` items.
    """
    n_val = int(round(n * validation_split))
    if validation_split > 0 and n >= 2:
        n_val = min(max(n_val, 1), n - 1)
    if groups is not None and len(groups) != n:
        raise ValueError(f"`groups` must have n={n} items. Received: {len(groups)}")
    if groups is not None:
        names, ids = np.unique(np.asarray(groups, dtype=object).astype(str), return_inverse=True)
    if groups is None or len(names) < 2:
        order = np.random.default_rng(seed).permutation(n)
        return np.sort(order[n_val:]), np.sort(order[:n_val])
    if n_val == 0:
        return np.arange(n, dtype=np.int64), np.zeros(0, dtype=np.int64)
    sizes = np.bincount(ids, minlength=len(names))
    order = np.random.default_rng(seed).permutation(len(names))
    taken = np.cumsum(sizes[order])
    held = order[: min(int(np.searchsorted(taken, n_val)) + 1, len(names) - 1)]
    is_val = np.isin(ids, held)
    return (
        np.flatnonzero(~is_val).astype(np.int64),
        np.flatnonzero(is_val).astype(np.int64),
    )


def bucket_boundaries(sequence_length: int, smallest: int = 8, ratio: float = 1.25) -> list[int]:
    """Padded lengths for length bucketing: a geometric series below ``sequence_length``, then it.

    Each boundary is ``ceil(previous * ratio)`` (at least ``previous + 1``), so
    an example padded to its bucket's boundary carries at most about
    ``1 - 1/ratio`` (20% for the default 1.25) padding, except in the first
    bucket (texts shorter than ``smallest``). Every boundary is one padded
    length, i.e. one input shape (times two batch sizes: full batches and the
    last, smaller batch of a bucket), so the number of distinct shapes, and of
    XLA compilations with ``jit_compile``, is bounded by ``2 * len(result)``:
    22 boundaries for ``sequence_length=1000``, 10 for 64. (Until 2026-11 the
    boundaries were powers of two from 16, ``smallest=16, ratio=2``: 29% of
    the tokens of an IMDB epoch and 54% of an SST-2 one were padding; see
    ``bench/README.md``, ``padding.py``.)

    Args:
        sequence_length: the longest sequence; always the last boundary.
        smallest: the first boundary (default 8).
        ratio: growth factor between boundaries, > 1 (default 1.25).

    >>> bucket_boundaries(64)
    [8, 10, 13, 17, 22, 28, 35, 44, 55, 64]
    >>> bucket_boundaries(400, smallest=16, ratio=2)
    [16, 32, 64, 128, 256, 400]
    """
    if ratio <= 1:
        raise ValueError(f"`ratio` must be > 1. Received: ratio={ratio}")
    sizes = []
    size = smallest
    while size < sequence_length:
        sizes.append(size)
        size = max(size + 1, math.ceil(size * ratio))
    return sizes + [sequence_length]


def token_batches(
    texts: list[str],
    targets: np.ndarray,
    vectorizer: WordVectorizer,
    *,
    batch_size: int,
    shuffle: bool,
    seed: int,
) -> tf.data.Dataset:
    """Batches of ``(token_ids, targets)`` for ``model.fit`` / ``evaluate``.

    Args:
        texts: raw texts.
        targets: per-text targets, first axis aligned with ``texts``.
        vectorizer: turns a text into at most ``vectorizer.sequence_length`` ids.
        batch_size: examples per batch (the last batch of a bucket may be smaller).
        shuffle: reshuffle every epoch (seeded, see :func:`shuffle_each_epoch`); use
            for training.
        seed: shuffle seed.

    Returns:
        A dataset of int32 ``token_ids`` ``(batch, padded_length)`` (right-padded
        with 0, ``padded_length`` one of :func:`bucket_boundaries`) and
        ``targets`` ``(batch, ...)``.
    """
    ds = tf.data.Dataset.from_tensor_slices((tf.constant(texts, tf.string), targets))
    ds = ds.map(
        lambda text, target: (vectorizer(tf.reshape(text, [1])).flat_values, target),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True,
    ).cache()
    if shuffle:
        ds = shuffle_each_epoch(ds, len(texts), seed)
    sizes = bucket_boundaries(vectorizer.sequence_length)
    ds = ds.bucket_by_sequence_length(
        element_length_func=lambda ids, _: tf.shape(ids)[0],
        bucket_boundaries=[s + 1 for s in sizes],  # a length < boundary falls in that bucket
        bucket_batch_sizes=[batch_size] * (len(sizes) + 1),
        pad_to_bucket_boundary=True,
    )
    return ds.prefetch(tf.data.AUTOTUNE)
