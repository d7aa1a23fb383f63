# reliability.cmake — sanitizer and fuzzing builds (docs/RELIABILITY.md); included by CMakeLists.txt
# once pyrnn_core exists: it only adds options to it (PUBLIC ones reach _core when that links it).
#
#   cmake -S . -B build/asan -DPYRNN_SANITIZE=ON              # GCC or clang: ASan + UBSan everywhere
#   cmake -S . -B build/fuzz -DPYRNN_FUZZ=ON -DPYRNN_PYTHON=OFF -DCMAKE_CXX_COMPILER=clang++
option(PYRNN_SANITIZE "Build with -fsanitize=address,undefined (tests: tools/ci_reliability.sh)" OFF)
option(PYRNN_FUZZ "Build the libFuzzer target fuzz_gguf (clang only)" OFF)

set(_pyrnn_san -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer)

if(PYRNN_SANITIZE)
  # PUBLIC: the bindings (and anything else linking the core) get the same instrumentation.
  target_compile_options(pyrnn_core PUBLIC ${_pyrnn_san} -g)
  target_link_options(pyrnn_core PUBLIC ${_pyrnn_san})
endif()

if(PYRNN_FUZZ)
  if(NOT CMAKE_CXX_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "PYRNN_FUZZ: expected clang++ (libFuzzer), found ${CMAKE_CXX_COMPILER_ID}")
  endif()
  target_compile_options(pyrnn_core PRIVATE -fsanitize=fuzzer-no-link ${_pyrnn_san} -g)
  add_executable(fuzz_gguf fuzz/fuzz_gguf.cpp)
  target_compile_options(fuzz_gguf PRIVATE -fsanitize=fuzzer-no-link ${_pyrnn_san} -g)
  target_link_options(fuzz_gguf PRIVATE -fsanitize=fuzzer ${_pyrnn_san})
  target_link_libraries(fuzz_gguf PRIVATE pyrnn_core)
endif()
