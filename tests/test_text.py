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
