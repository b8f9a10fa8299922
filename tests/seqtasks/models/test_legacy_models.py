"""Keras files written by the pre-composition models (commit 7e8929e) still load, predict,
decode, freeze and fine-tune (fixtures: tests/fixtures/legacy_models, see its README)."""

import hashlib
import json
import os
import zipfile

import keras
import numpy as np
import pytest

from conftest import ROOT

FIXTURES = os.path.join(ROOT, "tests", "fixtures", "legacy_models")
OLD_COMMIT = "7e8929e"
OLD_CLASSES = {
    "seqtasks>RNNAttentionSeq2Seq",
    "seqtasks>TransformerSeq2Seq",
    "seqtasks>RNNCaptioner",
    "seqtasks>TransformerCaptioner",
}
with open(os.path.join(FIXTURES, "manifest.json"), encoding="utf-8") as f:
    MANIFEST = json.load(f)
STEMS = sorted(MANIFEST["models"])


def saved_config(stem):
    with zipfile.ZipFile(os.path.join(FIXTURES, f"{stem}.keras")) as archive:
        return json.loads(archive.read("config.json"))


def load(stem):
    from seqtasks.inference import load_keras_model

    recorded = np.load(os.path.join(FIXTURES, f"{stem}.npz"))
    inputs = {name: recorded[name] for name in recorded.files if name != "logits"}
    return load_keras_model(os.path.join(FIXTURES, f"{stem}.keras")), inputs, recorded["logits"]


def fresh(stem):
    """A new model built from the old file's config by the builder of the same name."""
    from seqtasks.models import captioning, seq2seq

    config = saved_config(stem)
    name = config["registered_name"].split(">")[1]
    module = captioning if "Captioner" in name else seq2seq
    kwargs = {k: v for k, v in config["config"].items() if k not in ("name", "trainable", "dtype")}
    return getattr(module, name)(**kwargs)


def test_the_fixtures_were_written_by_the_old_code():
    """No keras-hub needed: the manifest's commit, the files' hashes and class names."""
    assert MANIFEST["commit"].startswith(OLD_COMMIT)
    assert len(STEMS) == 6
    assert {entry["registered_name"] for entry in MANIFEST["models"].values()} == OLD_CLASSES
    for stem, entry in MANIFEST["models"].items():
        with open(os.path.join(FIXTURES, f"{stem}.keras"), "rb") as f:
            assert hashlib.sha256(f.read()).hexdigest() == entry["sha256"], stem
        assert saved_config(stem)["registered_name"] == entry["registered_name"]


@pytest.mark.parametrize("stem", STEMS)
def test_old_files_load_converted_with_the_same_logits(stem):
    from seqtasks.models.composed import EncoderDecoder

    model, inputs, logits = load(stem)
    assert isinstance(model, EncoderDecoder), type(model)
    assert model.encoder_input_name == MANIFEST["models"][stem]["encoder_input_name"]
    np.testing.assert_allclose(np.asarray(model(inputs)), logits, atol=1e-5)
    old = {name for name in MANIFEST["models"][stem]["layers"] if not name.startswith("dropout")}
    assert old == {layer.name for layer in model.layers if layer.weights}


@pytest.mark.parametrize("stem", STEMS)
def test_old_files_decode_step_by_step_and_freeze_the_same_parts(stem):
    model, inputs, logits = load(stem)
    encoder_input = inputs[model.encoder_input_name]
    tokens = inputs["decoder_token_ids"]
    cache = model.init_cache(encoder_input, 8)
    for index in range(tokens.shape[1]):
        step, cache = model.decode_step(tokens[:, index : index + 1], cache, index)
        real = tokens[:, index] != 0  # a [PAD] step keeps the RNN state instead
        np.testing.assert_allclose(np.asarray(step)[real], logits[real, index], atol=1e-5)
    assert model.freezable_parts() == fresh(stem).freezable_parts() != {}
    assert model.freezable_parts()["encoder"]
    weights = model.cross_attention(encoder_input, tokens)
    if stem == "captioning_rnn_none":
        assert weights is None
    else:
        np.testing.assert_allclose(np.asarray(weights).sum(-1), 1.0, atol=1e-5)


@pytest.mark.parametrize("stem", ["translation_rnn", "captioning_transformer"])
def test_old_files_fine_tune_and_save_in_the_new_format(stem, tmp_path):
    from seqtasks.losses import MaskedCrossEntropy
    from seqtasks.models.seq2seq import freeze

    model, inputs, logits = load(stem)
    frozen = freeze(model, "encoder")
    encoder_weights = [w.numpy() for name in frozen for w in model.get_layer(name).weights]
    before = model.get_layer("logits").weights[0].numpy()
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss=MaskedCrossEntropy())
    targets = np.concatenate([inputs["decoder_token_ids"][:, 1:], np.zeros((2, 1), "int32")], 1)
    history = model.fit(inputs, targets, epochs=2, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    assert not np.array_equal(model.get_layer("logits").weights[0].numpy(), before)
    after = [w.numpy() for name in frozen for w in model.get_layer(name).weights]
    for a, b in zip(encoder_weights, after):
        np.testing.assert_array_equal(a, b)
    path = str(tmp_path / "tuned.keras")
    model.save(path)
    assert saved_config_of(path)["registered_name"] == "seqtasks>EncoderDecoder"
    again = keras.saving.load_model(path, compile=False)
    np.testing.assert_allclose(np.asarray(again(inputs)), np.asarray(model(inputs)), atol=1e-6)
    assert not np.allclose(np.asarray(again(inputs)), logits, atol=1e-5)  # it did train


def saved_config_of(path):
    with zipfile.ZipFile(path) as archive:
        return json.loads(archive.read("config.json"))
