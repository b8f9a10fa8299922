"""`finetune MODEL_DIR` for translation and captioning: tiny exports trained on real
Multi30k pairs / Flickr8k images, fine-tuned on other real pairs and images in another file
format, and served from the new version in a fresh process."""

import gzip
import json
import os
import shutil
import subprocess
import sys

import keras
import numpy as np
import pytest
from click.testing import CliRunner

from cli import cli
from conftest import (
    ROOT,
    SHARED_DATA,
    TINY_CAPTIONING,
    TINY_TRANSLATION,
    caption_csv,
    flickr_images,
    write_file,
)
from seqtasks.export import read_metadata, versions

MULTI30K = os.path.join(SHARED_DATA, "multi30k")


def run(*args):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def predict_in_fresh_process(model_dir, *inputs, cwd):
    """``python cli.py predict MODEL_DIR INPUTS --json`` in a new interpreter; its JSON rows."""
    out = subprocess.run(
        [
            sys.executable,
            os.path.join(ROOT, "cli.py"),
            "predict",
            str(model_dir),
            *inputs,
            "--json",
        ],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return [json.loads(line) for line in out.stdout.splitlines()]


def multi30k_pairs(split, n):
    """The first ``n`` real Multi30k ``split`` pairs as ``(english, german)`` tuples."""
    sides = []
    for lang in ("en", "de"):
        with gzip.open(os.path.join(MULTI30K, f"{split}.{lang}.gz"), "rt", encoding="utf-8") as f:
            sides.append([next(f).rstrip("\n") for _ in range(n)])
    return list(zip(*sides))


@pytest.fixture(scope="module")
def translation_export(tmp_path_factory):
    """A tiny Transformer trained on 80 real Multi30k training pairs (a folder of
    <split>.<lang> files), exported once for the module as version 1."""
    from seqtasks.training import train
    from tasks import get_recipe

    root = tmp_path_factory.mktemp("finetune_translation")
    recipe = get_recipe("translation")
    config = recipe.make_config(
        data=MULTI30K,
        export_dir=str(root / "export"),
        run_dir=str(root / "run"),
        decoding="greedy",
        **{**TINY_TRANSLATION, "max_examples": 80, "sequence_length": 48},
    )
    return train(recipe, config, verbose=0).export_path


@pytest.fixture
def translation_dir(tmp_path, translation_export):
    """A copy of the module's translation export folder (version 1)."""
    return shutil.copytree(os.path.dirname(translation_export), tmp_path / "translation")


def test_translation_finetune_freezes_the_encoder_and_serves_version_2(translation_dir, tmp_path):
    # Other real pairs (Multi30k val), in another format: one tab-separated pair file.
    pairs = multi30k_pairs("val", 48)
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
    assert source_oov["training_pieces_per_word"] == original["pieces_per_word"]
    # Unseen sentences split into more pieces than the training sentences did.
    assert source_oov["pieces_per_word"] > original["pieces_per_word"]

    metadata = read_metadata(summary["export"])
    assert metadata["finetuned_from"] == str(translation_dir / "1")
    assert (metadata["source_lang"], metadata["target_lang"]) == ("en", "de")
    assert metadata["data"]["examples"] == 48 and metadata["data"]["path"] == data
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


def test_translation_finetune_refuses_another_language_pair_and_new_head(translation_dir, tmp_path):
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


def test_captioning_finetune_on_a_csv_captions_images_in_a_fresh_process(tmp_path):
    from seqtasks.training import train
    from tasks import get_recipe

    names, captions = flickr_images(tmp_path / "flickr", 6)
    recipe = get_recipe("captioning")
    config = recipe.make_config(
        data=caption_csv(tmp_path / "flickr" / "captions.csv", names, captions, per_image=2),
        export_dir=str(tmp_path / "captioning"),
        run_dir=str(tmp_path / "run"),
        feature_cache=str(tmp_path / "cache"),
        decoding="greedy",
        **{**TINY_CAPTIONING, "encoder": "cnn", "image_size": 64},
    )
    train(recipe, config, verbose=0)

    # Other real photos in a folder of their own, their captions in a CSV elsewhere.
    new_names, new_captions = flickr_images(tmp_path / "photos", 6, start=20)
    data = caption_csv(tmp_path / "photos.csv", new_names, new_captions, per_image=2)
    result = run(
        "finetune", str(tmp_path / "captioning"), "--data", data,
        "--image-dir", str(tmp_path / "photos"), "--freeze", "encoder", "--epochs", "1",
        "--learning-rate", "1e-2", "--run-dir", str(tmp_path / "tune"), "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["export"] == str(tmp_path / "captioning" / "2")
    oov = summary["out_of_vocabulary"]["captions"]
    assert 0 < oov["split_words"] <= 1 and oov["words"] > 0
    assert oov["training_pieces_per_word"] > 0
    metadata = read_metadata(summary["export"])
    assert metadata["finetuned_from"] == str(tmp_path / "captioning" / "1")
    assert metadata["inputs"] == "images" and metadata["data"]["examples"] == 6
    frozen = metadata["finetune"]["frozen_layers"]
    assert frozen == ["image_encoder", "feature_projection", "bridge_0", "bridge_1"]

    extra = [tmp_path / "captioning" / v / "assets.extra" for v in ("1", "2")]
    encoders = [keras.saving.load_model(e / "image_encoder.keras", compile=False) for e in extra]
    for a, b in zip(encoders[0].weights, encoders[1].weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    decoders = [keras.saving.load_model(e / "decoder.keras", compile=False) for e in extra]
    before, after = (d.get_layer("logits").weights[0].numpy() for d in decoders)
    assert not np.array_equal(before, after)

    image = str(tmp_path / "photos" / new_names[0])
    (row,) = predict_in_fresh_process(tmp_path / "captioning", image, cwd=tmp_path)
    assert row["image"] == image and isinstance(row["caption"], str) and row["score"] <= 0
