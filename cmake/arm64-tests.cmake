# arm64-tests.cmake - cross-compiles the NEON ternary kernels with their test
# (tests/arm/test_ternary_neon.c, no cmocka) using Debian's aarch64 toolchain,
# and runs it under qemu-user twice: -cpu max has the dot product (the
# dispatch must choose neon-dotprod), -cpu cortex-a53 has not (it must choose
# plain neon; a dot-product instruction there would be SIGILL); and the same
# with a Clang build when clang is installed. binfmt is not assumed: qemu is
# called explicitly. Nothing is registered when the cross
# compiler, the arm64 libc or qemu-aarch64 is missing (scripts/deps.sh
# installs gcc-aarch64-linux-gnu, libc6-dev-arm64-cross and qemu-user).
# Included from tests/CMakeLists.txt.
find_program(BITNET_AARCH64_CC aarch64-linux-gnu-gcc)
find_program(BITNET_QEMU_AARCH64 qemu-aarch64)
set(BITNET_AARCH64_SYSROOT /usr/aarch64-linux-gnu CACHE PATH "arm64 libraries for qemu-aarch64 -L")

if(BITNET_AARCH64_CC AND BITNET_QEMU_AARCH64 AND EXISTS ${BITNET_AARCH64_SYSROOT}/lib/libc.so.6)
  # the kernels and what they need from core/ (no graph, no backend)
  set(_arm_src
      tests/arm/test_ternary_neon.c
      backends/cpu/ternary_neon.c backends/cpu/ternary_scalar.c backends/cpu/ternary_dispatch.c
      backends/cpu/ternary_lut.c backends/cpu/ternary_sparse.c
      core/os.c core/quant.c core/types.c core/error.c)
  list(TRANSFORM _arm_src PREPEND ${PROJECT_SOURCE_DIR}/)
  file(GLOB _arm_hdr ${PROJECT_SOURCE_DIR}/backends/cpu/ternary.h ${PROJECT_SOURCE_DIR}/core/*.h
       ${PROJECT_SOURCE_DIR}/graph/ir.h ${PROJECT_SOURCE_DIR}/include/bitnet.h
       ${PROJECT_SOURCE_DIR}/tests/ternary_gemm_check.h)
  set(_arm_bin ${CMAKE_CURRENT_BINARY_DIR}/test_ternary_neon_arm64)
  set(_arm_flags -std=c11 -O2 -Wall -Wextra -march=armv8-a)
  if(BITNET_WERROR)
    list(APPEND _arm_flags -Werror)
  endif()
  foreach(dir include core graph backends)
    list(APPEND _arm_flags -I${PROJECT_SOURCE_DIR}/${dir})
  endforeach()
  add_custom_command(OUTPUT ${_arm_bin}
    COMMAND ${BITNET_AARCH64_CC} ${_arm_flags} ${_arm_src} -o ${_arm_bin} -lm -lpthread
    DEPENDS ${_arm_src} ${_arm_hdr}
    COMMENT "Cross-compiling the NEON ternary kernel test for arm64"
    VERBATIM)
  add_custom_target(test_ternary_neon_arm64 ALL DEPENDS ${_arm_bin})
  add_test(NAME test_ternary_neon_dotprod
           COMMAND ${BITNET_QEMU_AARCH64} -L ${BITNET_AARCH64_SYSROOT} -cpu max ${_arm_bin} neon-dotprod)
  add_test(NAME test_ternary_neon_nodot
           COMMAND ${BITNET_QEMU_AARCH64} -L ${BITNET_AARCH64_SYSROOT} -cpu cortex-a53 ${_arm_bin} neon)
  set_tests_properties(test_ternary_neon_dotprod test_ternary_neon_nodot PROPERTIES TIMEOUT 300)
  message(STATUS "bitnet: arm64 kernel tests ON (${BITNET_AARCH64_CC}, ${BITNET_QEMU_AARCH64})")

  # The same test built by Clang (--target, with the GCC cross toolchain's
  # libraries): its arm_neon.h differs (Clang 15 and older declare vdotq_s32
  # only for a file built for dotprod), so both compilers' builds are run.
  find_program(BITNET_CLANG clang)
  if(BITNET_CLANG)
    set(_arm_clang_bin ${CMAKE_CURRENT_BINARY_DIR}/test_ternary_neon_arm64_clang)
    add_custom_command(OUTPUT ${_arm_clang_bin}
      COMMAND ${BITNET_CLANG} --target=aarch64-linux-gnu ${_arm_flags} ${_arm_src}
              -o ${_arm_clang_bin} -lm -lpthread
      DEPENDS ${_arm_src} ${_arm_hdr}
      COMMENT "Cross-compiling the NEON ternary kernel test for arm64 with Clang"
      VERBATIM)
    add_custom_target(test_ternary_neon_arm64_clang ALL DEPENDS ${_arm_clang_bin})
    add_test(NAME test_ternary_neon_clang_dotprod
             COMMAND ${BITNET_QEMU_AARCH64} -L ${BITNET_AARCH64_SYSROOT} -cpu max ${_arm_clang_bin}
                     neon-dotprod)
    add_test(NAME test_ternary_neon_clang_nodot
             COMMAND ${BITNET_QEMU_AARCH64} -L ${BITNET_AARCH64_SYSROOT} -cpu cortex-a53
                     ${_arm_clang_bin} neon)
    set_tests_properties(test_ternary_neon_clang_dotprod test_ternary_neon_clang_nodot
                         PROPERTIES TIMEOUT 300)
  endif()
else()
  message(STATUS "bitnet: arm64 kernel tests OFF (need gcc-aarch64-linux-gnu, libc6-dev-arm64-cross, qemu-user)")
endif()
