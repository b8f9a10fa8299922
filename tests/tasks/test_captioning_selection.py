"""Captioning: the exported epoch chosen by decoded validation BLEU-4 (``select_by=bleu_4``)
rather than by the validation loss."""

import csv
import os

import numpy as np

from conftest import TINY_CAPTIONING, caption_csv, flickr_images


def test_selecting_by_bleu_4_exports_the_epoch_with_the_best_decoded_bleu(tmp_path):
    from seqtasks.training import train
    from tasks import get_recipe

    _, captions = flickr_images(tmp_path / "unused", 60)
    ids = [f"item{i}" for i in range(60)]
    vectors = np.random.default_rng(0).normal(size=(60, 16)).astype(np.float32)
    np.savez(tmp_path / "vectors.npz", **dict(zip(ids, vectors)))
    caption_csv(tmp_path / "vectors.csv", ids, captions, per_image=5)
    recipe = get_recipe("captioning")
    config = recipe.make_config(
        **{**TINY_CAPTIONING, "epochs": 4, "vocabulary_size": 200},
        model="attention", select_by="bleu_4", patience=10, learning_rate=0.01,
        decoding="greedy", data=str(tmp_path / "vectors.npz"),
        export_dir=str(tmp_path / "export"), run_dir=str(tmp_path / "run"),
    )  # fmt: skip
    result = train(recipe, config, verbose=0)
    with open(os.path.join(result.run_dir, "history.csv"), encoding="utf-8") as f:
        bleu = [float(row["val_bleu_4"]) for row in csv.DictReader(f)]
    assert len(bleu) == 4, bleu  # one decoded BLEU-4 per epoch
    metrics = result.metrics
    assert metrics["selected_by"] == "val_bleu_4"
    assert metrics["best_epoch"] == int(np.argmax(bleu)) + 1
    # The exported (restored) weights are that epoch's: evaluation decodes the same BLEU-4.
    assert abs(metrics["val_bleu_4"] - max(bleu)) < 1e-6, (metrics["val_bleu_4"], bleu)
