"""What ``cli.py`` knows about a recipe before TensorFlow is imported.

Importing a recipe imports TensorFlow and Keras (about 5 s); a misspelt recipe name, a
bad ``--set`` value or a missing ``--data`` path should answer at once. Each
:class:`RecipeEntry` holds the recipe's name, task type, description, models and
``extra_commands`` (the same values as the recipe class's attributes: tests/cli checks
they agree), where its config class lives (a module without TensorFlow) and where the
recipe class lives. :func:`entry` finds one by name; :meth:`RecipeEntry.make_config`
builds and checks a config like :meth:`seqtasks.recipe.Recipe.make_config`;
:func:`check_data_path` refuses a ``--data`` path that does not exist.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
from typing import Any

from seqtasks.config import TrainConfig, apply_overrides
from seqtasks.errors import ConfigError, DataError, UserError


@dataclasses.dataclass(frozen=True)
class RecipeEntry:
    """One recipe as the registry knows it.

    Attributes:
        name: the recipe's name (``cli.py train NAME``).
        task_type: ``many-to-one``, ``many-to-many``, ``one-to-many`` or ``next-token``
            (a language model: many-to-many, each output the next input).
        description: one line for ``cli.py recipes``.
        models: ``--model`` value -> one-line description.
        config: ``"module:ClassName"`` of the config class (a module without TensorFlow).
        recipe: ``"module:ClassName"`` of the recipe class (imports TensorFlow).
        no_data: the error of ``train`` without ``--data`` (as the recipe's ``load_data``).
        extra_commands: commands beyond train/predict/evaluate/finetune its models serve.
        evaluate_options: the keyword options ``evaluate_export`` takes besides ``data``
            (``cli.py evaluate`` refuses the others before importing the recipe).
        source_files: whether ``--source-file``/``--target-file`` replace ``--data``.
    """

    name: str
    task_type: str
    description: str
    models: dict[str, str]
    config: str
    recipe: str
    no_data: str
    extra_commands: frozenset[str] = frozenset()
    evaluate_options: frozenset[str] = frozenset()
    source_files: bool = False

    @property
    def config_class(self) -> type[TrainConfig]:
        """The recipe's config class, imported without TensorFlow."""
        return _load(self.config)

    def recipe_class(self) -> type:
        """The recipe class (importing it imports TensorFlow and Keras)."""
        return _load(self.recipe)

    def make_config(self, **overrides: Any) -> TrainConfig:
        """The recipe's defaults with ``overrides`` applied (strings are parsed), as
        :meth:`seqtasks.recipe.Recipe.make_config` builds them.

        Raises:
            ConfigError: for an unknown field or an invalid value.
        """
        from seqtasks.recipe import record_explicit

        config = self.config_class(export_dir=f"saved_models/{self.name}")
        return record_explicit(apply_overrides(config, overrides), overrides)

    def check_training_data(self, config: TrainConfig) -> None:
        """``train``'s data checks that need no TensorFlow: data is given, and a ``--data``
        path exists (``tfds:NAME`` is not a path).

        Raises:
            ConfigError: no ``--data`` (nor ``--source-file``, where the recipe takes one).
            DataError: ``PATH: no such file or directory`` (``--data``, ``unlabeled_data``,
                ``exclude_texts``, ``init_from``, an ``init_embeddings`` vectors file).
        """
        source_file = getattr(config, "source_file", None) if self.source_files else None
        if not config.data and not source_file:
            raise ConfigError(self.no_data)
        if not (source_file or getattr(config, "target_file", None)):
            check_data_path(config.data)
        for field in ("unlabeled_data", "exclude_texts", "init_from"):
            check_data_path(getattr(config, field, None))
        vectors = getattr(config, "init_embeddings", None)
        if vectors not in (None, "word2vec"):
            check_data_path(vectors)


def _load(path: str):
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


def check_data_path(data: str | None) -> None:
    """Refuse a ``--data`` path that does not exist, with the data loaders' message.

    ``None``, ``""`` and ``tfds:NAME`` pass (they are not paths).

    Raises:
        DataError: ``PATH: no such file or directory``.
    """
    if data and not data.startswith("tfds:") and not os.path.exists(data):
        raise DataError(f"{data}: no such file or directory")


ENTRIES: dict[str, RecipeEntry] = {
    entry.name: entry
    for entry in (
        RecipeEntry(
            name="sentiment",
            task_type="many-to-one",
            description="Text classification (sentiment, topics, intents): one label per "
            "text, or several with --multi-label.",
            models={
                "rnn": "SimpleRNN (tanh, or ReLU with identity-initialised recurrent weights)",
                "lstm": "LSTM",
                "gru": "GRU",
                "bilstm": "Bidirectional LSTM, stackable (default)",
                "transformer": "keras-hub TokenAndPositionEmbedding + TransformerEncoder "
                "blocks, pooled",
                "mingru": "minGRU (Feng et al. 2024): gates read the input only, so a whole "
                "review is one scan",
                "minlstm": "minLSTM (Feng et al. 2024)",
                "bimingru": "Bidirectional minGRU",
                "biminlstm": "Bidirectional minLSTM",
            },
            config="tasks.sentiment_config:SentimentConfig",
            recipe="tasks.sentiment:SentimentRecipe",
            no_data="no training data: pass --data PATH (a file, a folder or tfds:<name>)",
            extra_commands=frozenset({"carve"}),
            evaluate_options=frozenset(
                {
                    "format",
                    "text_column",
                    "label_column",
                    "split",
                    "label_map",
                    "max_examples",
                    "on_bad_rows",
                }
            ),
        ),
        RecipeEntry(
            name="captioning",
            task_type="one-to-many",
            description="Image captioning: an image (or a feature vector) in, a sentence out.",
            models={
                "attention": "LSTM decoder attending over the CNN feature grid (Show, Attend "
                "and Tell; default)",
                "lstm": "LSTM decoder whose initial state comes from the image (Show and Tell)",
                "transformer": "keras-hub TransformerDecoder cross-attending over the feature grid",
            },
            config="tasks.captioning_config:CaptioningConfig",
            recipe="tasks.captioning:CaptioningRecipe",
            no_data="no training data: pass --data PATH (a Flickr8k folder, a .csv/.tsv/"
            ".jsonl/.parquet of image and caption rows, a .npz of feature vectors or "
            "tfds:<name>)",
            extra_commands=frozenset({"plot-captions"}),
            evaluate_options=frozenset(
                {
                    "split",
                    "image_dir",
                    "captions_file",
                    "max_examples",
                    "format",
                    "image_column",
                    "caption_column",
                    "on_bad_rows",
                }
            ),
        ),
        RecipeEntry(
            name="translation",
            task_type="many-to-many",
            description="Machine translation (encoder-decoder): a sentence in, its "
            "translation out.",
            models={
                "transformer": "keras-hub Transformer encoder-decoder (default)",
                "rnn-attention": "BiLSTM/BiGRU encoder, LSTM/GRU decoder with additive or "
                "multiplicative attention",
            },
            config="tasks.translation_config:TranslationConfig",
            recipe="tasks.translation:TranslationRecipe",
            no_data="no training data: pass --data PATH (a folder of <split>.<lang> files, "
            "a CSV/TSV/JSONL/Parquet file, a pair file or zip, or tfds:<name>) or "
            "--source-file and --target-file",
            extra_commands=frozenset({"plot-attention"}),
            source_files=True,
            evaluate_options=frozenset(
                {
                    "source_lang",
                    "target_lang",
                    "source_file",
                    "target_file",
                    "split",
                    "max_examples",
                    "format",
                    "source_column",
                    "target_column",
                    "on_bad_rows",
                }
            ),
        ),
        RecipeEntry(
            name="language-model",
            task_type="next-token",
            description="Language modelling: next-token prediction from [START] to [END]; "
            "perplexity, and text generated from a prompt.",
            models={
                "lstm": "stacked LSTM (default)",
                "gru": "stacked GRU",
                "rnn": "stacked SimpleRNN",
                "transformer": "keras-hub TokenAndPositionEmbedding + TransformerDecoder blocks "
                "without cross-attention (decoder-only, causal)",
                "mingru": "stacked minGRU (Feng et al. 2024): trained by a scan over the "
                "window, generates with a cached step; --set residual_blocks=true for the "
                "paper's norm/residual/feed-forward block",
                "minlstm": "stacked minLSTM (Feng et al. 2024), as mingru",
            },
            config="tasks.language_model_config:LanguageModelConfig",
            recipe="tasks.language_model:LanguageModelRecipe",
            no_data="no training data: pass --data PATH (a .txt/.gz file, a folder, a "
            "CSV/TSV/JSONL/Parquet file with a text column, a .tar.gz of .txt documents, or "
            "tfds:<name>)",
            extra_commands=frozenset({"generate"}),
            evaluate_options=frozenset(
                {"format", "text_column", "split", "max_examples", "on_bad_rows"}
            ),
        ),
    )
}


def entry(name: str) -> RecipeEntry:
    """The registry's entry for the recipe called ``name``.

    Raises:
        UserError: for an unknown name, listing the known ones.
    """
    if name not in ENTRIES:
        raise UserError(f"unknown recipe {name!r}; expected one of: {', '.join(sorted(ENTRIES))}")
    return ENTRIES[name]
