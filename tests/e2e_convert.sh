#!/usr/bin/env bash
# e2e_convert.sh - `bitnet convert` on tiny checkpoints in the layouts of the real Hugging Face
# repositories (written by tools/train/make_test_checkpoints.py, standard-library Python with a
# fixed seed): each converts, loads, and its logits match the PyTorch reference forward pass of
# the same checkpoint (tests/fixtures/layout_*.ref, made by tools/train/reference.py). Also: the
# packed and master forms of one model agree, the wrong weight_scale reading is caught, and bad
# input is refused with a message.
set -u
source "$(dirname "$0")/e2e_lib.sh"
BIN=$1
TMP=$2
ROOT=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$TMP"
command -v python3 >/dev/null || skip "python3 is needed to write the test checkpoints"

python3 "$ROOT/tools/train/make_test_checkpoints.py" "$TMP/ckpt" || abort "writing checkpoints"
check "convert --help" 0 "usage: bitnet convert" "$BIN" convert --help
for d in 2b4t-bf16 2b4t-packed 2b4t-packed-div large llama; do
    fx=$ROOT/tests/fixtures/layout_$d.ref
    # --exact-scale: keep the f32 absmean scales, as the reference computes them
    check "convert $d" 0 "wrote" "$BIN" convert "$TMP/ckpt/$d" -o "$TMP/$d.gguf" --exact-scale
    ids=$(python3 "$ROOT/tests/compare_logits.py" "$fx" 0 --ids)
    # f32 KV cache: the reference attends in f32, so the engine must match it almost exactly
    check "eval $d" 0 "wrote" "$BIN" eval -m "$TMP/$d.gguf" --kv f32 --prompt-ids "$ids" --logits-out "$TMP/$d.f32"
    check "logits $d vs reference" 0 "^ok" python3 "$ROOT/tests/compare_logits.py" "$fx" 0 "$TMP/$d.f32" 0.001
done
# the f16 KV cache (the default) stays within 2 % of the range and keeps the top-1 tokens
ids=$(python3 "$ROOT/tests/compare_logits.py" "$ROOT/tests/fixtures/layout_llama.ref" 0 --ids)
"$BIN" eval -m "$TMP/llama.gguf" --prompt-ids "$ids" --logits-out "$TMP/llama16.f32" 2>/dev/null
check "llama f16 KV vs reference" 0 "^ok" python3 "$ROOT/tests/compare_logits.py" "$ROOT/tests/fixtures/layout_llama.ref" 0 "$TMP/llama16.f32" 0.02
# master (bf16) and packed forms of the same model give the same weights: identical logits
if cmp -s "$TMP/2b4t-bf16.f32" "$TMP/2b4t-packed.f32"; then pass; else fail "packed and master logits differ"; fi
# reading weight_scale the wrong way round must not match the reference
check "convert packed, wrong scale reading" 0 "wrote" "$BIN" convert "$TMP/ckpt/2b4t-packed" -o "$TMP/wrong.gguf" --weight-scale div --exact-scale
ids=$(python3 "$ROOT/tests/compare_logits.py" "$ROOT/tests/fixtures/layout_2b4t-packed.ref" 0 --ids)
"$BIN" eval -m "$TMP/wrong.gguf" --kv f32 --prompt-ids "$ids" --logits-out "$TMP/wrong.f32" 2>/dev/null
check "wrong reading is caught" 1 "^FAIL" python3 "$ROOT/tests/compare_logits.py" "$ROOT/tests/fixtures/layout_2b4t-packed.ref" 0 "$TMP/wrong.f32" 0.001
# by default scales are rounded to f16, so the I2_S and F16 files hold the same weights: same logits
check "convert i2_s" 0 "wrote" "$BIN" convert "$TMP/ckpt/large" -o "$TMP/large-i2s.gguf"
check "convert f16" 0 "wrote" "$BIN" convert "$TMP/ckpt/large" -o "$TMP/large-f16.gguf" --type f16
ids=$(python3 "$ROOT/tests/compare_logits.py" "$ROOT/tests/fixtures/layout_large.ref" 0 --ids)
"$BIN" eval -m "$TMP/large-i2s.gguf" --prompt-ids "$ids" --logits-out "$TMP/large-i2s.f32" 2>/dev/null
"$BIN" eval -m "$TMP/large-f16.gguf" --prompt-ids "$ids" --logits-out "$TMP/large-f16.f32" 2>/dev/null
if [ -s "$TMP/large-i2s.f32" ] && cmp -s "$TMP/large-i2s.f32" "$TMP/large-f16.f32"; then pass; else fail "I2_S and F16 logits differ"; fi
check "convert tq2_0 needs 256-multiples" 1 "not a multiple of 256" "$BIN" convert "$TMP/ckpt/large" -o "$TMP/x.gguf" --type tq2_0

# perplexity: two chunks of 16 tokens; the expectation is computed here from `bitnet eval` logits
python3 -c 'import random; r = random.Random(5); print(" ".join(str(r.randrange(3, 300)) for _ in range(40)))' >"$TMP/ppl.ids"
out=$("$BIN" perplexity -m "$TMP/large.gguf" --token-ids "$TMP/ppl.ids" -c 16 --kv f32 2>/dev/null)
c0=$(python3 -c 'import sys; i = open(sys.argv[1]).read().split(); print(",".join(["1"] + i[1:16]))' "$TMP/ppl.ids")
c1=$(python3 -c 'import sys; i = open(sys.argv[1]).read().split(); print(",".join(["1"] + i[17:32]))' "$TMP/ppl.ids")
"$BIN" eval -m "$TMP/large.gguf" --kv f32 --prompt-ids "$c0" --logits-out "$TMP/c0.f32" 2>/dev/null
"$BIN" eval -m "$TMP/large.gguf" --kv f32 --prompt-ids "$c1" --logits-out "$TMP/c1.f32" 2>/dev/null
want=$(python3 - "$TMP/ppl.ids" "$TMP/c0.f32" "$TMP/c1.f32" <<'PY'
import math, struct, sys
ids = [int(x) for x in open(sys.argv[1]).read().split()]
V, C, nll = 300, 16, []
for c, path in enumerate(sys.argv[2:]):
    d = open(path, "rb").read()
    lg = struct.unpack("<%df" % (len(d) // 4), d)
    for j in range(C // 2, C - 1):
        row = lg[j * V:(j + 1) * V]
        m = max(row)
        nll.append(math.log(sum(math.exp(x - m) for x in row)) + m - row[ids[c * C + j + 1]])
print("%.4f" % math.exp(sum(nll) / len(nll)))
PY
)
if grep -q "PPL = $want " <<<"$out"; then pass; else fail "perplexity: got '$out', want PPL = $want"; fi
check "perplexity --help" 0 "usage: bitnet perplexity" "$BIN" perplexity --help
check "perplexity without a text" 2 "error: give exactly one" "$BIN" perplexity -m "$TMP/large.gguf"
check "perplexity short text" 1 "error: the text has 40 tokens, fewer than one chunk" "$BIN" perplexity -m "$TMP/large.gguf" --token-ids "$TMP/ppl.ids" -c 64

# refusals
mkdir -p "$TMP/gpt2"
echo '{"architectures": ["GPT2LMHeadModel"], "hidden_size": 64}' >"$TMP/gpt2/config.json"
cp "$TMP/ckpt/large/model.safetensors" "$TMP/gpt2/"
check "unknown architecture" 1 "error: architecture 'GPT2LMHeadModel' is not supported; supported: BitNetForCausalLM" "$BIN" convert "$TMP/gpt2" -o "$TMP/x.gguf"
check "no directory" 1 "^error: " "$BIN" convert "$TMP/none" -o "$TMP/x.gguf"
check "no -o" 2 "error: give the output file" "$BIN" convert "$TMP/ckpt/large"
check "bad --type" 2 "error: --type" "$BIN" convert "$TMP/ckpt/large" -o "$TMP/x.gguf" --type q4_0
mkdir -p "$TMP/bad"
cp "$TMP/ckpt/large/config.json" "$TMP/ckpt/large/tokenizer.model" "$TMP/bad/"
printf '\x10\x00\x00\x00\x00\x00\x00\x00{"a": {"dtype"' >"$TMP/bad/model.safetensors"
check "truncated safetensors header" 1 "^error: .*header" "$BIN" convert "$TMP/bad" -o "$TMP/x.gguf"
printf '\x40\x00\x00\x00\x00\x00\x00\x00{"a":{"dtype":"F32","shape":[1000],"data_offsets":[0,4000]}}    ' >"$TMP/bad/model.safetensors"
check "tensor past end of file" 1 "^error: .*do not fit" "$BIN" convert "$TMP/bad" -o "$TMP/x.gguf"
finish
