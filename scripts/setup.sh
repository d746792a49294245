#!/usr/bin/env bash
# setup.sh - one command from a fresh Debian 12 machine to a working bitnet:
# installs what is missing, builds into build/ (binary: build/bin/bitnet), and
# checks that the default model models/demo.gguf (the trained demo model) is there.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh
bitnet_install_deps

BUILD_DIR=${BUILD_DIR:-build}
cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release ${BITNET_CMAKE_ARGS:-}
cmake --build "$BUILD_DIR" -j"$(nproc)"

if [ ! -f models/demo.gguf ]; then
    # The demo model is committed; tools/train/README.md says how to remake it.
    echo "warning: models/demo.gguf is missing (restore it with git checkout models/demo.gguf)" >&2
fi
echo "ready: $BUILD_DIR/bin/bitnet run -p \"In the beginning\"" >&2
