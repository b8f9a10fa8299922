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

    With ``num_sampled=K``, predictions of width ``1 + K`` are sampled softmax logits
    (:func:`seqtasks.sampled_softmax.sampled_logits`: the target is column 0) and the
    loss is the sampled softmax loss; full-width predictions (validation) are scored as
    above.

    Args:
        label_smoothing: float in ``[0, 1)`` (default 0.0); must be 0 with ``num_sampled``.
        num_sampled: int, the sampled classes of the model's training output (default 0).

    Call arguments:
        y_true: int ``(batch, length)`` target ids, 0 = padding.
        y_pred: float ``(batch, length, vocabulary_size)`` logits (or ``1 + num_sampled``).

    Returns:
        float32 scalar: the mean over real (non-padding) target tokens.

    Raises:
        ValueError: for label smoothing with ``num_sampled``.
    """

    def __init__(
        self,
        label_smoothing: float = 0.0,
        num_sampled: int = 0,
        name="masked_cross_entropy",
        **kwargs,
    ):
        super().__init__(name=name, **kwargs)
        if label_smoothing and num_sampled:
            raise ValueError(
                "label smoothing is not defined for sampled softmax; Received: "
                f"label_smoothing={label_smoothing}, num_sampled={num_sampled}"
            )
        self.label_smoothing = label_smoothing
        self.num_sampled = num_sampled

    def call(self, y_true, y_pred):
        y_true = ops.cast(y_true, "int32")
        log_probs = ops.log_softmax(ops.cast(y_pred, "float32"), axis=-1)
        classes = _sampled_classes(y_true, y_pred, self.num_sampled)
        nll = -ops.take_along_axis(log_probs, classes[..., None], axis=-1)[..., 0]
        if self.label_smoothing:
            smooth = -ops.mean(log_probs, axis=-1)
            nll = (1.0 - self.label_smoothing) * nll + self.label_smoothing * smooth
        mask = ops.cast(ops.not_equal(y_true, PAD_ID), "float32")
        return ops.sum(nll * mask) / ops.maximum(ops.sum(mask), 1.0)

    def get_config(self):
        return {
            **super().get_config(),
            "label_smoothing": self.label_smoothing,
            "num_sampled": self.num_sampled,
        }


def _sampled_classes(y_true, y_pred, num_sampled: int):
    """The class index of each target in ``y_pred``: the target id for full logits, 0 for
    sampled softmax logits (width ``1 + num_sampled``, told apart by the static width)."""
    if num_sampled and y_pred.shape[-1] == num_sampled + 1:
        return ops.zeros_like(y_true)
    return y_true


def masked_accuracy(y_true, y_pred):
    """Share of non-padding target tokens whose argmax prediction is right (teacher forcing)."""
    y_true = ops.cast(y_true, "int32")
    correct = ops.cast(ops.equal(ops.cast(ops.argmax(y_pred, axis=-1), "int32"), y_true), "float32")
    mask = ops.cast(ops.not_equal(y_true, PAD_ID), "float32")
    return ops.sum(correct * mask) / ops.maximum(ops.sum(mask), 1.0)


def token_accuracy(num_sampled: int = 0):
    """:func:`masked_accuracy`, or with ``num_sampled`` a metric of the same name that also
    reads sampled softmax logits (right when the target's column 0 is the argmax: the
    accuracy among the target and the sampled classes, higher than the full one)."""
    if not num_sampled:
        return masked_accuracy

    def masked_accuracy_sampled(y_true, y_pred):
        y_true = ops.cast(y_true, "int32")
        classes = _sampled_classes(y_true, y_pred, num_sampled)
        predicted = ops.cast(ops.argmax(y_pred, axis=-1), "int32")
        correct = ops.cast(ops.equal(predicted, classes), "float32")
        mask = ops.cast(ops.not_equal(y_true, PAD_ID), "float32")
        return ops.sum(correct * mask) / ops.maximum(ops.sum(mask), 1.0)

    masked_accuracy_sampled.__name__ = "masked_accuracy"
    return masked_accuracy_sampled


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
    config,
    warmup: bool,
    warmup_steps: int | None = None,
    slow_variables: list | None = None,
    slow_factor: float = 1.0,
) -> keras.optimizers.Optimizer:
    """Adam for a generation recipe's ``config`` (``learning_rate``, ``clipnorm``, ``warmup_steps``).

    ``warmup=True`` (Transformers): :class:`WarmupInverseSqrt` peaking at
    ``learning_rate`` after ``warmup_steps`` (default ``config.warmup_steps``) and
    Adam(0.9, 0.98, eps 1e-9) as in Vaswani et al. 2017, sec. 5.3; otherwise a
    constant ``learning_rate`` (the recipe may reduce it on plateaus). Gradients
    are clipped to ``clipnorm`` (0 = off). ``slow_variables`` (e.g. the fine-tuned
    blocks of a pretrained image encoder) learn at ``slow_factor`` times the rate
    (:class:`~seqtasks.fine_tuning_schedule.LayerwiseAdam`; default 1: one rate).
    """
    kwargs = {"clipnorm": config.clipnorm or None}
    if warmup:
        steps = config.warmup_steps if warmup_steps is None else warmup_steps
        kwargs.update(
            learning_rate=WarmupInverseSqrt(config.learning_rate, steps), beta_2=0.98, epsilon=1e-9
        )
    else:
        kwargs["learning_rate"] = config.learning_rate
    if slow_variables and slow_factor != 1.0:
        from seqtasks.fine_tuning_schedule import LayerwiseAdam

        groups = {variable.path: 0 for variable in slow_variables}
        # Two groups: the slow ones (0) learn at decay ** -1 = slow_factor times the rate.
        return LayerwiseAdam(groups, 2, layer_lr_decay=1.0 / slow_factor, **kwargs)
    return keras.optimizers.Adam(**kwargs)
