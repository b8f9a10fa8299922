"""Config field groups a recipe's config is composed of.

A recipe's config is a frozen dataclass that inherits :class:`~seqtasks.config.TrainConfig`
and the groups it needs, and re-declares only the fields whose default (or help)
differs, with :func:`~seqtasks.config.retune`::

    @dataclasses.dataclass(frozen=True)
    class TranslationConfig(
        TransformerFields, RNNFields, SubwordFields, ScheduleFields, RecordFields,
        DecodingConfig, TrainConfig,
    ):
        vocabulary_size: int = retune(SubwordFields, "vocabulary_size", 8000)

Groups:

- :class:`TransformerFields`: ``hidden_dim``, ``intermediate_dim``, ``num_heads``
  (Vaswani et al. 2017, sec. 3); checks that ``hidden_dim`` is divisible by
  ``num_heads`` when ``model == "transformer"``;
- :class:`RNNFields`: ``embedding_dim``, ``cell`` (LSTM/GRU) and ``attention``
  (additive, Bahdanau et al. 2014; multiplicative, Luong et al. 2015);
- :class:`SubwordFields`: the WordPiece vocabulary (``vocabulary_size``,
  ``min_frequency``) and ``sequence_length``;
- :class:`ScheduleFields`: ``dropout``, ``label_smoothing`` and the Transformer's
  ``warmup_steps`` (Vaswani et al. 2017, sec. 5.3-5.4);
- :class:`RecordFields`: how a records file is read (``format``, ``on_bad_rows``);
  data fields (fine-tuning on new data starts them from the defaults);
- :class:`seqtasks.decoding.DecodingConfig`: how a generating recipe decodes.

A field whose metadata has ``data=True`` describes the training data, not the model
(:attr:`seqtasks.recipe.Recipe.data_fields` lists them).
"""

from __future__ import annotations

import dataclasses

from seqtasks.choices import ATTENTION_SCORES, DEFAULT_MIN_FREQUENCY, RNN_CELLS
from seqtasks.config import option
from seqtasks.data.records import FORMATS, ON_BAD_ROWS
from seqtasks.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class TransformerFields:
    """Width, feed-forward size and heads of Transformer blocks."""

    hidden_dim: int = option(256, "Transformer d_model.", min=1)
    intermediate_dim: int = option(512, "Transformer feed-forward width.", min=1)
    num_heads: int = option(4, "Transformer attention heads.", min=1)

    def check(self) -> None:
        """``hidden_dim`` divisible by ``num_heads`` for ``model == "transformer"``."""
        super().check()
        if self.model == "transformer" and self.hidden_dim % self.num_heads:
            raise ConfigError(
                f"config fields 'hidden_dim' and 'num_heads': the Transformer needs hidden_dim "
                f"divisible by num_heads; received: {self.hidden_dim} and {self.num_heads}"
            )


@dataclasses.dataclass(frozen=True)
class RNNFields:
    """Embedding size, recurrent cell and attention score of recurrent models."""

    embedding_dim: int = option(256, "RNN models: token embedding size.", min=1)
    cell: str = option(
        "lstm",
        "RNN models: recurrent cell; mingru/minlstm are the minimal recurrences of Feng et "
        "al. 2024 (linear in the state, computed with a scan).",
        choices=RNN_CELLS,
    )
    attention: str = option(
        "additive",
        "RNN models: attention score, additive (Bahdanau) or multiplicative (Luong).",
        choices=ATTENTION_SCORES,
    )


@dataclasses.dataclass(frozen=True)
class SubwordFields:
    """A WordPiece vocabulary learned from the training data, and the longest sequence."""

    vocabulary_size: int = option(
        8000, "Upper bound on WordPiece tokens (4 reserved included).", min=8
    )
    min_frequency: int = option(
        DEFAULT_MIN_FREQUENCY,
        "WordPiece: a piece must occur this often to be learned (10, keras-hub's; "
        "lower it, e.g. to 2, for a few thousand sentences, or rare words become letters).",
        min=1,
    )
    sequence_length: int = option(
        64, "Longest sequence in subword tokens ([START]/[END] included).", min=4
    )


@dataclasses.dataclass(frozen=True)
class ScheduleFields:
    """Regularisation and the Transformer's learning-rate warm-up."""

    dropout: float = option(0.1, "Dropout rate.", min=0.0, max=0.9)
    label_smoothing: float = option(0.1, "Label smoothing of the training loss.", min=0.0, max=0.9)
    warmup_steps: int = option(
        1000, "Transformer: optimizer steps of linear learning-rate warm-up.", min=1
    )


@dataclasses.dataclass(frozen=True)
class RecordFields:
    """How a CSV/TSV/JSONL/Parquet data file is read (data fields)."""

    format: str = option(
        "auto",
        "Data format of a file; auto uses the extension.",
        choices=("auto", *FORMATS),
        data=True,
    )
    on_bad_rows: str = option(
        "error",
        "Malformed rows of a data file: error stops at the first; skip drops them with a "
        "warning (count, first line numbers) and records the count.",
        choices=ON_BAD_ROWS,
        data=True,
    )
