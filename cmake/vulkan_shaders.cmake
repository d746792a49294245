# vulkan_shaders.cmake - builds the Vulkan backend's shaders (included from the root
# CMakeLists.txt when BITNET_VULKAN is on, after the bitnet target exists).
#
# Each shaders/vulkan/NAME.comp is compiled by glslc into SPIR-V, written as a C initializer
# list (-mfmt=c), once per variant (the device decides at run time which ones to load):
# USE_SUBGROUP 0/1 for shaders that reduce, USE_FP64 0/1 for shaders that do in double what
# the CPU reference does in double, and USE_INT_DOT 0/1 for the ternary matmuls, the latter
# only when this glslc understands GL_EXT_integer_dot_product (a configure-time probe:
# Debian 12's glslang 12 does not); the integer-dot shaders are also built once with the
# built-in written out in GLSL (USE_INT_DOT=1 INT_DOT_EMULATED=1, "dot" value e below), so
# their code path is tested where the extension is missing (BITNET_VK_INT_DOT_EMULATE=1). A generated vk_shaders.c holds every variant in a table
# (backends/vulkan/vk_internal.h: bn_vk_shader_table) that libbitnet links in.

set(BITNET_VK_GEN_DIR ${CMAKE_BINARY_DIR}/vk_shaders)
file(MAKE_DIRECTORY ${BITNET_VK_GEN_DIR})

# ---- probe: can glslc compile GL_EXT_integer_dot_product? ----
set(_probe ${BITNET_VK_GEN_DIR}/probe_int_dot.comp)
file(WRITE ${_probe} "#version 450
#extension GL_EXT_integer_dot_product : require
layout(local_size_x = 1) in;
layout(std430, binding = 0) buffer B { int v[]; };
void main() { v[0] = dotPacked4x8EXT(v[1], v[2]); }
")
execute_process(
  COMMAND ${Vulkan_GLSLC_EXECUTABLE} --target-env=vulkan1.1 ${_probe} -o ${_probe}.spv
  RESULT_VARIABLE _probe_rc OUTPUT_QUIET ERROR_QUIET)
if(_probe_rc EQUAL 0)
  # the extension compiles: so must the shaders that use it (never compiled on Debian 12)
  foreach(_s matvec_ternary matmul_ternary)
    execute_process(
      COMMAND ${Vulkan_GLSLC_EXECUTABLE} --target-env=vulkan1.1 -DUSE_SUBGROUP=1 -DUSE_INT_DOT=1
              -DINT_DOT_EMULATED=0 -DUSE_FP64=1 -I${PROJECT_SOURCE_DIR}/shaders/vulkan
              ${PROJECT_SOURCE_DIR}/shaders/vulkan/${_s}.comp -o ${BITNET_VK_GEN_DIR}/probe_${_s}.spv
      RESULT_VARIABLE _rc ERROR_VARIABLE _msg OUTPUT_QUIET)
    if(NOT _rc EQUAL 0)
      message(WARNING "bitnet: ${_s}.comp does not compile with GL_EXT_integer_dot_product; "
                      "building without the integer-dot variants: ${_msg}")
      set(_probe_rc 1)
    endif()
  endforeach()
endif()
if(_probe_rc EQUAL 0)
  set(_int_dot_default ON)
else()
  set(_int_dot_default OFF)
endif()
option(BITNET_VK_INT_DOT "Build the GL_EXT_integer_dot_product shader variants" ${_int_dot_default})
if(BITNET_VK_INT_DOT AND NOT _probe_rc EQUAL 0)
  message(FATAL_ERROR "BITNET_VK_INT_DOT=ON but ${Vulkan_GLSLC_EXECUTABLE} cannot compile GL_EXT_integer_dot_product")
endif()
message(STATUS "bitnet: Vulkan shaders: GL_EXT_integer_dot_product variants ${BITNET_VK_INT_DOT}")

# ---- the shaders: NAME:flags, S subgroup variants, F fp64 variants, D integer-dot variants ----
set(_vk_shaders
  get_rows: rms_norm:SF binary: unary: cpy: quantize_act:S matvec_ternary:SFD matmul_ternary:FD
  matvec_f:SF matmul_f:F rope:F kv_store: attention:SF)

set(_vk_incs "")
set(_vk_table "")
set(_vk_decls "")
foreach(entry ${_vk_shaders})
  string(REPLACE ":" ";" parts "${entry}:")
  list(GET parts 0 name)
  list(GET parts 1 flags)
  set(sg_list 0)
  set(dot_list 0)
  set(fp_list 0)
  if(flags MATCHES "F")
    list(APPEND fp_list 1)
  endif()
  if(flags MATCHES "S")
    list(APPEND sg_list 1)
  endif()
  if(flags MATCHES "D" AND BITNET_VK_INT_DOT)
    list(APPEND dot_list 1)
  endif()
  if(flags MATCHES "D")
    list(APPEND dot_list e)
  endif()
  set(src ${PROJECT_SOURCE_DIR}/shaders/vulkan/${name}.comp)
  foreach(sg ${sg_list})
    foreach(dot ${dot_list})
      foreach(fp ${fp_list})
        set(var ${name}_s${sg}_d${dot}_f${fp})
        set(out ${BITNET_VK_GEN_DIR}/${var}.inc)
        if(dot STREQUAL "e")
          set(defs -DUSE_INT_DOT=1 -DINT_DOT_EMULATED=1)
          set(dflag 10) # VK_SHADER_INT_DOT | VK_SHADER_INT_DOT_EMULATED
        else()
          set(defs -DUSE_INT_DOT=${dot} -DINT_DOT_EMULATED=0)
          math(EXPR dflag "2 * ${dot}")
        endif()
        add_custom_command(
          OUTPUT ${out}
          COMMAND ${Vulkan_GLSLC_EXECUTABLE} --target-env=vulkan1.1 -O -mfmt=c
                  -DUSE_SUBGROUP=${sg} ${defs} -DUSE_FP64=${fp}
                  -I${PROJECT_SOURCE_DIR}/shaders/vulkan -MD -MF ${out}.d -MT ${out} -o ${out} ${src}
          DEPENDS ${src}
          DEPFILE ${out}.d
          COMMENT "glslc ${name}.comp (subgroup ${sg}, integer dot ${dot}, fp64 ${fp})"
          VERBATIM)
        list(APPEND _vk_incs ${out})
        math(EXPR fl "${sg} + ${dflag} + 4 * ${fp}")
        string(APPEND _vk_decls "static const uint32_t spv_${var}[] =\n#include \"${var}.inc\"\n;\n")
        string(APPEND _vk_table "    {\"${name}\", ${fl}, spv_${var}, sizeof spv_${var}},\n")
      endforeach()
    endforeach()
  endforeach()
endforeach()

file(CONFIGURE OUTPUT ${BITNET_VK_GEN_DIR}/vk_shaders.c CONTENT
"/* vk_shaders.c - generated by cmake/vulkan_shaders.cmake: the SPIR-V of every shader variant. */
#include <stddef.h>
#include <stdint.h>

#include \"vk_internal.h\"

${_vk_decls}
const bn_vk_shader_blob bn_vk_shader_table[] = {
${_vk_table}    {NULL, 0, NULL, 0},
};
" @ONLY)

target_sources(bitnet PRIVATE ${BITNET_VK_GEN_DIR}/vk_shaders.c ${_vk_incs})
target_include_directories(bitnet PRIVATE ${BITNET_VK_GEN_DIR} ${PROJECT_SOURCE_DIR}/backends/vulkan)
if(BITNET_VK_INT_DOT)
  target_compile_definitions(bitnet PRIVATE BITNET_VK_INT_DOT_BUILT=1)
endif()
