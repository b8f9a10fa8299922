"""Losses, metrics and learning-rate schedules for sequence generation (``keras.ops``).

Targets are int ``(batch, length)`` right-padded with ``[PAD]`` = 0; padded
positions count neither in the loss nor in the metrics.
"""

from __future__ import annotations

import math

import keras
from keras import ops

from seqtasks.tokens import PAD_ID

# A default warm-up longer than this share of a run's optimizer steps is shortened to it
# (Hugging Face's ``warmup_ratio``; BERT's fine-tuning used ``warmup_proportion=0.1``,
# Devlin et al. 2019). Without the cap a quick run (48 steps against the default 1,000
# warm-up steps) ends before its learning rate reaches a twentieth of its peak.
WARMUP_SHARE = 0.1


@keras.saving.register_keras_serializable(package="seqtasks")
class MaskedCrossEntropy(keras.losses.Loss):
    """Token-level cross-entropy over non-padding targets, with label smoothing.

    Label smoothing (Szegedy et al. 2016, sec. 7; used by Vaswani et al. 2017,
    sec. 5.4) puts ``label_smoothing / vocabulary_size`` of the target mass on
    every token and the rest on the true one.

    Args:
        label_smoothing: float in ``[0, 1)`` (default 0.0).

    Call arguments:
        y_true: int ``(batch, length)`` target ids, 0 = padding.
        y_pred: float ``(batch, length, vocabulary_size)`` logits.

    Returns:
        float32 scalar: the mean over real (non-padding) target tokens.
    """

    def __init__(self, label_smoothing: float = 0.0, name="masked_cross_entropy", **kwargs):
        super().__init__(name=name, **kwargs)
        self.label_smoothing = label_smoothing

    def call(self, y_true, y_pred):
        y_true = ops.cast(y_true, "int32")
        log_probs = ops.log_softmax(ops.cast(y_pred, "float32"), axis=-1)
        nll = -ops.take_along_axis(log_probs, y_true[..., None], axis=-1)[..., 0]
        if self.label_smoothing:
            smooth = -ops.mean(log_probs, axis=-1)
            nll = (1.0 - self.label_smoothing) * nll + self.label_smoothing * smooth
        mask = ops.cast(ops.not_equal(y_true, PAD_ID), "float32")
        return ops.sum(nll * mask) / ops.maximum(ops.sum(mask), 1.0)

    def get_config(self):
        return {**super().get_config(), "label_smoothing": self.label_smoothing}


def masked_accuracy(y_true, y_pred):
    """Share of non-padding target tokens whose argmax prediction is right (teacher forcing)."""
    y_true = ops.cast(y_true, "int32")
    correct = ops.cast(ops.equal(ops.cast(ops.argmax(y_pred, axis=-1), "int32"), y_true), "float32")
    mask = ops.cast(ops.not_equal(y_true, PAD_ID), "float32")
    return ops.sum(correct * mask) / ops.maximum(ops.sum(mask), 1.0)


@keras.saving.register_keras_serializable(package="seqtasks")
class WarmupInverseSqrt(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up, then decay with the inverse square root of the step.

    ``lr(step) = peak * min(step / warmup_steps, sqrt(warmup_steps / step))``:
    the schedule of Vaswani et al. 2017, sec. 5.3, with the peak given
    directly instead of through ``d_model ** -0.5``.

    Args:
        peak_learning_rate: float, the rate reached at ``warmup_steps``.
        warmup_steps: int, optimizer steps of linear warm-up (> 0).
    """

    def __init__(self, peak_learning_rate: float, warmup_steps: int):
        self.peak_learning_rate = peak_learning_rate
        self.warmup_steps = warmup_steps

    def __call__(self, step):
        step = ops.maximum(ops.cast(step, "float32") + 1.0, 1.0)
        warmup = float(self.warmup_steps)
        return self.peak_learning_rate * ops.minimum(step / warmup, ops.sqrt(warmup / step))

    def get_config(self):
        return {"peak_learning_rate": self.peak_learning_rate, "warmup_steps": self.warmup_steps}


def training_steps(train_examples: int, batch_size: int, epochs: int) -> int:
    """Optimizer steps of a run: ``ceil(train_examples / batch_size) * epochs`` (a lower
    bound when batches are bucketed by length, which adds a partial batch per bucket)."""
    return math.ceil(max(train_examples, 0) / batch_size) * epochs


def capped_warmup(warmup_steps: int, total_steps: int, share: float = WARMUP_SHARE) -> int:
    """``warmup_steps``, or ``share`` of ``total_steps`` (rounded, at least 1) if that is less.

    Args:
        warmup_steps: the configured warm-up (> 0).
        total_steps: the run's optimizer steps (:func:`training_steps`); 0 or less: unknown,
            ``warmup_steps`` is returned as it is.
        share: the largest share of the run spent warming up (default :data:`WARMUP_SHARE`).
    """
    if total_steps <= 0:
        return warmup_steps
    return min(warmup_steps, max(1, round(share * total_steps)))


def seq2seq_optimizer(
    config, warmup: bool, warmup_steps: int | None = None
) -> keras.optimizers.Optimizer:
    """Adam for a generation recipe's ``config`` (``learning_rate``, ``clipnorm``, ``warmup_steps``).

    ``warmup=True`` (Transformers): :class:`WarmupInverseSqrt` peaking at
    ``learning_rate`` after ``warmup_steps`` (default ``config.warmup_steps``) and
    Adam(0.9, 0.98, eps 1e-9) as in Vaswani et al. 2017, sec. 5.3; otherwise a
    constant ``learning_rate`` (the recipe may reduce it on plateaus). Gradients
    are clipped to ``clipnorm`` (0 = off).
    """
    if warmup:
        steps = config.warmup_steps if warmup_steps is None else warmup_steps
        return keras.optimizers.Adam(
            learning_rate=WarmupInverseSqrt(config.learning_rate, steps),
            beta_2=0.98,
            epsilon=1e-9,
            clipnorm=config.clipnorm or None,
        )
    return keras.optimizers.Adam(
        learning_rate=config.learning_rate, clipnorm=config.clipnorm or None
    )
