"""Signs that a model is undertrained, as one warning line (pure functions, no TensorFlow).

A quick run (a few thousand examples, one epoch) can end with a model that answers
every input the same way: one class for every review, an empty or one-word output for
most sentences, BLEU near 0. The numbers alone do not say why; these checks do.
Each check takes predictions or a metric and returns a short reason, or None when
nothing looks wrong; :func:`undertrained_warning` joins the reasons into the single
line the recipes log (``logging.getLogger(...).warning``) after validation in
``train`` and after ``evaluate``:

    the model looks undertrained: it predicts 'pos' for all 872 examples; train on
    more examples (--max-examples, more data) or for more epochs (--epochs)

Thresholds: one class for every one of at least :data:`MIN_EXAMPLES` examples (when
the data has more than one class); empty outputs for more than :data:`EMPTY_SHARE` of
the inputs; corpus BLEU below :data:`LOW_BLEU` (sacreBLEU's 0-100 scale: a score
below 1 means next to no 4-gram overlaps).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence

MIN_EXAMPLES = 10  # fewer predictions are too few to call "one class for every example"
EMPTY_SHARE = 0.5  # "most inputs": more than half
LOW_BLEU = 1.0
ADVICE = "train on more examples (--max-examples, more data) or for more epochs (--epochs)"


def one_class(predictions: Sequence, labels: Iterable | None = None) -> str | None:
    """``"it predicts 'pos' for all 872 examples"`` when every prediction is the same class.

    Args:
        predictions: one predicted label per example (strings, ids, or tuples of labels
            for a multi-label model).
        labels: the labels the data holds (true labels); when given and they are all one
            class, predicting it everywhere is right and nothing is reported.

    Returns:
        The reason, or None (fewer than :data:`MIN_EXAMPLES` predictions, more than one
        class predicted, or a one-class dataset).
    """
    if len(predictions) < MIN_EXAMPLES or len(set(map(_hashable, predictions))) != 1:
        return None
    if labels is not None and len(set(map(_hashable, labels))) < 2:
        return None
    only = predictions[0]
    shown = (", ".join(map(str, only)) or "no label") if isinstance(only, tuple | list) else only
    return f"it predicts {str(shown)!r} for all {len(predictions)} examples"


def empty_outputs(texts: Sequence[str], inputs: Sequence | None = None) -> str | None:
    """``"37 of 50 outputs are empty"`` when more than :data:`EMPTY_SHARE` of the outputs
    are empty or whitespace; inputs that are empty themselves (``inputs`` given, strings)
    are not counted."""
    pairs = list(zip(texts, inputs)) if inputs is not None else [(t, "x") for t in texts]
    pairs = [(t, i) for t, i in pairs if not (isinstance(i, str) and not i.strip())]
    if not pairs:
        return None
    empty = sum(1 for text, _ in pairs if not text.strip())
    if empty / len(pairs) <= EMPTY_SHARE:
        return None
    return f"{empty} of {len(pairs)} outputs are empty"


def low_bleu(bleu: float | None, name: str = "BLEU") -> str | None:
    """``"BLEU 0.42 is below 1"`` for a corpus score (0-100) under :data:`LOW_BLEU`."""
    if bleu is None or bleu >= LOW_BLEU:
        return None
    return f"{name} {bleu:.2f} is below {LOW_BLEU:g}"


def undertrained_warning(*reasons: str | None) -> str | None:
    """One line from the reasons that are not None (None when there are none)."""
    found = [reason for reason in reasons if reason]
    if not found:
        return None
    return f"the model looks undertrained: {'; '.join(found)}; {ADVICE}"


def warn_if_undertrained(logger: logging.Logger, *reasons: str | None) -> str | None:
    """Log :func:`undertrained_warning` of ``reasons`` on ``logger`` (warning) if there is
    one; return the line (or None)."""
    line = undertrained_warning(*reasons)
    if line:
        logger.warning("%s", line)
    return line


def _hashable(value):
    return tuple(value) if isinstance(value, list) else value
