#!/usr/bin/env bash
# deps.sh - installs the Debian packages the build and the tests need, when any
# is missing. Sourced by setup.sh and test.sh; safe to run again.
set -euo pipefail

BITNET_PACKAGES=(
    cmake gcc make pkg-config libcmocka-dev clang-format libcjson-dev
    libvulkan-dev libvulkan-volk-dev glslc mesa-vulkan-drivers vulkan-validationlayers
    ocl-icd-opencl-dev opencl-headers pocl-opencl-icd
    clang libclang-rt-14-dev valgrind
    python3 # tests drive the server and write test checkpoints with its standard library
    libmicrohttpd-dev # HTTP for bitnet serve
    gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user # NEON kernels cross-built, run under qemu
)

bitnet_install_deps() {
    local missing=()
    for p in "${BITNET_PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    if [ ${#missing[@]} -eq 0 ]; then
        return 0
    fi
    echo "installing: ${missing[*]}" >&2
    local sudo=""
    if [ "$(id -u)" -ne 0 ]; then
        sudo="sudo"
    fi
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get -o DPkg::Lock::Timeout=300 update -q >&2
    $sudo apt-get -o DPkg::Lock::Timeout=300 install -y -q --no-install-recommends "${missing[@]}" >&2
}
