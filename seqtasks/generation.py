"""One generation core for every recipe that outputs a sequence.

A :class:`Generator` turns a batch of raw inputs into text: its *source* (the
encoder hook) turns the inputs into the model's encoder input, the shared
decoding loop (:func:`seqtasks.decoding.decode`: greedy, sampling or beam
search) generates target token ids, and the target tokenizer detokenizes them.
The same object serves evaluation during training (called eagerly, in batches,
by :meth:`Generator.generate_all`) and the SavedModel (its :meth:`~Generator.serve`
and :meth:`~Generator.score` functions are the signatures), so the export runs
exactly the code that was evaluated.

Sources (all ``tf.Module`` objects, so an export tracks their lookup tables and
weights):

- :class:`TextSource`: raw strings -> source token ids (translation);
- :class:`ImageSource`: encoded image bytes -> CNN feature grids (captioning);
- :class:`FeatureSource`: feature vectors or grids as they are (captioning on
  precomputed features).

A recipe differs from another only in its source, its model and its output name.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from seqtasks.decoding import decode, make_sampler
from seqtasks.images import decode_images
from seqtasks.signature_module import SignatureModule
from seqtasks.tokens import END_ID, PAD_ID


class TextSource(SignatureModule):
    """Raw strings -> int32 source token ids ``(batch, source_length)``, right-padded with 0.

    ``source_length`` is at least 1, so an empty batch row still has an encoder
    input; an empty or whitespace-only string counts as empty (see :meth:`empty`).

    Args:
        tokenizer: a :class:`~seqtasks.subword.SubwordTokenizer` (strings -> ragged ids).
    """

    input_name = "text"

    def __init__(self, tokenizer):
        super().__init__()
        self.tokenizer = tokenizer

    def spec(self) -> tf.TensorSpec:
        return tf.TensorSpec([None], tf.string, name=self.input_name)

    def encode(self, text):
        """tf.string ``(B,)`` -> int32 ``(B, S)`` right-padded, ``S >= 1``."""
        ids = self.tokenizer(text).to_tensor(default_value=PAD_ID)
        return tf.pad(ids, [[0, 0], [0, tf.maximum(0, 1 - tf.shape(ids)[1])]])

    def empty(self, text):
        """bool ``(B,)``: rows with nothing to translate (an empty output, score 0)."""
        return tf.equal(tf.strings.strip(text), "")

    def batch(self, chunk):
        return tf.constant(chunk, tf.string)


class ImageSource(SignatureModule):
    """Encoded images (JPEG, PNG, GIF, BMP bytes) -> float32 feature grids ``(B, P, C)``.

    Args:
        image_encoder: a Keras model, pixels ``(B, H, W, 3)`` -> features ``(B, P, C)``.
        image_size: the encoder's input size in pixels (images are resized to it).
        feature_dtype: ``"float16"`` when the decoder trained on cached float16
            features: the encoder's output is rounded the same way, so the export
            sees exactly what training saw; None leaves it float32.
    """

    input_name = "image_bytes"

    def __init__(self, image_encoder, image_size: int, feature_dtype: str | None = None):
        super().__init__()
        self.image_encoder = image_encoder
        self.image_size = int(image_size)
        self.feature_dtype = feature_dtype

    def spec(self) -> tf.TensorSpec:
        return tf.TensorSpec([None], tf.string, name=self.input_name)

    def encode(self, image_bytes):
        """tf.string ``(B,)`` encoded images -> float32 feature grids ``(B, P, C)``."""
        images = decode_images(image_bytes, self.image_size)
        features = self.image_encoder(images, training=False)
        if self.feature_dtype:
            features = tf.cast(tf.cast(features, self.feature_dtype), tf.float32)
        return features

    def empty(self, image_bytes):
        return None  # every image is decoded (an undecodable one is an error)

    def batch(self, chunk):
        return tf.constant(chunk, tf.string)


class FeatureSource(SignatureModule):
    """Precomputed image features, float32 ``(B, C)`` or ``(B, P, C)`` -> ``(B, P, C)``.

    Args:
        feature_shape: the shape of one example's features, ``(C,)`` or ``(P, C)``;
            None traces a graph per input shape (no fixed signature).
    """

    input_name = "features"

    def __init__(self, feature_shape=None):
        super().__init__()
        self.feature_shape = None if feature_shape is None else tuple(feature_shape)

    def spec(self) -> tf.TensorSpec | None:
        if self.feature_shape is None:
            return None
        return tf.TensorSpec([None, *self.feature_shape], tf.float32, name=self.input_name)

    def encode(self, features):
        features = tf.cast(features, tf.float32)
        if features.shape.rank == 2:
            features = features[:, None, :]
        return features

    def empty(self, features):
        return None

    def batch(self, chunk):
        return tf.constant(np.asarray(chunk, np.float32))


class Generator(SignatureModule):
    """Raw inputs -> generated text and scores: encode, decode, detokenize; exportable.

    Args:
        model: a trained encoder-decoder (:mod:`seqtasks.models.seq2seq`) or
            captioner (:mod:`seqtasks.models.captioning`): ``init_cache`` and
            ``decode_step`` for decoding, ``encoder_input_name`` for scoring.
        tokenizer: the target :class:`~seqtasks.subword.SubwordTokenizer`.
        options: how to decode (:class:`~seqtasks.decoding.DecodingOptions`).
        max_length: decoded length in tokens, ``[START]`` and ``[END]`` included.
        source: the encoder hook: :class:`TextSource`, :class:`ImageSource` or
            :class:`FeatureSource`.
        output_name: the name of the text output of :meth:`serve`
            (``"translation"``, ``"caption"``).
    """

    def __init__(self, model, tokenizer, options, max_length: int, source, output_name: str):
        super().__init__()
        self.model = model
        self.tokenizer = tokenizer
        self.options = options
        self.max_length = int(max_length)
        self.source = source
        self.output_name = output_name
        self.sampler = make_sampler(options, tokenizer.vocabulary_size)
        seed_generator = getattr(self.sampler, "seed_generator", None)
        if seed_generator is not None:  # tracked, so an export saves the sampling seed state
            self.sampler_seed_state = seed_generator.state
        spec = source.spec()
        # The traced serving function: eager batches and the export's serving_default.
        self.serving_function = tf.function(
            self.serve, input_signature=None if spec is None else [spec]
        )

    def spec(self):
        """The input spec of :meth:`serve` (the source's)."""
        return self.source.spec()

    def score_signature(self) -> list:
        """The input signature of :meth:`score`: the source's spec and ``target``."""
        return [self.source.spec(), tf.TensorSpec([None], tf.string, name="target")]

    def generate(self, inputs):
        """Decoded target ids int32 ``(B, max_length)`` and scores float32 ``(B,)``."""
        return self.decode(self.source.encode(inputs))

    def decode(self, encoded):
        """Decode an encoded batch (the source's output): ids and scores as :meth:`generate`."""
        return decode(self.model, encoded, self.options, self.max_length, self.sampler)

    def serve(self, inputs):
        """A batch of raw inputs ``(B, ...)`` -> ``{output_name: tf.string (B,), "score":
        float32 (B,)}``; the score is ``log P(output | input) / its length in tokens``
        (``[END]`` included), 0 for an empty input."""
        token_ids, scores = self.generate(inputs)
        return self._outputs(inputs, self.tokenizer.detokenize(token_ids), scores)

    def _outputs(self, inputs, texts, scores):
        empty = self.source.empty(inputs)
        if empty is not None:
            texts, scores = tf.where(empty, "", texts), tf.where(empty, 0.0, scores)
        return {self.output_name: texts, "score": scores}

    def score(self, inputs, target):
        """Teacher-forced log-likelihood of ``target`` (tf.string ``(B,)``) given ``inputs``.

        Returns:
            ``{"log_likelihood": float32 (B,), summed over the target's tokens,
            [END] included; "tokens": int32 (B,)}``.
        """
        encoded = self.source.encode(inputs)
        target_ids = self.tokenizer.with_boundaries(target).to_tensor(default_value=PAD_ID)
        logits = self.model(
            {self.model.encoder_input_name: encoded, "decoder_token_ids": target_ids[:, :-1]},
            training=False,
        )
        y = target_ids[:, 1:]
        log_probs = tf.nn.log_softmax(tf.cast(logits, tf.float32))
        picked = tf.gather(log_probs, y, batch_dims=2)
        mask = tf.cast(tf.not_equal(y, PAD_ID), tf.float32)
        return {
            "log_likelihood": tf.reduce_sum(picked * mask, axis=1),
            "tokens": tf.cast(tf.reduce_sum(mask, axis=1), tf.int32),
        }

    def generate_all(self, inputs, batch_size: int = 64) -> tuple[list[str], list[float]]:
        """Texts and scores of a list of inputs (strings, image bytes, or feature arrays).

        With the TensorFlow backend each batch runs the traced :meth:`serve` (the
        export's code path); with another Keras backend (JAX, PyTorch) the decoding
        loop runs on that backend and only encoding and detokenization use TensorFlow.
        """
        texts, scores = [], []
        for start in range(0, len(inputs), batch_size):
            batch = self.source.batch(inputs[start : start + batch_size])
            if keras.backend.backend() == "tensorflow":
                out = self.serving_function(batch)
            else:
                ids, values = self.decode(self.source.encode(batch).numpy())
                ids = tf.constant(keras.ops.convert_to_numpy(ids))
                values = tf.constant(keras.ops.convert_to_numpy(values), tf.float32)
                out = self._outputs(batch, self.tokenizer.detokenize(ids), values)
            texts.extend(t.decode("utf-8") for t in out[self.output_name].numpy())
            scores.extend(float(v) for v in out["score"].numpy())
        return texts, scores

    def attention(self, inputs) -> tuple:
        """Decode ``inputs`` and recompute the model's cross-attention over each result.

        For plots: the weights are those of the model's (last) decoder layer given the
        decoded tokens (``model.cross_attention``; Transformers: averaged over heads).

        Args:
            inputs: a batch of raw inputs, as :meth:`generate` takes.

        Returns:
            ``(encoded, ids, scores, maps)``: the source's encoding of ``inputs``
            (NumPy), the decoded ids int32 ``(B, max_length)``, the scores float32
            ``(B,)``, and per input ``(tokens, weights)``: the generated token ids
            after ``[START]`` up to and including ``[END]`` (a list of T ints) and
            float32 weights ``(T, S)`` over the ``S`` encoder positions.

        Raises:
            ValueError: if the model has no attention (``cross_attention`` gives None).
        """
        encoded = self.source.encode(inputs)
        ids, scores = self.decode(encoded)
        ids, encoded = np.asarray(ids), np.asarray(encoded)
        maps = []
        for i in range(len(ids)):
            tokens = [int(t) for t in ids[i, 1:]]
            if END_ID in tokens:
                tokens = tokens[: tokens.index(END_ID) + 1]
            weights = self.model.cross_attention(
                encoded[i : i + 1], ids[i : i + 1, : len(tokens)].astype(np.int32)
            )
            if weights is None:
                raise ValueError("the model has no attention to plot")
            maps.append((tokens, np.asarray(weights)[0]))
        return encoded, ids, np.asarray(scores), maps
