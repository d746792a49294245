#!/usr/bin/python3
"""make_test_checkpoints.py - writes tiny Hugging Face checkpoints with random weights in the
layouts `bitnet convert` reads, for its tests. Standard library only (CI has no numpy/torch);
the weights come from random.Random(seed), so the files are the same on every machine and
tests/fixtures/layout_*.bin (made once by reference.py from these checkpoints) stays valid.

  make_test_checkpoints.py OUTDIR

Layouts (config.json as the real repositories have it, dimensions tiny):
  2b4t-bf16        microsoft/bitnet-b1.58-2B-4T-bf16: BitNetForCausalLM, relu2, master weights in
                   BF16, quantization_mode online, tied output, tokenizer.json (byte-level BPE)
  2b4t-packed      microsoft/bitnet-b1.58-2B-4T: the same model packed (U8, 4 codes per byte along
                   the output dimension), weight_scale = absmean scale (autobitlinear: multiply)
  2b4t-packed-div  the same packed with linear_class bitlinear: weight_scale = 1 / scale (divide)
  large            1bitLLM/bitnet_b1_58-large: BitnetForCausalLM, silu, F16 master weights,
                   sub-norms named inner_attn_ln / ffn_layernorm, tied, tokenizer.model
  llama            HF1BitLLM/Llama3-8B-1.58-100B-tokens: LlamaForCausalLM, silu, no sub-norms,
                   GQA, packed U8 with weight_scale (bitlinear: divide), untied lm_head,
                   tokenizer.json
"""

import json
import os
import random
import struct
import sys

E, F, L, H, KV, V = 128, 256, 2, 4, 2, 300
HD = E // H


def f32(x):
    return struct.unpack("<f", struct.pack("<f", x))[0]


def bf16_bits(x):
    b = struct.unpack("<I", struct.pack("<f", x))[0]
    return ((b + 0x7FFF + ((b >> 16) & 1)) >> 16) & 0xFFFF


def from_bf16(h):
    return struct.unpack("<f", struct.pack("<I", h << 16))[0]


def f16_round(x):
    return struct.unpack("<e", struct.pack("<e", x))[0]


class T:
    """A tensor: dtype, shape, flat list of values (floats, or ints for U8)."""

    def __init__(self, dtype, shape, vals):
        self.dtype, self.shape, self.vals = dtype, shape, vals

    def raw(self):
        if self.dtype == "F32":
            return struct.pack("<%df" % len(self.vals), *self.vals)
        if self.dtype == "F16":
            return struct.pack("<%de" % len(self.vals), *self.vals)
        if self.dtype == "BF16":
            return struct.pack("<%dH" % len(self.vals), *[bf16_bits(v) for v in self.vals])
        return bytes(self.vals)


def save(path, tensors):
    header, blobs, off = {}, [], 0
    for name in sorted(tensors):
        raw = tensors[name].raw()
        header[name] = {"dtype": tensors[name].dtype, "shape": tensors[name].shape,
                        "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def master_weights(rng, sub_names, kv=KV):
    """Float master weights of one model under HF names (values already bf16-exact)."""
    t = {}

    def mat(rows, cols, std):
        return [from_bf16(bf16_bits(rng.uniform(-std, std))) for _ in range(rows * cols)]

    def norm(n):
        return [from_bf16(bf16_bits(1.0 + rng.uniform(-0.2, 0.2))) for _ in range(n)]

    t["model.embed_tokens.weight"] = ([V, E], mat(V, E, 0.05))
    t["model.norm.weight"] = ([E], norm(E))
    for i in range(L):
        p = "model.layers.%d." % i
        t[p + "input_layernorm.weight"] = ([E], norm(E))
        t[p + "post_attention_layernorm.weight"] = ([E], norm(E))
        for n, r, c in (("q_proj", E, E), ("k_proj", kv * HD, E), ("v_proj", kv * HD, E), ("o_proj", E, E)):
            t[p + "self_attn.%s.weight" % n] = ([r, c], mat(r, c, 0.1))
        for n, r, c in (("gate_proj", F, E), ("up_proj", F, E), ("down_proj", E, F)):
            t[p + "mlp.%s.weight" % n] = ([r, c], mat(r, c, 0.1))
        if sub_names:
            t[p + "self_attn.%s.weight" % sub_names[0]] = ([E], norm(E))
            t[p + "mlp.%s.weight" % sub_names[1]] = ([F], norm(F))
    return t


def is_proj(name):
    return name.endswith("_proj.weight")


def absmean(vals):
    s = f32(sum(abs(v) for v in vals) / len(vals))
    s = max(s, f32(1e-5))
    codes = [max(-1, min(1, round(f32(v / s)))) for v in vals]
    return codes, s


def pack(codes, rows, cols):
    """codes [rows][cols] -> U8 [rows/4][cols]: bits 2i..2i+1 of row r = code of row i*rows/4 + r."""
    pr = rows // 4
    out = bytearray(pr * cols)
    for i in range(4):
        for r in range(pr):
            src = (i * pr + r) * cols
            dst = r * cols
            for k in range(cols):
                out[dst + k] |= (codes[src + k] + 1) << (2 * i)
    return list(out)


def packed_tensors(master, mode):
    out = {}
    for n, (shape, vals) in master.items():
        if is_proj(n):
            codes, s = absmean(vals)
            out[n] = T("U8", [shape[0] // 4, shape[1]], pack(codes, shape[0], shape[1]))
            out[n.replace(".weight", ".weight_scale")] = T("F32", [1], [s if mode == "mul" else f32(1.0 / s)])
        else:
            out[n] = T("BF16", shape, vals)
    return out


def bpe_tokenizer(specials):
    """A byte-level BPE tokenizer.json: the 256 byte symbols, a few merges, special tokens."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    sym = {b: chr(c) for b, c in zip(bs, cs)}
    vocab = {sym[b]: b for b in range(256)}
    merges = []
    for a, b in (("Ġ", "t"), ("h", "e"), ("Ġt", "he"), ("i", "n"), ("a", "n"), ("e", "r")):
        merges.append(a + " " + b)
        vocab[a + b] = len(vocab)
    added = [{"id": V - len(specials) + i, "content": s, "special": True} for i, s in enumerate(specials)]
    return {"version": "1.0", "added_tokens": added,
            "pre_tokenizer": {"type": "ByteLevel"}, "decoder": {"type": "ByteLevel"},
            "model": {"type": "BPE", "vocab": vocab, "merges": merges}}


def spm_model():
    """A SentencePiece ModelProto (protobuf) with <unk> <s> </s>, 256 byte pieces, words."""
    def varint(x):
        out = b""
        while True:
            b = x & 0x7F
            x >>= 7
            if x:
                out += bytes([b | 0x80])
            else:
                return out + bytes([b])

    def piece(text, score, typ):
        t = text.encode()
        body = b"\x0a" + varint(len(t)) + t + b"\x15" + struct.pack("<f", score) + b"\x18" + varint(typ)
        return b"\x0a" + varint(len(body)) + body

    out = piece("<unk>", 0, 2) + piece("<s>", 0, 3) + piece("</s>", 0, 3)
    for b in range(256):
        out += piece("<0x%02X>" % b, 0, 6)
    for i, w in enumerate(["\u2581the", "\u2581a", "e", "t", "a", "o", "n", "\u2581"][: V - 259]):
        out += piece(w, -float(i), 1)
    norm = b"\x0a\x08identity" + b"\x18\x01"
    return out + b"\x1a" + varint(len(norm)) + norm


def write(d, cfg, tensors, tok):
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    save(os.path.join(d, "model.safetensors"), tensors)
    if isinstance(tok, bytes):
        with open(os.path.join(d, "tokenizer.model"), "wb") as f:
            f.write(tok)
    else:
        with open(os.path.join(d, "tokenizer.json"), "w") as f:
            json.dump(tok, f)


def base_cfg(arch, act, tied, theta):
    return {"architectures": [arch], "hidden_size": E, "intermediate_size": F, "num_hidden_layers": L,
            "num_attention_heads": H, "num_key_value_heads": KV, "vocab_size": V, "hidden_act": act,
            "max_position_embeddings": 256, "rms_norm_eps": 1e-5, "rope_theta": theta,
            "tie_word_embeddings": tied}


def main():
    out = sys.argv[1]
    # BitNet b1.58 2B-4T layout: master (bf16), packed (mul), packed (div)
    m = master_weights(random.Random(1), ("attn_sub_norm", "ffn_sub_norm"))
    tok = bpe_tokenizer(["<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>"])
    cfg = base_cfg("BitNetForCausalLM", "relu2", True, 500000.0)
    cfg.update({"model_type": "bitnet", "bos_token_id": V - 3, "eos_token_id": V - 2})
    c = dict(cfg, quantization_config={"quant_method": "bitnet", "linear_class": "autobitlinear",
                                       "quantization_mode": "online"})
    write(os.path.join(out, "2b4t-bf16"), c, {n: T("BF16", s, v) for n, (s, v) in m.items()}, tok)
    c = dict(cfg, quantization_config={"quant_method": "bitnet", "linear_class": "autobitlinear",
                                       "quantization_mode": "offline"})
    write(os.path.join(out, "2b4t-packed"), c, packed_tensors(m, "mul"), tok)
    c = dict(cfg, quantization_config={"quant_method": "bitnet", "linear_class": "bitlinear",
                                       "quantization_mode": "offline"})
    write(os.path.join(out, "2b4t-packed-div"), c, packed_tensors(m, "div"), tok)

    # 1bitLLM bitnet_b1_58-large layout
    cfg = base_cfg("BitnetForCausalLM", "silu", True, 10000.0)
    cfg.update({"model_type": "llama", "bos_token_id": 1, "eos_token_id": 2, "num_key_value_heads": H})
    m2 = master_weights(random.Random(2), ("inner_attn_ln", "ffn_layernorm"), kv=H)
    write(os.path.join(out, "large"), cfg, {n: T("F16", s, [f16_round(x) for x in v]) for n, (s, v) in m2.items()},
          spm_model())

    # HF1BitLLM Llama3-8B-1.58 layout: packed, divide, untied
    m = master_weights(random.Random(3), None)
    rng = random.Random(4)
    lm = [from_bf16(bf16_bits(rng.uniform(-0.5, 0.5))) for _ in range(V * E)]
    t = packed_tensors(m, "div")
    t["lm_head.weight"] = T("BF16", [V, E], lm)
    cfg = base_cfg("LlamaForCausalLM", "silu", False, 500000.0)
    cfg.update({"model_type": "llama", "bos_token_id": V - 3, "eos_token_id": V - 1,
                "quantization_config": {"quant_method": "bitnet", "modules_to_not_convert": None}})
    write(os.path.join(out, "llama"), cfg, t, bpe_tokenizer(["<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>"]))


if __name__ == "__main__":
    main()
