# Installs the libraries, headers and a CMake package config so that
# `find_package(sparsity CONFIG REQUIRED)` works from the install prefix.

include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(SPARSITY_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/sparsity)

install(TARGETS sparsity_core sparsity_plugin
  EXPORT sparsityTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(DIRECTORY ${PROJECT_SOURCE_DIR}/core/include/sparsity ${PROJECT_SOURCE_DIR}/plugin/include/sparsity
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})

install(EXPORT sparsityTargets
  NAMESPACE sparsity::
  DESTINATION ${SPARSITY_CMAKE_DIR})

configure_package_config_file(
  ${PROJECT_SOURCE_DIR}/cmake/sparsityConfig.cmake.in
  ${PROJECT_BINARY_DIR}/sparsityConfig.cmake
  INSTALL_DESTINATION ${SPARSITY_CMAKE_DIR})
write_basic_package_version_file(
  ${PROJECT_BINARY_DIR}/sparsityConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES
  ${PROJECT_BINARY_DIR}/sparsityConfig.cmake
  ${PROJECT_BINARY_DIR}/sparsityConfigVersion.cmake
  DESTINATION ${SPARSITY_CMAKE_DIR})
