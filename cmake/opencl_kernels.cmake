# opencl_kernels.cmake - embeds shaders/opencl/NAME.cl into the bitnet library as
# C strings (generated header bn_cl_kernels.h in the build tree), regenerated
# whenever a kernel file changes. The OpenCL backend builds them at run time,
# once per device, and caches the binaries on disk (backends/opencl/cl_program.c).
function(bitnet_embed_opencl_kernels target)
  file(GLOB _cl_files CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/shaders/opencl/*.cl)
  list(SORT _cl_files)
  set(_dir ${CMAKE_BINARY_DIR}/generated/opencl)
  set(_out ${_dir}/bn_cl_kernels.h)
  file(MAKE_DIRECTORY ${_dir})
  string(REPLACE ";" "|" _cl_arg "${_cl_files}") # one argument; the script splits it
  add_custom_command(
    OUTPUT ${_out}
    COMMAND ${CMAKE_COMMAND} "-DOUT=${_out}" "-DFILES=${_cl_arg}" -P
            ${PROJECT_SOURCE_DIR}/cmake/embed_text.cmake
    DEPENDS ${_cl_files} ${PROJECT_SOURCE_DIR}/cmake/embed_text.cmake
    COMMENT "Embedding OpenCL kernels"
    VERBATIM)
  add_custom_target(bitnet_cl_kernels DEPENDS ${_out})
  add_dependencies(${target} bitnet_cl_kernels)
  target_include_directories(${target} PRIVATE ${_dir})
endfunction()
