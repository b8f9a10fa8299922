#!/usr/bin/env python
"""Diagnostic: does a language model give the classifier features it can learn from?

Builds the ``--init-from`` classifier (:func:`seqtasks.models.lm_classifier.
classifier_from_language_model`, concat pooling) over a language-model export twice: with
the export's weights (``lm``) and with fresh weights of the same architecture
(``random``). For each it reports the pooled features of 64 validation reviews (mean
absolute value; standard deviation across reviews, averaged over features: near zero
means every review looks the same to the head) and trains on ``--train`` IMDB reviews
(a seeded random sample, so movies may repeat across the split: a diagnostic, not a
score), ``--epochs`` epochs, reviews cut to ``--length`` tokens.

    python bench/lm_init_check.py /tmp/seqtasks-bench/pretrain/lm-export --init lm
    python bench/lm_init_check.py /tmp/seqtasks-bench/pretrain/lm-export --init random
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
IMDB = os.path.join(os.path.dirname(ROOT), "shared", "data", "imdb", "aclImdb_v1_train.tar.gz")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("export", help="language-model export or run directory")
    parser.add_argument("--init", choices=("lm", "random"), default="lm")
    parser.add_argument("--train", type=int, default=3000)
    parser.add_argument("--validation", type=int, default=600)
    parser.add_argument("--length", type=int, default=256)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    args = parser.parse_args()

    import keras
    import tensorflow as tf

    from seqtasks.data.classification import load_text_classification
    from seqtasks.lm_transfer import LanguageModelVectorizer, load_language_model
    from seqtasks.models.lm_classifier import classifier_from_language_model

    data = load_text_classification(IMDB)
    order = np.random.default_rng(0).permutation(len(data))
    train, val = order[: args.train], order[args.train : args.train + args.validation]
    pretrained = load_language_model(args.export)
    vectorizer = LanguageModelVectorizer(pretrained.tokenizer, args.length)

    def arrays(indices):
        texts = tf.constant([data.texts[i] for i in indices])
        labels = np.array([int(data.labels[i] == "pos") for i in indices])
        return np.asarray(vectorizer.pad(vectorizer(texts))), labels

    (x_train, y_train), (x_val, y_val) = arrays(train), arrays(val)
    language_model = pretrained.model
    if args.init == "random":
        language_model = type(language_model).from_config(language_model.get_config())
        language_model({"decoder_token_ids": np.ones((1, 2), np.int32)})
    model = classifier_from_language_model(language_model, num_classes=2, pooling="concat")
    features = keras.Model(model.inputs, model.get_layer("concat_pooling").output)
    pooled = np.asarray(features(x_val[:64]))
    model.compile(
        keras.optimizers.Adam(args.learning_rate),
        "sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    start = time.perf_counter()
    history = model.fit(
        x_train, y_train, validation_data=(x_val, y_val), epochs=args.epochs,
        batch_size=32, verbose=2,
    )  # fmt: skip
    print(
        json.dumps(
            {
                "command": "python bench/lm_init_check.py " + " ".join(sys.argv[1:]),
                "init": args.init,
                "features_mean_abs": round(float(np.abs(pooled).mean()), 4),
                "features_std_across_reviews": round(float(pooled.std(axis=0).mean()), 4),
                "val_accuracy": [round(v, 4) for v in history.history["val_accuracy"]],
                "train_seconds": round(time.perf_counter() - start, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
