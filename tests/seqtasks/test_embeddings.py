"""Pretrained word embeddings (word2vec via gensim, vectors files) for the classifier."""

import dataclasses
import os

import numpy as np
import pytest

from conftest import IMDB_TAR, SST2_DEV, TINY, write_file
from seqtasks.data.classification import load_text_classification
from seqtasks.embeddings import (
    classifier_embeddings,
    embedding_matrix,
    read_vectors,
    train_word2vec,
    unlabeled_texts,
    write_corpus,
)
from seqtasks.errors import DataError
from seqtasks.text import RESERVED_TOKENS, split_words

SENTENCES = load_text_classification(SST2_DEV).texts[:400]


def test_write_corpus_splits_as_the_vectorizer(tmp_path):
    texts = ["A <br />great, GREAT film!", "Dull."]
    path = str(tmp_path / "corpus.txt")
    assert write_corpus(texts, path, batch_size=1) == 8
    lines = open(path, encoding="utf-8").read().splitlines()
    expected = [[w.decode() for w in row] for row in split_words(np.array(texts)).to_list()]
    assert [line.split(" ") for line in lines] == expected
    assert lines[0] == "a great , great film !"
    assert os.listdir(tmp_path) == ["corpus.txt"]  # no temporary file left


@pytest.fixture(scope="module")
def corpus_file(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("w2v") / "corpus.txt")
    write_corpus(SENTENCES, path)
    return path


def test_word2vec_repeats_with_one_worker(corpus_file):
    first = train_word2vec(corpus_file, vector_size=8, epochs=2, min_count=3, seed=5)
    again = train_word2vec(corpus_file, vector_size=8, epochs=2, min_count=3, seed=5)
    other = train_word2vec(corpus_file, vector_size=8, epochs=2, min_count=3, seed=6)
    assert first.vector_size == 8 and "film" in first and first["film"].dtype == np.float32
    np.testing.assert_array_equal(first.vectors, again.vectors)
    assert not np.allclose(first["film"], other["film"])
    counts = {}
    for line in open(corpus_file, encoding="utf-8"):
        for word in line.split():
            counts[word] = counts.get(word, 0) + 1
    assert set(first.index_to_key) == {w for w, c in counts.items() if c >= 3}
    with pytest.raises(ValueError, match="`algorithm` must be one of"):
        train_word2vec(corpus_file, vector_size=8, algorithm="glove")


def test_embedding_matrix_rows_follow_the_vocabulary(corpus_file):
    vectors = train_word2vec(corpus_file, vector_size=8, epochs=1, min_count=3, seed=5)
    vocabulary = [*RESERVED_TOKENS, "film", "zzzunseen", "the"]
    matrix, coverage = embedding_matrix(vocabulary, vectors, 8, seed=1)
    assert matrix.shape == (7, 8) and matrix.dtype == np.float32
    np.testing.assert_array_equal(matrix[0], 0.0)  # [PAD]
    np.testing.assert_array_equal(matrix[4], vectors["film"])
    np.testing.assert_array_equal(matrix[6], vectors["the"])
    assert coverage == pytest.approx(2 / 3)
    assert np.abs(matrix[5]).sum() > 0  # an unknown word gets a random row
    np.testing.assert_array_equal(matrix, embedding_matrix(vocabulary, vectors, 8, seed=1)[0])
    with pytest.raises(
        DataError,
        match=r"v\.txt: 8-dimensional vectors, but the model's "
        r"embedding_dim is 16 .*--set embedding_dim=8",
    ):
        embedding_matrix(vocabulary, vectors, 16, seed=1, source="v.txt")


def test_read_vectors_round_trip_and_bad_file(tmp_path, corpus_file):
    vectors = train_word2vec(corpus_file, vector_size=8, epochs=1, min_count=3, seed=5)
    for name, binary in (("v.txt", False), ("v.bin", True)):
        path = str(tmp_path / name)
        vectors.save_word2vec_format(path, binary=binary)
        read = read_vectors(path)
        assert read.index_to_key == vectors.index_to_key
        np.testing.assert_allclose(read.vectors, vectors.vectors, atol=1e-5)
    bad = write_file(tmp_path / "bad.vec", "hello world\nthis is not vectors\n")
    with pytest.raises(DataError, match=r"bad\.vec: not word vectors in the word2vec text") as e:
        read_vectors(bad)
    assert "\n" not in str(e.value)
    with pytest.raises(DataError, match="no such file"):
        read_vectors(str(tmp_path / "missing.vec"))


def test_unlabeled_text_leaves_out_validation_reviews():
    data = load_text_classification(IMDB_TAR, max_examples=40)
    validation = [t for t in data.texts[:10] if "<br" in t] or data.texts[:2]
    kept = unlabeled_texts(IMDB_TAR, validation)
    # The corpus reader turns <br /> into line breaks; those reviews still count as equal.
    assert len(kept) == 25_000 - len(validation)


def test_classifier_embeddings_come_from_training_text_only(tmp_path):
    from tasks.sentiment import SentimentConfig

    config = SentimentConfig(
        init_embeddings="word2vec", embedding_dim=8, word2vec_epochs=1, min_frequency=1
    )
    vocabulary = [*RESERVED_TOKENS, "good", "bad", "valonly"]
    train = ["good film", "bad film", "good good"] * 5
    matrix, facts = classifier_embeddings(config, vocabulary, train, ["valonly"], str(tmp_path))
    assert matrix.shape == (7, 8)
    assert facts["source"] == "word2vec" and facts["texts"] == 15 and facts["words"] == 30
    assert facts["coverage"] == pytest.approx(2 / 3, abs=1e-4)  # "valonly" was never seen
    assert os.listdir(tmp_path) == []  # the tokenized corpus is removed
    with_file = dataclasses.replace(config, init_embeddings=str(tmp_path / "none.vec"))
    with pytest.raises(DataError, match="none.vec: no such file"):
        classifier_embeddings(with_file, vocabulary, train, [], str(tmp_path))


@pytest.mark.parametrize("kind", ["bilstm", "transformer"])
def test_the_model_starts_from_the_matrix(kind):
    from seqtasks.models.classifier import build_text_classifier, set_token_embeddings

    model = build_text_classifier(
        num_classes=2,
        vocabulary_size=10,
        sequence_length=12,
        kind=kind,
        embedding_dim=4,
        hidden_dim=2,
        num_heads=2,
        intermediate_dim=4,
    )
    matrix = np.arange(40, dtype="float32").reshape(10, 4)
    set_token_embeddings(model, matrix)
    layer = model.get_layer("embedding")
    np.testing.assert_array_equal(getattr(layer, "token_embedding", layer).embeddings, matrix)
    with pytest.raises(ValueError, match=r"cannot take a \(9, 4\) matrix"):
        set_token_embeddings(model, matrix[:9])


def test_train_from_a_vectors_file(tmp_path, corpus_file, sst2_sample):
    from seqtasks.training import train
    from tasks import get_recipe

    vectors = train_word2vec(corpus_file, vector_size=TINY["embedding_dim"], epochs=1, seed=5)
    path = str(tmp_path / "vectors.vec")
    vectors.save_word2vec_format(path)
    recipe = get_recipe("sentiment")
    config = recipe.make_config(
        data=sst2_sample,
        init_embeddings=path,
        export_dir=str(tmp_path / "export"),
        run_dir=str(tmp_path / "run"),
        **TINY,
    )
    facts = train(recipe, config, verbose=0).prepared.metadata["init_embeddings"]
    assert facts["source"] == path and 0.3 < facts["coverage"] <= 1.0


def test_the_default_run_starts_from_random_embeddings(trained):
    assert "init_embeddings" not in trained.prepared.metadata
