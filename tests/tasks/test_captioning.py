"""The captioning recipe: decoders, image encoders, images, training, export round trips."""

import json
import os
import shutil

import keras
import numpy as np
import pytest
import tensorflow as tf
from click.testing import CliRunner

from cli import cli
from conftest import (
    TINY_CAPTIONING,
    caption_csv,
    flickr_images,
    predict_in_fresh_process,
    run_fresh_python,
)
from seqtasks.caption_metrics import normalize_caption
from seqtasks.decoding import DecodingOptions, beam_search, decode
from seqtasks.errors import ConfigError, DataError
from seqtasks.export import read_metadata
from seqtasks.images import cached_image_features, check_image, decode_images, weights_digest
from seqtasks.models.captioning import RNNCaptioner, TransformerCaptioner, build_captioner
from seqtasks.models.image_encoders import build_image_encoder, grid_shape, split_mobilenet_v2
from seqtasks.text import END_ID, START_ID

VOCAB = 15


def tiny_decoder(kind):
    keras.utils.set_random_seed(0)
    if kind == "transformer":
        model = TransformerCaptioner(
            VOCAB, sequence_length=10, num_positions=4, hidden_dim=8, intermediate_dim=8,
            num_heads=2, num_layers=2, num_encoder_layers=1, dropout=0.0,
        )  # fmt: skip
    else:
        model = RNNCaptioner(
            VOCAB, embedding_dim=6, hidden_dim=8, dropout=0.0,
            attention=kind.removesuffix("_gate"), attention_gate=kind.endswith("_gate"),
        )  # fmt: skip
    features = np.random.default_rng(0).normal(size=(2, 4, 5)).astype(np.float32)
    tokens = np.array([[START_ID, 4, 5, 6, 7], [START_ID, 8, 9, 10, 0]], np.int32)
    model({"image_features": features, "decoder_token_ids": tokens})
    return model, features, tokens


DECODERS = ["none", "additive", "additive_gate", "transformer"]


def test_attention_gate_scales_the_context_by_a_scalar_in_0_1():
    model, features, tokens = tiny_decoder("additive_gate")
    inputs = {"image_features": features, "decoder_token_ids": tokens}
    gate = model.get_layer("attention_gate")
    projection = model.get_layer("feature_projection")
    assert gate.kernel.shape == (8, 1)
    before = np.asarray(model(inputs))
    kernel = projection.kernel.numpy()
    logits = {}
    for bias in (-40.0, 40.0):  # beta = 0 (no context) and beta = 1
        gate.kernel.assign(np.zeros((8, 1), np.float32))
        gate.bias.assign([bias])
        first = np.asarray(model(inputs))
        projection.kernel.assign(kernel * 3.0)  # other keys and values
        logits[bias] = first, np.asarray(model(inputs))
        projection.kernel.assign(kernel)
    np.testing.assert_allclose(*logits[-40.0], atol=1e-6)  # the context is gated off
    assert np.abs(logits[40.0][0] - logits[40.0][1]).max() > 1e-3
    assert np.abs(before - logits[40.0][0]).max() > 1e-4  # the initial gate was not 1
    config = model.get_config()
    again = type(model).from_config(config)
    again(inputs)
    again.set_weights(model.get_weights())
    np.testing.assert_allclose(np.asarray(again(inputs)), logits[40.0][0], atol=1e-6)
    with pytest.raises(ValueError, match="attention_gate needs attention"):
        RNNCaptioner(VOCAB, attention="none", attention_gate=True)


@pytest.mark.parametrize("kind", DECODERS)
def test_cached_steps_equal_the_teacher_forced_pass(kind):
    model, features, tokens = tiny_decoder(kind)
    full = np.asarray(model({"image_features": features, "decoder_token_ids": tokens}))
    assert full.shape == (2, 5, VOCAB)
    cache = model.init_cache(features, 8)
    for index in range(4):  # row 2 is padded at the last position
        logits, cache = model.decode_step(tokens[:, index : index + 1], cache, index)
        np.testing.assert_allclose(np.asarray(logits), full[:, index], atol=1e-5)


@pytest.mark.parametrize("kind", DECODERS)
def test_freezing_the_encoder_part_keeps_the_word_side_training(kind):
    from seqtasks.models.seq2seq import freeze

    model, _, _ = tiny_decoder(kind)
    frozen = freeze(model, "encoder")
    assert frozen and set(frozen) <= set(model.freezable_parts()["encoder"])
    assert not {"target_embedding", "logits"} & set(frozen)
    trainable = {layer.name for layer in model.layers if layer.trainable and layer.weights}
    assert {"target_embedding", "logits"} <= trainable, trainable
    model, _, _ = tiny_decoder(kind)
    assert set(freeze(model, "embeddings")) <= {"target_embedding", "feature_positions"}
    assert not model.get_layer("target_embedding").trainable


@pytest.mark.parametrize("kind", DECODERS)
def test_shared_decoding_runs_on_image_features(kind):
    model, features, _ = tiny_decoder(kind)
    greedy, _ = decode(model, features, DecodingOptions(strategy="greedy"), 8)  # min_length 1
    beam1, _ = beam_search(model, features, 8, beam_size=1, min_length=1)
    greedy, beam1 = np.asarray(greedy), np.asarray(beam1)
    assert greedy.shape == (2, 8) and (greedy[:, 0] == START_ID).all()
    for g, b in zip(greedy, beam1):
        end = list(g).index(END_ID) + 1 if END_ID in g else 8
        np.testing.assert_array_equal(g[:end], b[:end])
    ids, scores = decode(model, features, DecodingOptions(beam_size=3), 8)
    assert np.asarray(ids).shape == (2, 8) and np.all(np.asarray(scores) <= 0)


@pytest.mark.parametrize("kind", ["additive", "additive_gate"])
def test_attention_weights_cover_the_grid_and_the_model_round_trips(kind, tmp_path):
    model, features, tokens = tiny_decoder(kind)
    weights = np.asarray(model.cross_attention(features, tokens))
    assert weights.shape == (2, 5, 4)
    np.testing.assert_allclose(weights.sum(-1), 1.0, atol=1e-5)
    assert tiny_decoder("none")[0].cross_attention(features, tokens) is None
    path = str(tmp_path / "decoder.keras")
    model.save(path)
    again = keras.saving.load_model(path, compile=False)
    inputs = {"image_features": features, "decoder_token_ids": tokens}
    np.testing.assert_allclose(np.asarray(again(inputs)), np.asarray(model(inputs)), atol=1e-6)


def test_image_encoders_give_feature_grids_and_freeze_as_asked(monkeypatch, tmp_path):
    frozen = build_image_encoder("mobilenet_v2", 96)
    assert frozen.output.shape[1:] == (9, 1280) and grid_shape(frozen) == (3, 3)
    assert not frozen.trainable_weights
    tuned = build_image_encoder("mobilenet_v2", 96, fine_tune_blocks=1)
    names = {w.path.split("/")[-2] for w in tuned.trainable_weights}
    assert names and all(n.startswith(("block_16_", "Conv_1")) for n in names), names
    cnn = build_image_encoder("cnn", 64)
    assert cnn.output.shape[1:] == (4, 256) and cnn.trainable_weights
    # Without the shared weights (and no download allowed) the error says what to do.
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(ConfigError, match="KERAS_HOME.*encoder=cnn"):
        build_image_encoder("mobilenet_v2", 96)


def test_png_with_alpha_and_grayscale_jpeg_decode_to_rgb():
    rgba = np.zeros((20, 30, 4), np.uint8)
    rgba[..., 0], rgba[..., 3] = 200, 128
    png = tf.io.encode_png(rgba).numpy()
    gray = tf.io.encode_jpeg(np.full((25, 10, 1), 90, np.uint8)).numpy()
    for blob in (png, gray):
        check_image(blob, "x", decode=True)
    images = decode_images(tf.constant([png, gray]), 32).numpy()
    assert images.shape == (2, 32, 32, 3)
    np.testing.assert_allclose(images[0, 5, 5], [200, 0, 0], atol=1)
    np.testing.assert_allclose(images[1, 5, 5], [90, 90, 90], atol=3)
    with pytest.raises(DataError, match="notes.txt: not an image"):
        check_image(b"hello world", "notes.txt")
    with pytest.raises(DataError, match="broken.jpg: the image cannot be decoded"):
        check_image(b"\xff\xd8\xff\xe0" + b"\x00" * 50, "broken.jpg", decode=True)


def test_feature_cache_is_hit_only_for_the_same_images_and_encoder(tmp_path):
    folder = tmp_path / "images"
    names, _ = flickr_images(folder, 3)
    encoder = build_image_encoder("mobilenet_v2", 64)

    def features(encoder, source, ids):
        def read(ids):
            return [open(os.path.join(source, i), "rb").read() for i in ids]

        return cached_image_features(
            encoder, read, ids, image_size=64, source=str(source), cache_dir=str(tmp_path / "c")
        )

    first, info = features(encoder, folder, names)
    assert first.shape == (3, 4, 1280) and first.dtype == np.float16 and not info["cache_hit"]
    again, info = features(encoder, folder, names)
    assert info["cache_hit"]
    np.testing.assert_array_equal(again, first)
    assert not features(encoder, folder, names[:2])[1]["cache_hit"]  # other ids
    # The same file names in another folder, one image changed: a miss, new features.
    other = tmp_path / "other"
    flickr_images(other, 3)
    os.replace(other / names[1], other / "tmp.jpg")
    os.replace(other / names[0], other / names[1])
    os.replace(other / "tmp.jpg", other / names[0])
    swapped, info = features(encoder, other, names)
    assert not info["cache_hit"]
    np.testing.assert_array_equal(swapped[0], first[1])
    # Another encoder (random weights): a miss.
    random = build_image_encoder("mobilenet_v2", 64, weights="none")
    assert not features(random, folder, names)[1]["cache_hit"]


# --- training and export -------------------------------------------------------------------


def test_overfit_model_returns_its_training_captions(overfit):
    recipe, result = overfit["recipe"], overfit["result"]
    assert overfit["stop"].reached, overfit["stop"].describe()
    expected = [normalize_caption(c[0]) for c in overfit["captions"]]
    paths = [str(overfit["root"] / "images" / n) for n in overfit["names"]]
    from seqtasks.export import read_metadata

    metadata = read_metadata(result.export_path)
    predictions = recipe.predict(result.export_path, metadata, paths)
    assert [p["caption"] for p in predictions] == expected
    assert all(-1.0 < p["score"] <= 0 for p in predictions)
    assert result.metrics["val_bleu_4"] == pytest.approx(100.0)
    assert metadata["signature"]["inputs"] == {
        "image_bytes": "tf.string [None]: encoded JPEG, PNG, GIF or BMP images"
    }
    report = recipe.evaluate_export(result.export_path, metadata, data=overfit["csv"])
    assert report["bleu_4"] == pytest.approx(100.0) and report["images"] == 5


FRESH_PROCESS = """
import json, sys
import tensorflow as tf
import tensorflow_text  # noqa: F401  (WordPiece ops)
fn = tf.saved_model.load(sys.argv[1]).signatures["serving_default"]
blobs = [open(p, "rb").read() for p in sys.argv[2:]]
out = {}
for n in (1, 3):
    result = fn(image_bytes=tf.constant(blobs[:n]))
    out[n] = {"caption": [c.decode() for c in result["caption"].numpy()],
              "score": result["score"].numpy().tolist()}
print(json.dumps({"out": out}))
"""


def test_export_in_a_fresh_process_matches_the_in_memory_model(overfit, tmp_path):
    from tasks.captioning import make_generator

    result = overfit["result"]
    # One JPEG as it is, one as PNG with an alpha channel, one as grayscale JPEG.
    pixels = tf.io.decode_jpeg(overfit["images"][1]).numpy()
    alpha = np.concatenate([pixels, np.full(pixels.shape[:2] + (1,), 255, np.uint8)], -1)
    paths = [str(overfit["root"] / "images" / overfit["names"][0])]
    paths.append(str(tmp_path / "alpha.png"))
    open(paths[1], "wb").write(tf.io.encode_png(alpha).numpy())
    paths.append(str(tmp_path / "gray.jpg"))
    open(paths[2], "wb").write(
        tf.io.encode_jpeg(tf.image.rgb_to_grayscale(pixels), quality=95).numpy()
    )
    fresh = run_fresh_python(FRESH_PROCESS, result.export_path, *paths, cwd=tmp_path)
    generator = make_generator(result.model, result.prepared.info, result.config)
    captions, scores = generator.generate_all([open(p, "rb").read() for p in paths])
    assert fresh["out"]["3"]["caption"] == captions
    np.testing.assert_allclose(fresh["out"]["3"]["score"], scores, atol=1e-4)
    assert fresh["out"]["1"]["caption"] == captions[:1]
    # The PNG with alpha is the same picture as training image 2: the same caption,
    # whatever the model learned.
    train_image, _ = generator.generate_all([overfit["images"][1]])
    assert captions[1] == train_image[0]


def test_feature_vector_data_trains_and_exports_a_features_signature(tmp_path):
    from seqtasks.export import read_metadata
    from seqtasks.training import train
    from tasks import get_recipe

    _, captions = flickr_images(tmp_path / "unused", 12)
    ids = [f"item{i}" for i in range(12)]
    vectors = np.random.default_rng(0).normal(size=(12, 16)).astype(np.float32)
    np.savez(tmp_path / "vectors.npz", **dict(zip(ids, vectors)))
    caption_csv(tmp_path / "vectors.csv", ids, captions, per_image=2)
    recipe = get_recipe("captioning")
    config = recipe.make_config(
        **TINY_CAPTIONING, model="lstm", data=str(tmp_path / "vectors.npz"),
        export_dir=str(tmp_path / "export"), run_dir=str(tmp_path / "run"),
    )  # fmt: skip
    result = train(recipe, config, verbose=0)
    metadata = read_metadata(result.export_path)
    assert metadata["inputs"] == "features" and metadata["feature_shape"] == [16]
    loaded = tf.saved_model.load(result.export_path).signatures["serving_default"]
    assert list(loaded.structured_input_signature[1]) == ["features"]
    assert loaded.structured_input_signature[1]["features"].shape.as_list() == [None, 16]
    out = loaded(features=tf.constant(vectors[:3]))
    assert out["caption"].shape == (3,) and out["score"].dtype == tf.float32
    np.save(tmp_path / "one.npy", vectors[0])
    predictions = recipe.predict(result.export_path, metadata, [str(tmp_path / "one.npy")])
    assert predictions[0]["caption"] == out["caption"].numpy()[0].decode()
    report = recipe.evaluate_export(
        result.export_path, metadata, data=str(tmp_path / "vectors.npz")
    )
    assert report["images"] == 12 and report["references_per_image"] == [2, 2]
    assert {"bleu_1", "bleu_2", "bleu_3", "bleu_4"} <= set(report)


def test_split_mobilenet_v2_equals_the_whole_encoder_and_keeps_batch_norm_in_inference():
    x = np.random.default_rng(0).uniform(0, 255, (3, 96, 96, 3)).astype(np.float32)
    for blocks, frozen_grid in ((1, (9, 160)), (4, (36, 96))):  # block_13 halves the grid
        encoder = build_image_encoder("mobilenet_v2", 96, fine_tune_blocks=blocks)
        frozen, top = split_mobilenet_v2(encoder, blocks)
        assert frozen.output.shape[1:] == frozen_grid and grid_shape(frozen) == (
            int(frozen_grid[0] ** 0.5),
        ) * 2
        assert not frozen.trainable_weights and top.trainable_weights
        grid = frozen(x)
        whole = np.asarray(encoder(x, training=False))
        # training=True is ignored: batch normalisation keeps its moving statistics.
        np.testing.assert_array_equal(np.asarray(top(grid, training=True)), whole)
    names = {w.path.split("/")[-2] for w in top.trainable_weights}
    assert all(n.startswith(("block_16_", "block_15_", "block_14_", "block_13_", "Conv_1")) for n in names)
    with pytest.raises(ConfigError, match="fine_tune_blocks.*1 to 16"):
        split_mobilenet_v2(encoder, 0)
    # A Transformer captioner sizes its position embedding to the backbone's 3x3 grid,
    # not to the 6x6 grid it is fed; its config round trip keeps the backbone.
    from tasks import get_recipe

    config = get_recipe("captioning").make_config(
        model="transformer", hidden_dim=8, intermediate_dim=8, num_heads=2, num_layers=1,
        dropout=0.0,
    )  # fmt: skip
    captioner = build_captioner(config, VOCAB, (36, 96), backbone=top)
    assert captioner.encoder.num_positions == 9
    with pytest.raises(ValueError, match="num_positions=36.*9 positions"):
        TransformerCaptioner(VOCAB, 10, 36, hidden_dim=8, num_heads=2, backbone=top)
    tokens = np.array([[START_ID, 4, 5]], np.int32)
    inputs = {"image_features": np.asarray(grid[:1]), "decoder_token_ids": tokens}
    logits = np.asarray(captioner(inputs))
    again = captioner.__class__.from_config(captioner.get_config())
    again(inputs)
    assert len(again.weights) == len(captioner.weights)
    again.set_weights(captioner.get_weights())
    np.testing.assert_allclose(np.asarray(again(inputs)), logits, atol=1e-5)


def test_fine_tuning_trains_only_the_top_block_on_cached_features_and_the_export_uses_it(
    tmp_path,
):
    from seqtasks.fine_tuning_schedule import LayerwiseAdam
    from seqtasks.training import train
    from tasks import get_recipe
    from tasks.captioning import make_generator
    from tasks.captioning.recipe import backbone_of

    names, captions = flickr_images(tmp_path / "images", 8)
    csv = caption_csv(tmp_path / "images" / "c.csv", names, captions, per_image=2)
    recipe = get_recipe("captioning")
    config = recipe.make_config(
        **TINY_CAPTIONING, data=csv, fine_tune_blocks=1, learning_rate=0.01,
        export_dir=str(tmp_path / "export"), run_dir=str(tmp_path / "run"),
        feature_cache=str(tmp_path / "cache"),
    )  # fmt: skip
    fresh = build_image_encoder("mobilenet_v2", 96)
    result = train(recipe, config, verbose=0)
    backbone = backbone_of(result.model)
    fresh_values = {w.path: w.numpy() for w in fresh.weights}
    changed = {
        w.path.split("/")[-2]
        for w in backbone.weights
        if not np.allclose(w.numpy(), fresh_values[w.path])
    }
    assert changed and all(n.startswith(("block_16_", "Conv_1")) for n in changed), changed
    # Batch normalisation stayed in inference mode: its moving statistics did not move.
    moving = [w for w in backbone.weights if "moving" in w.path]
    assert moving and all(np.array_equal(w.numpy(), fresh_values[w.path]) for w in moving)
    # The frozen part is the cached encoder: (9, 160) grids at 96 px, weights unchanged.
    frozen = result.prepared.info.image_encoder
    assert frozen.output.shape[1:] == (9, 160) and not frozen.trainable_weights
    for w in frozen.weights:
        np.testing.assert_array_equal(w.numpy(), fresh_values[w.path])
    assert len(os.listdir(tmp_path / "cache")) == 4  # train and validation: .npy + .json
    # The backbone's variables learn at fine_tune_lr_factor (0.1) times the rate.
    optimizer = result.model.optimizer
    assert isinstance(optimizer, LayerwiseAdam)
    assert {optimizer.groups.get(w.path) for w in backbone.trainable_weights} == {0}
    assert float(optimizer._group_factor(backbone.trainable_weights[0])) == pytest.approx(0.1)

    generator = make_generator(result.model, result.prepared.info, config)
    assert generator.source.feature_dtype == "float16"  # trained on the cached grids
    images = [open(tmp_path / "images" / n, "rb").read() for n in names[:2]]
    loaded = tf.saved_model.load(result.export_path).signatures["serving_default"]
    out = loaded(image_bytes=tf.constant(images))
    captions, scores = generator.generate_all(images)
    assert [c.decode() for c in out["caption"].numpy()] == captions
    np.testing.assert_allclose(out["score"].numpy(), scores, atol=1e-4)
    # Attention maps over the backbone's grid, from the export's Keras models.
    plotted = recipe.plot_captions(
        result.export_path, read_metadata(result.export_path),
        [str(tmp_path / "images" / names[0])], str(tmp_path / "a.png"), attention=True,
    )  # fmt: skip
    assert plotted["captions"][0]["caption"] == captions[0]
    assert os.path.getsize(tmp_path / "a.png") > 0
    extra = os.path.join(result.export_path, "assets.extra")
    decoder = keras.saving.load_model(os.path.join(extra, "decoder.keras"), compile=False)
    assert len(backbone_of(decoder).weights) == len(backbone.weights)
    for w, t in zip(backbone_of(decoder).weights, backbone.weights):
        np.testing.assert_array_equal(w.numpy(), t.numpy())
    # Fine-tuning the export: the backbone is part of the decoder; --freeze encoder keeps it.
    tuned = run(
        "finetune", os.path.dirname(result.export_path), "--data", csv, "--freeze", "encoder",
        "--epochs", "1", "--learning-rate", "1e-2", "--run-dir", str(tmp_path / "run2"), "--json",
    )  # fmt: skip
    assert tuned.exit_code == 0, tuned.output
    summary = json.loads(tuned.stdout)
    frozen_layers = read_metadata(summary["export"])["finetune"]["frozen_layers"]
    assert frozen_layers[0] == "backbone_top", frozen_layers
    second = keras.saving.load_model(
        os.path.join(summary["export"], "assets.extra", "decoder.keras"), compile=False
    )
    for a, b in zip(backbone_of(second).weights, backbone.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert not np.array_equal(
        second.get_layer("logits").weights[0].numpy(), result.model.get_layer("logits").weights[0].numpy()
    )
    grids = result.prepared.info.validation_inputs[:1]  # the one validation image
    inputs = {"image_features": grids, "decoder_token_ids": np.array([[START_ID, 4, 5]], np.int32)}
    np.testing.assert_allclose(
        np.asarray(decoder(inputs)), np.asarray(result.model(inputs)), atol=1e-5
    )


def run(*args):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


# Here rather than in test_finetune_seq2seq.py: the overfit captioner is trained once per
# pytest worker that uses it, and each test file runs on one worker (--dist loadfile).
def test_captioning_finetune_on_a_csv_captions_images_in_a_fresh_process(tmp_path, overfit):
    model_dir = shutil.copytree(os.path.dirname(overfit["result"].export_path), tmp_path / "model")
    # Other real photos in a folder of their own, their captions in a CSV elsewhere.
    names, captions = flickr_images(tmp_path / "photos", 6, start=20)
    shortest = [sorted(refs, key=len) for refs in captions]  # fit sequence_length=48
    data = caption_csv(tmp_path / "photos.csv", names, shortest, per_image=2)
    result = run(
        "finetune", str(model_dir), "--data", data, "--image-dir", str(tmp_path / "photos"),
        "--freeze", "encoder", "--epochs", "1", "--learning-rate", "1e-2",
        "--run-dir", str(tmp_path / "run"), "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["export"] == str(model_dir / "2")
    oov = summary["out_of_vocabulary"]["captions"]
    # The source learned 5 images' captions: most new caption words are not whole tokens.
    assert 0.2 < oov["split_words"] <= 1 and oov["words"] >= 12 * 5
    assert oov["pieces_per_word"] > oov["training_pieces_per_word"] > 0
    metadata = read_metadata(summary["export"])
    assert metadata["finetuned_from"] == str(model_dir / "1")
    assert metadata["inputs"] == "images" and metadata["data"]["examples"] == 6
    assert metadata["finetune"]["frozen_layers"] == ["feature_projection", "bridge_0", "bridge_1"]

    extra = [model_dir / v / "assets.extra" for v in ("1", "2")]
    decoders = [keras.saving.load_model(e / "decoder.keras", compile=False) for e in extra]
    for name in ("feature_projection", "bridge_0", "bridge_1"):
        for a, b in zip(*(d.get_layer(name).weights for d in decoders)):
            np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=name)
    before, after = (d.get_layer("logits").weights[0].numpy() for d in decoders)
    assert not np.array_equal(before, after)
    # The new images went through the export's encoder; the feature cache is keyed by it.
    encoder = keras.saving.load_model(extra[0] / "image_encoder.keras", compile=False)
    cache = metadata["feature_encoding"]["train"]["cache"]
    with open(cache[: -len(".npy")] + ".json", encoding="utf-8") as f:
        assert json.load(f)["encoder"]["weights"] == weights_digest(encoder)

    image = str(tmp_path / "photos" / names[0])
    (row,) = predict_in_fresh_process(model_dir, image, cwd=tmp_path)
    assert row["image"] == image and isinstance(row["caption"], str) and row["score"] <= 0
