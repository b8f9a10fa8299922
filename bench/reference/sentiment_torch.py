#!/usr/bin/env python
"""Reference: the PyTorch equivalent of seqtasks' default sentiment model (CPU).

``nn.Embedding(V, 128, padding_idx=0)`` -> ``nn.Dropout1d(0.25)`` over embedding
channels (as Keras' ``SpatialDropout1D``) -> ``nn.LSTM(128, 64, bidirectional=True)``
on a ``pack_padded_sequence`` (padded steps are not computed) -> max over the real
steps -> ``nn.Dropout(0.5)`` -> ``nn.Linear(128, 2)``; Adam 1e-3, each parameter's
gradient clipped to norm 1.0 (Keras' ``clipnorm``), cross-entropy.

Tokenization is not compared: the script trains on the token ids and batches
written by the Keras reference (``sentiment_keras.py --save-ids``), so it sees the
same examples in the same order; each batch is cut to its longest text (the ids
are padded to ``--sequence-length``), as a PyTorch user's collate function would.
``nn.LSTM`` has two bias vectors per gate (Keras one), so it has 512 more parameters.

    python bench/reference/sentiment_torch.py --ids /tmp/ids.npz --data ... --result /tmp/t.json
"""

from __future__ import annotations

import common
import numpy as np
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence


class BiLSTMClassifier(nn.Module):
    def __init__(self, vocabulary_size: int, embedding_dim=128, hidden_dim=64, num_classes=2):
        super().__init__()
        self.embedding = nn.Embedding(vocabulary_size, embedding_dim, padding_idx=0)
        self.embedding_dropout = nn.Dropout1d(0.25)
        self.lstm = nn.LSTM(embedding_dim, hidden_dim, batch_first=True, bidirectional=True)
        self.dropout = nn.Dropout(0.5)
        self.output = nn.Linear(2 * hidden_dim, num_classes)

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """int64 ``ids`` ``(B, T)`` right-padded with 0, ``lengths`` ``(B,)`` -> logits ``(B, 2)``."""
        x = self.embedding(ids)  # (B, T, E)
        x = self.embedding_dropout(x.transpose(1, 2)).transpose(1, 2)  # whole channels
        packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        states, _ = pad_packed_sequence(self.lstm(packed)[0], batch_first=True)  # (B, T', 2H)
        real = torch.arange(states.shape[1])[None, :] < lengths[:, None]  # (B, T')
        pooled = states.masked_fill(~real[:, :, None], float("-inf")).amax(dim=1)  # (B, 2H)
        return self.output(self.dropout(pooled))


def trim(ids: np.ndarray):
    """A batch cut to its longest text: ``(ids (B, T'), lengths (B,))`` (length >= 1)."""
    lengths = np.maximum((ids != 0).sum(axis=1), 1)
    return torch.from_numpy(ids[:, : lengths.max()]), torch.from_numpy(lengths)


def main() -> None:
    args = common.parser(__doc__.splitlines()[0]).parse_args()
    torch.manual_seed(args.seed)
    saved = np.load(args.ids)
    x_train, y_train, x_val = saved["x_train"], saved["y_train"], saved["x_val"]
    model = BiLSTMClassifier(args.vocabulary_size)
    params = sum(p.numel() for p in model.parameters())
    print(f"torch reference: {params:,} parameters")
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    batches = common.batch_order(len(x_train), args.steps, args.batch_size, args.seed)

    clock = common.StepClock()
    clock.begin()
    model.train()
    for rows in batches:
        ids, lengths = trim(x_train[rows])
        loss = loss_fn(model(ids, lengths), torch.from_numpy(y_train[rows]))
        optimizer.zero_grad()
        loss.backward()
        for p in model.parameters():  # per-tensor clipping, as Keras' clipnorm
            torch.nn.utils.clip_grad_norm_(p, 1.0)
        optimizer.step()
        clock.tick()
    sizes = [len(b) for b in batches]
    real = [int(np.count_nonzero(x_train[b])) for b in batches]
    padded = [len(b) * int(trim(x_train[b])[0].shape[1]) for b in batches]
    result = {
        "system": "torch",
        "parameters": params,
        "vocabulary_size": args.vocabulary_size,
        "torch_threads": torch.get_num_threads(),
        **common.training_figures(clock, sizes, real, padded, args.t0),
    }

    model.eval()

    def predict(ids: np.ndarray):
        with torch.inference_mode():
            return torch.softmax(model(*trim(ids)), dim=-1).numpy()

    singles = [x_val[i : i + 1] for i in range(common.SINGLE_CALLS)]
    result["inference"] = {"torch_eager": common.time_calls(predict, singles, x_val)}
    common.write_result(args.result, result)


if __name__ == "__main__":
    main()
