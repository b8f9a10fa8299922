#!/usr/bin/env python
"""Reference: the plain Keras 3 script a user writes from the keras.io text-classification
examples, at the size of seqtasks' default sentiment model.

As in keras.io's "Text classification from scratch" (option 2: vectorize the data
first) and "Bidirectional LSTM on IMDB": a ``TextVectorization`` layer (default
standardization: lower case, punctuation stripped) adapted on the training texts,
every text padded or cut to a fixed ``--sequence-length``, then ``Embedding(mask_zero)``
-> ``SpatialDropout1D(0.25)`` -> ``Bidirectional(LSTM(64, return_sequences=True))``
-> ``GlobalMaxPooling1D`` -> ``Dropout(0.5)`` -> ``Dense(2, softmax)``, Adam 1e-3
with ``clipnorm=1.0``, sparse cross-entropy, ``model.fit`` on a ``tf.data``
pipeline of the id arrays. Same sizes as seqtasks' defaults (128-d embeddings,
64 units per direction, max pooling, dropout 0.5, embedding dropout 0.25).

Differences from seqtasks on purpose (it is the script a user would write): no
length bucketing (every batch is ``batch x sequence_length``), and
``GlobalMaxPooling1D`` ignores the mask (the max also sees the states the LSTM
carries over padded steps). ``--save-ids`` writes the token ids so the PyTorch
reference trains on exactly the same ids and batches.

    python bench/reference/sentiment_keras.py --data ../shared/data/imdb/aclImdb_v1_train.tar.gz \
        --max-examples 8000 --steps 200 --result /tmp/keras.json
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import common  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402


def build_model(vocabulary_size: int) -> keras.Model:
    inputs = keras.Input(shape=(None,), dtype="int64")
    x = keras.layers.Embedding(vocabulary_size, 128, mask_zero=True)(inputs)
    x = keras.layers.SpatialDropout1D(0.25)(x)
    x = keras.layers.Bidirectional(keras.layers.LSTM(64, return_sequences=True))(x)
    x = keras.layers.GlobalMaxPooling1D()(x)
    x = keras.layers.Dropout(0.5)(x)
    outputs = keras.layers.Dense(2, activation="softmax")(x)
    model = keras.Model(inputs, outputs)
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3, clipnorm=1.0),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


def main() -> None:
    p = common.parser(__doc__.splitlines()[0])
    p.add_argument("--save-ids", default=None, help="write the token ids (npz) here")
    args = p.parse_args()
    keras.utils.set_random_seed(args.seed)
    train_texts, train_labels, val_texts, _, _ = common.load_split(args)

    vectorize = keras.layers.TextVectorization(
        max_tokens=args.vocabulary_size,
        output_mode="int",
        output_sequence_length=args.sequence_length,
    )
    vectorize.adapt(tf.data.Dataset.from_tensor_slices(train_texts).batch(256))
    x_train = vectorize(tf.constant(train_texts)).numpy()  # (N, sequence_length) int64
    x_val = vectorize(tf.constant(val_texts[: common.INFERENCE_TEXTS])).numpy()
    y_train = np.array(train_labels, dtype=np.int64)
    if args.save_ids:
        np.savez(args.save_ids, x_train=x_train, y_train=y_train, x_val=x_val)

    batches = common.batch_order(len(x_train), args.steps, args.batch_size, args.seed)
    order = np.concatenate(batches)
    ds = (
        tf.data.Dataset.from_tensor_slices((x_train[order], y_train[order]))
        .batch(args.batch_size)
        .prefetch(tf.data.AUTOTUNE)
    )  # the seeded shuffle is in `order`, so the PyTorch reference sees the same batches

    model = build_model(len(vectorize.get_vocabulary()))
    params = model.count_params()
    print(f"keras reference: {params:,} parameters")
    clock = common.StepClock()

    model.fit(
        ds, epochs=1, steps_per_epoch=args.steps, callbacks=[common.keras_clock(clock)], verbose=0
    )
    sizes = [len(b) for b in batches]
    real = [int(np.count_nonzero(x_train[b])) for b in batches]
    padded = [len(b) * args.sequence_length for b in batches]
    result = {
        "system": "keras",
        "parameters": params,
        "vocabulary_size": len(vectorize.get_vocabulary()),
        **common.training_figures(clock, sizes, real, padded, args.t0),
    }

    singles = [x_val[i : i + 1] for i in range(common.SINGLE_CALLS)]
    result["inference"] = {
        "keras_in_memory": common.time_calls(model.predict_on_batch, singles, x_val),
    }
    common.write_result(args.result, result)


if __name__ == "__main__":
    main()
