"""The translation recipe's config (``--set key=value`` fields), importable without TensorFlow.

:class:`TranslationConfig` is re-exported by :mod:`tasks.translation.config` (and
:mod:`tasks.translation`); ``cli.py`` checks ``--set`` values and ``--data`` against it
before the recipe (and TensorFlow) is imported.
"""

from __future__ import annotations

import dataclasses

from seqtasks.choices import SEQ2SEQ_MODELS
from seqtasks.config import TrainConfig, option, retune
from seqtasks.config_groups import (
    RecordFields,
    RNNFields,
    ScheduleFields,
    SubwordFields,
    TransformerFields,
)
from seqtasks.decoding_config import DecodingConfig
from seqtasks.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class TranslationConfig(
    TransformerFields,
    RNNFields,
    SubwordFields,
    ScheduleFields,
    RecordFields,
    DecodingConfig,
    TrainConfig,
):
    """Defaults of the translation recipe (every field can be set with ``--set key=value``)."""

    model: str = option("transformer", "Encoder-decoder architecture.", choices=SEQ2SEQ_MODELS)
    epochs: int = option(20, "Maximum number of epochs (early stopping may end sooner).", min=1)
    batch_size: int = option(64, "Sentence pairs per training batch.", min=1)
    learning_rate: float = option(
        1e-3, "Adam learning rate (the Transformer's peak, reached after warmup_steps).", above=0.0
    )
    reduce_lr_factor: float = option(
        0.5,
        "RNN models: multiply the learning rate by this after an epoch without a better "
        "validation loss (1 = off). The Transformer uses its warm-up schedule instead.",
        min=0.01,
        max=1.0,
    )
    patience: int = option(
        3, "Early stopping: epochs without a better validation loss before stopping.", min=0
    )
    format: str = retune(
        RecordFields,
        "format",
        "auto",
        help="Data format of a file; auto uses the extension (a .tsv/.txt is records only if "
        "its first line names both columns, else a headerless pair file).",
    )
    on_bad_rows: str = retune(
        RecordFields,
        "on_bad_rows",
        "error",
        help="Malformed pairs (no tab, wrong number of fields, empty side, bad UTF-8, invalid "
        "JSON): error stops at the first; skip drops them with a warning (count, first line "
        "numbers) and records the count.",
    )
    vocabulary_size: int = retune(
        SubwordFields,
        "vocabulary_size",
        8000,
        help="Upper bound on WordPiece tokens per vocabulary (4 reserved included).",
    )
    sequence_length: int = retune(
        SubwordFields,
        "sequence_length",
        64,
        help="Longest source and target in subword tokens ([START]/[END] included); longer "
        "training pairs are dropped, longer inputs truncated at inference.",
    )
    hidden_dim: int = retune(
        TransformerFields,
        "hidden_dim",
        256,
        help="Transformer d_model; RNN units per encoder direction.",
    )
    # The language pair is the data's: fine-tuning puts the export's back (finetune_config).
    source_lang: str = option(
        "en", "Source language code (file suffix in a folder of splits).", data=True
    )
    target_lang: str = option("de", "Target language code.", data=True)
    source_file: str | None = option(
        None, "Explicit source file, one sentence per line.", data=True
    )
    target_file: str | None = option(
        None, "Explicit target file, aligned with source_file.", data=True
    )
    split: str = option(
        "train", "Training split of a folder of <split>.<lang> files, or TFDS.", data=True
    )
    validation_data: str | None = option(
        None,
        "Split of the same folder/TFDS dataset used for validation (e.g. val); "
        "None carves validation_split from the training data.",
        data=True,
    )
    reverse: bool = option(
        False, "Headerless pair files: column 2 is the source, column 1 the target.", data=True
    )
    source_column: str | None = option(
        None,
        "Source field of CSV/TSV/JSONL/Parquet data (default: source_lang if such a column "
        "exists, else source).",
        data=True,
    )
    target_column: str | None = option(
        None,
        "Target field of CSV/TSV/JSONL/Parquet data (default: target_lang if such a column "
        "exists, else target).",
        data=True,
    )
    shared_vocabulary: bool = option(
        False, "One WordPiece vocabulary for both languages instead of one each."
    )
    tie_embeddings: bool = option(
        False,
        "Transformer with shared_vocabulary=true: one matrix for the source embedding, the "
        "target embedding and the output layer (three-way tying, Press & Wolf 2017).",
    )
    lowercase: bool = option(False, "Lower-case text before tokenization.")
    num_layers: int | None = option(
        None,
        "Transformer blocks per side (None: 3); rnn-attention bidirectional encoder layers "
        "(None: 1).",
        min=1,
    )

    def check(self) -> None:
        """The groups' checks; ``source_file`` and ``target_file`` go together; tying needs
        the Transformer and one vocabulary."""
        super().check()
        if self.tie_embeddings and (self.model != "transformer" or not self.shared_vocabulary):
            raise ConfigError(
                "config field 'tie_embeddings' needs model=transformer and "
                f"shared_vocabulary=true; received: model={self.model}, "
                f"shared_vocabulary={str(self.shared_vocabulary).lower()}"
            )
        if bool(self.source_file) != bool(self.target_file):
            raise ConfigError("--source-file and --target-file go together; received only one")
