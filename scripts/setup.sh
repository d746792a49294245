#!/usr/bin/env bash
# setup.sh - one command from a fresh Debian 12 machine to a working bitnet:
# installs what is missing, builds into build/ (binary: build/bin/bitnet), and
# makes the default model models/default.gguf.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh
bitnet_install_deps

BUILD_DIR=${BUILD_DIR:-build}
cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release ${BITNET_CMAKE_ARGS:-}
cmake --build "$BUILD_DIR" -j"$(nproc)"

mkdir -p models
if [ ! -f models/default.gguf ]; then
    # Until the trained demo model exists, the default model is a small generated one.
    "$BUILD_DIR"/bin/bitnet gen -o models/default.gguf.tmp --shape tiny --type i2_s --seed 1
    mv models/default.gguf.tmp models/default.gguf
fi
echo "ready: $BUILD_DIR/bin/bitnet run -p \"Hello\"" >&2
