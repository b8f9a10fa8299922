"""`finetune MODEL_DIR` for translation and captioning: tiny exports trained on real
Multi30k pairs / Flickr8k images, fine-tuned on other real pairs and images in another file
format, and served from the new version in a fresh process. (Fine-tuning the overfit
captioner on new images is in test_captioning.py, the file that trains it.)"""

import gzip
import json
import os
import shutil

import keras
import numpy as np
import pytest
from click.testing import CliRunner

from cli import cli
from conftest import MULTI30K, predict_in_fresh_process, write_file
from seqtasks.export import read_metadata, versions


def run(*args):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def multi30k_pairs(split, n):
    """The first ``n`` real Multi30k ``split`` pairs as ``(english, german)`` tuples."""
    sides = []
    for lang in ("en", "de"):
        with gzip.open(os.path.join(MULTI30K, f"{split}.{lang}.gz"), "rt", encoding="utf-8") as f:
            sides.append([next(f).rstrip("\n") for _ in range(n)])
    return list(zip(*sides))


@pytest.fixture
def translation_dir(tmp_path, translation):
    """A copy of the session's tiny Transformer export folder (version 1, English-German,
    trained on Multi30k's <split>.<lang> files)."""
    return shutil.copytree(os.path.dirname(translation.export_path), tmp_path / "translation")


def test_translation_finetune_freezes_the_encoder_and_serves_version_2(translation_dir, tmp_path):
    # Other real pairs (short ones of Multi30k val), in another format: a tab-separated file.
    pairs = [p for p in multi30k_pairs("val", 1000) if max(len(s.split()) for s in p) <= 8][:40]
    data = write_file(tmp_path / "my_pairs.tsv", "".join(f"{en}\t{de}\n" for en, de in pairs))
    result = run(
        "finetune", str(translation_dir), "--data", data, "--epochs", "1",
        "--freeze", "encoder", "--learning-rate", "1e-2", "--run-dir", str(tmp_path / "run"),
        "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["export"] == str(translation_dir / "2")
    assert (summary["source_lang"], summary["target_lang"]) == ("en", "de")
    assert summary["finetuned_from"] == str(translation_dir / "1")
    source_oov = summary["out_of_vocabulary"]["source"]
    assert source_oov["tokens"] > source_oov["words"] >= sum(len(en.split()) for en, _ in pairs)
    assert source_oov["pieces_per_word"] == pytest.approx(
        source_oov["tokens"] / source_oov["words"], abs=1e-4
    )
    original = read_metadata(str(translation_dir / "1"))["subwords"]["source"]
    assert source_oov["training_pieces_per_word"] == original["pieces_per_word"] > 1

    metadata = read_metadata(summary["export"])
    assert metadata["finetuned_from"] == str(translation_dir / "1")
    assert (metadata["source_lang"], metadata["target_lang"]) == ("en", "de")
    assert metadata["data"]["examples"] == 40 and metadata["data"]["path"] == data
    assert metadata["finetune"]["frozen_layers"] == ["source_embedding", "encoder_0"]
    assert metadata["config"]["learning_rate"] == 1e-2
    assert metadata["config"]["warmup_steps"] == 100  # trained with 1000

    source = keras.saving.load_model(
        translation_dir / "1" / "assets.extra" / "model.keras", compile=False
    )
    tuned = keras.saving.load_model(
        translation_dir / "2" / "assets.extra" / "model.keras", compile=False
    )
    for name in ("source_embedding", "encoder_0"):
        for a, b in zip(source.get_layer(name).weights, tuned.get_layer(name).weights):
            np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=name)
    for name in ("target_embedding", "decoder_0", "logits"):
        before, after = source.get_layer(name).weights[0], tuned.get_layer(name).weights[0]
        assert not np.array_equal(before.numpy(), after.numpy()), name

    rows = predict_in_fresh_process(translation_dir, "A man is riding a bicycle.", cwd=tmp_path)
    assert rows[0]["text"] == "A man is riding a bicycle."
    assert isinstance(rows[0]["translation"], str) and rows[0]["score"] < 0
    assert versions(str(translation_dir)) == [1, 2]


def fake_translation_export(folder):
    """An English-German translation export's metadata (no model: the checks come first)."""
    os.makedirs(folder / "1" / "assets.extra")
    write_file(folder / "1" / "saved_model.pb", b"")
    metadata = {"format": "seqtasks-export", "task": "translation", "task_type": "many-to-many",
                "model": "transformer", "signature": {}, "source_lang": "en", "target_lang": "de",
                "config": {"model": "transformer", "source_lang": "en", "target_lang": "de"}}  # fmt: skip
    write_file(folder / "1" / "assets.extra" / "metadata.json", json.dumps(metadata))
    return folder


def test_translation_finetune_refuses_another_language_pair_and_new_head(tmp_path):
    translation_dir = fake_translation_export(tmp_path / "translation")
    data = write_file(tmp_path / "pairs.tsv", "Hola.\tHello.\nAdiós.\tBye.\n")
    base = ["finetune", str(translation_dir), "--data", data, "--run-dir", str(tmp_path / "run")]
    result = run(*base, "--source-lang", "es", "--target-lang", "en")
    assert result.exit_code == 2
    assert result.stderr == (
        "error: config fields 'source_lang' and 'target_lang': the model translates en to de; "
        "received: es to en (fine-tuning keeps the model's language pair; train a new model "
        "for another)\n"
    )
    result = run(*base, "--new-head")
    assert result.exit_code == 2
    assert result.stderr == (
        "error: --new-head: a translation model has no classification head (no labels); "
        "fine-tune without it\n"
    )
    result = run(*base, "--image-dir", str(tmp_path))
    assert result.stderr == "error: --image-dir: does not apply to translation models\n"
    assert versions(str(translation_dir)) == [1] and not os.path.exists(tmp_path / "run")


def test_the_exports_data_options_do_not_follow_it_into_finetuning():
    """Column options, --on-bad-rows and reverse describe the old data, not the model."""
    from tasks import get_recipe

    translation = get_recipe("translation")
    saved = {
        "source_lang": "en",
        "target_lang": "de",
        "source_column": "english",
        "target_column": "german",
        "on_bad_rows": "skip",
        "reverse": True,
        "hidden_dim": 32,
    }
    config = translation.finetune_config({"config": saved}, data=MULTI30K, max_examples=5)
    assert (config.source_column, config.target_column, config.on_bad_rows) == (None, None, "error")
    assert config.reverse is False and config.hidden_dim == 32  # the model's fields stay
    data = translation.load_data(config)  # a folder: column options would be refused
    assert data.sources[0] == multi30k_pairs("train", 1)[0][0]

    captioning = get_recipe("captioning")
    saved = {"image_column": "file", "caption_column": "text", "hidden_dim": 32}
    config = captioning.finetune_config({"config": saved}, data="x.csv")
    assert (config.image_column, config.caption_column, config.hidden_dim) == (None, None, 32)
