"""The choices and defaults that configs validate against, importable without TensorFlow.

The modules that use these values (``seqtasks.models.*``, ``seqtasks.subword``,
``seqtasks.decoding``) import Keras or TensorFlow; the configs only need the names. So
the values live here and those modules re-export them: ``cli.py`` checks a ``--set``
value, a recipe name or a path before TensorFlow is imported (about 5 s).
"""

from __future__ import annotations

ENCODERS = (  # seqtasks.models.encoders
    "rnn", "lstm", "gru", "bilstm", "transformer", "mingru", "minlstm", "bimingru", "biminlstm",
)  # fmt: skip
MIN_ENCODERS = ("mingru", "minlstm", "bimingru", "biminlstm")  # take residual_blocks
RNN_ACTIVATIONS = ("tanh", "relu")  # seqtasks.models.encoders
POOLINGS = ("max", "mean", "final", "concat")  # seqtasks.models.classifier
RNN_CELLS = ("lstm", "gru", "mingru", "minlstm")  # seqtasks.models.decoders
ATTENTION_SCORES = ("additive", "multiplicative")  # seqtasks.models.attention
SEQ2SEQ_MODELS = ("transformer", "rnn-attention")  # seqtasks.models.seq2seq
DEFAULT_MIN_FREQUENCY = 10  # seqtasks.subword: tensorflow-text's lower_thresh, as keras-hub's tool
STRATEGIES = ("greedy", "beam", "sample")  # seqtasks.decoding
CAPTION_MODELS = ("lstm", "attention", "transformer")  # seqtasks.models.captioning
IMAGE_ENCODERS = ("mobilenet_v2", "cnn")  # seqtasks.models.image_encoders
LM_MODELS = (  # seqtasks.models.language_models
    "lstm", "gru", "rnn", "transformer", "mingru", "minlstm",
)  # fmt: skip
LM_TOKENIZERS = ("char", "word", "wordpiece")  # seqtasks.lm_tokenizers
WORD2VEC_ALGORITHMS = ("skipgram", "cbow")  # seqtasks.embeddings
LM_MODES = ("auto", "stream", "documents")  # seqtasks.data.language_modeling
LR_SCHEDULES = ("constant", "slanted_triangular")  # seqtasks.fine_tuning_schedule
