"""`finetune MODEL_DIR`: the session's tiny sentiment export trained further on new CSVs
made from real SST-2 rows (new labels with --new-head, same labels, frozen encoder)."""

import csv
import json
import logging
import os
import shutil

import keras
import numpy as np
import pytest
from click.testing import CliRunner

from cli import cli, main
from conftest import SST2_DEV, SST2_TRAIN, run_fresh_python, write_file
from seqtasks.export import read_metadata, versions

FRESH_PROCESS = """
import json, sys
import tensorflow as tf
model = tf.saved_model.load(sys.argv[1])
out = model.signatures["serving_default"](text=tf.constant(json.loads(sys.argv[2])))
print(json.dumps({
    "labels": [x.decode() for x in out["label"].numpy()],
    "shape": list(out["probabilities"].shape),
}))
"""


def run(*args):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def sst2_rows(path, n, start=0):
    """``(sentence, label)`` rows ``start..start+n`` of a real SST-2 TSV file."""
    with open(path, encoding="utf-8") as f:
        rows = [line.rstrip("\n").split("\t") for line in f][1:]
    return rows[start : start + n]


def reviews_csv(path, rows, relabel=None) -> str:
    """A ``body,stars`` CSV of ``rows``, labels passed through ``relabel(i, label)``."""
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["body", "stars"])
        for i, (sentence, label) in enumerate(rows):
            writer.writerow([sentence, relabel(i, label) if relabel else label])
    return str(path)


def three_classes(i, label):
    return "meh" if i % 3 == 0 else {"0": "bad", "1": "good"}[label]


@pytest.fixture
def model_dir(tmp_path, trained):
    """A copy of the session's export folder (version 1)."""
    return shutil.copytree(os.path.dirname(trained.export_path), tmp_path / "model")


def finetune(model_dir, data, tmp_path, *extra):
    return run(
        "finetune",
        str(model_dir),
        "--data",
        data,
        "--text-column",
        "body",
        "--label-column",
        "stars",
        "--epochs",
        "1",
        "--run-dir",
        str(tmp_path / "run"),
        "--json",
        *extra,
    )


def test_new_labels_need_new_head_and_then_export_version_2(model_dir, tmp_path):
    data = reviews_csv(tmp_path / "reviews.csv", sst2_rows(SST2_TRAIN, 90, 300), three_classes)
    result = finetune(model_dir, data, tmp_path)
    assert result.exit_code == 2, result.output
    assert result.stderr == (
        f"error: {data}: labels 'bad', 'good', 'meh' not known to the model (0, 1); "
        "pass --new-head to train a fresh classification head for the new labels\n"
    )
    assert versions(str(model_dir)) == [1] and not os.path.exists(tmp_path / "run")

    result = finetune(model_dir, data, tmp_path, "--new-head")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["export"] == str(model_dir / "2")
    assert summary["labels"] == ["bad", "good", "meh"] and summary["new_head"] is True
    metadata = read_metadata(summary["export"])
    assert metadata["labels"] == ["bad", "good", "meh"]
    assert metadata["finetuned_from"] == str(model_dir / "1")
    assert metadata["finetune"]["source_labels"] == ["0", "1"]
    assert metadata["data"]["examples"] == 90
    assert os.path.isfile(tmp_path / "run" / "metrics.json")

    texts = ["a gorgeous , witty , seductive movie .", "unwatchable", ""]
    served = run_fresh_python(FRESH_PROCESS, summary["export"], json.dumps(texts), cwd=tmp_path)
    assert served["shape"] == [3, 3]
    assert set(served["labels"]) <= {"bad", "good", "meh"}


def test_same_labels_continue_the_head_and_report_oov(model_dir, tmp_path, caplog):
    data = reviews_csv(tmp_path / "dev.csv", sst2_rows(SST2_DEV, 60))
    with caplog.at_level(logging.INFO):
        result = finetune(model_dir, data, tmp_path)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    oov = summary["out_of_vocabulary"]
    # The tiny model's 300-word vocabulary misses most words of unseen dev sentences.
    assert 0.2 < oov["share"] < 1 and oov["tokens"] < oov["total"]
    assert any(
        "of the new data's tokens" in r.message and r.levelno == logging.WARNING
        for r in caplog.records
    )
    metadata = read_metadata(summary["export"])
    assert metadata["labels"] == ["0", "1"] and metadata["finetune"]["new_head"] is False
    assert metadata["finetune"]["out_of_vocabulary"] == oov

    source = keras.saving.load_model(model_dir / "1" / "assets.extra" / "model.keras")
    tuned = keras.saving.load_model(model_dir / "2" / "assets.extra" / "model.keras")
    before = source.get_layer("probabilities").get_weights()[0]
    after = tuned.get_layer("probabilities").get_weights()[0]
    # Continued from the source head: moved a little (lr 1e-4, one epoch), not re-initialised.
    assert not np.array_equal(before, after)
    assert np.abs(after - before).max() < 0.05


def test_freeze_encoder_leaves_encoder_weights_unchanged(model_dir, tmp_path):
    data = reviews_csv(tmp_path / "reviews.csv", sst2_rows(SST2_TRAIN, 90, 300))
    result = finetune(model_dir, data, tmp_path, "--freeze", "encoder", "--learning-rate", "1e-2")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["freeze"] == "encoder"
    source = keras.saving.load_model(model_dir / "1" / "assets.extra" / "model.keras")
    tuned = keras.saving.load_model(model_dir / "2" / "assets.extra" / "model.keras")
    frozen = read_metadata(summary["export"])["finetune"]["frozen_layers"]
    assert frozen == ["embedding", "bilstm_0"]
    for name in frozen:
        for a, b in zip(source.get_layer(name).get_weights(), tuned.get_layer(name).get_weights()):
            np.testing.assert_array_equal(a, b)
    assert not np.array_equal(
        source.get_layer("probabilities").get_weights()[0],
        tuned.get_layer("probabilities").get_weights()[0],
    )


def fake_translation_export(folder):
    os.makedirs(folder / "1" / "assets.extra")
    write_file(folder / "1" / "saved_model.pb", b"")
    metadata = {
        "format": "seqtasks-export",
        "task": "translation",
        "task_type": "many-to-many",
        "model": "transformer",
        "signature": {},
    }
    write_file(folder / "1" / "assets.extra" / "metadata.json", json.dumps(metadata))


BAD = [
    ("{tmp}/missing", "{tmp}/ok.csv", [], "error: {tmp}/missing: no such model folder"),
    (
        "{tmp}/translation",
        "{tmp}/ok.csv",
        [],
        "error: --label-column, --text-column: do not apply to translation models",
    ),
    ("{model}", "{tmp}/nothing.csv", [], "error: {tmp}/nothing.csv: no such file"),
    ("{model}", "{tmp}/ok.csv", ["--text-column", "text"], "'text'"),
]


@pytest.mark.parametrize("model, data, extra, message", BAD)
def test_bad_input_is_one_line_exit_2_and_writes_nothing(
    model_dir, tmp_path, model, data, extra, message
):
    reviews_csv(tmp_path / "ok.csv", sst2_rows(SST2_TRAIN, 20))
    fake_translation_export(tmp_path / "translation")
    fill = {"tmp": tmp_path, "model": model_dir}
    args = ["finetune", model.format(**fill), "--data", data.format(**fill)]
    args += ["--label-column", "stars", "--run-dir", str(tmp_path / "run")]
    result = run(*args, *(["--text-column", "body"] if not extra else []), *extra)
    assert result.exit_code == 2, result.output
    assert message.format(**fill) in result.stderr
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: ")
    assert versions(str(model_dir)) == [1] and not os.path.exists(tmp_path / "run")


def test_bad_freeze_value_is_one_line(model_dir, tmp_path, capsys):
    args = ["finetune", str(model_dir), "--data", "x.csv", "--freeze", "head"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: Invalid value for '--freeze': 'head' is not one of")
    assert err.count("\n") == 1 and versions(str(model_dir)) == [1]
