"""bitnet_model.py - a BitNet b1.58 model in PyTorch (the 2B-4T architecture), its quantizers,
and a minimal safetensors reader/writer. Shared by train.py (quantization-aware training) and
reference.py (reference logits for the engine's tests).

The forward pass is the one FORMATS.md describes ("The BitNet b1.58 models"): every projection is a
BitLinear whose weight is ternarized per tensor with absmean (s = mean|W|, W_q = clamp(round(W/s), -1, 1)
* s) and whose input is quantized per token to int8 with absmax (s = 127 / max|x|, round half even);
RMS norms before attention and FFN plus the two sub-norms; NEOX RoPE; GQA; ReLU^2 (or SiLU) gated FFN;
tied or untied output head in floating point. In training both quantizers pass gradients straight
through (x + (q(x) - x).detach()).

Tooling only: needs Debian's python3-torch; the engine never needs Python.
"""

import json
import math
import os
import struct

import torch
import torch.nn as nn
import torch.nn.functional as F


def weight_quant(w, exact=False):
    """Absmean ternarization of a whole tensor: returns (codes in {-1,0,1} as float, scale).
    exact=True computes the mean in float64 (then rounds to f32), as bitnet convert does."""
    if exact:
        s = w.detach().double().abs().mean().float()
    else:
        s = w.abs().mean()
    s = s.clamp(min=1e-5)
    return (w / s).round().clamp(-1, 1), s


def act_quant(x):
    """Per-token absmax int8: returns x rounded to q / s with q in [-128, 127]."""
    s = 127.0 / x.abs().amax(dim=-1, keepdim=True).clamp(min=1e-5)
    return (x * s).round().clamp(-128, 127) / s


class BitLinear(nn.Module):
    def __init__(self, n_in, n_out):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(n_out, n_in))
        nn.init.normal_(self.weight, std=1.0 / math.sqrt(n_in))
        self.exact = False  # reference mode: exact absmean and no STE
        self.fixed_weight = None  # reference mode for packed checkpoints: the dequantized weight

    def forward(self, x):
        if self.fixed_weight is not None:
            wq = self.fixed_weight
        else:
            w = self.weight
            c, s = weight_quant(w, self.exact)
            wq = c * s
            if self.training:
                wq = w + (wq - w).detach()
        xq = act_quant(x)
        if self.training:
            xq = x + (xq - x).detach()
        return F.linear(xq, wq)


class RMSNorm(nn.Module):
    def __init__(self, n, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(n))
        self.eps = eps

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def rope_tables(n_ctx, head_dim, theta):
    inv = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim))
    ang = torch.arange(n_ctx, dtype=torch.float64)[:, None] * inv[None, :]
    return torch.cos(ang).float(), torch.sin(ang).float()


def apply_rope(x, cos, sin, interleaved):
    """x: [B, H, T, D]. NEOX pairs i with i + D/2; interleaved (llama GGUF) pairs 2i with 2i+1."""
    d2 = x.shape[-1] // 2
    if interleaved:
        a, b = x[..., 0::2], x[..., 1::2]
        ra = a * cos - b * sin
        rb = a * sin + b * cos
        return torch.stack([ra, rb], dim=-1).flatten(-2)
    a, b = x[..., :d2], x[..., d2:]
    return torch.cat([a * cos - b * sin, a * sin + b * cos], dim=-1)


class Block(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        d, f = cfg["hidden_size"], cfg["intermediate_size"]
        nh, nkv = cfg["num_attention_heads"], cfg["num_key_value_heads"]
        hd = d // nh
        eps = cfg["rms_norm_eps"]
        self.nh, self.nkv, self.hd = nh, nkv, hd
        self.sub_norms = cfg.get("sub_norms", True)
        self.act = cfg.get("hidden_act", "relu2")
        self.input_layernorm = RMSNorm(d, eps)
        self.q_proj = BitLinear(d, nh * hd)
        self.k_proj = BitLinear(d, nkv * hd)
        self.v_proj = BitLinear(d, nkv * hd)
        self.o_proj = BitLinear(nh * hd, d)
        self.post_attention_layernorm = RMSNorm(d, eps)
        self.gate_proj = BitLinear(d, f)
        self.up_proj = BitLinear(d, f)
        self.down_proj = BitLinear(f, d)
        if self.sub_norms:
            self.attn_sub_norm = RMSNorm(nh * hd, eps)
            self.ffn_sub_norm = RMSNorm(f, eps)

    def forward(self, x, cos, sin, interleaved=False):
        B, T, _ = x.shape
        h = self.input_layernorm(x)
        q = self.q_proj(h).view(B, T, self.nh, self.hd).transpose(1, 2)
        k = self.k_proj(h).view(B, T, self.nkv, self.hd).transpose(1, 2)
        v = self.v_proj(h).view(B, T, self.nkv, self.hd).transpose(1, 2)
        q = apply_rope(q, cos, sin, interleaved)
        k = apply_rope(k, cos, sin, interleaved)
        rep = self.nh // self.nkv
        k = k.repeat_interleave(rep, dim=1)
        v = v.repeat_interleave(rep, dim=1)
        att = (q @ k.transpose(-1, -2)) / math.sqrt(self.hd)
        mask = torch.ones(T, T, dtype=torch.bool, device=x.device).triu(1)
        att = att.masked_fill(mask, float("-inf")).softmax(-1)
        a = (att @ v).transpose(1, 2).reshape(B, T, self.nh * self.hd)
        if self.sub_norms:
            a = self.attn_sub_norm(a)
        x = x + self.o_proj(a)
        h = self.post_attention_layernorm(x)
        g = self.gate_proj(h)
        if self.act == "relu2":
            g = F.relu(g).square()
        else:
            g = F.silu(g)
        f = g * self.up_proj(h)
        if self.sub_norms:
            f = self.ffn_sub_norm(f)
        return x + self.down_proj(f)


class BitNet(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        d = cfg["hidden_size"]
        self.embed_tokens = nn.Embedding(cfg["vocab_size"], d)
        nn.init.normal_(self.embed_tokens.weight, std=0.02)
        self.layers = nn.ModuleList([Block(cfg) for _ in range(cfg["num_hidden_layers"])])
        self.norm = RMSNorm(d, cfg["rms_norm_eps"])
        self.tied = cfg.get("tie_word_embeddings", True)
        if not self.tied:
            self.lm_head = nn.Linear(d, cfg["vocab_size"], bias=False)
        hd = d // cfg["num_attention_heads"]
        cos, sin = rope_tables(cfg.get("max_position_embeddings", 2048), hd, cfg.get("rope_theta", 10000.0))
        self.register_buffer("cos", cos, persistent=False)
        self.register_buffer("sin", sin, persistent=False)
        self.interleaved = False

    def set_reference(self):
        """Exact absmean (float64 mean) and eval mode, as the converter computes it."""
        self.eval()
        for m in self.modules():
            if isinstance(m, BitLinear):
                m.exact = True

    def forward(self, ids):
        T = ids.shape[1]
        x = self.embed_tokens(ids)
        cos, sin = self.cos[:T], self.sin[:T]
        for layer in self.layers:
            x = layer(x, cos, sin, self.interleaved)
        x = self.norm(x)
        w = self.embed_tokens.weight if self.tied else self.lm_head.weight
        return x @ w.t()

    def hf_state_dict(self):
        """Tensors under Hugging Face BitNet names (model.layers.N.self_attn.q_proj.weight, ...)."""
        out = {"model.embed_tokens.weight": self.embed_tokens.weight, "model.norm.weight": self.norm.weight}
        for i, L in enumerate(self.layers):
            p = "model.layers.%d." % i
            out[p + "input_layernorm.weight"] = L.input_layernorm.weight
            out[p + "post_attention_layernorm.weight"] = L.post_attention_layernorm.weight
            for n in ("q_proj", "k_proj", "v_proj", "o_proj"):
                out[p + "self_attn." + n + ".weight"] = getattr(L, n).weight
            for n in ("gate_proj", "up_proj", "down_proj"):
                out[p + "mlp." + n + ".weight"] = getattr(L, n).weight
            if L.sub_norms:
                out[p + "self_attn.attn_sub_norm.weight"] = L.attn_sub_norm.weight
                out[p + "mlp.ffn_sub_norm.weight"] = L.ffn_sub_norm.weight
        if not self.tied:
            out["lm_head.weight"] = self.lm_head.weight
        return {k: v.detach().float().contiguous() for k, v in out.items()}


# ---- safetensors (8-byte header length, JSON header, raw little-endian data) ----

_DT = {"F32": (torch.float32, 4), "F16": (torch.float16, 2), "BF16": (torch.bfloat16, 2), "U8": (torch.uint8, 1)}


def save_safetensors(path, tensors):
    header, blobs, off = {}, [], 0
    for name in sorted(tensors):
        t = tensors[name].contiguous()
        dt = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16", torch.uint8: "U8"}[t.dtype]
        if t.dtype == torch.bfloat16:
            raw = t.view(torch.int16).numpy().tobytes()
        else:
            raw = t.numpy().tobytes()
        header[name] = {"dtype": dt, "shape": list(t.shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)
    os.replace(tmp, path)


def load_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        dt, _ = _DT[info["dtype"]]
        a, b = info["data_offsets"]
        buf = bytearray(data[a:b])
        if dt == torch.bfloat16:
            t = torch.frombuffer(buf, dtype=torch.int16).view(torch.bfloat16)
        else:
            t = torch.frombuffer(buf, dtype=dt)
        out[name] = t.reshape(info["shape"]) if info["shape"] else t.reshape(())
    return out


def load_checkpoint_dir(d):
    """All tensors of an HF checkpoint directory (one file or shards with an index)."""
    idx = os.path.join(d, "model.safetensors.index.json")
    if os.path.exists(idx):
        files = sorted(set(json.load(open(idx))["weight_map"].values()))
    else:
        files = ["model.safetensors"]
    out = {}
    for fn in files:
        out.update(load_safetensors(os.path.join(d, fn)))
    return out
