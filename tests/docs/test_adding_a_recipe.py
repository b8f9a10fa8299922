"""docs/adding-a-recipe.md: its worked example (docs/examples/language_id.py) is a real recipe
that trains, exports, predicts and evaluates through the shared driver."""

import importlib.util
import json
import os
import sys

import numpy as np

from conftest import ROOT, SHARED_DATA, run_fresh_python

ANKI = os.path.join(SHARED_DATA, "anki", "spa-eng.zip")


def load_example():
    path = os.path.join(ROOT, "docs", "examples", "language_id.py")
    spec = importlib.util.spec_from_file_location("language_id_example", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


FRESH = """
import json, sys
import tensorflow as tf
fn = tf.saved_model.load(sys.argv[1]).signatures["serving_default"]
out = fn(text=tf.constant(json.loads(sys.argv[2])))
print(json.dumps({"label": [l.decode() for l in out["label"].numpy()]}))
"""


def test_the_worked_example_trains_exports_and_serves(tmp_path):
    from seqtasks.export import read_metadata
    from seqtasks.training import train

    example = load_example()
    recipe = example.LanguageIdRecipe()
    config = recipe.make_config(
        data=ANKI,
        max_examples=200,
        epochs=2,
        batch_size=32,
        export_dir=str(tmp_path / "export"),
        run_dir=str(tmp_path / "run"),
    )
    result = train(recipe, config, verbose=0)
    assert result.metrics["epochs_run"] == 2 and 0.0 <= result.metrics["val_accuracy"] <= 1.0
    metadata = read_metadata(result.export_path)
    assert metadata["task"] == "language-id" and metadata["labels"] == ["en", "es"]
    assert os.path.isfile(tmp_path / "run" / "vocabulary.txt")

    sentences = ["I am very tired today.", "Estoy muy cansado hoy.", ""]
    predictions = recipe.predict(result.export_path, metadata, sentences)
    assert [p["text"] for p in predictions] == sentences
    assert all(p["label"] in ("en", "es") for p in predictions)
    assert recipe.format_prediction(predictions[0]) == f"{predictions[0]['label']}\t{sentences[0]}"
    report = recipe.evaluate_export(result.export_path, metadata, data=ANKI, max_examples=20)
    assert report["examples"] == 40 and 0.0 <= report["accuracy"] <= 1.0

    # The export needs no seqtasks code, and answers as the in-memory model does.
    fresh = run_fresh_python(FRESH, result.export_path, json.dumps(sentences), cwd=tmp_path)
    vectorizer = result.prepared.info.vectorizer
    import tensorflow as tf

    ids = vectorizer.pad(vectorizer(tf.constant(sentences)))
    in_memory = np.argmax(np.asarray(result.model(ids)), axis=-1)
    assert fresh["label"] == [["en", "es"][i] for i in in_memory]
