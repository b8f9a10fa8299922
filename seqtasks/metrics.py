"""Evaluation metrics: single- and multi-label classification (NumPy), generation (sacreBLEU)."""

from __future__ import annotations

import numpy as np


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    """Counts ``m[i, j]`` of examples with true class ``i`` predicted as ``j``.

    Args:
        y_true: int ``(n,)`` true class ids in ``[0, num_classes)``.
        y_pred: int ``(n,)`` predicted class ids.
        num_classes: number of classes.

    Returns:
        int64 ``(num_classes, num_classes)``.
    """
    m = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(m, (np.asarray(y_true, np.int64), np.asarray(y_pred, np.int64)), 1)
    return m


def classification_report(
    y_true: np.ndarray, y_pred: np.ndarray, labels: list[str]
) -> dict[str, object]:
    """Accuracy, macro-F1, per-class precision/recall/F1 and the confusion matrix.

    Precision, recall or F1 of a class with no predicted (or no true)
    examples is 0, as in scikit-learn's ``zero_division=0``. Macro-F1 is the
    unweighted mean of the per-class F1 over all ``labels``.

    Returns:
        ``{"examples", "accuracy", "macro_f1", "per_class": {label: {...}},
        "confusion_matrix": [[...]], "labels": [...]}`` with plain Python types.
    """
    m = confusion_matrix(y_true, y_pred, len(labels))
    tp = np.diag(m).astype(np.float64)
    predicted, actual = m.sum(axis=0), m.sum(axis=1)
    precision, recall, f1 = precision_recall_f1(tp, predicted, actual)
    n = int(m.sum())
    return {
        "examples": n,
        "accuracy": float(tp.sum() / n) if n else 0.0,
        "macro_f1": float(f1.mean()),
        "per_class": _per_class(labels, precision, recall, f1, actual),
        "labels": list(labels),
        "confusion_matrix": m.tolist(),
    }


def _per_class(labels, precision, recall, f1, actual, predicted=None) -> dict:
    """``{label: {"precision", "recall", "f1", "support"[, "predicted"]}}`` as Python types."""
    rows = {}
    for i, label in enumerate(labels):
        row = {
            "precision": float(precision[i]),
            "recall": float(recall[i]),
            "f1": float(f1[i]),
            "support": int(actual[i]),
        }
        if predicted is not None:
            row["predicted"] = int(predicted[i])
        rows[label] = row
    return rows


def precision_recall_f1(
    tp: np.ndarray, predicted: np.ndarray, actual: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Precision ``tp/predicted``, recall ``tp/actual`` and their harmonic mean, F1.

    Args:
        tp, predicted, actual: counts of true positives, predicted positives
            and actual positives, any (same) shape.

    Returns:
        float64 arrays of that shape; a ratio with a zero denominator is 0
        (scikit-learn's ``zero_division=0``).
    """
    tp = np.asarray(tp, np.float64)
    predicted, actual = np.asarray(predicted, np.float64), np.asarray(actual, np.float64)
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    recall = np.divide(tp, actual, out=np.zeros_like(tp), where=actual > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(tp), where=denom > 0)
    return precision, recall, f1


def multilabel_report(
    y_true: np.ndarray, y_pred: np.ndarray, labels: list[str]
) -> dict[str, object]:
    """Subset accuracy, micro and macro precision/recall/F1 and per-label scores.

    Args:
        y_true: bool or 0/1 ``(n, num_labels)``: the true label sets.
        y_pred: bool or 0/1 ``(n, num_labels)``: the predicted label sets
            (e.g. probability >= threshold).
        labels: the ``num_labels`` label names, in column order.

    Micro scores count true positives, predicted and actual positives over
    all labels together; macro scores are the unweighted means of the
    per-label scores (Tsoumakas & Katakis 2007; a ratio with a zero
    denominator is 0, scikit-learn's ``zero_division=0``). Subset accuracy is
    the share of texts whose predicted set equals the true set exactly;
    Hamming loss the share of wrong (text, label) decisions.

    Returns:
        ``{"examples", "subset_accuracy", "hamming_loss", "micro_precision",
        "micro_recall", "micro_f1", "macro_precision", "macro_recall",
        "macro_f1", "per_class": {label: {"precision", "recall", "f1",
        "support", "predicted"}}, "labels"}`` with plain Python types.
    """
    y_true, y_pred = np.asarray(y_true, bool), np.asarray(y_pred, bool)
    tp = (y_true & y_pred).sum(axis=0)  # (L,)
    predicted, actual = y_pred.sum(axis=0), y_true.sum(axis=0)
    precision, recall, f1 = precision_recall_f1(tp, predicted, actual)
    micro = precision_recall_f1(tp.sum(), predicted.sum(), actual.sum())
    n = len(y_true)
    return {
        "examples": n,
        "subset_accuracy": float((y_true == y_pred).all(axis=1).mean()) if n else 0.0,
        "hamming_loss": float((y_true != y_pred).mean()) if n else 0.0,
        "micro_precision": float(micro[0]),
        "micro_recall": float(micro[1]),
        "micro_f1": float(micro[2]),
        "macro_precision": float(precision.mean()),
        "macro_recall": float(recall.mean()),
        "macro_f1": float(f1.mean()),
        "per_class": _per_class(labels, precision, recall, f1, actual, predicted),
        "labels": list(labels),
    }


def format_multilabel_report(report: dict[str, object]) -> str:
    """A human-readable table of :func:`multilabel_report`'s output."""
    labels = report["labels"]
    width = max(8, *(len(str(label)) for label in labels))
    lines = [f"examples         {report['examples']}"]
    if "threshold" in report:
        lines.append(f"threshold        {report['threshold']}")
    lines += [
        f"subset accuracy  {report['subset_accuracy']:.4f}",
        f"hamming loss     {report['hamming_loss']:.4f}",
        "",
        f"{'average':<{width}}  precision  recall  f1",
    ]
    for average in ("micro", "macro"):
        lines.append(
            f"{average:<{width}}  {report[f'{average}_precision']:.4f}     "
            f"{report[f'{average}_recall']:.4f}  {report[f'{average}_f1']:.4f}"
        )
    lines += ["", f"{'label':<{width}}  precision  recall  f1      support  predicted"]
    for label, row in report["per_class"].items():
        lines.append(
            f"{label:<{width}}  {row['precision']:.4f}     {row['recall']:.4f}  "
            f"{row['f1']:.4f}  {row['support']:<7}  {row['predicted']}"
        )
    return "\n".join(lines)


def format_report(report: dict[str, object]) -> str:
    """A human-readable table of :func:`classification_report`'s output."""
    labels = report["labels"]
    width = max(8, *(len(str(label)) for label in labels))
    lines = [
        f"examples  {report['examples']}",
        f"accuracy  {report['accuracy']:.4f}",
        f"macro-F1  {report['macro_f1']:.4f}",
        "",
        f"{'label':<{width}}  precision  recall  f1      support",
    ]
    for label, row in report["per_class"].items():
        lines.append(
            f"{label:<{width}}  {row['precision']:.4f}     {row['recall']:.4f}  "
            f"{row['f1']:.4f}  {row['support']}"
        )
    lines += ["", "confusion matrix (rows: true, columns: predicted)"]
    lines.append(" " * width + "  " + "  ".join(f"{str(label):>8}" for label in labels))
    for label, row in zip(labels, report["confusion_matrix"]):
        lines.append(f"{label:<{width}}  " + "  ".join(f"{v:>8}" for v in row))
    return "\n".join(lines)


def bleu_chrf(hypotheses: list[str], references: list[str] | list[list[str]]) -> dict:
    """Corpus BLEU (Papineni et al. 2002) and chrF (Popović 2015) with sacreBLEU (Post 2018).

    Scores are computed on detokenized text with sacreBLEU's defaults (13a
    tokenization, cased), so they are comparable with published sacreBLEU
    figures; the signatures say exactly how.

    Args:
        hypotheses: system outputs, one string per segment.
        references: one reference string per segment, or several reference
            streams (a list of lists, each as long as ``hypotheses``).

    Returns:
        ``{"bleu", "chrf"}`` (0-100 floats), ``"bleu_signature"``,
        ``"chrf_signature"`` and ``"segments"``.
    """
    import sacrebleu

    streams = references if references and isinstance(references[0], list) else [references]
    bleu = sacrebleu.metrics.BLEU()
    chrf = sacrebleu.metrics.CHRF()
    return {
        "bleu": round(bleu.corpus_score(hypotheses, streams).score, 2),
        "chrf": round(chrf.corpus_score(hypotheses, streams).score, 2),
        "bleu_signature": str(bleu.get_signature()),
        "chrf_signature": str(chrf.get_signature()),
        "segments": len(hypotheses),
    }


def teacher_forced_metrics(model, dataset) -> dict:
    """Per-token negative log-likelihood and accuracy of a decoder under teacher forcing.

    Args:
        model: called with each batch's inputs, returns logits ``(B, T, V)``.
        dataset: batches ``(inputs, targets int (B, T))``, 0 = padding (ignored).

    Returns:
        ``{"nll": mean nats per target token (no label smoothing), "perplexity":
        exp(nll), "token_accuracy": share of argmax hits, "tokens": count}``.
    """
    import tensorflow as tf

    nll, correct, tokens = 0.0, 0.0, 0.0
    for inputs, targets in dataset:
        log_probs = tf.nn.log_softmax(tf.cast(model.predict_on_batch(inputs), tf.float32)).numpy()
        y = np.asarray(targets)
        mask = y != 0
        picked = np.take_along_axis(log_probs, y[..., None], axis=-1)[..., 0]
        nll -= float(picked[mask].sum())
        correct += float((log_probs.argmax(-1) == y)[mask].sum())
        tokens += float(mask.sum())
    mean = nll / max(tokens, 1.0)
    return {
        "nll": mean,
        "perplexity": float(np.exp(mean)),
        "token_accuracy": correct / max(tokens, 1.0),
        "tokens": int(tokens),
    }
