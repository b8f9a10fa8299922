"""seqtasks.classifier_export: the serving function on a hand-made model (argmax labels,
multi-label ranking and threshold, empty batches), and untrained tiny classifiers exported,
served with predict_texts and scored with evaluate_classifier_export."""

import numpy as np
import pytest
import tensorflow as tf

from conftest import write_file
from seqtasks.classifier_export import (
    MULTI_LABEL_OUTPUTS,
    SINGLE_LABEL_OUTPUTS,
    evaluate_classifier_export,
    export_classifier,
    predict_texts,
    serving_function,
)
from seqtasks.errors import DataError
from seqtasks.export import read_metadata
from seqtasks.models.classifier import build_text_classifier
from seqtasks.text import RESERVED_TOKENS, WordVectorizer, write_vocabulary

WORDS = ["a", "b", "c"]  # ids 4, 5, 6


@pytest.fixture
def vectorizer(tmp_path):
    path = write_vocabulary([*RESERVED_TOKENS, *WORDS], str(tmp_path / "vocabulary.txt"))
    return WordVectorizer(path, sequence_length=8)


def word_scores(token_ids, training=False):
    """(B, T) ids -> (B, 3) float32: 0.9 for each of a, b, c present in the text, else 0.1."""
    present = tf.reduce_max(tf.one_hot(token_ids - len(RESERVED_TOKENS), len(WORDS)), axis=1)
    return 0.1 + 0.8 * present


def test_serving_function_single_label_gives_probabilities_and_argmax_label(vectorizer):
    serve = serving_function(word_scores, vectorizer, ["x", "y", "z"])
    out = serve(tf.constant(["b", "c b", "", "unknown words"]))
    assert set(out) == {"probabilities", "label"}
    assert out["probabilities"].dtype == tf.float32 and out["probabilities"].shape == (4, 3)
    np.testing.assert_allclose(
        out["probabilities"].numpy(),
        [[0.1, 0.9, 0.1], [0.1, 0.9, 0.9], [0.1, 0.1, 0.1], [0.1, 0.1, 0.1]],
        atol=1e-6,
    )
    # argmax takes the first of equal scores
    assert out["label"].numpy().tolist() == [b"y", b"y", b"x", b"x"]
    empty = serve(tf.constant([], tf.string))
    assert empty["probabilities"].shape == (0, 3) and empty["label"].shape == (0,)


def test_serving_function_multi_label_ranks_and_thresholds(vectorizer):
    serve = serving_function(
        word_scores, vectorizer, ["x", "y", "z"], multi_label=True, threshold=0.5
    )
    out = serve(tf.constant(["c a", "b", ""]))
    assert set(out) == {"scores", "labels"}
    assert out["scores"].dtype == tf.float32 and out["scores"].shape == (3, 3)
    np.testing.assert_allclose(
        out["scores"].numpy(), [[0.9, 0.1, 0.9], [0.1, 0.9, 0.1], [0.1, 0.1, 0.1]], atol=1e-6
    )
    assert out["labels"].dtype == tf.string and out["labels"].shape == (3, 3)
    assert out["labels"].numpy().tolist() == [
        [b"x", b"z", b""],  # equal scores keep the label order
        [b"y", b"", b""],
        [b"", b"", b""],
    ]
    everything = serving_function(
        word_scores, vectorizer, ["x", "y", "z"], multi_label=True, threshold=0.1
    )
    assert everything(tf.constant(["b"]))["labels"].numpy().tolist() == [[b"y", b"x", b"z"]]


def tiny_classifier(num_classes, multi_label=False):
    return build_text_classifier(
        num_classes=num_classes,
        vocabulary_size=len(RESERVED_TOKENS) + len(WORDS),
        sequence_length=8,
        kind="gru",
        dropout=0.0,
        multi_label=multi_label,
        embedding_dim=4,
        hidden_dim=2,
    )


DESCRIBE = {"task": "sentiment", "task_type": "many-to-one", "model": "gru", "config": {"x": 1}}
TEXTS = ["a b", "c", "b b c a", "", "a", "c c"]


def test_single_label_export_metadata_predict_and_evaluate(tmp_path, vectorizer):
    keras_model = tiny_classifier(2)
    version = export_classifier(
        keras_model,
        vectorizer,
        ["neg", "pos"],
        str(tmp_path / "export"),
        describe=DESCRIBE,
        threshold=0.7,  # single-label: not used, not recorded
        facts={"labels": ["neg", "pos"], "metrics": {"val_accuracy": 0.5}, "model": "override"},
    )
    assert version == str(tmp_path / "export" / "1")
    metadata = read_metadata(version)
    assert sorted(metadata) == sorted(
        [
            "format",
            "format_version",
            "task",
            "task_type",
            "model",
            "config",
            "signature",
            "multi_label",
            "preprocessing",
            "versions",
            "labels",
            "metrics",
        ]
    )
    assert metadata["model"] == "override"  # facts come last and win
    assert metadata["signature"] == {
        "inputs": {"text": "tf.string [None]: raw text"},
        "outputs": SINGLE_LABEL_OUTPUTS,
    }
    assert metadata["multi_label"] is False and "threshold" not in metadata
    assert metadata["preprocessing"] == {"tokenizer": "word", "sequence_length": 8}
    assert (tmp_path / "export" / "1" / "assets.extra" / "model.keras").is_file()

    results = predict_texts(version, metadata, TEXTS)
    expected = keras_model.predict_on_batch(vectorizer.pad(vectorizer(tf.constant(TEXTS))))
    assert [r["text"] for r in results] == TEXTS
    served = np.array([[r["probabilities"]["neg"], r["probabilities"]["pos"]] for r in results])
    np.testing.assert_allclose(served, expected, atol=1e-5)
    assert [r["label"] for r in results] == [["neg", "pos"][int(i)] for i in served.argmax(1)]

    # Integer labels 0/1 taken as indices into (neg, pos); one malformed row skipped.
    rows = "".join(f"{t}\t{i % 2}\n" for i, t in enumerate(TEXTS) if t)
    data = write_file(tmp_path / "dev.tsv", "sentence\tlabel\n" + rows + "no label field\n")
    report = evaluate_classifier_export(version, metadata, data=data, on_bad_rows="skip")
    truth = [i % 2 for i, t in enumerate(TEXTS) if t]
    predicted = [int(served[i].argmax()) for i, t in enumerate(TEXTS) if t]
    assert report["accuracy"] == pytest.approx(np.mean(np.equal(truth, predicted)))
    assert report["label_map"] == {"0": "neg", "1": "pos"}
    assert report["skipped_bad_rows"] == 1 and report["data"] == data
    assert "threshold" not in report
    with pytest.raises(DataError, match="label 'meh' is not one the model knows"):
        evaluate_classifier_export(
            version, metadata, data=write_file(tmp_path / "meh.tsv", "sentence\tlabel\na\tmeh\n")
        )


def test_multi_label_export_predict_and_evaluate_at_its_threshold(tmp_path, vectorizer):
    labels = ["p", "q", "r"]
    keras_model = tiny_classifier(3, multi_label=True)
    version = export_classifier(
        keras_model,
        vectorizer,
        labels,
        str(tmp_path / "export"),
        describe=DESCRIBE,
        multi_label=True,
        threshold=0.5,
        facts={"labels": labels, "config": {"label_separator": ";"}},
    )
    metadata = read_metadata(version)
    assert metadata["multi_label"] is True and metadata["threshold"] == 0.5
    assert metadata["signature"]["outputs"] == MULTI_LABEL_OUTPUTS

    expected = keras_model.predict_on_batch(vectorizer.pad(vectorizer(tf.constant(TEXTS))))
    results = predict_texts(version, metadata, TEXTS)
    for row, result in zip(expected, results):
        np.testing.assert_allclose([result["scores"][x] for x in labels], row, atol=1e-5)
        above = sorted((x for x in labels if result["scores"][x] >= 0.5), key=labels.index)
        assert sorted(result["labels"], key=labels.index) == above
        scores = [result["scores"][x] for x in result["labels"]]
        assert scores == sorted(scores, reverse=True)

    # label_separator comes from the export's saved config
    rows = "".join(
        f"{t}\t{labels[i % 3]};{labels[(i + 1) % 3]}\n" for i, t in enumerate(TEXTS) if t
    )
    data = write_file(tmp_path / "dev.tsv", "sentence\tlabels\n" + rows)
    metadata["threshold"] = 0.0  # every label predicted: micro recall 1
    report = evaluate_classifier_export(version, metadata, data=data)
    assert report["threshold"] == 0.0 and report["data"] == data
    assert report["micro_recall"] == pytest.approx(1.0)
    assert report["micro_precision"] == pytest.approx(2 / 3)
