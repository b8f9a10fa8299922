"""The sentiment recipe's config (``--set key=value`` fields), importable without TensorFlow.

:class:`SentimentConfig` is re-exported by :mod:`tasks.sentiment`; ``cli.py`` checks a
``--set`` value against it before the recipe (and TensorFlow) is imported.
"""

from __future__ import annotations

import dataclasses

from seqtasks.choices import (
    ENCODERS,
    LR_SCHEDULES,
    MIN_ENCODERS,
    POOLINGS,
    RNN_ACTIVATIONS,
    WORD2VEC_ALGORITHMS,
)
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
    intermediate_dim: int = option(
        256, "Feed-forward width of Transformer blocks and of residual_blocks.", min=1
    )
    residual_blocks: bool = option(
        False,
        "mingru, minlstm, bimingru, biminlstm: each layer is the block of Feng et al. 2024 "
        "(layer normalisation, the recurrence, a residual connection, a feed-forward network "
        "of intermediate_dim; dropout inside the block), with a layer normalisation after "
        "the stack.",
    )
    conv_kernel_size: int = option(
        0,
        "Recurrent models: a residual convolution of this many positions (centred, SiLU) "
        "over the embeddings before the first recurrent layer, so that the gates of "
        "mingru/minlstm, which read one input, see its neighbours; 0 (default): none.",
        min=0,
        absent=0,  # runs recorded before the field had no convolution
    )
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
    init_from: str | None = option(
        None,
        "Start from a pretrained language model (an export or run directory of the "
        "language-model recipe): its tokenizer, vocabulary, embeddings and recurrent layers "
        "or Transformer blocks; the head is new and --model is the language model's, as are "
        "its vocabulary and layer sizes (setting one is an error) "
        "(Dai & Le 2015; Howard & Ruder 2018, sec. 3). Pretrain it without the validation "
        "texts: docs/sentiment.md.",
    )
    layer_lr_decay: float = option(
        1.0,
        "Discriminative fine-tuning: each layer group (embedding, each encoder layer, head) "
        "learns at the rate of the group above divided by this; 1 (default) = one rate. "
        "ULMFiT uses 2.6 (Howard & Ruder 2018, sec. 3.2).",
        min=1.0,
    )
    lr_schedule: str = option(
        "constant",
        "constant (default; halved on a validation plateau) or slanted_triangular: a linear "
        "rise to learning_rate over the first 10% of the steps, then a linear fall to 1/32 "
        "of it (ULMFiT sec. 3.2).",
        choices=LR_SCHEDULES,
    )
    gradual_unfreezing: bool = option(
        False,
        "Train the head alone the first epoch, then one more layer group each epoch, top "
        "down (ULMFiT sec. 3.3); frozen groups get a zero learning rate.",
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
        if self.init_from and self.init_embeddings:
            raise ConfigError(
                "config fields 'init_from' and 'init_embeddings': the language model brings "
                f"its own embeddings; received: init_embeddings={self.init_embeddings!r}"
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
        if self.residual_blocks and self.model not in MIN_ENCODERS:
            raise ConfigError(
                f"config field 'residual_blocks': applies to models {', '.join(MIN_ENCODERS)}; "
                f"received: model={self.model!r}"
            )
        if self.conv_kernel_size and self.model == "transformer":
            raise ConfigError(
                "config field 'conv_kernel_size': applies to recurrent models; "
                f"received: model={self.model!r}"
            )
        if self.model == "transformer" and self.embedding_dim < self.num_heads:
            raise ConfigError(
                f"config fields 'embedding_dim' and 'num_heads': the Transformer needs "
                f"embedding_dim >= num_heads; received: {self.embedding_dim} and {self.num_heads}"
            )


def model_mismatch(requested: str, path: str, kind: str) -> ConfigError:
    """The one-line error for ``--model requested`` with ``--init-from path`` of a ``kind``
    language model."""
    return ConfigError(
        f"--model {requested} cannot start from {path}: its language model is {kind} "
        f"(pass --model {kind}, or leave --model out)"
    )


# Fields the language model of ``init_from`` decides (its tokenizer, vocabulary and layers),
# and fields of a classifier built from scratch that a classifier built on it has no use for.
LANGUAGE_MODEL_FIELDS = (
    "vocabulary_size", "min_frequency", "embedding_dim", "hidden_dim", "num_layers",
    "num_heads", "intermediate_dim", "residual_blocks", "conv_kernel_size",
)  # fmt: skip
UNUSED_WITH_INIT_FROM = ("embedding_dropout", "recurrent_dropout", "activation")


def _fields(names) -> str:
    """``config field 'a'`` or ``config fields 'a', 'b'``."""
    return f"config field{'s' if len(names) > 1 else ''} " + ", ".join(f"'{n}'" for n in names)


def resolve_init_from(config: SentimentConfig, model_given: bool) -> SentimentConfig:
    """``config`` with ``model`` set to the architecture of the ``init_from`` language model,
    read from its ``config.json`` (run directory) or metadata (export); no TensorFlow.

    Raises:
        ConfigError: ``model_given`` and another architecture than the language model's
            (one line naming both); a field of ``LANGUAGE_MODEL_FIELDS`` (the language model
            decides it) or ``UNUSED_WITH_INIT_FROM`` set explicitly: it would be ignored.
        ExportError: ``init_from`` is not a language-model export or run directory.
    """
    if not config.init_from:
        return config
    import json
    import os

    from seqtasks.errors import ExportError
    from seqtasks.export import read_metadata, resolve_export
    from seqtasks.recipe import explicit_fields, record_explicit

    path = config.init_from
    given = explicit_fields(config)
    for names, why in (
        (LANGUAGE_MODEL_FIELDS, "the language model of --init-from {path} decides {them}; "
         "leave {them} out, or set {them} when training the language model"),
        (UNUSED_WITH_INIT_FROM, "a classifier started from --init-from {path} has the "
         "language model's layers and dropout, and no use for {them}; leave {them} out"),
    ):  # fmt: skip
        named = [name for name in names if name in given]
        if named:
            them = "them" if len(named) > 1 else "it"
            raise ConfigError(f"{_fields(named)}: " + why.format(path=path, them=them))
    run_config = os.path.join(path, "config.json")
    if os.path.isfile(run_config):
        try:
            with open(run_config, encoding="utf-8") as f:
                record = json.load(f)
        except (OSError, ValueError) as e:
            raise ExportError(f"{run_config}: cannot read: {e}") from None
        recipe, lm_config, what = record.get("recipe"), record.get("config") or {}, "run directory"
    else:
        metadata = read_metadata(resolve_export(path))
        recipe, lm_config, what = metadata.get("task"), metadata.get("config") or {}, "export"
    if recipe != "language-model":
        raise ExportError(
            f"{path}: --init-from needs a language-model export or run; this {what} is of "
            f"the {recipe} recipe"
        )
    kind = lm_config.get("model", "lstm")
    if model_given and config.model != kind:
        raise model_mismatch(config.model, path, kind)
    return record_explicit(dataclasses.replace(config, model=kind), given)
