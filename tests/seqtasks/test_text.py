import numpy as np
import tensorflow as tf

from seqtasks.text import (
    RESERVED_TOKENS,
    WordVectorizer,
    build_vocabulary,
    read_vocabulary,
    split_words,
    write_vocabulary,
)


def test_split_words_standardizes():
    words = split_words(tf.constant(["A GREAT film!<br /><br />Don't miss it.", "Café, naïve"]))
    assert words.to_list() == [
        [b"a", b"great", b"film", b"!", b"don't", b"miss", b"it", b"."],
        ["café".encode(), b",", "naïve".encode()],
    ]


def test_build_vocabulary_orders_by_count_then_alphabet():
    vocab = build_vocabulary(["b a b", "c b a", "d"], vocabulary_size=7)
    assert vocab == list(RESERVED_TOKENS) + ["b", "a", "c"]
    assert build_vocabulary(["b a b", "c b a", "d"], 10, min_frequency=2)[4:] == ["b", "a"]


def test_vectorizer_ids_truncation_and_padding(tmp_path):
    path = write_vocabulary(list(RESERVED_TOKENS) + ["the", "film", "!"], str(tmp_path / "v.txt"))
    assert read_vocabulary(path)[4:] == ["the", "film", "!"]
    vectorizer = WordVectorizer(path, sequence_length=3)
    ragged = vectorizer(tf.constant(["The film!", "the unknown film was long", ""]))
    assert ragged.to_list() == [[4, 5, 6], [4, 1, 5], []]
    padded = vectorizer.pad(ragged)
    np.testing.assert_array_equal(padded.numpy(), [[4, 5, 6], [4, 1, 5], [0, 0, 0]])
    assert padded.dtype == tf.int32
    # An all-empty batch still has one (padding) step.
    assert vectorizer.pad(vectorizer(tf.constant(["", ""]))).shape == (2, 1)


def test_separators_never_end_up_inside_tokens(tmp_path):
    text = "good\x1cfilm\x85really\u2028great\u00a0fun\tok"
    words = [w.decode() for w in split_words(tf.constant([text])).to_list()[0]]
    assert words == ["good", "film", "really", "great", "fun", "ok"]
    vocab = build_vocabulary([text], vocabulary_size=20)
    path = write_vocabulary(vocab, str(tmp_path / "v.txt"))
    assert read_vocabulary(path) == vocab
    assert WordVectorizer(path, 8).vocabulary_size == len(vocab) == 10


def test_call_by_length_pads_each_chunk_to_its_own_longest_row_and_keeps_order():
    import tensorflow as tf

    from seqtasks.text import call_by_length

    lengths = [5, 1, 9, 0, 3, 7, 2]
    ids = tf.ragged.constant([list(range(1, n + 1)) for n in lengths], dtype=tf.int32)

    def fn(chunk):  # (c, T) -> (c, 2): the row's sum of ids, and the padded width T
        total = tf.cast(tf.reduce_sum(chunk, axis=1), tf.float32)
        width = tf.fill(tf.shape(total), tf.cast(tf.shape(chunk)[1], tf.float32))
        return tf.stack([total, width], axis=1)

    out = call_by_length(fn, ids, width=2, rows=3).numpy()
    assert out[:, 0].tolist() == [n * (n + 1) / 2 for n in lengths]  # each row's own output
    # Sorted lengths 0,1,2 | 3,5,7 | 9: each chunk padded to its own longest row.
    chunk_width = {0: 2, 1: 2, 2: 2, 3: 7, 5: 7, 7: 7, 9: 9}
    assert out[:, 1].tolist() == [chunk_width[n] for n in lengths]
    no_rows = tf.RaggedTensor.from_row_lengths(tf.zeros([0], tf.int32), tf.zeros([0], tf.int64))
    assert call_by_length(fn, no_rows, width=2).shape == (0, 2)
