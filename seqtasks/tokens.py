"""Reserved tokens and ids shared by every seqtasks vocabulary (no TensorFlow needed).

::

    [PAD] = 0   padding (masked out by every model)
    [UNK] = 1   out-of-vocabulary word
    [START] = 2, [END] = 3   sequence boundaries for generation recipes

:mod:`seqtasks.text` re-exports these names; modules that must import without
TensorFlow (:mod:`seqtasks.losses`, used by ``bench/gpu/train_jax.py`` on the
JAX backend) import them from here.
"""

from __future__ import annotations

PAD, UNK, START, END = "[PAD]", "[UNK]", "[START]", "[END]"
RESERVED_TOKENS = (PAD, UNK, START, END)
PAD_ID, UNK_ID, START_ID, END_ID = 0, 1, 2, 3
