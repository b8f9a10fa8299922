"""The sentiment recipe's config (``--set key=value`` fields), importable without TensorFlow.

:class:`SentimentConfig` is re-exported by :mod:`tasks.sentiment`; ``cli.py`` checks a
``--set`` value against it before the recipe (and TensorFlow) is imported.
"""

from __future__ import annotations

import dataclasses

from seqtasks.choices import ENCODERS, POOLINGS, RNN_ACTIVATIONS, WORD2VEC_ALGORITHMS
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
    group_column: str | None = option(
        None,
        "Group field of CSV/TSV/JSONL/Parquet data (a movie, speaker or document id): "
        "validation then holds out whole groups (see grouped_validation).",
        data=True,
    )
    grouped_validation: bool = option(
        True,
        "Carve validation by group when the data gives groups (aclImdb: by movie, from "
        "urls_*.txt; records: group_column), so no group is on both sides; false: a "
        "random carve by example.",
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
    init_embeddings: str | None = option(
        None,
        "Start the embedding layer from word vectors: 'word2vec' learns them with gensim "
        "from the training split's texts plus unlabeled_data (never the validation texts; "
        "+4.7 points on IMDB, -1.8 on SST-2 after 1 epoch: docs/sentiment.md); a path reads a "
        "word2vec-format file (.txt/.vec text, .bin binary) of embedding_dim dimensions; "
        "none (default): random initialisation. Dai & Le 2015, sec. 4.1.",
    )
    unlabeled_data: str | None = option(
        None,
        "init_embeddings=word2vec: unlabeled text read as a language-model corpus (a .txt, "
        "a records file, a .tar.gz of .txt documents such as IMDB's unsup archive, a folder); "
        "texts equal to a validation text are left out.",
        data=True,
    )
    word2vec_epochs: int = option(5, "init_embeddings=word2vec: passes over the text.", min=1)
    word2vec_workers: int = option(
        1,
        "init_embeddings=word2vec: worker threads; 2 is about twice as fast on 2 cores, but "
        "the vectors (and so the run) then differ between runs with the same seed.",
        min=1,
    )
    word2vec_algorithm: str = option(
        "cbow",
        "init_embeddings=word2vec: cbow (default; about 2-3x faster) or skipgram.",
        choices=WORD2VEC_ALGORITHMS,
    )

    def check(self) -> None:
        """``activation`` other than tanh only for ``rnn``; Transformer ``embedding_dim >=
        num_heads``; a non-empty ``label_separator``."""
        if self.unlabeled_data and self.init_embeddings != "word2vec":
            raise ConfigError(
                "config field 'unlabeled_data': used only with init_embeddings=word2vec; "
                f"received: init_embeddings={self.init_embeddings!r}"
            )
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
