"""The CLI through click's test runner: commands, outputs, and one-line user errors."""

import json
import os
import shutil
import subprocess
import sys

import pytest
from click.testing import CliRunner

from cli import cli
from conftest import ROOT, SST2_DEV, TINY, assert_one_line_error, head_lines, write_file
from seqtasks.errors import DataError
from seqtasks.labels import match_labels

TINY_SETS = [arg for key, value in TINY.items() for arg in ("--set", f"{key}={value}")]


def run(*args, input=None):
    return CliRunner().invoke(cli, list(args), input=input, catch_exceptions=False)


@pytest.fixture(scope="module")
def dev_sample(tmp_path_factory):
    return head_lines(SST2_DEV, 41, str(tmp_path_factory.mktemp("dev") / "dev40.tsv"))


def test_recipes_lists_models_and_fields():
    result = run("recipes")
    assert result.exit_code == 0
    assert "sentiment (many-to-one)" in result.stdout
    assert "translation (many-to-many)" in result.stdout
    for model in ("rnn", "lstm", "gru", "bilstm", "transformer", "rnn-attention"):
        assert f"--model {model}" in result.stdout
    fields = json.loads(run("recipes", "sentiment", "--json").stdout)
    assert {"name": "epochs", "type": "int", "default": 5}.items() <= next(
        f for f in fields if f["name"] == "epochs"
    ).items()


@pytest.mark.parametrize(
    "command", ["train", "finetune", "predict", "evaluate", "recipes", "plot-attention"]
)
def test_every_command_has_help_with_an_example(command):
    result = run(command, "--help")
    assert result.exit_code == 0
    assert "python cli.py" in result.stdout


def test_train_predict_evaluate(tmp_path, sst2_sample, dev_sample):
    export_dir = str(tmp_path / "export")
    result = run(
        "train",
        "sentiment",
        "--data",
        sst2_sample,
        "--model",
        "gru",
        "--seed",
        "3",
        "--export-dir",
        export_dir,
        "--run-dir",
        str(tmp_path / "run"),
        "--json",
        *TINY_SETS,
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)  # progress went to stderr, stdout is pure JSON
    assert "val_loss" in result.stderr
    assert summary["export"] == os.path.join(export_dir, "1")
    assert 0 <= summary["metrics"]["val_accuracy"] <= 1

    result = run("predict", export_dir, "a gorgeous , witty movie", "dull and boring")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert len(lines) == 2 and lines[0].split("\t")[0] in ("0", "1")
    assert lines[1].endswith("dull and boring")

    texts = [
        line.split("\t")[0] for line in open(dev_sample, encoding="utf-8").read().splitlines()[1:]
    ]
    truth = [
        line.split("\t")[1] for line in open(dev_sample, encoding="utf-8").read().splitlines()[1:]
    ]
    result = run(
        "predict", os.path.join(export_dir, "1"), "-", "--json", input="\n".join(texts) + "\n"
    )
    predictions = [json.loads(line) for line in result.stdout.splitlines()]
    assert [p["text"] for p in predictions] == texts
    assert all(abs(sum(p["probabilities"].values()) - 1) < 1e-5 for p in predictions)

    result = run("evaluate", export_dir, "--data", dev_sample, "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    expected = sum(p["label"] == t for p, t in zip(predictions, truth)) / len(truth)
    assert report["examples"] == 40
    assert report["accuracy"] == pytest.approx(expected)
    assert sum(map(sum, report["confusion_matrix"])) == 40
    assert 0 <= report["macro_f1"] <= 1

    text = run("evaluate", export_dir, "--data", dev_sample).stdout
    assert "accuracy" in text and "confusion matrix" in text


def test_match_labels():
    assert match_labels(["0", "1"], ["neg", "pos"], None, "d") == {"0": "neg", "1": "pos"}
    assert match_labels(["pos"], ["neg", "pos"], None, "d") == {"pos": "pos"}
    assert match_labels(["good", "bad"], ["neg", "pos"], {"good": "pos", "bad": "neg"}, "d") == {
        "good": "pos",
        "bad": "neg",
    }
    with pytest.raises(DataError, match="label 'meh' is not one the model knows"):
        match_labels(["meh", "pos"], ["neg", "pos"], None, "d")
    with pytest.raises(DataError, match="--label-map: 'great' is not a label of the model"):
        match_labels(["1"], ["neg", "pos"], {"1": "great"}, "d")


BAD_TRAIN = [
    (
        ["train", "poetry"],
        "unknown recipe 'poetry'; expected one of: captioning, language-model, sentiment",
    ),
    (["train", "sentiment", "--model", "cnn"], "config field 'model': expected one of rnn, lstm"),
    (["train", "sentiment", "--set", "bogus=1"], "unknown config field 'bogus'"),
    (
        [
            "train",
            "sentiment",
            "--data",
            "{tmp}/rows.csv",
            "--text-column",
            "body",
            "--label-column",
            "queue",
        ],
        "rows.csv: no label column 'queue'; the columns are: body, stars",
    ),
    (["train", "sentiment", "--set", "dropout=lots"], "config field 'dropout': expected float"),
    (["train", "sentiment"], "no training data: pass --data PATH"),
    (
        ["train", "sentiment", "--data", "{tmp}/missing.tsv"],
        "missing.tsv: no such file or directory",
    ),
    (
        ["train", "sentiment", "--data", "{tmp}/bad.tsv"],
        "bad.tsv:3: expected 2 tab-separated fields",
    ),
    (["train", "sentiment", "--data", "{tmp}/empty.tsv"], "empty.tsv: no examples found"),
    (
        ["train", "sentiment", "--data", "{tmp}/one.tsv"],
        "found 1 distinct label (1); a classifier needs at least 2",
    ),
    (["train", "sentiment", "--data", "{tmp}/latin1.tsv"], "latin1.tsv:2: not valid UTF-8"),
    (["train", "sentiment", "--data", "{tmp}/rows.jsonl"], "rows.jsonl:2: invalid JSON"),
    (
        ["train", "sentiment", "--data", "{tmp}/rows.csv", "--text-column", "message"],
        "rows.csv: no text column 'message'; the columns are: body, stars",
    ),
    (
        ["train", "sentiment", "--data", "{tmp}/quote.csv"],
        "quote.csv:2: expected 2 comma-separated fields",
    ),
    (
        [
            "train",
            "sentiment",
            "--data",
            "{tmp}/one.tsv",
            "--model",
            "lstm",
            "--set",
            "activation=relu",
        ],
        "config field 'activation': 'relu' applies to model 'rnn' only",
    ),
    (
        [
            "train",
            "sentiment",
            "--data",
            "{tmp}/one.tsv",
            "--model",
            "transformer",
            "--set",
            "embedding_dim=2",
        ],
        "the Transformer needs embedding_dim >= num_heads; received: 2 and 4",
    ),
    (
        ["train", "sentiment", "--set", "validation_split=0"],
        "config field 'validation_split': expected a value >= 0.01",
    ),
    (
        ["train", "sentiment", "--set", "dropout=nan"],
        "config field 'dropout': expected a finite number",
    ),
    (
        ["train", "sentiment", "--data", "{tmp}/ok.tsv", "--export-dir", "{tmp}/ok.tsv/sub"],
        "config field 'export_dir': cannot create {tmp}/ok.tsv/sub: {tmp}/ok.tsv is a file",
    ),
    (
        ["train", "sentiment", "--data", "{tmp}/ok.tsv", "--set", "min_frequency=5"],
        "no word occurs 5 times in the training split; lower min_frequency",
    ),
    (
        ["train", "sentiment", "--data", "{tmp}/ok.tsv", "--export-dir", "{tmp}/ok.tsv"],
        "config field 'export_dir': {tmp}/ok.tsv exists and is not a folder",
    ),
]


@pytest.mark.parametrize("args, message", BAD_TRAIN)
def test_bad_training_input_is_one_line_exit_2_and_writes_nothing(tmp_path, args, message):
    write_file(tmp_path / "bad.tsv", "sentence\tlabel\ngood\t1\nbad\t0\tx\n")
    write_file(tmp_path / "empty.tsv", "sentence\tlabel\n")
    write_file(tmp_path / "one.tsv", "sentence\tlabel\na\t1\nb\t1\n")
    write_file(tmp_path / "latin1.tsv", "sentence\tlabel\ncaf\xe9\t1\n".encode("latin-1"))
    write_file(tmp_path / "rows.jsonl", '{"text": "a", "label": 1}\n{"text": \n')
    write_file(tmp_path / "rows.csv", "body,stars\nfine,1\nbad,0\n")
    write_file(tmp_path / "quote.csv", "text,label\nfine,1,extra\n")
    write_file(tmp_path / "ok.tsv", "sentence\tlabel\ngood\t1\nbad\t0\n")
    outputs = ["--export-dir", str(tmp_path / "export"), "--run-dir", str(tmp_path / "run")]
    args = [a.format(tmp=tmp_path) for a in args]
    result = run(args[0], args[1], *outputs, *args[2:])
    message = message.format(tmp=tmp_path)
    assert_one_line_error(result, message)
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
    assert not os.path.exists(tmp_path / "export") and not os.path.exists(tmp_path / "run")


def test_serving_side_errors(tmp_path, trained, dev_sample):
    not_export = tmp_path / "not_export"
    not_export.mkdir()
    list_metadata = tmp_path / "list_metadata"
    shutil.copytree(trained.export_path, list_metadata)
    write_file(list_metadata / "assets.extra" / "metadata.json", "[]")
    bad_json = tmp_path / "bad_json"
    shutil.copytree(trained.export_path, bad_json)
    write_file(bad_json / "assets.extra" / "metadata.json", "{not json")
    no_metadata = tmp_path / "no_metadata"
    shutil.copytree(trained.export_path, no_metadata)
    os.remove(no_metadata / "assets.extra" / "metadata.json")
    broken_graph = tmp_path / "broken_graph"
    shutil.copytree(trained.export_path, broken_graph)
    write_file(broken_graph / "saved_model.pb", b"\x00garbage")
    no_labels = tmp_path / "no_labels"
    shutil.copytree(trained.export_path, no_labels)
    metadata = json.loads((no_labels / "assets.extra" / "metadata.json").read_text())
    del metadata["labels"]
    write_file(no_labels / "assets.extra" / "metadata.json", json.dumps(metadata))
    cases = [
        (["predict", str(not_export), "hi"], "not_export: not a seqtasks export"),
        (["predict", str(tmp_path / "nowhere"), "hi"], "nowhere: no such model folder"),
        (["predict", dev_sample, "hi"], "dev40.tsv: a file, not a model folder"),
        (["predict", trained.export_path], "no input"),
        (
            [
                "evaluate",
                trained.export_path,
                "--data",
                write_file(tmp_path / "x.tsv", "sentence\tlabel\nok\tmeh\n"),
            ],
            "label 'meh' is not one the model knows (0, 1)",
        ),
        (["predict", str(list_metadata), "hi"], "not seqtasks export metadata"),
        (["predict", str(bad_json), "hi"], "cannot read export metadata"),
        (["predict", str(no_metadata), "hi"], "a SavedModel, but not a seqtasks export"),
        (["predict", str(broken_graph), "hi"], "cannot load the SavedModel"),
        (
            ["evaluate", trained.export_path, "--data", str(tmp_path / "gone.tsv")],
            "gone.tsv: no such file",
        ),
        (["recipes", "poetry"], "unknown recipe 'poetry'"),
        (["predict", str(no_labels), "hi"], "export metadata has no valid 'labels' list"),
        (
            ["evaluate", trained.export_path, "--data", dev_sample, "--label-map", "0"],
            "expected key=value",
        ),
    ]
    for args, message in cases:
        result = run(*args)
        assert_one_line_error(result, message)
        assert result.stderr.count("\n") == 1, (args, result.stderr)


def test_non_utf8_stdin_and_bad_max_examples(trained, dev_sample):
    result = CliRunner().invoke(cli, ["predict", trained.export_path, "-"], input=b"ok\ncaf\xe9\n")
    assert_one_line_error(result)
    assert (
        result.stderr
        == "error: <stdin>:2: not valid UTF-8 (byte 0xe9 at offset 6); expected UTF-8 text\n"
    )
    result = run("evaluate", trained.export_path, "--data", dev_sample, "--max-examples", "-1")
    assert result.exit_code == 2 and "Invalid value for '--max-examples'" in result.stderr


def test_real_cli_prints_exactly_one_line_on_error(tmp_path):
    """No TensorFlow start-up noise: the user sees only the error line."""
    cli_path = os.path.join(ROOT, "cli.py")
    for args, message in [
        (
            ["train", "poetry"],
            "error: unknown recipe 'poetry'; expected one of: captioning, language-model, "
            "sentiment, translation\n",
        ),
        (
            ["train", "sentiment", "--epochs", "abc"],
            "error: Invalid value for '--epochs': 'abc' is not a valid integer."
            " (see: python cli.py train --help)\n",
        ),
        (
            ["predict", str(tmp_path / "nowhere"), "hi"],
            f"error: {tmp_path / 'nowhere'}: no such model folder\n",
        ),
    ]:
        out = subprocess.run(
            [sys.executable, cli_path, *args],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=tmp_path,
        )
        assert_one_line_error(out)
        assert out.stderr == message
        assert out.stdout == ""


def test_every_extra_command_a_recipe_declares_exists_with_its_method():
    from tasks import RECIPES

    declared = {c for recipe in RECIPES.values() for c in recipe.extra_commands}
    assert declared == {"plot-attention", "plot-captions", "generate", "carve"}
    for recipe in RECIPES.values():
        for command in recipe.extra_commands:
            assert command in cli.commands
            assert callable(getattr(recipe, command.replace("-", "_")))
