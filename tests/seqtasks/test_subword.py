"""WordPiece subword tokenization: vocabulary, boundaries, detokenization, export."""

import gzip
import json
import os

import numpy as np
import pytest
import tensorflow as tf

from conftest import SHARED_DATA, run_fresh_python
from seqtasks.subword import SubwordTokenizer, learn_vocabulary
from seqtasks.text import RESERVED_TOKENS, write_vocabulary

MULTI30K = os.path.join(SHARED_DATA, "multi30k")


def read_lines(name, n):
    with gzip.open(os.path.join(MULTI30K, name), "rt", encoding="utf-8") as f:
        return f.read().split("\n")[:n]


@pytest.fixture(scope="module")
def german(tmp_path_factory):
    vocabulary = learn_vocabulary(read_lines("train.de.gz", 3000), 2000)
    path = write_vocabulary(vocabulary, str(tmp_path_factory.mktemp("subword") / "de.txt"))
    return SubwordTokenizer(path, sequence_length=64), vocabulary


def test_vocabulary_has_reserved_ids_first(german):
    tokenizer, vocabulary = german
    assert vocabulary[:4] == list(RESERVED_TOKENS)
    assert 100 < len(vocabulary) <= 2000 and tokenizer.vocabulary_size == len(vocabulary)
    assert any(token.startswith("##") for token in vocabulary)


def test_default_min_frequency_is_keras_hubs_vocabulary():
    import keras_hub

    texts = read_lines("train.de.gz", 800)
    dataset = tf.data.Dataset.from_tensor_slices(texts).batch(1000)
    expected = keras_hub.tokenizers.compute_word_piece_vocabulary(
        dataset, 600, reserved_tokens=list(RESERVED_TOKENS)
    )
    assert len(expected) > 300 and learn_vocabulary(texts, 600) == expected


def test_min_frequency_keeps_words_seen_that_often_whole():
    texts = ["Ein Fahrrad steht da."] * 3 + ["Zwei Hunde spielen."] * 12
    default = learn_vocabulary(texts, 200)
    low = learn_vocabulary(texts, 200, min_frequency=3)
    assert "Hunde" in default and "Fahrrad" not in default  # 3 < 10: split into pieces
    assert "Hunde" in low and "Fahrrad" in low
    with pytest.raises(ValueError, match="min_frequency: expected an integer >= 1; received: 0"):
        learn_vocabulary(texts, 200, min_frequency=0)


def test_real_sentences_round_trip(german):
    tokenizer, _ = german
    sentences = read_lines("val.de.gz", 1014)
    ids = tokenizer(tf.constant(sentences))
    known = ~tf.reduce_any(tf.equal(ids, 1), axis=1).numpy()  # rows without [UNK]
    text = [t.decode() for t in tokenizer.detokenize(ids.to_tensor()).numpy()]
    exact = [t == s for t, s, k in zip(text, sentences, known) if k]
    assert known.sum() > 500
    assert np.mean(exact) >= 0.97, [(t, s) for t, s in zip(text, sentences) if t != s][:5]


def test_boundaries_truncation_and_end(german, tmp_path):
    tokenizer, vocabulary = german
    short = SubwordTokenizer(
        write_vocabulary(vocabulary, str(tmp_path / "v.txt")), sequence_length=5
    )
    ids = short.with_boundaries(tf.constant(["Ein Hund rennt über das Gras.", ""])).to_list()
    assert ids[0][0] == 2 and ids[0][-1] == 3 and len(ids[0]) == 5
    assert ids[1] == [2, 3]
    full = tokenizer(tf.constant(["Ein Hund rennt."])).to_list()[0]
    first = [2] + full + [3, 7, 7, 0]  # text after [END] and padding are dropped
    second = [2, 3, 9, 9] + [0] * (len(first) - 4)
    decoded = tokenizer.detokenize(tf.constant([first, second]))
    assert [t.decode() for t in decoded.numpy()] == ["Ein Hund rennt.", ""]


FRESH = r"""
import json, sys
import tensorflow as tf
import tensorflow_text  # registers the WordPiece ops
m = tf.saved_model.load(sys.argv[1])
out = m.signatures["serving_default"](text=tf.constant(json.loads(sys.argv[2])))
assert not any(k == "seqtasks" or k.startswith("seqtasks.") for k in sys.modules)
print(json.dumps({"ids": out["ids"].numpy().tolist(), "text": [t.decode() for t in out["text"].numpy()]}))
"""


def test_tokenizer_in_a_savedmodel_fresh_process(german, tmp_path):
    tokenizer, _ = german

    class Serve(tf.Module):
        def __init__(self):
            super().__init__()
            self.tokenizer = tokenizer

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
        def serve(self, text):
            ids = self.tokenizer.with_boundaries(text).to_tensor()
            return {"ids": ids, "text": self.tokenizer.detokenize(ids)}

    module = Serve()
    tf.saved_model.save(module, str(tmp_path / "m"), signatures={"serving_default": module.serve})
    sentences = ["Zwei Männer stehen am Strand.", "", "Ein T-Shirt für 5 €!"]
    expected = module.serve(tf.constant(sentences))
    served = run_fresh_python(FRESH, tmp_path / "m", json.dumps(sentences), cwd=tmp_path)
    assert served["ids"] == expected["ids"].numpy().tolist()
    assert served["text"] == [t.decode() for t in expected["text"].numpy()]
    assert served["text"][:2] == ["Zwei Männer stehen am Strand.", ""]
