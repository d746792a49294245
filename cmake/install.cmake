# install.cmake - what `cmake --install` puts in place: bitnet.h, libbitnet.a
# and libbitnet.so, the bitnet command, bitnet.pc (pkg-config) and the CMake
# package bitnetConfig.cmake (targets bitnet::bitnet, shared, and
# bitnet::bitnet_static). Both files are relocatable: they find the prefix
# from where they are installed, so `--prefix` works at install time.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

install(TARGETS bitnet ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
if(TARGET bitnet_shared)
  install(TARGETS bitnet_shared LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
endif()
install(TARGETS bitnet_cli RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(FILES ${PROJECT_SOURCE_DIR}/include/bitnet.h DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})

# What a program linking the static library needs besides libbitnet.a.
set(BITNET_PC_PRIVATE "")
set(BITNET_CONFIG_VULKAN OFF)
set(BITNET_CONFIG_OPENCL OFF)
set(BITNET_CONFIG_CJSON OFF)
if(TARGET bitnet_volk)
  install(TARGETS bitnet_volk ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
  string(APPEND BITNET_PC_PRIVATE " -lbitnet_volk")
  set(BITNET_CONFIG_VULKAN ON)
endif()
if(BITNET_OPENCL)
  string(APPEND BITNET_PC_PRIVATE " -lOpenCL")
  set(BITNET_CONFIG_OPENCL ON)
endif()
if(TARGET PkgConfig::CJSON)
  string(APPEND BITNET_PC_PRIVATE " -lcjson")
  set(BITNET_CONFIG_CJSON ON)
endif()
string(APPEND BITNET_PC_PRIVATE " -ldl -lm -pthread")

file(RELATIVE_PATH BITNET_PC_TO_PREFIX "/p/${CMAKE_INSTALL_LIBDIR}/pkgconfig" "/p")
configure_file(${PROJECT_SOURCE_DIR}/cmake/bitnet.pc.in ${PROJECT_BINARY_DIR}/bitnet.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/bitnet.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)

configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/bitnetConfig.cmake.in
  ${PROJECT_BINARY_DIR}/bitnetConfig.cmake
  INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/bitnet
  PATH_VARS CMAKE_INSTALL_LIBDIR CMAKE_INSTALL_INCLUDEDIR)
write_basic_package_version_file(${PROJECT_BINARY_DIR}/bitnetConfigVersion.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/bitnetConfig.cmake ${PROJECT_BINARY_DIR}/bitnetConfigVersion.cmake
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/bitnet)
