#!/usr/bin/env bash
# test.sh - runs every test: installs what is missing, checks formatting,
# builds (warnings are errors) and runs the whole suite through ctest, then
# the same suite built with AddressSanitizer and UndefinedBehaviorSanitizer.
#   BITNET_TEST_FAST=1  skip the sanitizer build
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh
bitnet_install_deps

echo "== format check (clang-format)"
mapfile -t sources < <(git ls-files '*.c' '*.h' 2>/dev/null || find . -name '*.[ch]' -not -path './build*')
if ! clang-format --dry-run --Werror "${sources[@]}"; then
    echo "error: sources are not formatted; run: clang-format -i \$(git ls-files '*.c' '*.h')" >&2
    exit 1
fi

jobs=$(nproc)
echo "== build (build/)"
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DBITNET_WERROR=ON >/dev/null
cmake --build build -j"$jobs"
echo "== tests"
ctest --test-dir build --output-on-failure -j"$jobs"

if [ "${BITNET_TEST_FAST:-0}" != 1 ]; then
    echo "== build with ASan+UBSan (build-asan/)"
    cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DBITNET_WERROR=ON \
        -DBITNET_SANITIZE=address,undefined >/dev/null
    cmake --build build-asan -j"$jobs"
    echo "== tests under ASan+UBSan"
    UBSAN_OPTIONS=print_stacktrace=1 \
        BITNET_TEST_SANITIZED=1 ctest --test-dir build-asan --output-on-failure -j"$jobs" -LE slow
fi
