"""The sentiment recipe's config (``--set key=value`` fields), importable without TensorFlow.

:class:`SentimentConfig` is re-exported by :mod:`tasks.sentiment`; ``cli.py`` checks a
``--set`` value against it before the recipe (and TensorFlow) is imported.
"""

from __future__ import annotations

import dataclasses

from seqtasks.choices import ENCODERS, POOLINGS, RNN_ACTIVATIONS
from seqtasks.config import TrainConfig, option, retune
from seqtasks.config_groups import RecordFields
from seqtasks.data.classification import LABEL_SEPARATOR
from seqtasks.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class SentimentConfig(RecordFields, TrainConfig):
    """Defaults of the sentiment recipe (every field can be set with ``--set key=value``)."""

    model: str = option("bilstm", "Encoder architecture.", choices=ENCODERS)
    epochs: int = option(5, "Maximum number of epochs (early stopping may end sooner).", min=1)
    format: str = retune(
        RecordFields, "format", "auto", help="Data format; auto uses the extension."
    )
    text_column: str | None = option(
        None, "Text field of CSV/TSV/JSONL/Parquet data (default: auto).", data=True
    )
    label_column: str | None = option(
        None, "Label field of CSV/TSV/JSONL/Parquet data (default: auto).", data=True
    )
    multi_label: bool = option(
        False,
        "Several labels per text (CSV/TSV/JSONL/Parquet): one sigmoid unit per label, binary "
        "cross-entropy; a string label is split on label_separator, a JSON/Parquet list is "
        "taken as it is.",
    )
    label_separator: str = option(
        LABEL_SEPARATOR, "Multi-label: what separates the labels of a text in a string field."
    )
    threshold: float = option(
        0.5,
        "Multi-label: a label is predicted when its probability is >= threshold (metrics, "
        "the export's labels output).",
        above=0.0,
        max=1.0,
    )
    vocabulary_size: int = option(
        30000, "Words in the vocabulary, 4 reserved tokens included.", min=5
    )
    min_frequency: int = option(2, "Leave out words seen fewer times in the training data.", min=1)
    sequence_length: int = option(
        1000, "Tokens kept per text (the first ones); longer texts are truncated.", min=1
    )
    embedding_dim: int = option(128, "Size of the learned word embeddings.", min=1)
    hidden_dim: int = option(64, "Recurrent units per direction.", min=1)
    num_layers: int = option(1, "Stacked recurrent layers or Transformer blocks.", min=1)
    num_heads: int = option(4, "Attention heads per Transformer block.", min=1)
    intermediate_dim: int = option(256, "Feed-forward width of Transformer blocks.", min=1)
    dropout: float = option(
        0.5, "Dropout rate before the output layer and between layers.", min=0.0, max=0.9
    )
    embedding_dropout: float = option(
        0.25, "Drop whole embedding channels per text (SpatialDropout1D).", min=0.0, max=0.9
    )
    recurrent_dropout: float = option(
        0.0, "Dropout on recurrent state (> 0 disables the cuDNN kernel).", min=0.0, max=0.9
    )
    activation: str = option(
        "tanh", "SimpleRNN activation; relu uses identity init (IRNN).", choices=RNN_ACTIVATIONS
    )
    pooling: str = option("max", "Pooling of encoder states over time.", choices=POOLINGS)

    def check(self) -> None:
        """``activation`` other than tanh only for ``rnn``; Transformer ``embedding_dim >=
        num_heads``; a non-empty ``label_separator``."""
        if not self.label_separator:
            raise ConfigError(
                "config field 'label_separator': expected a non-empty string; received: ''"
            )
        if self.activation != "tanh" and self.model != "rnn":
            raise ConfigError(
                f"config field 'activation': {self.activation!r} applies to model 'rnn' only "
                f"(gated cells keep tanh for the cuDNN kernel); received: model={self.model!r}"
            )
        if self.model == "transformer" and self.embedding_dim < self.num_heads:
            raise ConfigError(
                f"config fields 'embedding_dim' and 'num_heads': the Transformer needs "
                f"embedding_dim >= num_heads; received: {self.embedding_dim} and {self.num_heads}"
            )
