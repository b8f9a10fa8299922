"""Start a classifier from a pretrained language model (``train sentiment --init-from``):
find the language model, its tokenizer and vocabulary, and turn texts into the ids it read.

A language model comes from an export of the language-model recipe
(``saved_models/language-model``: ``assets.extra/model.keras`` and ``vocabulary.txt``) or
from its run directory (``config.json``, ``vocabulary.txt`` and the weights: ``model.keras``
of a run under another Keras backend, else ``best.weights.h5``, else the newest
``resume/epoch-<n>.weights.h5`` of an unfinished run), so a long pretraining run can be
used while it is still going.
"""

from __future__ import annotations

import dataclasses
import glob
import json
import logging
import os
import re

import tensorflow as tf

from seqtasks.errors import ExportError
from seqtasks.signature_module import SignatureModule
from seqtasks.tokens import START_ID

log = logging.getLogger(__name__)

VOCABULARY_FILE = "vocabulary.txt"


@dataclasses.dataclass
class PretrainedLanguageModel:
    """A language model found by :func:`load_language_model`.

    Attributes:
        model: the built Keras model (:mod:`seqtasks.models.language_models`).
        kind: ``lstm``, ``gru``, ``rnn`` or ``transformer``.
        tokenizer: its tokenizer (:mod:`seqtasks.lm_tokenizers`).
        vocabulary_file: the vocabulary the tokenizer reads.
        config: the language model's config fields (a dict).
        source: what to record: ``path``, ``weights`` (the file read) and ``kind``.
    """

    model: object
    kind: str
    tokenizer: object
    vocabulary_file: str
    config: dict
    source: dict


def _read_json(path: str) -> dict:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        raise ExportError(f"{path}: cannot read: {e}") from None


def _newest_epoch_weights(run_dir: str) -> str | None:
    found = glob.glob(os.path.join(run_dir, "resume", "epoch-*.weights.h5"))
    numbered = [(int(m.group(1)), p) for p in found if (m := re.search(r"epoch-(\d+)\.", p))]
    return max(numbered)[1] if numbered else None


def load_language_model(path: str) -> PretrainedLanguageModel:
    """The language model of an export or a run directory of the language-model recipe.

    Args:
        path: an export's base folder or version folder, or a run directory.

    Returns:
        A :class:`PretrainedLanguageModel`.

    Raises:
        ExportError: ``path`` is neither, is another recipe's, or lacks the model,
            vocabulary or weights (one line naming the path and what is missing).
    """
    from seqtasks.export import read_metadata, resolve_export
    from seqtasks.inference import load_keras_model
    from seqtasks.lm_tokenizers import load_tokenizer
    from seqtasks.models.lm_classifier import language_model_kind

    if not os.path.isdir(path):
        raise ExportError(f"{path}: no such folder (expected a language-model export or run)")
    run_config = os.path.join(path, "config.json")
    if os.path.isfile(run_config):
        record = _read_json(run_config)
        recipe, config = record.get("recipe"), record.get("config") or {}
        vocabulary_file = os.path.join(path, VOCABULARY_FILE)
        weights = None
        for candidate in ("model.keras", "best.weights.h5"):
            if os.path.isfile(os.path.join(path, candidate)):
                weights = os.path.join(path, candidate)
                break
        weights = weights or _newest_epoch_weights(path)
        what = "run directory"
    else:
        version_dir = resolve_export(path)
        metadata = read_metadata(version_dir)
        recipe, config = metadata.get("task"), metadata.get("config") or {}
        vocabulary_file = os.path.join(version_dir, "assets.extra", VOCABULARY_FILE)
        weights = os.path.join(version_dir, "assets.extra", "model.keras")
        what = "export"
    if recipe != "language-model":
        raise ExportError(
            f"{path}: --init-from needs a language-model export or run; this {what} is "
            f"of the {recipe} recipe"
        )
    for needed in (vocabulary_file, weights):
        if not needed or not os.path.isfile(needed):
            raise ExportError(
                f"{path}: cannot start from this {what}: it lacks "
                f"{needed or 'model weights (model.keras, best.weights.h5 or resume/)'}"
            )
    tokenizer = load_tokenizer(
        config.get("tokenizer", "char"),
        vocabulary_file,
        lowercase=bool(config.get("lowercase")),
        char_unit=config.get("char_unit", "codepoint"),
    )
    if weights.endswith(".keras"):
        model = load_keras_model(weights)
    else:
        model = _build(config, tokenizer)
        model.load_weights(weights)
    kind = language_model_kind(model)
    log.info(
        "language model %s: %s, %d-token %s vocabulary, weights %s",
        path,
        kind,
        tokenizer.vocabulary_size,
        tokenizer.kind,
        weights,
    )
    return PretrainedLanguageModel(
        model,
        kind,
        tokenizer,
        vocabulary_file,
        config,
        {"path": os.path.abspath(path), "weights": os.path.abspath(weights), "kind": kind},
    )


def _build(config: dict, tokenizer):
    """The language model a run's ``config.json`` describes, built, untrained."""
    from seqtasks.recipe import Prepared
    from tasks.language_model import LanguageModelInfo, LanguageModelRecipe

    recipe = LanguageModelRecipe()
    known = {k: v for k, v in config.items() if k in recipe.config_class.__dataclass_fields__}
    lm_config = recipe.config_class(**known)
    info = LanguageModelInfo(tokenizer, "documents", {})
    return recipe.build_model(lm_config, Prepared(None, None, info, {}))


class LanguageModelVectorizer(SignatureModule):
    """Raw strings to the ids a language model read: ``[START]`` then its tokens.

    Has the interface of :class:`seqtasks.text.WordVectorizer` (``sequence_length``,
    ``vocabulary_size``, ``pad``), so the classifier's batches, export and fine-tuning use
    it the same way.

    Args:
        tokenizer: a tokenizer of :mod:`seqtasks.lm_tokenizers`.
        sequence_length: ids kept per text, ``[START]`` included (the first ones).

    Call arguments:
        text: tf.string ``(batch,)``.

    Returns (``__call__``):
        int32 RaggedTensor ``(batch, None)``, at most ``sequence_length`` ids per row,
        starting with ``[START]`` = 2.
    """

    def __init__(self, tokenizer, sequence_length: int, name: str | None = None):
        super().__init__(name=name)
        self.tokenizer = tokenizer
        self.kind = tokenizer.kind
        self.sequence_length = int(sequence_length)
        self.vocabulary_size = tokenizer.vocabulary_size
        self.vocabulary_file = tokenizer.vocabulary_file

    def __call__(self, text: tf.Tensor) -> tf.RaggedTensor:
        ids = self.tokenizer(text)[:, : self.sequence_length - 1]  # (B, None) int32
        start = tf.fill([tf.shape(text)[0], 1], tf.constant(START_ID, tf.int32))
        return tf.concat([tf.RaggedTensor.from_tensor(start), ids], axis=1)

    @staticmethod
    def pad(token_ids: tf.RaggedTensor) -> tf.Tensor:
        """As :meth:`seqtasks.text.WordVectorizer.pad`."""
        from seqtasks.text import WordVectorizer

        return WordVectorizer.pad(token_ids)


def vectorizer_for(preprocessing: dict, vocabulary_file: str, sequence_length: int):
    """The vectorizer an export's ``preprocessing`` metadata describes, over
    ``vocabulary_file``: :class:`~seqtasks.text.WordVectorizer` for the classifier's own
    ``word`` vocabulary, else a :class:`LanguageModelVectorizer` of the language model's
    tokenizer (``language_model_tokenizer``, ``lowercase``, ``char_unit``)."""
    from seqtasks.lm_tokenizers import load_tokenizer
    from seqtasks.text import WordVectorizer

    kind = preprocessing.get("language_model_tokenizer")
    if not kind:
        return WordVectorizer(vocabulary_file, sequence_length)
    tokenizer = load_tokenizer(
        kind,
        vocabulary_file,
        lowercase=bool(preprocessing.get("lowercase")),
        char_unit=preprocessing.get("char_unit", "codepoint"),
    )
    return LanguageModelVectorizer(tokenizer, sequence_length)


def preprocessing_of(vectorizer) -> dict:
    """The ``preprocessing`` metadata of a classifier export using ``vectorizer``."""
    if isinstance(vectorizer, LanguageModelVectorizer):
        tokenizer = vectorizer.tokenizer
        return {
            "tokenizer": tokenizer.kind,
            "language_model_tokenizer": tokenizer.kind,
            "lowercase": bool(getattr(tokenizer, "lowercase", False)),
            "char_unit": getattr(tokenizer, "char_unit", "codepoint"),
            "start_token": True,
            "sequence_length": vectorizer.sequence_length,
        }
    return {"tokenizer": "word", "sequence_length": vectorizer.sequence_length}
