"""Captioning's ``horizontal_flip``: each training image's mirror image is a second
example of each of its captions, with ``left`` and ``right`` swapped; mirror features are
the encoder's features of the flipped image, cached apart from the others."""

import os
from types import SimpleNamespace

import numpy as np
import pytest
import tensorflow as tf

from conftest import TINY_CAPTIONING, caption_csv, flickr_images
from seqtasks.caption_metrics import normalize_caption
from seqtasks.data.captions import CaptionData
from seqtasks.data.teacher_forcing import caption_batches, mirror_caption
from seqtasks.errors import ConfigError
from seqtasks.images import cached_image_features, decode_image
from seqtasks.models.image_encoders import build_image_encoder
from seqtasks.subword import learned_tokenizer

CAPTIONS = [
    ["A dog runs left.", "The dog is on the right of a boy"],
    ["Two men; one turns right"],
    ["a leftover cake, bright lights"],  # words that only contain left / right stay
    ["left " * 30],  # over sequence_length: dropped, and its mirror copy too, counted once
]


@pytest.fixture(autouse=True)
def seeded():
    """The driver's seeding: an earlier test in this worker may have left TensorFlow's
    global seed at 0, under which TensorFlow cannot seed the per-epoch shuffle from a
    tensor (seqtasks.training.environment.seed_everything avoids it the same way)."""
    from seqtasks.training.environment import seed_everything

    seed_everything(1)


def test_mirror_caption_swaps_only_the_words_left_and_right():
    assert mirror_caption("a dog runs to the left of a man on the right") == (
        "a dog runs to the right of a man on the left"
    )
    assert mirror_caption("a leftover cake bright lights") == "a leftover cake bright lights"
    assert mirror_caption("left right left") == "right left right"


def _examples(ds):
    """(input, target tokens without padding) of every example of every batch."""
    out = []
    for inputs, target in ds:
        x = inputs["image_features"] if "image_features" in inputs else inputs["images"]
        first = inputs["decoder_token_ids"][:, :1].numpy()
        full = np.concatenate([first, target.numpy()], axis=1)
        for row, tokens in zip(x.numpy(), full):
            out.append((row, tuple(int(t) for t in tokens if t)))
    return out


def _tokenizer(tmp_path):
    texts = [normalize_caption(c) for refs in CAPTIONS for c in refs]
    texts += [mirror_caption(t) for t in texts]
    return learned_tokenizer(str(tmp_path / "vocab.txt"), texts * 10, 200, 24, lowercase=True)


def _ids(tokenizer, text):
    ids = tokenizer.with_boundaries(tf.constant([text]))[0].numpy()
    return tuple(int(t) for t in ids)


def test_mirrored_grids_double_the_examples_with_swapped_captions(tmp_path):
    tokenizer = _tokenizer(tmp_path)
    data = CaptionData(ids=["a", "b", "c", "d"], captions=CAPTIONS, source="test")
    grids = np.arange(4, dtype=np.float16)[:, None, None] * np.ones((4, 2, 4), np.float16)
    config = SimpleNamespace(sequence_length=24, batch_size=4, seed=0, image_size=32)

    plain, dropped = caption_batches(data, grids, tokenizer, config, shuffle=False)
    assert dropped == 1 and len(_examples(plain)) == 4
    ds, dropped = caption_batches(
        data, grids, tokenizer, config, shuffle=True, mirrored=grids + 10
    )
    examples = _examples(ds)
    assert dropped == 1 and len(examples) == 8
    seen = set()
    for row, tokens in examples:
        value = float(row[0, 0])
        assert (row == value).all()
        image = int(value) % 10
        texts = [normalize_caption(c) for c in CAPTIONS[image]]
        if value >= 10:  # the mirror image: its captions with left and right swapped
            texts = [mirror_caption(t) for t in texts]
        assert tokens in {_ids(tokenizer, t) for t in texts}, (value, tokens)
        seen.add((value, tokens))
    assert len(seen) == 8  # every caption once with its image, once with its mirror image
    mirrored_dog = _ids(tokenizer, "a dog runs right")
    assert (10.0, mirrored_dog) in seen and (0.0, _ids(tokenizer, "a dog runs left")) in seen


def test_mirrored_encoded_images_are_flipped_in_the_pipeline(tmp_path):
    names, captions = flickr_images(tmp_path / "images", 2)
    blobs = [open(tmp_path / "images" / n, "rb").read() for n in names]
    data = CaptionData(ids=names, captions=[c[:1] for c in captions], source="test")
    texts = [normalize_caption(c[0]) for c in captions]
    tokenizer = learned_tokenizer(str(tmp_path / "v.txt"), texts * 10, 200, 48, lowercase=True)
    config = SimpleNamespace(sequence_length=48, batch_size=8, seed=0, image_size=32)
    ds, _ = caption_batches(data, blobs, tokenizer, config, shuffle=False, mirrored=True)
    images = [row for row, _ in _examples(ds)]
    assert len(images) == 4
    for i, blob in enumerate(blobs):
        image = decode_image(tf.constant(blob), 32).numpy()
        np.testing.assert_array_equal(images[i], image)
        np.testing.assert_array_equal(images[2 + i], image[:, ::-1])
        assert not np.array_equal(image, image[:, ::-1])


def test_mirror_features_are_the_flipped_images_features_and_cached_apart(tmp_path):
    folder = tmp_path / "images"
    names, _ = flickr_images(folder, 2)
    encoder = build_image_encoder("mobilenet_v2", 64)

    def features(mirror):
        def read(ids):
            return [open(os.path.join(folder, i), "rb").read() for i in ids]

        return cached_image_features(
            encoder, read, names, image_size=64, source=str(folder),
            cache_dir=str(tmp_path / "cache"), mirror=mirror,
        )  # fmt: skip

    plain, info = features(False)
    assert not info["cache_hit"]
    mirrored, info = features(True)
    assert not info["cache_hit"]  # another entry, not the unflipped one
    assert features(True)[1]["cache_hit"] and features(False)[1]["cache_hit"]
    flipped = tf.stack([
        tf.image.flip_left_right(decode_image(tf.constant(open(folder / n, "rb").read()), 64))
        for n in names
    ])  # fmt: skip
    expected = np.asarray(encoder.predict_on_batch(flipped)).astype(np.float16)
    np.testing.assert_allclose(mirrored.astype(np.float32), expected.astype(np.float32),
                               rtol=1e-2, atol=1e-2)  # fmt: skip
    assert np.abs(mirrored.astype(np.float32) - plain.astype(np.float32)).max() > 0.1


def test_the_recipe_trains_on_mirror_images_and_refuses_feature_vectors(tmp_path):
    from tasks import get_recipe

    recipe = get_recipe("captioning")
    names, captions = flickr_images(tmp_path, 6)
    csv = caption_csv(tmp_path / "captions.csv", names, captions, per_image=2)
    common = dict(TINY_CAPTIONING, data=csv, feature_cache=str(tmp_path / "cache"),
                  validation_split=0.34, run_dir=str(tmp_path / "run"))  # fmt: skip
    counts = {}
    for flip in (False, True):
        config = recipe.make_config(**common, horizontal_flip=flip)
        os.makedirs(tmp_path / f"r{flip}")
        prepared = recipe.prepare(config, recipe.load_data(config), str(tmp_path / f"r{flip}"))
        counts[flip] = sum(int(target.shape[0]) for _, target in prepared.train)
        encoding = prepared.metadata["feature_encoding"]
        assert ("train_mirrored" in encoding) == flip
    assert counts[True] == 2 * counts[False] == 2 * prepared.metadata["data"]["train_captions"]

    ids = [f"item{i}" for i in range(6)]
    np.savez(tmp_path / "vectors.npz", **{i: np.ones(8, np.float32) for i in ids})
    caption_csv(tmp_path / "vectors.csv", ids, captions, per_image=1)
    config = recipe.make_config(
        **dict(common, data=str(tmp_path / "vectors.npz")), horizontal_flip=True
    )
    with pytest.raises(ConfigError, match="'horizontal_flip' needs images; .*vectors.npz"):
        recipe.prepare(config, recipe.load_data(config), str(tmp_path))
