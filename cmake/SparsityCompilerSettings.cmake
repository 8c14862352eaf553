# Compiler launcher and warnings shared by every target of the project.

if(SPARSITY_USE_CCACHE)
  find_program(SPARSITY_CCACHE ccache)
  if(SPARSITY_CCACHE)
    # Precompiled headers are only cached with these sloppiness settings.
    set(CMAKE_CXX_COMPILER_LAUNCHER
      ${CMAKE_COMMAND} -E env
      "CCACHE_SLOPPINESS=pch_defines,time_macros,include_file_mtime,include_file_ctime"
      "CCACHE_BASEDIR=${CMAKE_SOURCE_DIR}"
      ${SPARSITY_CCACHE})
    message(STATUS "sparsity: compiling through ${SPARSITY_CCACHE}")
  endif()
endif()

# Sanitizers for every target of the project (LibTorch itself is not
# instrumented: ASan sees our code's accesses, and UBSan our arithmetic and
# casts). The first undefined behaviour stops the test that hit it.
if(SPARSITY_SANITIZE)
  if(NOT CMAKE_CXX_COMPILER_ID MATCHES "GNU|Clang")
    message(FATAL_ERROR "SPARSITY_SANITIZE needs GCC or Clang")
  endif()
  # No vptr checks: they need the typeinfo of LibTorch's classes, which
  # Debian's libtorch does not export (c10::DynamicType), so nothing links.
  add_compile_options(-fsanitize=address,undefined -fno-sanitize=vptr -fno-sanitize-recover=undefined
                      -fno-omit-frame-pointer)
  add_link_options(-fsanitize=address,undefined -fno-sanitize=vptr)
  message(STATUS "sparsity: building with ASan + UBSan")
endif()

# libFuzzer: coverage instrumentation and the sanitizers for every target; the
# fuzz targets link libFuzzer itself (fuzz/CMakeLists.txt).
if(SPARSITY_FUZZ)
  if(NOT CMAKE_CXX_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "SPARSITY_FUZZ needs Clang (CXX=clang++): libFuzzer is part of it")
  endif()
  add_compile_options(-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize=vptr
                      -fno-sanitize-recover=undefined -fno-omit-frame-pointer)
  add_link_options(-fsanitize=address,undefined -fno-sanitize=vptr)
endif()

# -Wall -Wextra for our own code; third-party headers come in as system headers.
function(sparsity_warnings target)
  if(CMAKE_CXX_COMPILER_ID MATCHES "GNU|Clang")
    target_compile_options(${target} PRIVATE -Wall -Wextra)
  endif()
endfunction()
