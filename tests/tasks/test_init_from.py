"""Pretrain, then fine-tune: `carve` writes the classifier's validation split, the language
model leaves it out (`exclude_texts`), and `train sentiment --init-from` starts from the
language model's tokenizer, vocabulary, embeddings and recurrent layers (export or run
directory), exports a model that serves raw text, and fine-tunes; mistakes are one line."""

import json
import os

import numpy as np
import pytest

from conftest import SST2_TRAIN, assert_one_line_error, head_lines, predict_in_fresh_process

TINY_WORD_LM = {
    "tokenizer": "word",
    "lowercase": True,
    "vocabulary_size": 400,
    "min_frequency": 1,
    "embedding_dim": 8,
    "hidden_dim": 12,
    "num_layers": 2,
    "sequence_length": 16,
    "epochs": 1,
    "batch_size": 32,
    "max_length": 5,
}


def _cli(*args):
    from click.testing import CliRunner

    import cli

    return CliRunner().invoke(cli.cli, list(map(str, args)))


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    """A two-layer word LSTM language model trained one epoch on 300 SST-2 sentences
    without the classifier's validation sentences (carved first), and exported."""
    from seqtasks.training import train
    from tasks import get_recipe

    root = tmp_path_factory.mktemp("pretrained")
    data = head_lines(SST2_TRAIN, 301, str(root / "sst2.tsv"))
    carved = _cli("carve", "sentiment", "--data", data, "-o", root / "validation.jsonl", "--json")
    assert carved.exit_code == 0, carved.output
    recipe = get_recipe("language-model")
    config = recipe.make_config(
        data=data,
        text_column="sentence",
        exclude_texts=str(root / "validation.jsonl"),
        export_dir=str(root / "lm"),
        run_dir=str(root / "lm-run"),
        **TINY_WORD_LM,
    )
    result = train(recipe, config, verbose=0)
    return {"root": root, "data": data, "carve": json.loads(carved.stdout), "lm": result}


def test_carve_writes_the_validation_split_training_holds_out(pretrained):
    from tasks import get_recipe

    recipe = get_recipe("sentiment")
    data = recipe.load_data(recipe.make_config(data=pretrained["data"]))
    _, val_idx = recipe.carve(recipe.make_config(data=pretrained["data"]), data)
    with open(pretrained["root"] / "validation.jsonl", encoding="utf-8") as f:
        rows = [json.loads(line) for line in f]
    assert [r["text"] for r in rows] == [data.texts[i] for i in val_idx]
    assert [r["label"] for r in rows] == [data.labels[i] for i in val_idx]
    assert pretrained["carve"]["validation_examples"] == len(rows) == 30
    assert pretrained["carve"]["train_examples"] == 270


def test_the_language_model_never_read_the_validation_texts(pretrained):
    excluded = pretrained["lm"].metrics and pretrained["lm"].prepared.metadata["data"]["excluded"]
    assert excluded["texts"] == 30
    assert excluded["documents_left_out"] >= 30  # SST-2 repeats some sentences
    assert (
        pretrained["lm"].prepared.metadata["data"]["documents"]
        == 300 - excluded["documents_left_out"]
    )


def test_the_classifier_starts_from_the_language_model(pretrained, tmp_path):
    from seqtasks.lm_transfer import load_language_model
    from tasks import get_recipe

    recipe = get_recipe("sentiment")
    config = recipe.make_config(
        data=pretrained["data"], init_from=str(pretrained["root"] / "lm"), pooling="concat"
    )
    prepared = recipe.prepare(config, recipe.load_data(config), str(tmp_path))
    model = recipe.build_model(config, prepared)
    lm = load_language_model(str(pretrained["root"] / "lm")).model
    for ours, theirs in ((model.get_layer("embedding"), lm.embedding),
                         (model.get_layer("lstm_0"), lm.rnn_layers[0]),
                         (model.get_layer("lstm_1"), lm.rnn_layers[1])):  # fmt: skip
        for a, b in zip(ours.get_weights(), theirs.get_weights(), strict=True):
            np.testing.assert_array_equal(a, b)
    vectorizer = prepared.info.vectorizer
    assert vectorizer.vocabulary_size == lm.vocabulary_size
    ids = vectorizer.pad(vectorizer(np.array(["A moving film", "dull"]))).numpy()
    tokenizer = load_language_model(str(pretrained["root"] / "lm")).tokenizer
    assert ids[0, 0] == ids[1, 0] == 2  # [START]
    np.testing.assert_array_equal(ids[0, 1:4], tokenizer(np.array(["a moving film"]))[0])


def test_train_from_an_export_serves_raw_text_and_fine_tunes(pretrained, tmp_path):
    out = _cli(
        "train", "sentiment", "--data", pretrained["data"], "--init-from",
        pretrained["root"] / "lm", "--epochs", 1, "--export-dir", tmp_path / "clf",
        "--run-dir", tmp_path / "run", "--set", "layer_lr_decay=2.6",
        "--set", "lr_schedule=slanted_triangular", "--set", "gradual_unfreezing=true", "--json",
    )  # fmt: skip
    assert out.exit_code == 0, out.output
    metadata = json.load(open(tmp_path / "clf" / "1" / "assets.extra" / "metadata.json"))
    assert metadata["model"] == metadata["config"]["model"] == "lstm"
    assert metadata["init_from"]["kind"] == "lstm"
    assert metadata["preprocessing"]["language_model_tokenizer"] == "word"
    rows = predict_in_fresh_process(tmp_path / "clf", "a great film", "", cwd=tmp_path)
    assert [r["text"] for r in rows] == ["a great film", ""]
    assert all(abs(sum(r["probabilities"].values()) - 1) < 1e-5 for r in rows)
    tuned = _cli(
        "finetune", tmp_path / "clf", "--data", pretrained["data"], "--epochs", 1,
        "--export-dir", tmp_path / "tuned", "--run-dir", tmp_path / "tuned-run", "--json",
    )  # fmt: skip
    assert tuned.exit_code == 0, tuned.output
    assert os.path.isfile(tmp_path / "tuned" / "1" / "saved_model.pb")


def test_a_run_directory_gives_the_exported_weights(pretrained):
    from seqtasks.lm_transfer import load_language_model

    from_run = load_language_model(str(pretrained["root"] / "lm-run"))
    from_export = load_language_model(str(pretrained["root"] / "lm"))
    assert from_run.source["weights"].endswith("best.weights.h5")
    for a, b in zip(from_run.model.get_weights(), from_export.model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_mistakes_are_one_line(pretrained, tmp_path):
    common = ["train", "sentiment", "--data", pretrained["data"], "--epochs", 1,
              "--export-dir", tmp_path / "x", "--run-dir", tmp_path / "r"]  # fmt: skip
    lm = pretrained["root"] / "lm"
    assert_one_line_error(
        _cli(*common, "--init-from", lm, "--model", "bilstm"),
        "--model bilstm",
        "its language model is lstm",
    )
    other = tmp_path / "sentiment-run"
    other.mkdir()
    (other / "config.json").write_text(json.dumps({"recipe": "sentiment", "config": {}}))
    assert_one_line_error(
        _cli(*common, "--init-from", other), "this run directory is of the sentiment recipe"
    )
    assert_one_line_error(_cli(*common, "--init-from", tmp_path / "nowhere"), "no such file")
    assert_one_line_error(
        _cli(*common, "--init-from", lm, "--init-embeddings", "word2vec"), "init_from"
    )
    assert_one_line_error(  # the language model decides them: never silently ignored
        _cli(*common, "--init-from", lm, "--set", "num_layers=2", "--set", "hidden_dim=8"),
        f"config fields 'hidden_dim', 'num_layers': the language model of --init-from {lm} "
        "decides them; leave them out",
    )
    assert_one_line_error(
        _cli(*common, "--init-from", lm, "--set", "vocabulary_size=100"),
        "config field 'vocabulary_size': the language model",
        "decides it; leave it out",
    )
    assert_one_line_error(
        _cli(*common, "--init-from", lm, "--set", "conv_kernel_size=3"),
        "config field 'conv_kernel_size': the language model of --init-from",
        "decides it; leave it out",
    )
    assert_one_line_error(
        _cli(*common, "--init-from", lm, "--set", "embedding_dropout=0.1"),
        "config field 'embedding_dropout': a classifier started from --init-from",
        "has the language model's layers and dropout, and no use for it; leave it out",
    )
    assert_one_line_error(
        _cli("carve", "translation", "--data", pretrained["data"], "-o", tmp_path / "v.jsonl"),
        "no validation carve",
    )
    assert not os.path.exists(tmp_path / "x") and not os.path.exists(tmp_path / "v.jsonl")
