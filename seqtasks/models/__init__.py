"""seqtasks models. The minimal recurrent layers are importable from here:
``from seqtasks.models import MinGRU, MinLSTM`` (:mod:`seqtasks.models.min_rnn`)."""

from seqtasks.models.min_rnn import MinGRU, MinLSTM

__all__ = ["MinGRU", "MinLSTM"]
