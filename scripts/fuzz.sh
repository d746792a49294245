#!/usr/bin/env bash
# fuzz.sh SECONDS - builds every libFuzzer target in tests/fuzz/ with clang and
# ASan+UBSan (build-fuzz/), then runs each for SECONDS on a corpus seeded from
# the test files. A finding stops the script with a non-zero exit; the crashing
# input is left in build-fuzz/findings/ (turn it into a regression test).
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_EACH=${1:-60}
source scripts/deps.sh
bitnet_install_deps

CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=Debug -DBITNET_FUZZ=ON -DBITNET_TESTS=OFF \
    -DBITNET_VULKAN=OFF -DBITNET_OPENCL=OFF -DBITNET_SANITIZE=address,undefined >/dev/null
cmake --build build-fuzz -j"$(nproc)"

corpus=build-fuzz/corpus
mkdir -p "$corpus" build-fuzz/findings
# seeds: small generated models and the shared vocabulary files
seed_models() {
    local dir=$1
    mkdir -p "$dir"
    build-fuzz/bin/bitnet gen -o "$dir/tiny-i2s.gguf" --shape tiny --type i2_s --seed 1 2>/dev/null
    build-fuzz/bin/bitnet gen -o "$dir/tiny-tq1.gguf" --shape tiny --type tq1_0 --seed 2 2>/dev/null
    for f in ../shared/data/tokenizers/*.gguf; do [ -f "$f" ] && cp "$f" "$dir/"; done
    return 0
}

# vocabularies for the tokenizer target: the shared SentencePiece one, Llama-3
# built from the shared ranks, and the demo model's
vocabs=""
spm=../shared/data/tokenizers/ggml-vocab-llama-spm.gguf
ranks=../shared/data/tokenizers/llama3-tokenizer.model
[ -f "$spm" ] && vocabs="$spm"
if [ -f "$ranks" ]; then
    [ -f build-fuzz/llama3.gguf ] || build-fuzz/bin/bitnet vocab --from-tiktoken "$ranks" -o build-fuzz/llama3.gguf 2>/dev/null
    vocabs="$vocabs:build-fuzz/llama3.gguf"
fi
for m in models/*.gguf; do [ -f "$m" ] && vocabs="$vocabs:$m"; done
export BITNET_FUZZ_VOCABS=${vocabs#:}

# a tiny checkpoint for the converter target; every layout's config.json is a seed
if [ ! -d build-fuzz/ckpt ]; then
    python3 tools/train/make_test_checkpoints.py build-fuzz/ckpt >/dev/null
fi
export BITNET_FUZZ_CKPT=$PWD/build-fuzz/ckpt/2b4t-bf16
mkdir -p "$corpus/fuzz_convert"
for c in build-fuzz/ckpt/*/config.json; do
    cp "$c" "$corpus/fuzz_convert/$(basename "$(dirname "$c")").json"
done

status=0
for bin in build-fuzz/bin/fuzz_*; do
    name=$(basename "$bin")
    dir=$corpus/$name
    mkdir -p "$dir"
    seeds=tests/fuzz/seeds/${name#fuzz_}
    [ -d "$seeds" ] && cp -n "$seeds"/* "$dir"/ 2>/dev/null || true
    [ "$name" = fuzz_gguf ] && [ -z "$(ls -A "$dir")" ] && seed_models "$dir"
    echo "== $name for ${SECONDS_EACH}s"
    if ! "$bin" -max_total_time="$SECONDS_EACH" -max_len=1048576 -rss_limit_mb=4096 \
        -artifact_prefix=build-fuzz/findings/"$name"- -print_final_stats=1 "$dir" 2>build-fuzz/"$name".log; then
        echo "error: $name found a problem; see build-fuzz/$name.log and build-fuzz/findings/" >&2
        tail -40 build-fuzz/"$name".log >&2
        status=1
    else
        grep -E "stat::number_of_executed_units|stat::new_units_added" build-fuzz/"$name".log | tr '\n' ' '
        echo
    fi
done
exit $status
