#!/usr/bin/env python
"""Reference: nanoGPT's "baby GPT on CPU" character model of tiny Shakespeare, in PyTorch.

Follows karpathy/nanoGPT: ``model.py`` (pre-LayerNorm blocks, causal self-attention via
``scaled_dot_product_attention``, GELU MLP 4x, learned position embeddings, token embedding
tied to ``lm_head``, ``bias=False``, init normal(0, 0.02), each ``c_proj.weight``
normal(0, 0.02/sqrt(2*n_layer))) and ``train.py`` with ``config/train_shakespeare_char.py``
and the README's CPU overrides (``--device=cpu --compile=False --eval_iters=20
--log_interval=1 --block_size=64 --batch_size=12 --n_layer=4 --n_head=4 --n_embd=128
--max_iters=2000 --lr_decay_iters=2000 --dropout=0.0``; README: about 1.88 validation loss
in ~3 minutes on a laptop CPU): float32 AdamW (betas 0.9/0.99, weight decay 0.1 on >=2-D
tensors only), lr 1e-3 warmed up over 100 iterations as ``lr*(it+1)/(warmup+1)``, cosine
decay to 1e-4 at ``lr_decay_iters``, gradient norm clipped to 1.0, no accumulation; each
batch is ``batch_size`` windows at ``torch.randint`` offsets of the training tokens. As in
``train.py``, iterations 0..max_iters all run (max_iters + 1 steps), and before the step of
each ``eval_interval``-th one the loss is estimated on ``eval_iters`` random batches.

Data: ``--data`` (relative to the repo root); vocabulary = sorted distinct characters of the
whole file; validation = the contiguous tail, ``cut = len(text) - round(len(text) * 0.1)``.

Full validation NLL (nats/char, eval mode): validation text ``v`` of ``N`` characters, cut
into non-overlapping windows; window ``k`` reads ``v[kB : kB+B]`` (``B = block_size``) and
predicts ``v[kB+1 : kB+B+1]``, starting afresh (no carried context); the last window is
shorter when ``B`` does not divide ``N-1``. Every character but ``v[0]`` is predicted once;
the figure is the mean cross-entropy over those ``N-1`` predictions.

Training seconds count the steps only (forward, batch sampling, backward, clipping, update),
not the estimates; chars/s = steps * batch * block / training seconds; peak memory is this
process's ``ru_maxrss``.

    bench/.venv-torch/bin/python bench/lm_reference_torch.py --json /tmp/ref.json
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import time
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

REPO = Path(__file__).resolve().parents[1]
CONFIG = dict(  # train_shakespeare_char.py + the README's CPU overrides
    block_size=64, batch_size=12, n_layer=4, n_head=4, n_embd=128, dropout=0.0, bias=False,
    learning_rate=1e-3, min_lr=1e-4, beta1=0.9, beta2=0.99, weight_decay=0.1, grad_clip=1.0,
    warmup_iters=100,
)


class LayerNorm(nn.Module):
    def __init__(self, ndim, bias):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(ndim))
        self.bias = nn.Parameter(torch.zeros(ndim)) if bias else None

    def forward(self, x):
        return F.layer_norm(x, self.weight.shape, self.weight, self.bias, 1e-5)


class CausalSelfAttention(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c_attn = nn.Linear(c["n_embd"], 3 * c["n_embd"], bias=c["bias"])
        self.c_proj = nn.Linear(c["n_embd"], c["n_embd"], bias=c["bias"])
        self.resid_dropout = nn.Dropout(c["dropout"])
        self.n_head, self.n_embd, self.dropout = c["n_head"], c["n_embd"], c["dropout"]

    def forward(self, x):
        B, T, C = x.size()
        q, k, v = self.c_attn(x).split(self.n_embd, dim=2)
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))
        y = F.scaled_dot_product_attention(
            q, k, v, dropout_p=self.dropout if self.training else 0, is_causal=True
        )
        return self.resid_dropout(self.c_proj(y.transpose(1, 2).contiguous().view(B, T, C)))


class MLP(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c_fc = nn.Linear(c["n_embd"], 4 * c["n_embd"], bias=c["bias"])
        self.gelu = nn.GELU()
        self.c_proj = nn.Linear(4 * c["n_embd"], c["n_embd"], bias=c["bias"])
        self.dropout = nn.Dropout(c["dropout"])

    def forward(self, x):
        return self.dropout(self.c_proj(self.gelu(self.c_fc(x))))


class Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.ln_1, self.attn = LayerNorm(c["n_embd"], c["bias"]), CausalSelfAttention(c)
        self.ln_2, self.mlp = LayerNorm(c["n_embd"], c["bias"]), MLP(c)

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class GPT(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.block_size = c["block_size"]
        self.transformer = nn.ModuleDict(dict(
            wte=nn.Embedding(c["vocab_size"], c["n_embd"]),
            wpe=nn.Embedding(c["block_size"], c["n_embd"]),
            drop=nn.Dropout(c["dropout"]),
            h=nn.ModuleList([Block(c) for _ in range(c["n_layer"])]),
            ln_f=LayerNorm(c["n_embd"], c["bias"]),
        ))
        self.lm_head = nn.Linear(c["n_embd"], c["vocab_size"], bias=False)
        self.transformer.wte.weight = self.lm_head.weight  # weight tying
        self.apply(self._init_weights)
        for name, p in self.named_parameters():
            if name.endswith("c_proj.weight"):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * c["n_layer"]))

    @staticmethod
    def _init_weights(module):
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if getattr(module, "bias", None) is not None:
                nn.init.zeros_(module.bias)

    def forward(self, idx, targets, reduction="mean"):
        pos = torch.arange(0, idx.size(1), dtype=torch.long, device=idx.device)
        x = self.transformer.drop(self.transformer.wte(idx) + self.transformer.wpe(pos))
        for block in self.transformer.h:
            x = block(x)
        logits = self.lm_head(self.transformer.ln_f(x))
        return F.cross_entropy(logits.view(-1, logits.size(-1)), targets.reshape(-1),
                               reduction=reduction)


def get_lr(it, c):
    if it < c["warmup_iters"]:
        return c["learning_rate"] * (it + 1) / (c["warmup_iters"] + 1)
    if it > c["lr_decay_iters"]:
        return c["min_lr"]
    ratio = (it - c["warmup_iters"]) / (c["lr_decay_iters"] - c["warmup_iters"])
    return c["min_lr"] + 0.5 * (1.0 + math.cos(math.pi * ratio)) * (c["learning_rate"] - c["min_lr"])


def get_batch(data, c):
    ix = torch.randint(len(data) - c["block_size"], (c["batch_size"],))
    x = torch.stack([data[i:i + c["block_size"]] for i in ix])
    y = torch.stack([data[i + 1:i + 1 + c["block_size"]] for i in ix])
    return x, y


@torch.no_grad()
def estimate_loss(model, splits, c):
    model.eval()
    out = {name: sum(model(*get_batch(data, c)).item() for _ in range(c["eval_iters"]))
           / c["eval_iters"] for name, data in splits.items()}
    model.train()
    return out


@torch.no_grad()
def full_nll(model, val, block, windows_per_batch=64):
    """Mean cross-entropy over all N-1 next-character predictions, non-overlapping windows."""
    model.eval()
    n_full = (len(val) - 1) // block
    total = 0.0
    for s in range(0, n_full, windows_per_batch):
        e = min(s + windows_per_batch, n_full)
        x = val[s * block:e * block].view(-1, block)
        y = val[s * block + 1:e * block + 1].view(-1, block)
        total += model(x, y, reduction="sum").item()
    if n_full * block < len(val) - 1:  # the shorter last window
        total += model(val[n_full * block:-1][None], val[n_full * block + 1:][None],
                       reduction="sum").item()
    return total / (len(val) - 1), len(val) - 1


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default="../shared/data/tinyshakespeare/train.txt")
    p.add_argument("--max-iters", type=int, default=2000)
    p.add_argument("--lr-decay-iters", type=int, help="default: --max-iters (as the README)")
    p.add_argument("--max-seconds", type=float, help="stop after this many training seconds")
    p.add_argument("--eval-interval", type=int, default=250)
    p.add_argument("--eval-iters", type=int, default=20)
    p.add_argument("--log-interval", type=int, default=1)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=1337)
    p.add_argument("--json", metavar="OUT")
    args = p.parse_args()
    c = dict(CONFIG, max_iters=args.max_iters, eval_iters=args.eval_iters,
             lr_decay_iters=args.lr_decay_iters or args.max_iters)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    start = time.perf_counter()

    path = (REPO / args.data).resolve()  # an absolute --data stays as it is
    text = path.read_text(encoding="utf-8")
    chars = sorted(set(text))
    stoi = {ch: i for i, ch in enumerate(chars)}
    data = torch.tensor([stoi[ch] for ch in text], dtype=torch.long)
    cut = len(text) - round(len(text) * 0.1)
    train, val = data[:cut], data[cut:]
    c["vocab_size"] = len(chars)
    print(f"data {path}: {len(text):,} chars, vocab {len(chars)}, "
          f"train {len(train):,}, validation {len(val):,}")

    model = GPT(c)
    params = {n: q for n, q in model.named_parameters() if q.requires_grad}
    n_params = sum(q.numel() for q in params.values())
    print(f"parameters: {n_params:,} ({n_params - model.transformer.wpe.weight.numel():,} "
          "without position embeddings, nanoGPT's count)")
    optimizer = torch.optim.AdamW([
        {"params": [q for q in params.values() if q.dim() >= 2], "weight_decay": c["weight_decay"]},
        {"params": [q for q in params.values() if q.dim() < 2], "weight_decay": 0.0},
    ], lr=c["learning_rate"], betas=(c["beta1"], c["beta2"]))

    curve, curve_train, train_seconds, eval_seconds, it = [], [], 0.0, 0.0, 0
    t = time.perf_counter()
    X, Y = get_batch(train, c)
    train_seconds += time.perf_counter() - t
    while True:
        lr = get_lr(it, c)
        for group in optimizer.param_groups:
            group["lr"] = lr
        if it % args.eval_interval == 0:
            t = time.perf_counter()
            losses = estimate_loss(model, {"train": train, "val": val}, c)
            eval_seconds += time.perf_counter() - t
            curve.append((it, round(train_seconds, 3), losses["val"]))
            curve_train.append(losses["train"])
            print(f"step {it}: train loss {losses['train']:.4f}, val loss {losses['val']:.4f}, "
                  f"train time {train_seconds:.1f}s")
        t = time.perf_counter()
        loss = model(X, Y)
        X, Y = get_batch(train, c)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), c["grad_clip"])
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        dt = time.perf_counter() - t
        train_seconds += dt
        if it % args.log_interval == 0:
            print(f"iter {it}: loss {loss.item():.4f}, time {dt * 1000:.2f}ms")
        it += 1
        if it > c["max_iters"] or (args.max_seconds and train_seconds >= args.max_seconds):
            break

    t = time.perf_counter()
    nll, n_targets = full_nll(model, val, c["block_size"])
    full_seconds = time.perf_counter() - t
    result = dict(
        system="torch nanoGPT reference", torch=torch.__version__, threads=args.threads,
        seed=args.seed, data=str(path), vocab_size=len(chars), train_chars=len(train),
        val_chars=len(val), config=c, parameters=n_params, steps=it,
        train_seconds=round(train_seconds, 3),
        chars_per_second=round(it * c["batch_size"] * c["block_size"] / train_seconds, 1),
        estimate_seconds=round(eval_seconds, 3),
        curve=curve, curve_train_loss=curve_train,
        val_nll=nll, val_bits_per_char=nll / math.log(2), val_targets=n_targets,
        val_nll_seconds=round(full_seconds, 3),
        peak_rss_mib=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        wall_seconds=round(time.perf_counter() - start, 3),
    )
    print(json.dumps({k: v for k, v in result.items() if k not in ("curve", "curve_train_loss")},
                     indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
