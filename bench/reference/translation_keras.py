#!/usr/bin/env python
"""Reference: the plain Keras 3 Transformer a user writes from the keras.io translation
example, at the size of seqtasks' default translation model.

As in keras.io's "English-to-Spanish translation with KerasHub" (the KerasHub
version of "English-to-Spanish translation with a sequence-to-sequence
Transformer"): a WordPiece vocabulary per language learned with
``keras_hub.tokenizers.compute_word_piece_vocabulary`` (reserved tokens
``[PAD] [UNK] [START] [END]``), ``keras_hub.tokenizers.WordPieceTokenizer``, and
``keras_hub.layers.StartEndPacker`` padding every source to ``--sequence-length``
ids and every target to ``sequence_length + 1`` (``[START] ... [END]``, then the
decoder reads ``target[:, :-1]`` and predicts ``target[:, 1:]``); a functional
model of ``TokenAndPositionEmbedding(mask_zero=True)`` -> 3 ``TransformerEncoder``
blocks, ``TokenAndPositionEmbedding(mask_zero=True)`` -> 3 ``TransformerDecoder``
blocks over the encoder output -> ``Dense(target vocabulary)``; sparse
cross-entropy (masked through the Keras mask), ``model.fit`` on a ``tf.data``
pipeline of the id arrays. Same sizes as seqtasks' defaults: d_model 256,
feed-forward 512, 4 heads, 3+3 blocks, dropout 0.1, learned positions for 64
tokens, vocabularies of at most 8,000 tokens.

The vocabularies are those of seqtasks: its ``learn_vocabulary`` runs the steps of
``compute_word_piece_vocabulary`` with the same minimum frequency (10), so on the
same training split both learn the same tokens, hence the same ids and the same
parameter count (the runner checks the vocabularies' SHA-1).

Differences from seqtasks on purpose (it is the script a user would write): no
length bucketing (every batch is ``batch x 64`` source and ``batch x 64`` target
ids), no label smoothing (Keras' sparse cross-entropy has none), a constant
learning rate (Adam 5e-4, beta_2 0.98, ``clipnorm=1.0``; the schedule does not
change the cost of a step), and the example's greedy decoding: a
``keras_hub.samplers.GreedySampler`` whose ``next`` re-runs the whole model (encoder
included) on the fixed-length prompt for every new token (no cache).
``--save-ids`` writes the token ids so the PyTorch reference trains on exactly
the same ids and batches.

    python bench/reference/translation_keras.py --data ../shared/data/multi30k \
        --steps 200 --result /tmp/keras.json
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import common  # noqa: E402
import keras  # noqa: E402
import keras_hub  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

RESERVED_TOKENS = ["[PAD]", "[UNK]", "[START]", "[END]"]
PAD, START, END = 0, 2, 3


def build_model(
    source_vocabulary_size: int,
    target_vocabulary_size: int,
    sequence_length: int,
    hidden_dim: int = 256,
    intermediate_dim: int = 512,
    num_heads: int = 4,
    num_layers: int = 3,
    dropout: float = 0.1,
) -> keras.Model:
    """int32 ``encoder_inputs (B, S)``, ``decoder_inputs (B, T)`` -> logits ``(B, T, V)``."""
    encoder_inputs = keras.Input(shape=(None,), dtype="int32", name="encoder_inputs")
    x = keras_hub.layers.TokenAndPositionEmbedding(
        source_vocabulary_size, sequence_length, hidden_dim, mask_zero=True
    )(encoder_inputs)
    for _ in range(num_layers):
        x = keras_hub.layers.TransformerEncoder(intermediate_dim, num_heads, dropout=dropout)(x)
    decoder_inputs = keras.Input(shape=(None,), dtype="int32", name="decoder_inputs")
    y = keras_hub.layers.TokenAndPositionEmbedding(
        target_vocabulary_size, sequence_length, hidden_dim, mask_zero=True
    )(decoder_inputs)
    for _ in range(num_layers):
        y = keras_hub.layers.TransformerDecoder(intermediate_dim, num_heads, dropout=dropout)(
            decoder_sequence=y, encoder_sequence=x
        )
    logits = keras.layers.Dense(target_vocabulary_size)(y)
    model = keras.Model([encoder_inputs, decoder_inputs], logits, name="transformer")
    model.compile(
        optimizer=keras.optimizers.Adam(5e-4, beta_2=0.98, epsilon=1e-9, clipnorm=1.0),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    return model


def greedy_decoder(model: keras.Model, sequence_length: int):
    """The keras.io example's ``decode_sequences`` on ids: int ``(B, S)`` -> ``(B, L)`` ids."""
    sampler = keras_hub.samplers.GreedySampler()

    def decode(source_ids: np.ndarray) -> np.ndarray:
        source = keras.ops.convert_to_tensor(source_ids)
        batch = source_ids.shape[0]

        def next(prompt, cache, index):
            logits = model([source, prompt], training=False)[:, index - 1, :]
            return logits, None, cache

        start = keras.ops.full((batch, 1), START, dtype="int32")
        pad = keras.ops.full((batch, sequence_length - 1), PAD, dtype="int32")
        prompt = keras.ops.concatenate((start, pad), axis=-1)
        return np.asarray(sampler(next, prompt, stop_token_ids=[END], index=1))

    return decode


def main() -> None:
    p = common.translation_parser(__doc__.splitlines()[0])
    p.add_argument("--save-ids", default=None, help="write the token ids (npz) here")
    args = p.parse_args()
    keras.utils.set_random_seed(args.seed)
    train_src, train_tgt, val_src, _ = common.load_pairs(args)

    def vocabulary(texts: list[str]) -> list[str]:
        return keras_hub.tokenizers.compute_word_piece_vocabulary(
            tf.data.Dataset.from_tensor_slices(texts).batch(1000).prefetch(2),
            vocabulary_size=args.vocabulary_size,
            reserved_tokens=RESERVED_TOKENS,
        )

    src_vocab, tgt_vocab = vocabulary(train_src), vocabulary(train_tgt)
    src_tokenizer = keras_hub.tokenizers.WordPieceTokenizer(vocabulary=src_vocab, dtype="int32")
    tgt_tokenizer = keras_hub.tokenizers.WordPieceTokenizer(vocabulary=tgt_vocab, dtype="int32")
    src_packer = keras_hub.layers.StartEndPacker(args.sequence_length, pad_value=PAD)
    tgt_packer = keras_hub.layers.StartEndPacker(
        args.sequence_length + 1, start_value=START, end_value=END, pad_value=PAD
    )
    x_src = np.asarray(src_packer(src_tokenizer(tf.constant(train_src))))  # (N, S) int32
    x_tgt = np.asarray(tgt_packer(tgt_tokenizer(tf.constant(train_tgt))))  # (N, S + 1)
    x_val = np.asarray(src_packer(src_tokenizer(tf.constant(val_src[: common.INFERENCE_TEXTS]))))
    if args.save_ids:
        np.savez(
            args.save_ids,
            x_src=x_src,
            x_tgt=x_tgt,
            x_val=x_val,
            vocabulary_sizes=np.array([len(src_vocab), len(tgt_vocab)]),
        )

    batches = common.batch_order(len(x_src), args.steps, args.batch_size, args.seed)
    order = np.concatenate(batches)
    ds = (
        tf.data.Dataset.from_tensor_slices(((x_src[order], x_tgt[order, :-1]), x_tgt[order, 1:]))
        .batch(args.batch_size)
        .prefetch(tf.data.AUTOTUNE)
    )  # the seeded shuffle is in `order`, so the PyTorch reference sees the same batches

    model = build_model(len(src_vocab), len(tgt_vocab), args.sequence_length)
    params = model.count_params()
    print(f"keras reference: {params:,} parameters")
    clock = common.StepClock()

    model.fit(
        ds, epochs=1, steps_per_epoch=args.steps, callbacks=[common.keras_clock(clock)], verbose=0
    )
    sizes = [len(b) for b in batches]
    real = [
        int(np.count_nonzero(x_src[b]) + np.count_nonzero(x_tgt[b, 1:])) for b in batches
    ]  # source tokens + target tokens predicted ([END] included)
    padded = [2 * len(b) * args.sequence_length for b in batches]
    result = {
        "system": "keras",
        "parameters": params,
        "vocabulary_sizes": [len(src_vocab), len(tgt_vocab)],
        "vocabulary_sha1": common.vocabulary_digest(src_vocab, tgt_vocab),
        **common.training_figures(clock, sizes, real, padded, args.t0),
    }

    decode = greedy_decoder(model, args.sequence_length)
    singles = [x_val[i : i + 1] for i in range(args.single_calls)]
    timed = common.time_calls(decode, singles, x_val, args.batch_calls)
    timed["output_tokens"] = common.output_tokens(decode(x_val), END)
    result["inference"] = {"keras_greedy_uncached": timed}
    common.write_result(args.result, result)


if __name__ == "__main__":
    main()
