#!/usr/bin/env python
"""Reference: the PyTorch ``nn.Transformer`` equivalent of seqtasks' default translation
model (CPU).

Source and target ``nn.Embedding`` (token) plus ``nn.Embedding`` (learned position,
64 rows; keras-hub's ``TokenAndPositionEmbedding``) -> ``nn.Dropout(0.1)`` ->
``nn.Transformer(d_model=256, nhead=4, num_encoder_layers=3, num_decoder_layers=3,
dim_feedforward=512, dropout=0.1, batch_first=True)`` (post-layer-norm, ReLU, as
keras-hub's blocks) with source, target and memory key-padding masks and a causal
target mask -> ``nn.Linear(256, target vocabulary)``; Adam (betas 0.9/0.98, eps
1e-9, constant 5e-4), each parameter's gradient clipped to norm 1.0 (Keras'
``clipnorm``), cross-entropy over non-padding targets with label smoothing 0.1
(as seqtasks). ``nn.Transformer`` adds a final ``LayerNorm`` to its encoder and
decoder stacks (keras-hub's blocks have none), so it has 1,024 more parameters.

Tokenization is not compared: the script trains on the token ids and batches
written by the Keras reference (``translation_keras.py --save-ids``; its WordPiece
vocabularies are seqtasks'), so it sees the same examples in the same order;
each batch is cut to its longest source and its longest target, as a PyTorch
user's collate function would. Inference is greedy on ids: the encoder runs once,
then the decoder re-runs on the whole prefix for every new token (no cache:
``nn.TransformerDecoder`` has none), as in PyTorch's translation tutorial, until
every row has produced ``[END]`` or ``sequence_length - 1`` tokens.

    python bench/reference/translation_torch.py --ids /tmp/ids.npz --data ... --result /tmp/t.json
"""

from __future__ import annotations

import common
import numpy as np
import torch
from torch import nn

PAD, START, END = 0, 2, 3


class Seq2SeqTransformer(nn.Module):
    def __init__(
        self,
        source_vocabulary_size: int,
        target_vocabulary_size: int,
        sequence_length: int = 64,
        hidden_dim: int = 256,
        intermediate_dim: int = 512,
        num_heads: int = 4,
        num_layers: int = 3,
        dropout: float = 0.1,
    ):
        super().__init__()
        self.source_tokens = nn.Embedding(source_vocabulary_size, hidden_dim)
        self.source_positions = nn.Embedding(sequence_length, hidden_dim)
        self.target_tokens = nn.Embedding(target_vocabulary_size, hidden_dim)
        self.target_positions = nn.Embedding(sequence_length, hidden_dim)
        self.dropout = nn.Dropout(dropout)
        self.transformer = nn.Transformer(
            hidden_dim,
            num_heads,
            num_layers,
            num_layers,
            intermediate_dim,
            dropout,
            batch_first=True,
        )
        self.output = nn.Linear(hidden_dim, target_vocabulary_size)

    def _embed(self, tokens: nn.Embedding, positions: nn.Embedding, ids: torch.Tensor):
        return self.dropout(tokens(ids) + positions(torch.arange(ids.shape[1]))[None])

    def encode(self, source: torch.Tensor) -> torch.Tensor:
        """int64 ``(B, S)`` right-padded with 0 -> float32 ``(B, S, D)``."""
        x = self._embed(self.source_tokens, self.source_positions, source)
        return self.transformer.encoder(x, src_key_padding_mask=source == PAD)

    def decode(self, target: torch.Tensor, memory: torch.Tensor, source: torch.Tensor):
        """int64 decoder input ``(B, T)``, encoder output, source ids -> logits ``(B, T, V)``."""
        causal = nn.Transformer.generate_square_subsequent_mask(target.shape[1])
        y = self.transformer.decoder(
            self._embed(self.target_tokens, self.target_positions, target),
            memory,
            tgt_mask=causal,
            tgt_key_padding_mask=target == PAD,
            memory_key_padding_mask=source == PAD,
            tgt_is_causal=True,
        )
        return self.output(y)

    def forward(self, source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.decode(target, self.encode(source), source)


def trim(ids: np.ndarray) -> torch.Tensor:
    """A batch of right-padded ids cut to its longest row (at least 1 column), int64."""
    longest = max(int((ids != PAD).sum(axis=1).max()), 1)
    return torch.from_numpy(ids[:, :longest].astype(np.int64))


def greedy(model: Seq2SeqTransformer, source_ids: np.ndarray, max_length: int) -> np.ndarray:
    """Greedy decoding of int ``(B, S)`` source ids -> ``(B, <= max_length)`` ids."""
    source = trim(source_ids)
    with torch.inference_mode():
        memory = model.encode(source)
        tokens = torch.full((source.shape[0], 1), START, dtype=torch.int64)
        done = torch.zeros(source.shape[0], dtype=torch.bool)
        for _ in range(max_length - 1):
            following = model.decode(tokens, memory, source)[:, -1].argmax(dim=-1)
            following = following.masked_fill(done, PAD)
            tokens = torch.cat([tokens, following[:, None]], dim=1)
            done |= following == END
            if bool(done.all()):
                break
    return tokens.numpy()


def main() -> None:
    args = common.translation_parser(__doc__.splitlines()[0]).parse_args()
    torch.manual_seed(args.seed)
    saved = np.load(args.ids)
    x_src, x_tgt, x_val = saved["x_src"], saved["x_tgt"], saved["x_val"]
    source_size, target_size = (int(n) for n in saved["vocabulary_sizes"])
    model = Seq2SeqTransformer(source_size, target_size, args.sequence_length)
    params = sum(p.numel() for p in model.parameters())
    print(f"torch reference: {params:,} parameters")
    optimizer = torch.optim.Adam(model.parameters(), lr=5e-4, betas=(0.9, 0.98), eps=1e-9)
    loss_fn = nn.CrossEntropyLoss(ignore_index=PAD, label_smoothing=0.1)
    batches = common.batch_order(len(x_src), args.steps, args.batch_size, args.seed)

    clock = common.StepClock()
    clock.begin()
    model.train()
    for rows in batches:
        source, target = trim(x_src[rows]), trim(x_tgt[rows])
        logits = model(source, target[:, :-1])
        loss = loss_fn(logits.reshape(-1, logits.shape[-1]), target[:, 1:].reshape(-1))
        optimizer.zero_grad()
        loss.backward()
        for p in model.parameters():  # per-tensor clipping, as Keras' clipnorm
            torch.nn.utils.clip_grad_norm_(p, 1.0)
        optimizer.step()
        clock.tick()
    sizes = [len(b) for b in batches]
    real, padded = [], []  # source tokens + target tokens predicted ([END] included)
    for rows in batches:
        source, target = trim(x_src[rows]), trim(x_tgt[rows])
        real.append(int((source != PAD).sum() + (target[:, 1:] != PAD).sum()))
        padded.append(source.numel() + target[:, 1:].numel())
    result = {
        "system": "torch",
        "parameters": params,
        "vocabulary_sizes": [source_size, target_size],
        "torch_threads": torch.get_num_threads(),
        **common.training_figures(clock, sizes, real, padded, args.t0),
    }

    model.eval()

    def decode(ids: np.ndarray) -> np.ndarray:
        return greedy(model, ids, args.sequence_length)

    singles = [x_val[i : i + 1] for i in range(args.single_calls)]
    timed = common.time_calls(decode, singles, x_val, args.batch_calls)
    timed["output_tokens"] = common.output_tokens(decode(x_val), END)
    result["inference"] = {"torch_greedy_uncached": timed}
    common.write_result(args.result, result)


if __name__ == "__main__":
    main()
