"""Pretrained word embeddings for a classifier's embedding layer.

Dai & Le (2015, sec. 4.1) report that an LSTM classifier on IMDB whose embedding layer
starts from word2vec vectors trained on the same (labelled plus unlabelled) reviews
reaches 90.0% test accuracy, against 86.5% from random initialisation. This module
gives that path: :func:`train_word2vec` learns vectors with gensim's ``Word2Vec``
(Mikolov et al. 2013, "Efficient Estimation of Word Representations in Vector Space":
skip-gram or CBOW with negative sampling), :func:`read_vectors` reads vectors a user
already has (the word2vec text or binary format: word2vec, fastText ``.vec``, GloVe
with a header line), and :func:`embedding_matrix` lays them out in a vocabulary's
order for ``keras.layers.Embedding``.

Texts are split into words exactly as the classifier's
:class:`~seqtasks.text.WordVectorizer` splits them (:func:`seqtasks.text.split_words`),
so every vocabulary word the vectors know gets its vector.
"""

from __future__ import annotations

import logging
import os
import time
import zlib
from collections.abc import Iterable

import numpy as np

from seqtasks.choices import WORD2VEC_ALGORITHMS as ALGORITHMS
from seqtasks.errors import DataError

log = logging.getLogger(__name__)


def write_corpus(texts: Iterable[str], path: str, batch_size: int = 2048) -> int:
    """Write each text as one line of space-separated words, split as the classifier's
    vectorizer splits them (:func:`seqtasks.text.split_words`: lower-cased, punctuation
    spaced out; a word never holds a space or a line break), the ``corpus_file`` format
    of gensim's ``Word2Vec``. The file is written to a temporary path, then renamed.

    Args:
        texts: raw texts.
        path: the file to write (UTF-8).
        batch_size: texts per TensorFlow call.

    Returns:
        The number of words written.
    """
    import tensorflow as tf

    from seqtasks.text import split_words

    words = 0
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "wb") as f:
        batch: list[str] = []

        def flush():
            nonlocal words
            split = split_words(tf.constant(batch))
            words += int(tf.size(split.flat_values))
            lines = tf.strings.reduce_join(split, axis=-1, separator=" ").numpy()
            f.write(b"\n".join(lines) + b"\n")
            batch.clear()

        for text in texts:
            batch.append(text)
            if len(batch) == batch_size:
                flush()
        if batch:
            flush()
    os.replace(tmp, path)
    return words


def _stable_hash(text: str) -> int:
    """A hash that does not change between processes (Python's ``hash`` of a str does),
    so gensim's seeded initial vectors, and with one worker the whole run, repeat."""
    return zlib.crc32(text.encode("utf-8"))


def train_word2vec(
    corpus_file: str,
    *,
    vector_size: int,
    epochs: int = 5,
    min_count: int = 2,
    window: int = 5,
    algorithm: str = "skipgram",
    seed: int = 1337,
    workers: int = 1,
):
    """Word vectors learned from ``sentences`` with gensim's ``Word2Vec``.

    Negative sampling (5 noise words) and sub-sampling of frequent words (1e-3), as in
    Mikolov et al. (2013b, sec. 2.2-2.3). With ``workers=1`` the vectors are the same on
    every run with the same inputs and seed (gensim's own caveat: several worker threads
    interleave updates in a machine-dependent order).

    Args:
        corpus_file: one text per line, words separated by spaces (:func:`write_corpus`).
        vector_size: dimensions per word.
        epochs: passes over ``sentences`` (default 5, gensim's).
        min_count: ignore words seen fewer times (default 2).
        window: context words on each side (default 5).
        algorithm: ``skipgram`` (default) or ``cbow``.
        seed: seed of the initial vectors and of sampling.
        workers: worker threads (default 1: repeatable).

    Returns:
        gensim ``KeyedVectors`` (``kv[word]``: float32 ``(vector_size,)``).

    Raises:
        ValueError: for an unknown ``algorithm``.
    """
    from gensim.models import Word2Vec
    from gensim.models.callbacks import CallbackAny2Vec

    from seqtasks.progress import progress

    if algorithm not in ALGORITHMS:
        raise ValueError(f"`algorithm` must be one of {ALGORITHMS}. Received: {algorithm!r}")
    start = time.perf_counter()
    gensim_log = logging.getLogger("gensim")
    level = gensim_log.level
    gensim_log.setLevel(max(level, logging.WARNING))  # its INFO lines come every second
    try:
        model = Word2Vec(
            vector_size=vector_size,
            window=window,
            min_count=min_count,
            sg=int(algorithm == "skipgram"),
            negative=5,
            sample=1e-3,
            seed=seed,
            workers=workers,
            hashfxn=_stable_hash,
        )
        model.build_vocab(corpus_file=corpus_file)
        with progress(f"word2vec ({algorithm})", epochs, "epochs") as bar:

            class _Epochs(CallbackAny2Vec):
                def on_epoch_end(self, _model):
                    bar.update(1)

            model.train(
                corpus_file=corpus_file,
                total_words=model.corpus_total_words,
                epochs=epochs,
                callbacks=[_Epochs()],
            )
    finally:
        gensim_log.setLevel(level)
    log.info(
        "word2vec (%s): %d words x %d dimensions from %d running words, %d epochs in %.1f s",
        algorithm,
        len(model.wv),
        vector_size,
        model.corpus_total_words,
        epochs,
        time.perf_counter() - start,
    )
    return model.wv


def read_vectors(path: str):
    """Word vectors from a word2vec-format file: text (``.txt``, ``.vec``, optionally
    ``.gz``; a ``count dimensions`` header line, then ``word v1 v2 ...``) or binary (``.bin``).

    Returns:
        gensim ``KeyedVectors``.

    Raises:
        DataError: naming the file: missing, or not in the word2vec format.
    """
    from gensim.models import KeyedVectors

    if not os.path.isfile(path):
        raise DataError(f"{path}: no such file (expected word vectors in the word2vec format)")
    binary = path.endswith(".bin")
    try:
        return KeyedVectors.load_word2vec_format(path, binary=binary)
    except (ValueError, UnicodeDecodeError, EOFError, OSError) as e:
        reason = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise DataError(
            f"{path}: not word vectors in the word2vec {'binary' if binary else 'text'} format "
            f"(a 'count dimensions' header line, then 'word v1 v2 ...' per line): {reason}"
        ) from None


def embedding_matrix(
    vocabulary: list[str], vectors, embedding_dim: int, seed: int, source: str = "vectors"
) -> tuple[np.ndarray, float]:
    """The rows of ``vectors`` in ``vocabulary`` order, for ``keras.layers.Embedding``.

    A word the vectors lack (and the reserved ``[UNK]``, ``[START]``, ``[END]``) gets a
    random row, normal with the found rows' standard deviation (seeded); ``[PAD]`` (id 0)
    a zero row.

    Args:
        vocabulary: tokens, id = index (reserved tokens first).
        vectors: gensim ``KeyedVectors`` (or any mapping with ``in`` and ``[]``).
        embedding_dim: the embedding layer's width; must equal the vectors' width.
        seed: seed of the random rows.
        source: where the vectors came from, for the error message.

    Returns:
        ``(matrix, coverage)``: float32 ``(len(vocabulary), embedding_dim)`` and the share of
        the non-reserved words found in ``vectors``.

    Raises:
        DataError: when the vectors' width differs from ``embedding_dim``.
    """
    from seqtasks.tokens import RESERVED_TOKENS

    width = int(vectors.vector_size)
    if width != embedding_dim:
        raise DataError(
            f"{source}: {width}-dimensional vectors, but the model's embedding_dim is "
            f"{embedding_dim} (expected equal; pass --set embedding_dim={width})"
        )
    words = vocabulary[len(RESERVED_TOKENS) :]
    found = [i for i, word in enumerate(words, len(RESERVED_TOKENS)) if word in vectors]
    rows = np.stack([vectors[vocabulary[i]] for i in found]) if found else np.zeros((0, width))
    scale = float(rows.std()) if len(found) else 0.05
    rng = np.random.default_rng(seed)
    matrix = rng.normal(0.0, scale, (len(vocabulary), width)).astype("float32")
    matrix[0] = 0.0
    if found:
        matrix[found] = rows
    return matrix, len(found) / max(len(words), 1)


def unlabeled_texts(path: str, exclude: Iterable[str]) -> list[str]:
    """The documents of the corpus at ``path`` (:func:`seqtasks.data.text_corpus.load_corpus`,
    documents mode) except those equal to a text of ``exclude`` (the validation texts,
    compared with ``<br />`` and whitespace runs as one space).

    Raises:
        DataError: as :func:`~seqtasks.data.text_corpus.load_corpus`.
    """
    from seqtasks.data.text_corpus import load_corpus, text_key

    held_out = {text_key(text) for text in exclude}
    corpus = load_corpus(path, mode="documents")
    kept = [text for text in corpus.texts if text_key(text) not in held_out]
    log.info(
        "unlabeled text %s: %d documents, %d left out (equal to a validation text)",
        path,
        len(corpus.texts),
        len(corpus.texts) - len(kept),
    )
    return kept


def classifier_embeddings(
    config,
    vocabulary: list[str],
    train_texts: list[str],
    validation_texts: list[str],
    work_dir: str,
) -> tuple[np.ndarray, dict]:
    """The embedding matrix ``config.init_embeddings`` asks for, and what to record of it.

    ``word2vec``: vectors learned (:func:`train_word2vec`, ``config.word2vec_epochs``,
    ``config.word2vec_algorithm``, ``config.min_frequency``, ``config.word2vec_workers``) from
    ``train_texts`` plus ``config.unlabeled_data`` minus any text equal to a validation
    text, so validation stays unseen; otherwise a vectors file (:func:`read_vectors`).

    Args:
        config: a classifier config with ``init_embeddings``, ``unlabeled_data``,
            ``word2vec_epochs``, ``word2vec_algorithm``, ``word2vec_workers``, ``min_frequency``,
            ``embedding_dim`` and ``seed``.
        vocabulary: the classifier's tokens, id = index.
        train_texts: the training split's texts.
        validation_texts: the validation split's texts (kept out of word2vec's input).
        work_dir: where word2vec's tokenized input is written (``word2vec_corpus.txt``,
            deleted after training).

    Returns:
        ``(matrix, metadata)``: float32 ``(len(vocabulary), embedding_dim)``
        (:func:`embedding_matrix`) and a JSON-able dict (source, coverage, texts,
        seconds).

    Raises:
        DataError: unreadable vectors or unlabeled data, or a width other than
            ``embedding_dim``.
    """
    start = time.perf_counter()
    if config.init_embeddings == "word2vec":
        texts = list(train_texts)
        if config.unlabeled_data:
            texts += unlabeled_texts(config.unlabeled_data, validation_texts)
        corpus_file = os.path.join(work_dir, "word2vec_corpus.txt")
        words = write_corpus(texts, corpus_file)
        try:
            vectors = train_word2vec(
                corpus_file,
                vector_size=config.embedding_dim,
                epochs=config.word2vec_epochs,
                min_count=config.min_frequency,
                algorithm=config.word2vec_algorithm,
                seed=config.seed,
                workers=config.word2vec_workers,
            )
        finally:
            os.remove(corpus_file)
        source = "word2vec"
        extra = {"texts": len(texts), "words": words, "epochs": config.word2vec_epochs}
        extra["algorithm"] = config.word2vec_algorithm
    else:
        vectors = read_vectors(config.init_embeddings)
        source, extra = config.init_embeddings, {}
    matrix, coverage = embedding_matrix(
        vocabulary, vectors, config.embedding_dim, config.seed, source=source
    )
    seconds = round(time.perf_counter() - start, 1)
    log.info(
        "embeddings from %s: %.1f%% of the vocabulary's words found (%.1f s)",
        source,
        100 * coverage,
        seconds,
    )
    return matrix, {"source": source, "coverage": round(coverage, 4), "seconds": seconds, **extra}
