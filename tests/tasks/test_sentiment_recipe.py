"""End-to-end: train tiny models on real SST-2 rows, export, reload in a fresh process."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf

from conftest import TINY, run_fresh_python
from seqtasks.export import read_metadata, resolve_export, versions
from seqtasks.models.encoders import ENCODERS
from seqtasks.training import train
from tasks import get_recipe

FRESH_PROCESS = r"""
import json, sys
import numpy as np
import tensorflow as tf
loaded = tf.saved_model.load(sys.argv[1])
fn = loaded.signatures["serving_default"]
texts = json.load(open(sys.argv[2], encoding="utf-8"))
out = fn(text=tf.constant(texts))
assert not any(m == "seqtasks" or m.startswith(("seqtasks.", "tasks")) for m in sys.modules)
json.dump({
    "inputs": {k: [str(v.dtype.name), v.shape.as_list()] for k, v in fn.structured_input_signature[1].items()},
    "probabilities": out["probabilities"].numpy().tolist(),
    "label": [x.decode() for x in out["label"].numpy()],
}, sys.stdout)
print()
"""


@pytest.mark.parametrize("kind", ENCODERS)
def test_every_model_trains_and_exports(tmp_path, sst2_sample, kind):
    recipe = get_recipe("sentiment")
    config = recipe.make_config(
        data=sst2_sample,
        model=kind,
        export_dir=str(tmp_path / "export"),
        run_dir=str(tmp_path / "run"),
        **TINY,
    )
    result = train(recipe, config, verbose=0)
    assert result.export_path == str(tmp_path / "export" / "1")
    metadata = read_metadata(result.export_path)
    assert metadata["model"] == kind and metadata["labels"] == ["0", "1"]
    assert (
        metadata["data"]["train_examples"] == 216 and metadata["data"]["validation_examples"] == 24
    )
    assert 0.0 <= metadata["metrics"]["val_accuracy"] <= 1.0
    for name in ("config.json", "metrics.json", "history.csv", "best.weights.h5", "vocabulary.txt"):
        assert os.path.isfile(tmp_path / "run" / name), name
    assert os.listdir(tmp_path / "run" / "logs")  # TensorBoard event files


def test_export_layout_and_metadata(trained):
    path = trained.export_path
    for name in (
        "saved_model.pb",
        "variables",
        "assets/vocabulary.txt",
        "assets.extra/metadata.json",
        "assets.extra/model.keras",
    ):
        assert os.path.exists(os.path.join(path, name)), name
    metadata = read_metadata(path)
    assert metadata["task"] == "sentiment" and metadata["task_type"] == "many-to-one"
    assert os.path.basename(path) == "1"
    assert {"tensorflow", "keras", "keras-hub"} <= set(metadata["versions"])
    assert metadata["metrics"]["val_accuracy"] == pytest.approx(trained.metrics["val_accuracy"])
    assert len(metadata["data"]["sha256"]) == 64
    assert resolve_export(os.path.dirname(path)) == path
    assert os.stat(path).st_mode & 0o755 == 0o755  # readable by a server running as another user


def test_fresh_process_matches_in_memory_model(trained, tmp_path):
    long_text = " ".join(["wonderful"] * 5000 + ["dreadful"] * 5000)
    texts = [
        "a gorgeous , witty , seductive movie .",
        "",
        "the plot is nothing but boilerplate clichés",
        long_text,
        "Émouvant ! <br /> un film 🎬",
        "it 's a charming and often affecting journey .",
        "unwatchable",
    ]
    assert len(long_text.split()) == 10000
    vectorizer, model = trained.prepared.info.vectorizer, trained.model
    expected = model.predict_on_batch(vectorizer.pad(vectorizer(tf.constant(texts))))
    texts_file = tmp_path / "texts.json"
    for batch in (texts[:1], texts):
        texts_file.write_text(json.dumps(batch), encoding="utf-8")
        served = run_fresh_python(FRESH_PROCESS, trained.export_path, texts_file, cwd=tmp_path)
        assert served["inputs"] == {"text": ["string", [None]]}
        probabilities = np.array(served["probabilities"], dtype=np.float32)
        assert probabilities.shape == (len(batch), 2)
        np.testing.assert_allclose(probabilities, expected[: len(batch)], atol=1e-5)
        labels = read_metadata(trained.export_path)["labels"]
        assert served["label"] == [labels[i] for i in np.argmax(probabilities, axis=-1)]


def test_same_seed_same_metrics(tmp_path, sst2_sample):
    recipe = get_recipe("sentiment")
    runs = []
    for i in range(2):
        config = recipe.make_config(
            data=sst2_sample,
            model="gru",
            seed=7,
            export_dir=str(tmp_path / f"e{i}"),
            run_dir=str(tmp_path / f"r{i}"),
            **TINY,
        )
        runs.append(train(recipe, config, verbose=0).metrics)
    assert runs[0]["val_loss"] == runs[1]["val_loss"]
    assert runs[0]["val_accuracy"] == runs[1]["val_accuracy"]


def test_versions_increase_and_failed_export_leaves_nothing(tmp_path):
    from seqtasks import export as exporting

    base = str(tmp_path / "model")

    def write_ok(path):
        assert os.path.isdir(path) and not os.listdir(path)
        open(os.path.join(path, "saved_model.pb"), "wb").close()

    assert exporting.write_version(base, write_ok, {}).endswith("/1")
    assert exporting.write_version(base, write_ok, {}).endswith("/2")

    def write_fails(path):
        write_ok(path)
        raise KeyboardInterrupt  # interrupted half-way

    with pytest.raises(KeyboardInterrupt):
        exporting.write_version(base, write_fails, {})
    assert sorted(os.listdir(base)) == ["1", "2"]  # no temporary folder left behind
    assert versions(base) == [1, 2]
    metadata = json.load(open(os.path.join(base, "2", "assets.extra", "metadata.json")))
    assert metadata["format"] == "seqtasks-export"
    assert metadata["format_version"] == exporting.EXPORT_FORMAT_VERSION == 2


def test_other_backends_keep_the_model_instead_of_exporting(tmp_path, sst2_sample, monkeypatch):
    import keras

    recipe = get_recipe("sentiment")
    config = recipe.make_config(
        data=sst2_sample,
        model="lstm",
        export_dir=str(tmp_path / "export"),
        run_dir=str(tmp_path / "run"),
        **TINY,
    )
    import seqtasks.training.driver

    # Training itself runs on TensorFlow here (setting keras.backend.backend to "jax" made
    # Keras' data adapters take their NumPy path: 43 s instead of 3 s); only the export
    # decision sees another backend.
    monkeypatch.setattr(seqtasks.training.driver, "writes_savedmodels", lambda: False)
    result = train(recipe, config, verbose=0)
    assert result.export_path is None
    assert not os.path.exists(tmp_path / "export")
    reloaded = keras.saving.load_model(tmp_path / "run" / "model.keras")
    ids = np.array([[5, 6, 7, 0]], dtype="int32")
    np.testing.assert_allclose(
        reloaded.predict_on_batch(ids), result.model.predict_on_batch(ids), atol=1e-6
    )
