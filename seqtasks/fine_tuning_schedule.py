"""ULMFiT's fine-tuning schedule for classifiers (Howard & Ruder 2018, "Universal Language
Model Fine-tuning for Text Classification", sec. 3.2-3.3): discriminative fine-tuning (a
learning rate per layer group, lower for lower layers), slanted triangular learning rates
and gradual unfreezing (one more layer group trains each epoch, from the head down).

All three live in the optimizer (:class:`LayerwiseAdam`) and its schedule
(:class:`SlantedTriangular`), driven by the optimizer's step counter: nothing is
recompiled between epochs, and a resumed run (whose optimizer state is restored) continues
the schedule where it stopped. A frozen group gets a zero learning rate: its weights do not
move, though its gradients are still computed.
"""

from __future__ import annotations

import keras
from keras import ops

from seqtasks.choices import LR_SCHEDULES  # noqa: F401 (re-exported)
from seqtasks.models.classifier import HEAD_LAYERS


@keras.saving.register_keras_serializable(package="seqtasks")
class SlantedTriangular(keras.optimizers.schedules.LearningRateSchedule):
    """Slanted triangular learning rate (Howard & Ruder 2018, sec. 3.2, eq. 3).

    The rate rises linearly from ``max_learning_rate / ratio`` to ``max_learning_rate``
    over the first ``cut_frac`` of ``total_steps``, then falls linearly back to
    ``max_learning_rate / ratio`` at ``total_steps``, and stays there.

    Args:
        max_learning_rate: float, the peak (ULMFiT: 0.01 with SGD-like Adam settings).
        total_steps: int, optimizer steps of the whole run (``T``).
        cut_frac: float in (0, 1), share of the steps spent rising (default 0.1).
        ratio: float >= 1, how much smaller the lowest rate is than the peak (default 32).

    Call: the step (int or scalar tensor) -> float32 scalar.
    """

    def __init__(self, max_learning_rate, total_steps, cut_frac=0.1, ratio=32.0):
        self.max_learning_rate = float(max_learning_rate)
        self.total_steps = max(int(total_steps), 1)
        self.cut_frac = float(cut_frac)
        self.ratio = float(ratio)

    def __call__(self, step):
        t = ops.cast(step, "float32")
        cut = max(self.total_steps * self.cut_frac, 1.0)
        rising = t / cut
        falling = 1.0 - (t - cut) / max(cut * (1.0 / self.cut_frac - 1.0), 1.0)
        p = ops.clip(ops.where(t < cut, rising, falling), 0.0, 1.0)
        return self.max_learning_rate * (1.0 + p * (self.ratio - 1.0)) / self.ratio

    def get_config(self):
        return {
            "max_learning_rate": self.max_learning_rate,
            "total_steps": self.total_steps,
            "cut_frac": self.cut_frac,
            "ratio": self.ratio,
        }


def layer_groups(model: keras.Model) -> list[list[str]]:
    """The layer groups of a text classifier, bottom first: the ``embedding`` layer, each
    layer of the encoder that holds weights (a recurrent layer, a ``Bidirectional`` pair, a
    Transformer block) in order, then the head (``probabilities`` and any weighted layer of
    :data:`~seqtasks.models.classifier.HEAD_LAYERS`).

    Returns:
        Layer names per group; ULMFiT's "layers" for discriminative rates and unfreezing.
    """
    bottom, encoder, head = [], [], []
    for layer in model.layers:
        if not layer.weights:
            continue
        if layer.name == "embedding":
            bottom.append(layer.name)
        elif layer.name in HEAD_LAYERS:
            head.append(layer.name)
        else:
            encoder.append([layer.name])
    return [g for g in (bottom, *encoder, head) if g]


@keras.saving.register_keras_serializable(package="seqtasks")
class LayerwiseAdam(keras.optimizers.Adam):
    """Adam with a learning-rate factor per layer group, and gradual unfreezing.

    The group ``g`` of ``G`` (0 = bottom, ``G - 1`` = head) learns at ``learning_rate *
    layer_lr_decay ** -(G - 1 - g)`` (discriminative fine-tuning, ULMFiT sec. 3.2: 2.6),
    from optimizer step ``(G - 1 - g) * unfreeze_steps`` on when ``unfreeze_steps`` > 0
    (gradual unfreezing, sec. 3.3: the head alone the first epoch, one more group each
    epoch), and at zero before.

    Args:
        groups: ``{variable path: group}`` (:func:`variable_groups`); a variable not in it
            is in the top group.
        num_groups: ``G``.
        layer_lr_decay: float >= 1 (default 1: one rate for all).
        unfreeze_steps: int, optimizer steps per unfreezing stage; 0 (default) trains every
            group from the start.
        **kwargs: ``keras.optimizers.Adam`` arguments (``learning_rate``, ``clipnorm``).
    """

    def __init__(
        self, groups=None, num_groups=1, layer_lr_decay=1.0, unfreeze_steps=0, **kwargs
    ):
        super().__init__(**kwargs)
        self.groups = dict(groups or {})
        self.num_groups = int(num_groups)
        self.layer_lr_decay = float(layer_lr_decay)
        self.unfreeze_steps = int(unfreeze_steps)

    def build(self, variables):
        super().build(variables)
        top = self.num_groups - 1
        # By position: inside the update the backend may hand over its own variable type.
        self._variable_group = [self.groups.get(v.path, top) for v in variables]

    def _group_factor(self, variable):
        group = self._variable_group[self._get_variable_index(variable)]
        depth = self.num_groups - 1 - group
        factor = self.layer_lr_decay ** (-depth)
        if self.unfreeze_steps and depth:
            started = ops.greater_equal(self.iterations, depth * self.unfreeze_steps)
            return ops.where(started, factor, 0.0)
        return factor

    def update_step(self, gradient, variable, learning_rate):
        factor = ops.cast(self._group_factor(variable), learning_rate.dtype)
        super().update_step(gradient, variable, learning_rate * factor)

    def get_config(self):
        return {
            **super().get_config(),
            "groups": self.groups,
            "num_groups": self.num_groups,
            "layer_lr_decay": self.layer_lr_decay,
            "unfreeze_steps": self.unfreeze_steps,
        }


def variable_groups(model: keras.Model) -> tuple[dict[str, int], int]:
    """``({variable path: group}, number of groups)`` of :func:`layer_groups`."""
    groups = layer_groups(model)
    paths = {}
    for index, names in enumerate(groups):
        for name in names:
            for variable in model.get_layer(name).weights:
                paths[variable.path] = index
    return paths, len(groups)
