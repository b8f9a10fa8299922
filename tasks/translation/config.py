"""The translation recipe's config (``--set key=value`` fields) and what ``prepare`` hands on."""

from __future__ import annotations

import dataclasses

from seqtasks.data.parallel import ParallelData
from seqtasks.subword import SubwordTokenizer
from tasks.translation_config import TranslationConfig

__all__ = ["TranslationConfig", "TranslationInfo"]


@dataclasses.dataclass
class TranslationInfo:
    """What :meth:`TranslationRecipe.prepare` hands to the later steps (``Prepared.info``).

    Attributes:
        source_tokenizer: the source :class:`~seqtasks.subword.SubwordTokenizer`.
        target_tokenizer: the target one (the same object with ``shared_vocabulary``).
        validation_pairs: the validation :class:`~seqtasks.data.parallel.ParallelData`.
    """

    source_tokenizer: SubwordTokenizer
    target_tokenizer: SubwordTokenizer
    validation_pairs: ParallelData
