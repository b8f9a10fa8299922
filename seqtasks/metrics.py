"""Evaluation metrics: classification (NumPy) and generation (sacreBLEU BLEU and chrF)."""

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
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    recall = np.divide(tp, actual, out=np.zeros_like(tp), where=actual > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(tp), where=denom > 0)
    n = int(m.sum())
    return {
        "examples": n,
        "accuracy": float(tp.sum() / n) if n else 0.0,
        "macro_f1": float(f1.mean()),
        "per_class": {
            label: {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(actual[i]),
            }
            for i, label in enumerate(labels)
        },
        "labels": list(labels),
        "confusion_matrix": m.tolist(),
    }


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
