#!/usr/bin/python3
"""reference.py - the PyTorch reference forward pass of a Hugging Face BitNet checkpoint, for
checking that the engine computes what the model means.

It reads the checkpoint as bitnet convert does (config.json, safetensors; master weights are
ternarized per tensor with absmean, mean in float64; packed U8 weights are unpacked with their
weight_scale, multiplied for linear_class autobitlinear, divided for bitlinear) and runs the
forward pass of bitnet_model.py in float32 with the same per-token int8 activation quantizer,
transformers' rotate-half RoPE, and the layout the config names.

  reference.py logits CKPT OUT.bin (--prompts TEXT... | --ids 1,2,3 ...)
      writes a fixture: b"BNREF1\\0\\0", u32 n_prompts, u32 n_vocab, then per prompt
      u32 n_tokens, i32 ids[n_tokens], f32 logits[n_tokens][n_vocab] (little-endian).
      Text prompts are tokenized with CKPT/tokenizer.model, BOS first.
  reference.py ppl CKPT TEXT [--ctx 128] [--ids-out FILE]
      perplexity over TEXT exactly as `bitnet perplexity` computes it (chunks of ctx tokens,
      BOS in front of the text and in place of each chunk's first token, second half scored);
      --ids-out writes the token ids for `bitnet perplexity --token-ids`.

Tooling only: needs Debian's python3-torch (and python3-sentencepiece for text).
"""

import argparse
import json
import math
import os
import struct
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bitnet_model import BitNet, load_checkpoint_dir  # noqa: E402


def unpack(packed):
    """U8 [out/4, in] -> codes [out, in] in {-1, 0, 1}: bits 2i..2i+1 of row r = row i*(out/4)+r."""
    p = packed.to(torch.int32)
    return torch.cat([((p >> (2 * i)) & 3) for i in range(4)], dim=0).float() - 1


def load_model(ckpt):
    cfg = json.load(open(os.path.join(ckpt, "config.json")))
    sd = load_checkpoint_dir(ckpt)
    c = dict(cfg)
    c.setdefault("num_key_value_heads", c["num_attention_heads"])
    c.setdefault("rms_norm_eps", 1e-5)
    c.setdefault("rope_theta", 10000.0)
    c["sub_norms"] = any(k.endswith("attn_sub_norm.weight") or k.endswith("inner_attn_ln.weight") for k in sd)
    c["tie_word_embeddings"] = "lm_head.weight" not in sd
    c.setdefault("hidden_act", "silu")
    c["max_position_embeddings"] = max(c.get("max_position_embeddings", 2048), 4096)
    qc = cfg.get("quantization_config") or {}
    mul = qc.get("linear_class", "bitlinear") == "autobitlinear"
    model = BitNet(c)
    model.set_reference()
    alias = {"attn_sub_norm": "inner_attn_ln", "ffn_sub_norm": "ffn_layernorm"}
    with torch.no_grad():
        for name, p in model.named_parameters():
            hf = hf_name(name)
            t = sd.get(hf)
            if t is None:
                for a, b in alias.items():
                    if a in hf and sd.get(hf.replace(a, b)) is not None:
                        t = sd[hf.replace(a, b)]
            if t is None:
                raise SystemExit("checkpoint lacks %s" % hf)
            if t.dtype == torch.uint8:
                ws = sd[hf + "_scale"].float().reshape(-1)[0]
                w = unpack(t) * (ws if mul else 1.0 / ws)
                mod = model.get_submodule(name.rsplit(".", 1)[0])
                mod.fixed_weight = w
                p.copy_(w)
            else:
                p.copy_(t.float())
    return model, cfg


def hf_name(name):
    """bitnet_model parameter name -> Hugging Face tensor name."""
    if name.startswith("embed_tokens"):
        return "model." + name
    if name.startswith("norm."):
        return "model." + name
    if name.startswith("lm_head"):
        return name
    parts = name.split(".")  # layers.N.x.weight
    i, rest = parts[1], parts[2]
    grp = "self_attn." if rest in ("q_proj", "k_proj", "v_proj", "o_proj", "attn_sub_norm") else \
        "mlp." if rest in ("gate_proj", "up_proj", "down_proj", "ffn_sub_norm") else ""
    return "model.layers.%s.%s%s.weight" % (i, grp, rest)


def tokenize(ckpt, text):
    import sentencepiece as spm
    sp = spm.SentencePieceProcessor(model_file=os.path.join(ckpt, "tokenizer.model"))
    return [sp.bos_id()] + sp.encode(text)


def cmd_logits(a):
    model, cfg = load_model(a.ckpt)
    prompts = [tokenize(a.ckpt, t) for t in (a.prompts or [])]
    prompts += [[int(x) for x in s.split(",")] for s in (a.ids or [])]
    V = cfg["vocab_size"]
    with open(a.out, "wb") as f:
        f.write(b"BNREF1\0\0" + struct.pack("<II", len(prompts), V))
        for ids in prompts:
            with torch.no_grad():
                lg = model(torch.tensor([ids]))[0].float()
            f.write(struct.pack("<I", len(ids)) + struct.pack("<%di" % len(ids), *ids))
            f.write(lg.contiguous().numpy().astype("<f4").tobytes())
            print("prompt %s: top-1 %s" % (ids, lg.argmax(-1).tolist()))


def cmd_ppl(a):
    model, cfg = load_model(a.ckpt)
    text = open(a.text).read()
    import sentencepiece as spm
    sp = spm.SentencePieceProcessor(model_file=os.path.join(a.ckpt, "tokenizer.model"))
    ids = [sp.bos_id()] + sp.encode(text)
    if a.ids_out:
        with open(a.ids_out, "w") as f:
            f.write(" ".join(map(str, ids)) + "\n")
    C = a.ctx
    n_chunks = len(ids) // C
    nll, nll2, cnt = 0.0, 0.0, 0
    for c in range(n_chunks):
        chunk = list(ids[c * C:(c + 1) * C])
        chunk[0] = sp.bos_id()
        with torch.no_grad():
            lg = model(torch.tensor([chunk]))[0].double()
        lp = torch.log_softmax(lg, -1)
        for j in range(C // 2, C - 1):
            x = -lp[j, ids[c * C + j + 1]].item()
            nll += x
            nll2 += x * x
            cnt += 1
    mean = nll / cnt
    var = nll2 / cnt - mean * mean
    unc = math.sqrt(var / (cnt - 1)) if cnt > 1 and var > 0 else 0
    ppl = math.exp(mean)
    print("tokens %d, chunks %d of %d, scored %d" % (len(ids), n_chunks, C, cnt))
    print("Final estimate: PPL = %.4f +/- %.5f" % (ppl, ppl * unc))


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("logits")
    p.add_argument("ckpt")
    p.add_argument("out")
    p.add_argument("--prompts", nargs="*")
    p.add_argument("--ids", nargs="*")
    p = sub.add_parser("ppl")
    p.add_argument("ckpt")
    p.add_argument("text")
    p.add_argument("--ctx", type=int, default=128)
    p.add_argument("--ids-out")
    a = ap.parse_args()
    torch.set_num_threads(1)
    {"logits": cmd_logits, "ppl": cmd_ppl}[a.cmd](a)


if __name__ == "__main__":
    main()
