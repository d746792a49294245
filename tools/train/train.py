#!/usr/bin/python3
"""train.py - trains the demo model: a small BitNet b1.58 (2B-4T architecture: ReLU^2, sub-norms, GQA,
tied embeddings) on the King James Bible, quantization-aware as BitNet is trained (absmean ternary
weights, per-token absmax int8 activations, straight-through estimators; see bitnet_model.py).

Data: Debian's bible-kjv (the `bible` program over bible-kjv-text's data). Every HOLDOUT-th verse is
held out of training and written to OUT/heldout.txt (one verse per line) for perplexity checks.
Vocabulary: a SentencePiece BPE model (python3-sentencepiece) trained on the training text, Llama-style
(unk 0, bos 1, eos 2, byte fallback, identity normalization).

Output: a Hugging Face-style checkpoint in OUT (config.json, model.safetensors, tokenizer.model),
rewritten every --save-every steps so a partial run is usable. `bitnet convert OUT -o models/demo.gguf
--type i2_s` turns it into the engine's default model.

Run: nohup tools/train/train.py --out build-train/demo > build-train/train.log 2>&1 &
Tooling only: Debian's python3-torch, python3-sentencepiece, python3-numpy, bible-kjv.
"""

import argparse
import json
import math
import os
import random
import re
import subprocess
import sys
import time

import numpy as np
import sentencepiece as spm
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bitnet_model import BitNet, load_checkpoint_dir, save_safetensors  # noqa: E402


def read_kjv():
    """[(book, chapter, verse, text)] from the `bible` program, in canonical order."""
    raw = subprocess.run(["bible", "-l100000", "Gen1:1-Rev22:21"], capture_output=True, text=True, check=True).stdout
    verses, book, chap = [], None, None
    for line in raw.splitlines():
        m = re.match(r"^(\S.*\S) (\d+)$", line)
        if m:
            book, chap = m.group(1), int(m.group(2))
            continue
        m = re.match(r"^\s+(\d+) (.*)$", line)
        if m:
            verses.append((book, chap, int(m.group(1)), m.group(2).strip()))
        elif line.strip() and verses:
            verses[-1] = verses[-1][:3] + (verses[-1][3] + " " + line.strip(),)
    return verses


def hf_params(model):
    """The parameters of model in the order of model.hf_state_dict()'s keys."""
    out = [model.embed_tokens.weight, model.norm.weight]
    for L in model.layers:
        out += [L.input_layernorm.weight, L.post_attention_layernorm.weight]
        out += [L.q_proj.weight, L.k_proj.weight, L.v_proj.weight, L.o_proj.weight]
        out += [L.gate_proj.weight, L.up_proj.weight, L.down_proj.weight]
        if L.sub_norms:
            out += [L.attn_sub_norm.weight, L.ffn_sub_norm.weight]
    if not model.tied:
        out.append(model.lm_head.weight)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--vocab", type=int, default=4096)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--layers", type=int, default=5)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--kv-heads", type=int, default=2)
    ap.add_argument("--ffn", type=int, default=768)
    ap.add_argument("--ctx", type=int, default=128)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--minutes", type=float, default=40.0, help="wall-clock budget; the LR schedule follows it")
    ap.add_argument("--max-steps", type=int, default=100000)
    ap.add_argument("--save-every", type=int, default=200)
    ap.add_argument("--eval-chunks", type=int, default=24, help="held-out chunks scored at each save")
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument("--holdout", type=int, default=50, help="hold out every N-th verse")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--bench", type=int, default=0, help="time N steps and exit")
    ap.add_argument("--init", help="start from the weights of this checkpoint directory (same shape)")
    a = ap.parse_args()

    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    random.seed(a.seed)
    os.makedirs(a.out, exist_ok=True)

    verses = read_kjv()
    train_v = [v for i, v in enumerate(verses) if i % a.holdout != a.holdout - 1]
    held_v = [v for i, v in enumerate(verses) if i % a.holdout == a.holdout - 1]
    with open(os.path.join(a.out, "heldout.txt"), "w") as f:
        for v in held_v:
            f.write(v[3] + "\n")
    txt = os.path.join(a.out, "train.txt")
    with open(txt, "w") as f:
        for v in train_v:
            f.write(v[3] + "\n")
    print("verses: %d train, %d held out" % (len(train_v), len(held_v)), flush=True)

    sp_prefix = os.path.join(a.out, "spm")
    if not os.path.exists(sp_prefix + ".model"):
        spm.SentencePieceTrainer.train(
            input=txt, model_prefix=sp_prefix, vocab_size=a.vocab, model_type="bpe", character_coverage=1.0,
            byte_fallback=True, normalization_rule_name="identity", remove_extra_whitespaces=False,
            unk_id=0, bos_id=1, eos_id=2, pad_id=-1, num_threads=a.threads, minloglevel=2)
    sp = spm.SentencePieceProcessor(model_file=sp_prefix + ".model")

    # Documents are chapters: BOS, then the chapter's training verses joined by spaces.
    chapters, key = [], None
    for v in train_v:
        if (v[0], v[1]) != key:
            chapters.append([])
            key = (v[0], v[1])
        chapters[-1].append(v[3])
    stream = []
    for c in chapters:
        stream.append(1)
        stream.extend(sp.encode(" ".join(c)))
    data = torch.tensor(stream, dtype=torch.long)
    held = []
    for v in held_v:
        held.extend([1] + sp.encode(v[3]))
    held = torch.tensor(held, dtype=torch.long)
    print("tokens: %d train, %d held out" % (len(data), len(held)), flush=True)

    cfg = {
        "architectures": ["BitNetForCausalLM"], "model_type": "bitnet", "hidden_act": "relu2",
        "hidden_size": a.hidden, "intermediate_size": a.ffn, "num_hidden_layers": a.layers,
        "num_attention_heads": a.heads, "num_key_value_heads": a.kv_heads, "vocab_size": sp.get_piece_size(),
        "max_position_embeddings": 1024, "rms_norm_eps": 1e-5, "rope_theta": 10000.0,
        "tie_word_embeddings": True, "bos_token_id": 1, "eos_token_id": 2, "torch_dtype": "float32",
        "quantization_config": {"quant_method": "bitnet", "linear_class": "autobitlinear",
                                "quantization_mode": "online"},
    }
    model = BitNet(cfg)
    if a.init:
        sd = load_checkpoint_dir(a.init)
        with torch.no_grad():
            own = {n: p for n, p in zip(model.hf_state_dict().keys(), hf_params(model))}
            for n, p in own.items():
                p.copy_(sd[n].float())
        print("initialized from %s" % a.init, flush=True)
    n_par = sum(p.numel() for p in model.parameters())
    print("parameters: %.2f M" % (n_par / 1e6), flush=True)
    decay = [p for n, p in model.named_parameters() if p.dim() == 2]
    other = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.05}, {"params": other, "weight_decay": 0.0}],
                            lr=a.lr, betas=(0.9, 0.95))

    def batch():
        ix = torch.randint(0, len(data) - a.ctx - 1, (a.batch,))
        x = torch.stack([data[i:i + a.ctx] for i in ix])
        y = torch.stack([data[i + 1:i + a.ctx + 1] for i in ix])
        return x, y

    def held_loss():
        model.eval()
        tot, n = 0.0, 0
        with torch.no_grad():
            for i in range(0, min(len(held) - 1, a.ctx * a.eval_chunks), a.ctx):
                x = held[i:i + a.ctx][None]
                y = held[i + 1:i + a.ctx + 1][None]
                x = x[:, :y.shape[1]]
                lg = model(x)
                tot += torch.nn.functional.cross_entropy(lg[0], y[0], reduction="sum").item()
                n += y.shape[1]
        model.train()
        return tot / n

    def save(step, loss):
        save_safetensors(os.path.join(a.out, "model.safetensors"), model.hf_state_dict())
        with open(os.path.join(a.out, "config.json"), "w") as f:
            json.dump(cfg, f, indent=2)
        with open(sp_prefix + ".model", "rb") as src, open(os.path.join(a.out, "tokenizer.model"), "wb") as dst:
            dst.write(src.read())
        with open(os.path.join(a.out, "train_state.json"), "w") as f:
            json.dump({"step": step, "held_out_loss": loss, "held_out_ppl": math.exp(loss)}, f)

    t0 = time.time()
    budget = a.minutes * 60
    warm = a.warmup
    step = 0
    ema = None
    model.train()
    while step < a.max_steps:
        prog = max(step / a.max_steps, (time.time() - t0) / budget)
        if prog >= 1.0:
            break
        lr = a.lr * min(1.0, (step + 1) / warm) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * prog)))
        for g in opt.param_groups:
            g["lr"] = lr
        x, y = batch()
        lg = model(x)
        loss = torch.nn.functional.cross_entropy(lg.view(-1, lg.shape[-1]), y.view(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        ema = loss.item() if ema is None else 0.98 * ema + 0.02 * loss.item()
        if a.bench and step >= a.bench:
            dt = time.time() - t0
            print("bench: %d steps in %.1f s (%.0f tokens/s)" % (step, dt, step * a.batch * a.ctx / dt))
            return
        if step % 20 == 0:
            print("step %d  loss %.3f  lr %.2e  %.0f s  %.0f%%" % (step, ema, lr, time.time() - t0, prog * 100),
                  flush=True)
        if step % a.save_every == 0:
            hl = held_loss()
            save(step, hl)
            print("saved step %d: held-out loss %.3f (ppl %.2f)" % (step, hl, math.exp(hl)), flush=True)
    hl = held_loss()
    save(step, hl)
    print("done: %d steps, %.0f s, held-out loss %.3f (ppl %.2f)" % (step, time.time() - t0, hl, math.exp(hl)),
          flush=True)
    model.eval()
    ids = [1] + sp.encode("In the beginning")
    with torch.no_grad():
        for _ in range(40):
            ids.append(int(model(torch.tensor([ids]))[0, -1].argmax()))
    print("sample:", sp.decode(ids[1:]), flush=True)


if __name__ == "__main__":
    main()
