"""Sampled softmax: train a large-vocabulary output layer on a few sampled classes (``keras.ops``).

The full softmax over ``V`` words costs ``O(V)`` per token in the forward and backward
pass; on a CPU it dominates a word-level language model (a 12,000-word output layer
over 256 units takes about 70% of an LSTM language model's training step, see
``docs/language_model.md``). Sampled softmax (Jean et al. 2015, "On Using Very Large
Target Vocabulary for Neural Machine Translation", sec. 3; Bengio & Senécal 2008)
scores only the target and ``num_sampled`` classes drawn from a proposal ``Q`` shared
by the batch, subtracting ``log(num_sampled * Q(class))`` from each logit so the
gradient estimates the full softmax's. The proposal here is the log-uniform (Zipfian)
distribution over ids, ``Q(k) = log((k + 2) / (k + 1)) / log(V + 1)``, which matches a
vocabulary sorted by descending frequency (the ``word`` and ``char`` tokenizers'
order), as TensorFlow's ``tf.nn.sampled_softmax_loss`` with its default
``log_uniform_candidate_sampler`` does; classes are drawn with replacement and a
sampled class equal to the target ("accidental hit") is masked out.

It is a training objective only: validation, metrics and exports use the full softmax.
"""

from __future__ import annotations

import math

import keras
from keras import ops

# Logit given to a sampled class that equals the target (removed from the softmax).
ACCIDENTAL_HIT_LOGIT = -1e9


def log_uniform_candidates(num_sampled: int, vocabulary_size: int, seed=None):
    """Draw ``num_sampled`` class ids from the log-uniform proposal, with replacement.

    Args:
        num_sampled: int, classes to draw (> 0).
        vocabulary_size: int ``V``, ids are in ``[0, V)``.
        seed: a ``keras.random.SeedGenerator`` (or an int, or None).

    Returns:
        ``(ids int32 (num_sampled,), log_expected float32 (num_sampled,))``: the classes
        and ``log(num_sampled * Q(id))``, the correction subtracted from their logits.
    """
    log_range = math.log(vocabulary_size + 1.0)
    u = keras.random.uniform((num_sampled,), seed=seed)
    # Inverse CDF of Q: P(id <= k) = log(k + 2) / log(V + 1).
    ids = ops.cast(ops.floor(ops.exp(u * log_range)), "int32") - 1
    ids = ops.clip(ids, 0, vocabulary_size - 1)
    return ids, log_expected_count(ids, num_sampled, vocabulary_size)


def log_expected_count(ids, num_sampled: int, vocabulary_size: int):
    """``log(num_sampled * Q(ids))`` under the log-uniform proposal; float32, shape of ``ids``."""
    k = ops.cast(ids, "float32")
    q = ops.log1p(1.0 / (k + 1.0)) / math.log(vocabulary_size + 1.0)  # log((k+2)/(k+1))
    return ops.log(q * float(num_sampled))


def sampled_logits(hidden, target_ids, kernel, bias, sampled_ids, sampled_log_expected):
    """Corrected logits of the target (column 0) and of the sampled classes.

    Args:
        hidden: float ``(batch, length, width)``, the inputs of the output layer.
        target_ids: int ``(batch, length)``, the true next tokens.
        kernel: float ``(vocabulary_size, width)``, the output layer's rows (a Dense
            kernel transposed, or tied input embeddings).
        bias: float ``(vocabulary_size,)``.
        sampled_ids: int32 ``(num_sampled,)``, shared by the batch.
        sampled_log_expected: float32 ``(num_sampled,)``, ``log(num_sampled * Q)``.

    Returns:
        float32 ``(batch, length, 1 + num_sampled)``: column 0 is the target's logit,
        the others the sampled classes' (``ACCIDENTAL_HIT_LOGIT`` where a sampled class
        equals the target), each minus its ``log(num_sampled * Q)``. The cross-entropy
        with class 0 is the sampled softmax loss.
    """
    hidden = ops.cast(hidden, "float32")
    target_ids = ops.cast(target_ids, "int32")
    kernel, bias = ops.cast(kernel, "float32"), ops.cast(bias, "float32")
    num_sampled = ops.shape(sampled_ids)[0]
    true_rows = ops.take(kernel, target_ids, axis=0)  # (B, L, W)
    true = ops.sum(hidden * true_rows, axis=-1) + ops.take(bias, target_ids)
    true = true - log_expected_count(target_ids, num_sampled, kernel.shape[0])
    sampled = ops.matmul(hidden, ops.transpose(ops.take(kernel, sampled_ids, axis=0)))
    sampled = sampled + ops.take(bias, sampled_ids) - sampled_log_expected  # (B, L, K)
    hits = ops.equal(target_ids[..., None], sampled_ids)
    sampled = ops.where(hits, ACCIDENTAL_HIT_LOGIT, sampled)
    return ops.concatenate([true[..., None], sampled], axis=-1)


def output_rows(output_layer):
    """``(kernel (V, width), bias (V,))`` of a Dense or tied output layer."""
    if isinstance(output_layer, keras.layers.Dense):
        return ops.transpose(output_layer.kernel), output_layer.bias
    return output_layer.embedding.embeddings, output_layer.bias
