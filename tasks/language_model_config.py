"""The language-model recipe's config (``--set key=value`` fields), importable without TensorFlow.

:class:`LanguageModelConfig` is re-exported by :mod:`tasks.language_model`; ``cli.py``
checks ``--set`` values and ``--data`` against it before TensorFlow is imported.
"""

from __future__ import annotations

import dataclasses

from seqtasks.choices import LM_MODELS, LM_MODES, LM_TOKENIZERS
from seqtasks.config import TrainConfig, option, retune
from seqtasks.config_groups import RecordFields, ScheduleFields, SubwordFields
from seqtasks.decoding_config import DecodingConfig
from seqtasks.errors import ConfigError

# Plain-text files are one stream (mode auto); everything else is a set of documents.
STREAM_EXTENSIONS = (".txt", ".text", ".txt.gz", ".gz")


@dataclasses.dataclass(frozen=True)
class LanguageModelConfig(SubwordFields, ScheduleFields, RecordFields, DecodingConfig, TrainConfig):
    """Defaults of the language-model recipe (every field can be set with ``--set key=value``)."""

    data: str = retune(
        TrainConfig,
        "data",
        "",
        help="Training text: a .txt/.gz file, a folder of them, a .csv/.tsv/.jsonl/.parquet "
        "with a text column, a .tar.gz of .txt documents (aclImdb), or tfds:<name>.",
    )
    max_examples: int | None = retune(
        TrainConfig,
        "max_examples",
        None,
        help="Use only the first N training sequences (documents, or windows in stream "
        "mode; quick runs); None uses all.",
    )
    model: str = option("lstm", "Decoder-only language model.", choices=LM_MODELS)
    tokenizer: str = option(
        "char",
        "char (characters, learned from the text), word (words and punctuation) or wordpiece "
        "(subwords learned from the text).",
        choices=LM_TOKENIZERS,
    )
    char_unit: str = option(
        "codepoint",
        "char tokenizer: Unicode code points or UTF-8 bytes.",
        choices=("codepoint", "byte"),
    )
    mode: str = option(
        "auto",
        "stream: one contiguous text cut into windows (validation: its last validation_split); "
        "documents: [START] doc [END] per record or line (validation: a seeded share of the "
        "documents); auto: stream for a plain-text file, documents otherwise.",
        choices=LM_MODES,
        data=True,
    )
    validation_split: float = retune(
        TrainConfig,
        "validation_split",
        0.1,
        help="Held out for validation: the contiguous tail of a stream, or a seeded share of "
        "the documents.",
    )
    validation_data: str | None = option(
        None, "A text file (or any --data kind) used for validation instead.", data=True
    )
    text_column: str | None = option(
        None, "Text field of CSV/TSV/JSONL/Parquet data (default: text).", data=True
    )
    exclude_texts: str | None = option(
        None,
        "Documents mode: leave out every document equal to a text of this file (any --data "
        "kind, e.g. the validation carve `cli.py carve sentiment` writes), so a classifier "
        "started from this model is validated on text it never read.",
        data=True,
    )
    split: str | None = option(
        None,
        "Only these documents: a folder name inside an archive (aclImdb: unsup, pos, neg) or "
        "a TFDS split.",
        data=True,
    )
    vocabulary_size: int = retune(
        SubwordFields,
        "vocabulary_size",
        8000,
        help="Upper bound on the vocabulary (4 reserved tokens included; char: characters).",
    )
    min_frequency: int = retune(
        SubwordFields, "min_frequency", 2, help="A word, piece or character must occur this often."
    )
    sequence_length: int = retune(
        SubwordFields,
        "sequence_length",
        128,
        help="Training window in tokens ([START] included); the Transformer's context.",
    )
    lowercase: bool = option(False, "Lower-case text before tokenization.")
    embedding_dim: int | None = option(
        None, "RNN models: token embedding size (None: 256, or hidden_dim when tied).", min=1
    )
    hidden_dim: int | None = option(
        None, "RNN units per layer (None: 512), or the Transformer's d_model (None: 256).", min=1
    )
    intermediate_dim: int | None = option(
        None, "Transformer feed-forward width (None: 4 x hidden_dim).", min=1
    )
    num_heads: int = option(4, "Transformer attention heads.", min=1)
    num_layers: int | None = option(
        None, "Stacked recurrent layers (None: 1) or Transformer blocks (None: 4).", min=1
    )
    tie_embeddings: bool = option(
        False, "Use the input embedding matrix as the output layer (Press & Wolf 2017)."
    )
    residual_blocks: bool = option(
        False,
        "mingru/minlstm: stack the block of Feng et al. 2024 (layer norm, residual "
        "connection, feed-forward network) instead of plain layers.",
    )
    conv_kernel_size: int = option(
        0,
        "RNN models: a residual causal convolution of this many positions (SiLU) over the "
        "embeddings before the first recurrent layer, so that the gates of mingru/minlstm, "
        "which read one input, see the previous tokens too; generation caches the last "
        "conv_kernel_size - 1 embeddings. 0 (default): none.",
        min=0,
        absent=0,  # runs recorded before the field had no convolution
    )
    sampled_softmax: int = option(
        0,
        "Training only: score the target and this many classes drawn from a log-uniform "
        "proposal instead of the whole vocabulary (sampled softmax, Jean et al. 2015; "
        "for large word vocabularies). Validation, metrics and the export use the full "
        "softmax. 0 = full softmax.",
        min=0,
    )
    dropout: float = retune(ScheduleFields, "dropout", 0.2)
    label_smoothing: float = retune(ScheduleFields, "label_smoothing", 0.0)
    learning_rate: float = option(
        2e-3, "Adam learning rate (the Transformer's peak, reached after warmup_steps).", above=0.0
    )
    epochs: int = option(20, "Maximum number of epochs (early stopping may end sooner).", min=1)
    reduce_lr_factor: float = retune(
        TrainConfig,
        "reduce_lr_factor",
        0.5,
        help="RNN models: multiply the learning rate by this after an epoch without a better "
        "validation loss (1 = off). The Transformer uses its warm-up schedule instead.",
    )
    decoding: str = retune(DecodingConfig, "decoding", "sample")
    temperature: float = retune(DecodingConfig, "temperature", 0.8)
    top_p: float = retune(DecodingConfig, "top_p", 0.95)
    max_length: int = option(
        200, "Generation: new tokens at most per text (baked into the export).", min=1
    )
    no_repeat_ngram_size: int = retune(
        DecodingConfig,
        "no_repeat_ngram_size",
        0,
        help="Generation (greedy, sample): never repeat an n-gram of this many tokens (0 = off).",
    )

    def check(self) -> None:
        """The groups' checks; the Transformer's widths; tying needs equal widths."""
        super().check()
        if self.model == "transformer" and self.resolved("hidden_dim") % self.num_heads:
            raise ConfigError(
                "config fields 'hidden_dim' and 'num_heads': the Transformer needs hidden_dim "
                f"divisible by num_heads; received: {self.resolved('hidden_dim')} and "
                f"{self.num_heads}"
            )
        if self.no_repeat_ngram_size and self.decoding == "beam":
            raise ConfigError(
                "config field 'no_repeat_ngram_size' applies to decoding=greedy or sample; "
                "received: decoding=beam"
            )
        if self.sampled_softmax and self.label_smoothing:
            raise ConfigError(
                "config fields 'sampled_softmax' and 'label_smoothing': label smoothing needs "
                f"the full softmax; received: {self.sampled_softmax} and {self.label_smoothing}"
            )
        if self.sampled_softmax and self.sampled_softmax >= self.vocabulary_size - 1:
            raise ConfigError(
                "config field 'sampled_softmax': expected fewer classes than the vocabulary "
                f"(vocabulary_size={self.vocabulary_size}) minus one; received: "
                f"{self.sampled_softmax}"
            )
        if self.residual_blocks and self.model not in ("mingru", "minlstm"):
            raise ConfigError(
                "config field 'residual_blocks' applies to model=mingru or minlstm; "
                f"received: model={self.model}"
            )
        if self.conv_kernel_size and self.model == "transformer":
            raise ConfigError(
                "config field 'conv_kernel_size': applies to RNN models; "
                f"received: model={self.model}"
            )
        if (
            self.tie_embeddings
            and self.model != "transformer"
            and self.embedding_dim not in (None, self.resolved("hidden_dim"))
        ):
            raise ConfigError(
                "config field 'tie_embeddings': tying needs embedding_dim equal to hidden_dim; "
                f"received: {self.embedding_dim} and {self.resolved('hidden_dim')}"
            )

    def resolved(self, name: str) -> int:
        """A width field with its model-dependent default filled in (see the fields' help)."""
        transformer = self.model == "transformer"
        hidden = self.hidden_dim or (256 if transformer else 512)
        defaults = {
            "hidden_dim": hidden,
            "num_layers": 4 if transformer else 1,
            "intermediate_dim": 4 * hidden,
            "embedding_dim": hidden if self.tie_embeddings else 256,
        }
        value = getattr(self, name)
        return defaults[name] if value is None else value

    def resolved_mode(self) -> str:
        """``stream`` or ``documents``: ``auto`` is stream for one plain-text file."""
        if self.mode != "auto":
            return self.mode
        data = (self.data or "").lower()
        plain = data.endswith(STREAM_EXTENSIONS) and not data.endswith((".tar.gz", ".tgz"))
        return "stream" if plain else "documents"
