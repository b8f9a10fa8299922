"""The smallest real recipe: language identification (many-to-one), English or Spanish.

A sentence in, its language out, trained on the Anki spa-eng pairs (each pair gives one
English and one Spanish example). It is the worked example of docs/adding-a-recipe.md;
tests/docs/test_adding_a_recipe.py trains it on 400 real pairs, exports it and reads the
export back in a fresh process.
"""

from __future__ import annotations

import dataclasses
import os

import keras
import numpy as np
import tensorflow as tf

from seqtasks import export as exporting
from seqtasks.config import TrainConfig, option
from seqtasks.data.parallel import load_parallel
from seqtasks.data.pipeline import split_indices
from seqtasks.inference import call_in_batches, load_serving_fn
from seqtasks.recipe import Prepared, Recipe
from seqtasks.text import WordVectorizer, build_vocabulary, write_vocabulary
from seqtasks.tokens import PAD_ID

LANGUAGES = ["en", "es"]


# 1. Config: the recipe's fields on top of TrainConfig's (data, epochs, batch_size, ...).
@dataclasses.dataclass(frozen=True)
class LanguageIdConfig(TrainConfig):
    model: str = option("bag", "bag: averaged word embeddings.", choices=("bag",))
    epochs: int = option(3, "Maximum number of epochs.", min=1)
    vocabulary_size: int = option(5000, "Words kept (most frequent first).", min=5)
    sequence_length: int = option(32, "Words read per sentence.", min=1)
    embedding_dim: int = option(32, "Word embedding size.", min=1)


# What prepare() hands to the later steps (Prepared.info): a typed dataclass per recipe.
@dataclasses.dataclass
class LanguageIdInfo:
    vectorizer: WordVectorizer


class LanguageIdRecipe(Recipe):
    name = "language-id"
    task_type = "many-to-one"
    description = "Language identification: a sentence in, en or es out."
    config_class = LanguageIdConfig
    models = {"bag": "averaged word embeddings, softmax over the languages"}
    evaluate_options = frozenset({"data", "max_examples"})

    # 2. Data: raw examples as Python objects (here: sentences and their language ids).
    def load_data(self, config):
        pairs = load_parallel(
            config.data, source_lang="en", target_lang="es", max_examples=config.max_examples
        )
        texts = [*pairs.sources, *pairs.targets]
        labels = [0] * len(pairs.sources) + [1] * len(pairs.targets)
        return texts, np.asarray(labels, np.int32)

    # 3. Prepare: split, learn the vocabulary (written under run_dir), tf.data pipelines.
    def prepare(self, config, data, run_dir):
        texts, labels = data
        train_idx, val_idx = split_indices(len(texts), config.validation_split, config.seed)
        words = build_vocabulary([texts[i] for i in train_idx], config.vocabulary_size)
        path = write_vocabulary(words, os.path.join(run_dir, "vocabulary.txt"))
        vectorizer = WordVectorizer(path, config.sequence_length)

        def batches(index, shuffle):
            ids = vectorizer.pad(vectorizer(tf.constant([texts[i] for i in index])))
            ds = tf.data.Dataset.from_tensor_slices((ids, labels[index]))
            if shuffle:
                ds = ds.shuffle(len(index), seed=config.seed)
            return ds.batch(config.batch_size)

        return Prepared(
            train=batches(train_idx, True),
            validation=batches(val_idx, False),
            info=LanguageIdInfo(vectorizer),
            metadata={"labels": LANGUAGES},
        )

    # 4. Model and loss: token ids (B, T), right-padded with [PAD] = 0, in; (B, 2) out.
    def build_model(self, config, prepared):
        ids = keras.Input((None,), dtype="int32", name="token_ids")
        mask = keras.ops.cast(keras.ops.not_equal(ids, PAD_ID), "float32")[..., None]
        x = keras.layers.Embedding(
            prepared.info.vectorizer.vocabulary_size, config.embedding_dim
        )(ids)
        pooled = keras.ops.sum(x * mask, axis=1) / keras.ops.maximum(keras.ops.sum(mask, 1), 1.0)
        probabilities = keras.layers.Dense(len(LANGUAGES), activation="softmax")(pooled)
        return keras.Model(ids, probabilities, name="language_id")

    def loss_and_metrics(self, config):
        return keras.losses.SparseCategoricalCrossentropy(), ["accuracy"]

    # 5. Validation metrics of the trained model (the driver adds epochs, timings, ...).
    def evaluate(self, model, prepared, config):
        loss, accuracy = model.evaluate(prepared.validation, verbose=0)
        return {"val_loss": float(loss), "val_accuracy": float(accuracy)}

    # 6. Export: raw strings in, a label out; tokenization inside the graph.
    def export(self, model, prepared, config, metadata):
        module = LanguageIdServing(prepared.info.vectorizer, model)
        spec = [tf.TensorSpec([None], tf.string, name="text")]
        return exporting.write_version(
            config.export_dir,
            lambda path: exporting.save_serving_archive(path, [module], module.serve, spec),
            metadata={
                "task": self.name,
                "task_type": self.task_type,
                "model": config.model,
                "config": config.to_dict(),
                "labels": LANGUAGES,
                "signature": {
                    "inputs": {"text": "tf.string [None]: raw sentences"},
                    "outputs": {"label": "tf.string [None]: en or es"},
                },
                **metadata,
            },
        )

    # 7. Serving side: run the export, score it on labelled data, print results.
    def predict(self, version_dir, metadata, inputs):
        outputs = call_in_batches(load_serving_fn(version_dir), "text", inputs)
        return [{"text": t, "label": outputs["label"][i].decode()} for i, t in enumerate(inputs)]

    def evaluate_export(self, version_dir, metadata, *, data=None, max_examples=None):
        config = self.make_config(data=data, max_examples=max_examples)
        texts, labels = self.load_data(config)
        predicted = [r["label"] for r in self.predict(version_dir, metadata, texts)]
        correct = sum(p == LANGUAGES[y] for p, y in zip(predicted, labels))
        return {"examples": len(texts), "accuracy": correct / len(texts)}

    def format_prediction(self, result):
        return f"{result['label']}\t{result['text']}"

    def format_report(self, report):
        return f"accuracy {report['accuracy']:.4f} on {report['examples']} examples"


class LanguageIdServing(tf.Module):
    """The exported graph: tf.string ``(B,)`` -> ``{"label": tf.string (B,), "probabilities":
    float32 (B, 2)}``."""

    def __init__(self, vectorizer, model):
        super().__init__()
        self.vectorizer, self.model = vectorizer, model

    def serve(self, text):
        probabilities = self.model(self.vectorizer.pad(self.vectorizer(text)))
        label = tf.gather(tf.constant(LANGUAGES), tf.argmax(probabilities, axis=-1))
        return {"label": label, "probabilities": probabilities}
