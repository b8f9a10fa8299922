"""seqtasks.classifier_training: batch targets and metadata (single- and multi-label), the
validation metrics against a hand computation, and fine-tuning plans from a saved tiny
(untrained) classifier."""

import logging
import os

import numpy as np
import pytest

from seqtasks.classifier_training import (
    classifier_batches,
    plan_classifier_finetune,
    validation_metrics,
)
from seqtasks.data.classification import TextClassificationData
from seqtasks.errors import DataError, ExportError
from seqtasks.models.classifier import build_text_classifier
from seqtasks.text import RESERVED_TOKENS, WordVectorizer, write_vocabulary

WORDS = ["a", "b", "c"]  # ids 4, 5, 6
TEXTS = ["a", "b", "a b", "c", "b c a", "a a", "c", "b"]
LABELS = ["neg", "pos", "neg", "pos", "pos", "neg", "pos", "neg"]


@pytest.fixture(autouse=True)
def seeded():
    """The driver's seeding: an earlier test in this worker may have left TensorFlow's
    global seed at 0, under which TensorFlow cannot seed the per-epoch shuffle from a
    tensor (seqtasks.training.environment.seed_everything avoids it the same way)."""
    from seqtasks.training.environment import seed_everything

    seed_everything(1)


@pytest.fixture
def vectorizer(tmp_path):
    path = write_vocabulary([*RESERVED_TOKENS, *WORDS], str(tmp_path / "vocabulary.txt"))
    return WordVectorizer(path, sequence_length=8)


def collect(dataset):
    """Every (first token id, target row) of a batched dataset, sorted by text."""
    rows = []
    for token_ids, targets in dataset:
        assert token_ids.dtype == "int32" and token_ids.shape[0] == targets.shape[0]
        rows += list(zip(token_ids.numpy().tolist(), targets.numpy().tolist()))
    return sorted(rows)


def test_single_label_batches_targets_and_metadata(vectorizer):
    data = TextClassificationData(TEXTS, LABELS, "reviews.tsv", skipped_bad_rows=2)
    train_idx, val_idx = np.arange(6), np.array([6, 7])
    prepared = classifier_batches(
        data, ["neg", "pos", "zzz"], vectorizer, train_idx, val_idx, batch_size=4, seed=1
    )
    for _, targets in prepared.validation:
        assert targets.dtype == "int32" and targets.shape.rank == 1
    validation = collect(prepared.validation)
    assert [(ids[0], target) for ids, target in validation] == [(5, 0), (6, 1)]  # b neg, c pos
    assert len(collect(prepared.train)) == 6
    assert prepared.info.labels == ["neg", "pos", "zzz"]
    assert prepared.info.multi_label is False and prepared.info.threshold == 0.5
    assert prepared.info.vectorizer is vectorizer
    assert prepared.metadata == {
        "labels": ["neg", "pos", "zzz"],
        "data": {
            "examples": 8,
            "train_examples": 6,
            "validation_examples": 2,
            "skipped_bad_rows": 2,
        },
        "vocabulary_size": 7,
    }
    with pytest.raises(KeyError):
        classifier_batches(data, ["neg"], vectorizer, train_idx, val_idx, batch_size=4, seed=1)


def test_multi_label_batches_are_multi_hot(vectorizer):
    label_sets = [("x",), ("y", "x"), ("z",), ("x", "y", "z")]
    data = TextClassificationData(TEXTS[:4], label_sets, "topics.csv", multi_label=True)
    prepared = classifier_batches(
        data,
        ["x", "y", "z"],
        vectorizer,
        np.arange(4),
        np.arange(4),
        batch_size=8,
        seed=0,
        threshold=0.3,
    )
    for _, targets in prepared.validation:
        assert targets.dtype == "float32" and targets.shape[1:] == (3,)
    rows = {ids[0]: target for ids, target in collect(prepared.validation)}
    # a -> x; b -> x, y; a b -> z (first id 4 again: collected last wins); c -> x, y, z
    assert rows[5] == [1.0, 1.0, 0.0] and rows[6] == [1.0, 1.0, 1.0]
    assert prepared.info.multi_label is True and prepared.info.threshold == 0.3
    assert prepared.metadata["data"]["labels_per_example"] == 1.75
    assert "skipped_bad_rows" not in prepared.metadata["data"]


class TableModel:
    """``predict_on_batch``: the probability row of each text's first token id."""

    def __init__(self, rows: dict[int, list[float]]):
        self.rows = rows

    def predict_on_batch(self, token_ids):
        return np.array([self.rows[int(i)] for i in np.asarray(token_ids)[:, 0]], np.float32)


def test_validation_metrics_match_a_hand_computation(vectorizer):
    texts, labels = ["a", "b", "c", "a b"], ["neg", "pos", "pos", "pos"]
    data = TextClassificationData(texts, labels, "x.tsv")
    prepared = classifier_batches(
        data, ["neg", "pos"], vectorizer, np.arange(4), np.arange(4), batch_size=2, seed=0
    )
    # a (twice, first token): neg 0.8; b: pos 0.7; c: neg 0.6 (wrong)
    model = TableModel({4: [0.8, 0.2], 5: [0.3, 0.7], 6: [0.6, 0.4]})
    metrics = validation_metrics(model, prepared)
    # true-class probabilities: a neg 0.8, b pos 0.7, c pos 0.4, "a b" pos 0.2
    expected_loss = -np.mean(np.log([0.8, 0.7, 0.4, 0.2]))
    assert metrics["val_loss"] == pytest.approx(expected_loss, rel=1e-5)
    assert metrics["val_accuracy"] == pytest.approx(0.5)
    assert metrics["val_confusion_matrix"] == [[1, 0], [2, 1]]
    # F1: neg p=1/3 r=1 -> 0.5; pos p=1 r=1/3 -> 0.5
    assert metrics["val_macro_f1"] == pytest.approx(0.5)


def test_multi_label_validation_metrics_match_a_hand_computation(vectorizer):
    data = TextClassificationData(["a", "b"], [("x",), ("x", "y")], "t.csv", multi_label=True)
    prepared = classifier_batches(
        data,
        ["x", "y"],
        vectorizer,
        np.arange(2),
        np.arange(2),
        batch_size=2,
        seed=0,
        threshold=0.6,
    )
    model = TableModel({4: [0.9, 0.2], 5: [0.7, 0.5]})  # b: y 0.5 < 0.6, missed
    metrics = validation_metrics(model, prepared)
    p, y = np.array([[0.9, 0.2], [0.7, 0.5]]), np.array([[1, 0], [1, 1]])
    expected_loss = -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))
    assert set(metrics) == {"val_loss", "val_subset_accuracy", "val_micro_f1", "val_macro_f1"}
    assert metrics["val_loss"] == pytest.approx(expected_loss, rel=1e-5)
    assert metrics["val_subset_accuracy"] == pytest.approx(0.5)
    assert metrics["val_micro_f1"] == pytest.approx(0.8)  # tp 2, predicted 2, actual 3
    assert metrics["val_macro_f1"] == pytest.approx(0.5)  # x: 1, y: 0


@pytest.fixture
def export_files(tmp_path):
    """A version folder with just what fine-tuning reads: model.keras and the vocabulary."""
    version = tmp_path / "export" / "1"
    os.makedirs(version / "assets.extra")
    os.makedirs(version / "assets")
    write_vocabulary([*RESERVED_TOKENS, *WORDS], str(version / "assets" / "vocabulary.txt"))
    model = build_text_classifier(
        num_classes=2,
        vocabulary_size=7,
        sequence_length=8,
        kind="gru",
        dropout=0.0,
        embedding_dim=4,
        hidden_dim=2,
    )
    model.save(version / "assets.extra" / "model.keras")
    return str(version)


def batches_of(data):
    def batches(labels, vectorizer):
        n = len(data)
        return classifier_batches(
            data, labels, vectorizer, np.arange(n), np.arange(n), batch_size=4, seed=0
        )

    return batches


def test_finetune_plan_checks_labels_and_files(tmp_path, export_files):
    data = TextClassificationData(["a", "b"], ["pos", "meh"], "new.tsv")
    metadata = {"labels": ["neg", "pos"]}
    with pytest.raises(DataError) as error:
        plan_classifier_finetune(
            data, export_files, metadata, batches_of(data), where="new.tsv", sequence_length=8
        )
    assert str(error.value) == (
        "new.tsv: label 'meh' not known to the model (neg, pos); pass --new-head to train "
        "a fresh classification head for the new labels"
    )
    os.remove(os.path.join(export_files, "assets", "vocabulary.txt"))
    with pytest.raises(ExportError, match="cannot fine-tune: the export lacks .*vocabulary.txt"):
        plan_classifier_finetune(
            data,
            export_files,
            metadata,
            batches_of(data),
            where="new.tsv",
            sequence_length=8,
            new_head=True,
        )


def test_finetune_plan_new_head_oov_and_prepare(tmp_path, export_files, caplog):
    # 2 of 6 tokens ("zz", "q") are out of vocabulary: a third, above oov_warning=0.3
    label_sets = [("x",), ("y", "z"), ("z",)]
    data = TextClassificationData(["a zz", "b q", "c a"], label_sets, "t.csv", multi_label=True)
    with caplog.at_level(logging.INFO, logger="tasks.sentiment"):
        plan = plan_classifier_finetune(
            data,
            export_files,
            {"labels": ["neg", "pos"]},
            batches_of(data),
            where="t.csv",
            sequence_length=8,
            multi_label=True,
            new_head=True,
            freeze="encoder",
            oov_warning=0.3,
        )
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [
        "33.3% of the new data's tokens (2 of 6) are not in the model's vocabulary (above 30%: "
        "the model sees many [UNK]s; consider training from scratch with `train`)"
    ]
    head = plan.model.get_layer("probabilities")
    assert head.units == 3 and head.activation.__name__ == "sigmoid"
    assert plan.model.get_layer("embedding").trainable is False and head.trainable
    facts = plan.metadata
    assert facts["finetuned_from"] == os.path.abspath(export_files)
    assert facts["source_labels"] == ["neg", "pos"] and facts["new_head"] is True
    assert facts["freeze"] == "encoder" and "embedding" in facts["frozen_layers"]
    assert facts["out_of_vocabulary"] == {"share": 0.3333, "tokens": 2, "total": 6, "distinct": 2}

    run_dir = tmp_path / "run"
    os.makedirs(run_dir)
    prepared = plan.prepare(str(run_dir))
    assert (run_dir / "vocabulary.txt").read_text() == (
        open(os.path.join(export_files, "assets", "vocabulary.txt")).read()
    )
    assert prepared.info.labels == ["x", "y", "z"]
    assert prepared.metadata["finetune"] is facts
    assert prepared.metadata["finetuned_from"] == facts["finetuned_from"]


def test_finetune_plan_same_labels_keeps_the_head_quietly(export_files, caplog):
    data = TextClassificationData(["a b", "c"], ["pos", "pos"], "x.tsv")
    with caplog.at_level(logging.INFO, logger="tasks.sentiment"):
        plan = plan_classifier_finetune(
            data,
            export_files,
            {"labels": ["neg", "pos"]},
            batches_of(data),
            where="x.tsv",
            sequence_length=8,
        )
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert any("0.0% of the new data's tokens (0 of 3)" in m for m in caplog.messages)
    head = plan.model.get_layer("probabilities")
    assert head.units == 2 and head.activation.__name__ == "softmax"
    assert plan.metadata["frozen_layers"] == [] and plan.metadata["new_head"] is False
