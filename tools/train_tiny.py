"""Train the small RWKV-7 that ships as pyrnn/data/default.gguf (run once by a maintainer; needs PyTorch
and `tokenizers`; never used at install or test time).

    nice -n 10 python tools/train_tiny.py --data ../shared/data/tinyshakespeare.txt --out /tmp/tiny7 --minutes 35
    python -m pyrnn.cli convert /tmp/tiny7/model.pth -o pyrnn/data/default.gguf --type q8_0 \
        --vocab /tmp/tiny7/tokenizer.json

Data: the first 90% of the text (split on characters) trains both the byte-level BPE vocabulary and
the model; the last 10% is held out for validation loss. The model is RWKV-7 "x070" with the exact
math of pip rwkv's RWKV_x070 (ARCHITECTURES.md §1.4.2), head size 64, initialised as RWKV-LM's
RWKV-v7/train_temp, and is saved as a BlinkDL-layout .pth (fp32), the format users convert.
The wkv recurrence runs as a plain loop over time (batched over B and heads); on 2 CPU cores a
~1.2M-parameter model sees a few epochs in half an hour.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

N_HEAD = 64  # head size


def train_tokenizer(text: str, vocab_size: int, path: Path) -> None:
    """Byte-level BPE (GPT-2 style: ByteLevel pre-tokenizer/decoder, no normalizer, no prefix space),
    every byte in the alphabet so any text round-trips; <|endoftext|> is id 0."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=["<|endoftext|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator([text], trainer)
    tok.save(str(path))


def lora_rank(C: int, k: float) -> int:
    """RWKV-v7 train_temp: max(32, round(k·√C/32)·32)."""
    return max(32, round(k * math.sqrt(C) / 32) * 32)


class TimeMix(nn.Module):
    def __init__(self, C: int, layer: int, n_layer: int) -> None:
        super().__init__()
        H = C // N_HEAD
        self.layer, self.C, self.H = layer, C, H
        r01 = layer / (n_layer - 1)
        r10 = 1.0 - layer / n_layer
        ddd = torch.arange(C) / C
        self.x_r = nn.Parameter((1.0 - ddd.pow(0.2 * r10)).view(1, 1, C))
        self.x_w = nn.Parameter((1.0 - ddd.pow(0.9 * r10)).view(1, 1, C))
        self.x_k = nn.Parameter((1.0 - (ddd.pow(0.9 * r10) + 0.4 * r01)).view(1, 1, C))
        self.x_v = nn.Parameter((1.0 - (ddd.pow(0.4 * r10) + 0.6 * r01)).view(1, 1, C))
        self.x_a = nn.Parameter((1.0 - ddd.pow(0.9 * r10)).view(1, 1, C))
        self.x_g = nn.Parameter((1.0 - ddd.pow(0.2 * r10)).view(1, 1, C))
        n = torch.arange(C, dtype=torch.float32)
        linear = n / (C - 1) - 0.5
        zig = ((n % N_HEAD) - (N_HEAD - 1) / 2) / ((N_HEAD - 1) / 2)
        zig = zig * zig.abs()
        www = -6 + 6 * (n / (C - 1)) ** (1 + r01**0.3)
        Dw, Da, Dv, Dg = lora_rank(C, 2.5), lora_rank(C, 2.5), lora_rank(C, 1.7), lora_rank(C, 5)

        def ortho(rows: int, cols: int, scale: float) -> nn.Parameter:
            w = torch.empty(rows, cols)
            nn.init.orthogonal_(w, gain=scale * (max(rows / cols, 1) ** 0.5))
            return nn.Parameter(w)

        self.w0 = nn.Parameter((www + 0.5 + zig * 2.5).view(1, 1, C))
        self.w1, self.w2 = nn.Parameter(torch.zeros(C, Dw)), ortho(Dw, C, 0.1)
        self.a0 = nn.Parameter((-0.19 + zig * 0.3 + linear * 0.4).view(1, 1, C))
        self.a1, self.a2 = nn.Parameter(torch.zeros(C, Da)), ortho(Da, C, 0.1)
        self.v0 = nn.Parameter((0.73 - linear * 0.4).view(1, 1, C))
        self.v1, self.v2 = nn.Parameter(torch.zeros(C, Dv)), ortho(Dv, C, 0.1)
        self.g1, self.g2 = nn.Parameter(torch.zeros(C, Dg)), ortho(Dg, C, 0.1)
        self.k_k = nn.Parameter((0.71 - linear * 0.1).view(1, 1, C))
        self.k_a = nn.Parameter(torch.full((1, 1, C), 1.02))
        self.r_k = nn.Parameter(torch.full((H, N_HEAD), -0.04))
        self.receptance = nn.Linear(C, C, bias=False)
        self.key = nn.Linear(C, C, bias=False)
        self.value = nn.Linear(C, C, bias=False)
        self.output = nn.Linear(C, C, bias=False)
        s = C**-0.5
        nn.init.uniform_(self.receptance.weight, -0.5 * s, 0.5 * s)
        nn.init.uniform_(self.key.weight, -0.05 * s, 0.05 * s)
        nn.init.uniform_(self.value.weight, -0.5 * s, 0.5 * s)
        nn.init.zeros_(self.output.weight)
        self.ln_x = nn.GroupNorm(H, C, eps=64e-5)
        with torch.no_grad():
            self.ln_x.weight.fill_(((1 + layer) / n_layer) ** 0.7)

    def forward(self, x: torch.Tensor, v_first: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        B, T, C = x.shape
        H, N = self.H, N_HEAD
        xx = F.pad(x, (0, 0, 1, -1)) - x  # token shift: previous LN output, zero before token 0
        xr, xw, xk = x + xx * self.x_r, x + xx * self.x_w, x + xx * self.x_k
        xv, xa, xg = x + xx * self.x_v, x + xx * self.x_a, x + xx * self.x_g
        r = self.receptance(xr)
        w = torch.exp(-0.606531 * torch.sigmoid(self.w0 + torch.tanh(xw @ self.w1) @ self.w2))  # pip's constant
        k = self.key(xk)
        v = self.value(xv)
        a = torch.sigmoid(self.a0 + (xa @ self.a1) @ self.a2)
        g = torch.sigmoid(xg @ self.g1) @ self.g2
        kk = F.normalize((k * self.k_k).view(B, T, H, N), dim=-1, p=2.0).view(B, T, C)
        k = k * (1 + (a - 1) * self.k_a)
        if self.layer == 0:
            v_first = v
        else:
            assert v_first is not None
            v = v + (v_first - v) * torch.sigmoid(self.v0 + (xv @ self.v1) @ self.v2)
        y = wkv7(r, w, k, v, -kk, kk * a, H)
        y = self.ln_x(y.view(B * T, C)).view(B, T, C)
        bonus = (r.view(B, T, H, N) * k.view(B, T, H, N) * self.r_k).sum(dim=-1, keepdim=True)
        y = y + (bonus * v.view(B, T, H, N)).view(B, T, C)
        return self.output(y * g), v_first


def wkv7(r: torch.Tensor, w: torch.Tensor, k: torch.Tensor, v: torch.Tensor, a: torch.Tensor,
         b: torch.Tensor, H: int, chunk: int = 16) -> torch.Tensor:
    """S_t = S_{t-1}·diag(w_t) + (S_{t-1} a_t) b_tᵀ + v_t k_tᵀ, y_t = S_t r_t (S value-major, zero at the
    start of each training window), computed chunk by chunk in the WY form of ARCHITECTURES.md §1.4.3
    (key-major Hs = Sᵀ): a few GEMMs and one unit-triangular solve per chunk instead of a loop over
    tokens. Chunks of 16 keep e^{±G} within e^{±9.7} (log-decays are ≥ −0.6065). (B,T,C) → (B,T,C)."""
    B, T, C = r.shape
    N = C // H
    r, w, k, v, a, b = (z.view(B, T, H, N).transpose(1, 2) for z in (r, w, k, v, a, b))  # (B,H,T,N)
    Hs = torch.zeros(B, H, N, N, dtype=r.dtype)
    ys = []
    for s in range(0, T, chunk):
        e = min(s + chunk, T)
        L = e - s
        rc, wc, kc, vc, ac, bc = (z[:, :, s:e] for z in (r, w, k, v, a, b))
        lw = torch.log(wc)
        G = torch.cumsum(lw, dim=2)  # inclusive
        Gm = G - lw  # exclusive
        GL = G[:, :, -1:]  # (B,H,1,N)
        a_m, r_g = ac * torch.exp(Gm), rc * torch.exp(G)
        k_i, b_i = kc * torch.exp(-G), bc * torch.exp(-G)
        strict = torch.ones(L, L, dtype=torch.bool).tril(-1)
        incl = torch.ones(L, L, dtype=torch.bool).tril(0)
        A_ak = (a_m @ k_i.transpose(-1, -2)).masked_fill(~strict, 0.0)
        A_ab = (a_m @ b_i.transpose(-1, -2)).masked_fill(~strict, 0.0)
        A_qk = (r_g @ k_i.transpose(-1, -2)).masked_fill(~incl, 0.0)
        A_qb = (r_g @ b_i.transpose(-1, -2)).masked_fill(~incl, 0.0)
        eye = torch.eye(L, dtype=r.dtype)
        U = torch.linalg.solve_triangular(eye - A_ab, A_ak @ vc + a_m @ Hs, upper=False, unitriangular=True)
        ys.append(A_qk @ vc + A_qb @ U + r_g @ Hs)
        dec = torch.exp(GL - G)  # (B,H,L,N)
        Hs = torch.exp(GL).transpose(-1, -2) * Hs + (kc * dec).transpose(-1, -2) @ vc + (bc * dec).transpose(-1, -2) @ U
    return torch.cat(ys, dim=2).transpose(1, 2).reshape(B, T, C)


def wkv7_loop(r: torch.Tensor, w: torch.Tensor, k: torch.Tensor, v: torch.Tensor, a: torch.Tensor,
              b: torch.Tensor, H: int) -> torch.Tensor:
    """The same recurrence token by token, as pip's RWKV_x070 runs it (the check for wkv7)."""
    B, T, C = r.shape
    N = C // H
    r, w, k, v, a, b = (z.view(B, T, H, N).transpose(0, 1).contiguous() for z in (r, w, k, v, a, b))
    S = torch.zeros(B, H, N, N, dtype=r.dtype)
    ys = []
    for t in range(T):
        sa = S @ a[t].unsqueeze(-1)  # (B,H,N,1)
        S = S * w[t].unsqueeze(-2) + sa * b[t].unsqueeze(-2) + v[t].unsqueeze(-1) * k[t].unsqueeze(-2)
        ys.append((S @ r[t].unsqueeze(-1)).squeeze(-1))
    return torch.stack(ys, dim=1).reshape(B, T, C)


class ChannelMix(nn.Module):
    def __init__(self, C: int, layer: int, n_layer: int) -> None:
        super().__init__()
        r10 = 1.0 - layer / n_layer
        ddd = torch.arange(C) / C
        self.x_k = nn.Parameter((1.0 - ddd.pow(r10**4)).view(1, 1, C))
        self.key = nn.Linear(C, 4 * C, bias=False)
        self.value = nn.Linear(4 * C, C, bias=False)
        nn.init.uniform_(self.key.weight, -0.5 * C**-0.5, 0.5 * C**-0.5)
        nn.init.zeros_(self.value.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xx = F.pad(x, (0, 0, 1, -1)) - x
        k = torch.relu(self.key(x + xx * self.x_k)) ** 2
        return self.value(k)


class Block(nn.Module):
    def __init__(self, C: int, layer: int, n_layer: int) -> None:
        super().__init__()
        if layer == 0:
            self.ln0 = nn.LayerNorm(C)
        self.ln1, self.ln2 = nn.LayerNorm(C), nn.LayerNorm(C)
        self.att = TimeMix(C, layer, n_layer)
        self.ffn = ChannelMix(C, layer, n_layer)

    def forward(self, x: torch.Tensor, v_first: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        dx, v_first = self.att(self.ln1(x), v_first)
        x = x + dx
        return x + self.ffn(self.ln2(x)), v_first


class RWKV7(nn.Module):
    def __init__(self, V: int, C: int, L: int) -> None:
        super().__init__()
        self.emb = nn.Embedding(V, C)
        nn.init.uniform_(self.emb.weight, -1e-4, 1e-4)
        self.blocks = nn.ModuleList(Block(C, i, L) for i in range(L))
        self.ln_out = nn.LayerNorm(C)
        self.head = nn.Linear(C, V, bias=False)
        nn.init.orthogonal_(self.head.weight, gain=0.5 * (V / C) ** 0.5)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        x = self.blocks[0].ln0(self.emb(idx))
        v_first = None
        for blk in self.blocks:
            x, v_first = blk(x, v_first)
        return self.head(self.ln_out(x))


def blinkdl_state_dict(model: RWKV7) -> dict[str, torch.Tensor]:
    """The released files' layout: blocks.N.att.x_r (1,1,C), r_k (H,N), Linear weights (out, in), fp32."""
    return {k: v.detach().float().contiguous().clone() for k, v in model.state_dict().items()}


def evaluate(model: RWKV7, data: torch.Tensor, T: int, B: int) -> float:
    """Mean loss per token over the held-out tokens in windows of T (state reset per window, as in training)."""
    model.eval()
    n = (len(data) - 1) // T
    x = data[: n * T].view(n, T)
    y = data[1: n * T + 1].view(n, T)
    total = 0.0
    with torch.no_grad():
        for i in range(0, n, B):
            logits = model(x[i: i + B])
            total += F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y[i: i + B].reshape(-1),
                                     reduction="sum").item()
    model.train()
    return total / (n * T)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", required=True, help="tinyshakespeare.txt")
    p.add_argument("--out", required=True, help="folder for tokenizer.json, model.pth, log.jsonl")
    p.add_argument("--vocab", type=int, default=1024)
    p.add_argument("--n-embd", type=int, default=128)
    p.add_argument("--n-layer", type=int, default=4)
    p.add_argument("--ctx", type=int, default=128)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--lr-final", type=float, default=1e-4)
    p.add_argument("--minutes", type=float, default=35.0, help="wall-time budget; lr follows a cosine over it")
    p.add_argument("--eval-every", type=int, default=100)
    p.add_argument("--threads", type=int, default=1,
                   help="1: on a shared 2-core machine a second intra-op thread spins and is 10x+ slower")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()

    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    text = Path(args.data).read_text(encoding="utf-8")
    cut = int(len(text) * 0.9)
    train_text, val_text = text[:cut], text[cut:]
    train_tokenizer(train_text, args.vocab, out / "tokenizer.json")
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(out / "tokenizer.json"))
    train = torch.tensor(tok.encode(train_text).ids, dtype=torch.long)
    val = torch.tensor(tok.encode(val_text).ids, dtype=torch.long)
    V = tok.get_vocab_size()
    print(f"vocab {V}; train {len(train)} tokens ({len(train_text.encode()) / len(train):.2f} bytes/token), "
          f"held out {len(val)} tokens", flush=True)

    model = RWKV7(V, args.n_embd, args.n_layer)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"RWKV-7 C={args.n_embd} L={args.n_layer} V={V}: {n_params:,} parameters", flush=True)
    decay, no_decay = [], []
    for name, prm in model.named_parameters():
        (decay if prm.ndim == 2 and ("weight" in name and "ln" not in name) else no_decay).append(prm)
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=args.lr, betas=(0.9, 0.99), eps=1e-8)
    budget = args.minutes * 60
    start = time.monotonic()
    log = open(out / "log.jsonl", "w")
    best = float("inf")
    step = 0
    tokens_seen = 0
    n_windows = len(train) - args.ctx - 1
    while True:
        elapsed = time.monotonic() - start
        if elapsed > budget:
            break
        frac = elapsed / budget
        lr = args.lr_final + 0.5 * (args.lr - args.lr_final) * (1 + math.cos(math.pi * frac))
        if step < 50:
            lr *= (step + 1) / 50
        for group in opt.param_groups:
            group["lr"] = lr
        ix = torch.randint(0, n_windows, (args.batch,))
        x = torch.stack([train[i: i + args.ctx] for i in ix])
        y = torch.stack([train[i + 1: i + args.ctx + 1] for i in ix])
        logits = model(x)
        loss = F.cross_entropy(logits.reshape(-1, V), y.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        tokens_seen += x.numel()
        if step % 10 == 0:
            print(f"step {step} loss {loss.item():.4f} lr {lr:.2e} {time.monotonic() - start:.0f}s "
                  f"epochs {tokens_seen / len(train):.2f}", flush=True)
        if step % args.eval_every == 0:
            val_loss = evaluate(model, val, args.ctx, 64)
            rec = {"step": step, "seconds": round(time.monotonic() - start), "epochs": tokens_seen / len(train),
                   "train_loss": loss.item(), "val_loss": val_loss, "lr": lr}
            print(json.dumps(rec), flush=True)
            log.write(json.dumps(rec) + "\n")
            log.flush()
            if val_loss < best:
                best = val_loss
                torch.save(blinkdl_state_dict(model), out / "model.pth")
    val_loss = evaluate(model, val, args.ctx, 64)
    rec = {"step": step, "seconds": round(time.monotonic() - start), "epochs": tokens_seen / len(train),
           "val_loss": val_loss, "final": True}
    print(json.dumps(rec), flush=True)
    log.write(json.dumps(rec) + "\n")
    if val_loss < best:
        torch.save(blinkdl_state_dict(model), out / "model.pth")
    json.dump({"vocab": V, "n_embd": args.n_embd, "n_layer": args.n_layer, "params": n_params,
               "ctx": args.ctx, "batch": args.batch, "steps": step, "seconds": round(time.monotonic() - start),
               "best_val_loss": min(best, val_loss)}, open(out / "summary.json", "w"), indent=1)


if __name__ == "__main__":
    main()
