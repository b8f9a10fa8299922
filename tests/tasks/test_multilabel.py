"""Multi-label classification (`train --multi-label`) and multi-class labels.

Parsing of CSV ``a|b`` fields, JSONL lists and Parquet list columns; rows without labels;
the metrics against a hand computation; and a tiny model trained on 200 real SST-2
sentences whose labels are their sentiment (``pos``/``neg``) plus ``long`` when the
sentence has more than 10 words, exported, served, evaluated and fine-tuned. Multi-class:
five string classes and integer star labels 1..5 derived from real SST-2 rows.
"""

import csv
import json
import logging
import os
import shutil

import keras
import numpy as np
import pytest
import tensorflow as tf
from click.testing import CliRunner

from cli import cli
from conftest import SST2_TRAIN, TINY, write_file
from seqtasks.data.classification import load_text_classification, split_labels
from seqtasks.errors import ConfigError, DataError
from seqtasks.export import read_metadata, versions
from seqtasks.metrics import multilabel_report
from seqtasks.models.classifier import build_text_classifier, replace_head

# A GRU trains fastest on 2 cores; the output layer and data path are the same for every model.
TINY_SETS = ["--model", "gru"] + [
    arg for key, value in TINY.items() for arg in ("--set", f"{key}={value}")
]
TINY_MODEL = {"embedding_dim": 8, "hidden_dim": 4, "dropout": 0.0}


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def sst2_rows(n: int, skip: int = 0) -> list[tuple[str, str]]:
    """``(sentence, label)`` of real SST-2 training rows ``skip+1 .. skip+n``."""
    with open(SST2_TRAIN, encoding="utf-8") as f:
        lines = f.read().splitlines()[1 + skip : 1 + skip + n]
    return [tuple(line.split("\t")) for line in lines]


def sentiment_and_length(sentence: str, label: str) -> list[str]:
    """The synthetic label set: ``pos``/``neg`` from SST-2, plus ``long`` for > 10 words."""
    return ["pos" if label == "1" else "neg"] + (["long"] if len(sentence.split()) > 10 else [])


def write_csv(path, header, rows) -> str:
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return str(path)


# --- data ----------------------------------------------------------------------------------


def test_csv_labels_are_split_stripped_and_deduplicated(tmp_path):
    path = write_csv(
        tmp_path / "a.csv",
        ["text", "labels"],
        [["first", "a|b"], ["second", " b | a |b||"], ["third", "c"], ["fourth", "2|10"]],
    )
    data = load_text_classification(path, multi_label=True)
    assert data.multi_label and data.texts == ["first", "second", "third", "fourth"]
    assert data.labels == [("a", "b"), ("b", "a"), ("c",), ("2", "10")]
    assert data.label_set() == ["10", "2", "a", "b", "c"]
    # Another separator; without --multi-label the field is one label, separator and all.
    path = write_csv(tmp_path / "b.csv", ["text", "labels"], [["x", "a, b"], ["y", "c"]])
    assert load_text_classification(path, multi_label=True, label_separator=",").labels == [
        ("a", "b"),
        ("c",),
    ]
    assert load_text_classification(path).labels == ["a, b", "c"]
    assert split_labels([3, "x", 3]) == ("3", "x") and split_labels(7) == ("7",)


def test_jsonl_lists_of_strings_and_integers(tmp_path):
    lines = [
        {"text": "one", "label": ["sports", "politics", "sports"]},
        {"text": "two", "label": [1, 5]},
        {"text": "three", "label": "a|b"},
        {"text": "four", "label": 3},
        {"text": "five", "label": [" x ", ""]},
    ]
    path = write_file(tmp_path / "d.jsonl", "".join(json.dumps(x) + "\n" for x in lines))
    data = load_text_classification(path, multi_label=True)
    assert data.labels == [("sports", "politics"), ("1", "5"), ("a", "b"), ("3",), ("x",)]
    with pytest.raises(DataError) as e:  # one label per text without multi_label
        load_text_classification(path)
    assert str(e.value) == f"{path}:1: field 'label': expected one label; received: " + repr(
        ["sports", "politics", "sports"]
    )


def test_parquet_list_column_and_string_column(tmp_path):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    rows = sst2_rows(4)
    texts = [t for t, _ in rows]
    listed = str(tmp_path / "list.parquet")
    pq.write_table(
        pa.table({"text": texts, "topics": [["a", "b"], ["b"], ["c", "a"], ["a"]]}), listed
    )
    data = load_text_classification(listed, label_column="topics", multi_label=True)
    assert data.texts == texts and data.labels == [("a", "b"), ("b",), ("c", "a"), ("a",)]
    joined = str(tmp_path / "joined.parquet")
    pq.write_table(pa.table({"text": texts, "labels": ["a|b", "b", "c|a", "a"]}), joined)
    assert load_text_classification(joined, multi_label=True).labels == data.labels
    # An empty list and a null are bad rows, at Parquet row numbers.
    bad = str(tmp_path / "bad.parquet")
    pq.write_table(pa.table({"text": texts, "labels": [["a"], [], None, ["b"]]}), bad)
    with pytest.raises(DataError) as e:
        load_text_classification(bad, multi_label=True)
    assert str(e.value) == (
        f"{bad}:row 2: field 'labels' has no labels (expected labels separated by '|'); "
        "received: []"
    )
    skipped = load_text_classification(bad, multi_label=True, on_bad_rows="skip")
    assert skipped.labels == [("a",), ("b",)] and skipped.skipped_bad_rows == 2


def test_row_without_labels_is_a_bad_row(tmp_path, caplog):
    rows = [[t, "|".join(sentiment_and_length(t, y))] for t, y in sst2_rows(6)]
    rows[1][1] = " | "  # line 3: no label left after splitting
    rows[3][1] = ""  # line 5: empty
    path = write_csv(tmp_path / "r.csv", ["sentence", "labels"], rows)
    with pytest.raises(DataError) as e:
        load_text_classification(path, multi_label=True)
    assert str(e.value) == (
        f"{path}:3: field 'labels' has no labels (expected labels separated by '|'); "
        "received: ' | '"
    )
    with caplog.at_level(logging.WARNING):
        data = load_text_classification(path, multi_label=True, on_bad_rows="skip")
    assert len(data) == 4 and data.skipped_bad_rows == 2
    assert f"skipped 2 bad rows of {path} (lines 3, 5): no labels" in caplog.text
    jsonl = write_file(
        tmp_path / "r.jsonl", '{"text": "a", "label": ["x"]}\n{"text": "b", "label": {"x": 1}}\n'
    )
    with pytest.raises(DataError) as e:
        load_text_classification(jsonl, multi_label=True)
    assert str(e.value) == (
        f"{jsonl}:2: field 'label': expected labels separated by '|' or a list of strings or "
        "integers; received: {'x': 1}"
    )


def test_label_folders_cannot_be_multi_label(tmp_path):
    for label in ("neg", "pos"):
        os.makedirs(tmp_path / "imdb" / label)
        write_file(tmp_path / "imdb" / label / "0.txt", "x")
    folder = str(tmp_path / "imdb")
    with pytest.raises(ConfigError) as e:
        load_text_classification(folder, multi_label=True)
    assert str(e.value) == (
        f"config field 'multi_label': {folder}: a folder of label folders holds one label per "
        "text; multi-label data must be a CSV, TSV, JSONL or Parquet file with labels "
        "separated by '|' (or a list)"
    )
    result = run(
        "train", "sentiment", "--data", folder, "--multi-label", "--run-dir", tmp_path / "r"
    )
    assert result.exit_code == 2 and result.stderr == f"error: {e.value}\n"
    result = run("train", "sentiment", "--data", "x.csv", "--multi-label", "--label-separator", "")
    assert result.exit_code == 2
    assert result.stderr == (
        "error: config field 'label_separator': expected a non-empty string; received: ''\n"
    )
    assert not os.path.exists(tmp_path / "r")


# --- metrics and model -----------------------------------------------------------------------


def test_multilabel_report_against_hand_computation():
    labels = ["a", "b", "c", "d"]
    y_true = np.array([[1, 0, 1, 0], [0, 1, 0, 0], [1, 1, 0, 0], [0, 0, 1, 0]])
    y_pred = np.array([[1, 0, 0, 0], [0, 1, 1, 0], [1, 1, 0, 0], [0, 0, 0, 0]])
    report = multilabel_report(y_true, y_pred, labels)
    # By hand: a and b are predicted exactly (TP 2 each); c: TP 0, 1 predicted, 2 true;
    # d: never true nor predicted (P = R = F1 = 0). Micro: TP 4, predicted 5, true 6.
    assert report["examples"] == 4
    assert report["subset_accuracy"] == 1 / 4  # only row 3 matches exactly
    assert report["hamming_loss"] == 3 / 16  # rows 1, 2 and 4 have one wrong decision each
    assert report["micro_precision"] == pytest.approx(4 / 5)
    assert report["micro_recall"] == pytest.approx(4 / 6)
    assert report["micro_f1"] == pytest.approx(2 * 4 / (5 + 6))
    assert report["macro_precision"] == pytest.approx((1 + 1 + 0 + 0) / 4)
    assert report["macro_recall"] == pytest.approx(0.5)
    assert report["macro_f1"] == pytest.approx(0.5)
    assert report["per_class"]["c"] == {
        "precision": 0.0,
        "recall": 0.0,
        "f1": 0.0,
        "support": 2,
        "predicted": 1,
    }
    assert report["per_class"]["a"]["f1"] == 1.0 and report["labels"] == labels


def test_multi_label_head_is_sigmoid_and_replace_head_keeps_it():
    model = build_text_classifier(
        num_classes=3, vocabulary_size=20, sequence_length=6, multi_label=True, **TINY_MODEL
    )
    assert model.get_layer("probabilities").activation is keras.activations.sigmoid
    token_ids = np.array([[5, 6, 7, 0, 0, 0], [8, 9, 0, 0, 0, 0]], dtype=np.int32)
    scores = np.asarray(model(token_ids))  # (2, 3): independent, rows need not sum to 1
    assert scores.shape == (2, 3) and ((scores > 0) & (scores < 1)).all()
    assert not np.allclose(scores.sum(axis=1), 1.0)
    replaced = replace_head(model, 4, multi_label=True)
    assert replaced.get_layer("probabilities").activation is keras.activations.sigmoid
    assert replaced.output.shape == (None, 4)
    assert replace_head(model, 2).get_layer("probabilities").activation is (
        keras.activations.softmax
    )


# --- train, export, serve ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def multi_label_data(tmp_path_factory):
    """200 real SST-2 sentences with their ``sentiment_and_length`` label sets as a CSV."""
    rows = [[t, "|".join(sentiment_and_length(t, y))] for t, y in sst2_rows(200)]
    folder = tmp_path_factory.mktemp("ml")
    return write_csv(folder / "tagged.csv", ["sentence", "tags"], rows)


@pytest.fixture(scope="module")
def multi_label_export(multi_label_data):
    folder = os.path.dirname(multi_label_data)
    result = run(
        "train",
        "sentiment",
        "--data",
        multi_label_data,
        "--label-column",
        "tags",
        "--multi-label",
        *TINY_SETS,
        "--epochs",
        "3",
        "--set",
        "learning_rate=0.01",
        "--export-dir",
        os.path.join(folder, "export"),
        "--run-dir",
        os.path.join(folder, "run"),
        "--json",
        "-q",
    )
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_train_exports_scores_and_labels_above_threshold(multi_label_export):
    metrics = multi_label_export["metrics"]
    assert {"val_loss", "val_subset_accuracy", "val_micro_f1", "val_macro_f1"} <= set(metrics)
    assert 0.0 <= metrics["val_micro_f1"] <= 1.0
    metadata = read_metadata(multi_label_export["export"])
    assert metadata["labels"] == ["long", "neg", "pos"]
    assert metadata["multi_label"] is True and metadata["threshold"] == 0.5
    assert metadata["config"]["label_separator"] == "|"
    assert set(metadata["signature"]["outputs"]) == {"scores", "labels"}
    assert metadata["data"]["labels_per_example"] == pytest.approx(
        np.mean([len(sentiment_and_length(t, y)) for t, y in sst2_rows(200)])
    )

    texts = [t for t, _ in sst2_rows(8, skip=300)] + [""]
    serve = tf.saved_model.load(multi_label_export["export"]).signatures["serving_default"]
    out = serve(text=tf.constant(texts))
    scores, served = out["scores"].numpy(), out["labels"].numpy()
    assert scores.shape == (9, 3) and scores.dtype == np.float32 and served.shape == (9, 3)
    assert ((scores > 0) & (scores < 1)).all()
    names = np.array(metadata["labels"])
    for row, got in zip(scores, served):
        order = np.argsort(-row, kind="stable")
        expected = [names[i] if row[i] >= 0.5 else "" for i in order]
        assert [x.decode() for x in got] == expected

    result = run("predict", multi_label_export["export"], *texts[:3], "--json")
    assert result.exit_code == 0, result.output
    predictions = [json.loads(line) for line in result.stdout.splitlines()]
    for prediction, row, got in zip(predictions, scores, served):
        assert prediction["labels"] == [x.decode() for x in got if x]
        np.testing.assert_allclose(list(prediction["scores"].values()), row, rtol=1e-6)
        assert list(prediction["scores"]) == ["long", "neg", "pos"]
    lines = run("predict", multi_label_export["export"], texts[0]).stdout.splitlines()
    found = predictions[0]["labels"]
    shown = ", ".join(f"{x} {predictions[0]['scores'][x]:.4f}" for x in found) or "(none)"
    assert lines == [f"{shown}\t{texts[0]}"]


def test_evaluate_matches_hand_computed_metrics(multi_label_export, multi_label_data):
    args = ["evaluate", multi_label_export["export"], "--data", multi_label_data]
    result = run(*args, "--label-column", "tags", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    rows = sst2_rows(200)
    serve = tf.saved_model.load(multi_label_export["export"]).signatures["serving_default"]
    scores = np.concatenate(
        [
            serve(text=tf.constant([t for t, _ in rows[i : i + 64]]))["scores"]
            for i in range(0, 200, 64)
        ]
    )
    labels = ["long", "neg", "pos"]
    truth = np.array([[x in sentiment_and_length(t, y) for x in labels] for t, y in rows])
    predicted = scores >= 0.5
    tp = (truth & predicted).sum(axis=0)
    f1 = [2 * tp[j] / (truth[:, j].sum() + predicted[:, j].sum() or 1) for j in range(3)]
    assert report["examples"] == 200 and report["threshold"] == 0.5
    assert report["micro_f1"] == pytest.approx(2 * tp.sum() / (truth.sum() + predicted.sum()))
    assert report["macro_f1"] == pytest.approx(np.mean(f1))
    assert report["subset_accuracy"] == pytest.approx(np.mean((truth == predicted).all(axis=1)))
    assert report["per_class"]["long"]["support"] == 69  # sentences of more than 10 words
    assert {label: row["f1"] for label, row in report["per_class"].items()} == pytest.approx(
        dict(zip(labels, f1))
    )
    text = run(*args, "--label-column", "tags").stdout
    assert "subset accuracy  " in text and f"micro     {report['micro_precision']:.4f}" in text


def test_finetune_multi_label_export_with_new_head(multi_label_export, tmp_path):
    model_dir = shutil.copytree(os.path.dirname(multi_label_export["export"]), tmp_path / "m")
    rows = [
        [t, "|".join(sentiment_and_length(t, y) + (["short"] if len(t.split()) < 5 else []))]
        for t, y in sst2_rows(80, skip=400)
    ]
    data = write_csv(tmp_path / "new.csv", ["sentence", "tags"], rows)
    args = ["finetune", model_dir, "--data", data, "--label-column", "tags", "--epochs", "1"]
    result = run(*args, "--run-dir", tmp_path / "r1")
    assert result.exit_code == 2
    assert "label 'short' not known to the model (long, neg, pos)" in result.stderr
    result = run(*args, "--new-head", "--run-dir", tmp_path / "r2", "--json", "-q")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["labels"] == ["long", "neg", "pos", "short"] and versions(model_dir) == [1, 2]
    metadata = read_metadata(summary["export"])
    assert metadata["multi_label"] is True and metadata["finetune"]["new_head"] is True
    model = keras.saving.load_model(os.path.join(summary["export"], "assets.extra", "model.keras"))
    assert model.get_layer("probabilities").activation is keras.activations.sigmoid
    out = tf.saved_model.load(summary["export"]).signatures["serving_default"](
        text=tf.constant(["fine", "a very long and rather tedious film about nothing at all"])
    )
    assert out["scores"].shape == (2, 4) and out["labels"].shape == (2, 4)


# --- multi-class ---------------------------------------------------------------------------------


FIVE = ["awful", "bad", "fine", "good", "great"]


@pytest.mark.parametrize(
    "relabel, labels",
    [
        (lambda i, sentence, label: FIVE[i % 5], FIVE),
        (
            lambda i, sentence, label: str(1 + (len(sentence.split()) % 5)),
            ["1", "2", "3", "4", "5"],
        ),
    ],
    ids=["five-string-classes", "integer-stars"],
)
def test_multi_class_labels_train_predict_evaluate(tmp_path, relabel, labels):
    rows = [[t, relabel(i, t, y)] for i, (t, y) in enumerate(sst2_rows(150, skip=600))]
    data = write_csv(tmp_path / "classes.csv", ["body", "stars"], rows)
    columns = ["--data", data, "--text-column", "body", "--label-column", "stars"]
    result = run(
        "train",
        "sentiment",
        *columns,
        *TINY_SETS,
        "--export-dir",
        tmp_path / "export",
        "--run-dir",
        tmp_path / "run",
        "--json",
        "-q",
    )
    assert result.exit_code == 0, result.output
    export = json.loads(result.stdout)["export"]
    metadata = read_metadata(export)
    assert metadata["labels"] == labels and metadata["multi_label"] is False
    prediction = json.loads(run("predict", export, rows[0][0], "--json").stdout)
    assert list(prediction["probabilities"]) == labels and prediction["label"] in labels
    assert sum(prediction["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)
    report = json.loads(run("evaluate", export, *columns, "--json").stdout)
    counts = {label: sum(row[1] == label for row in rows) for label in labels}
    assert {k: v["support"] for k, v in report["per_class"].items()} == counts
    assert np.array(report["confusion_matrix"]).shape == (5, 5) and report["examples"] == 150
