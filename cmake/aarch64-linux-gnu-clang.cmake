# The same cross build with clang against the GCC cross sysroot: the nearest stand-in here for the
# clang that Termux users build the sdist with.
#   cmake -S . -B build/arm64-clang -DCMAKE_TOOLCHAIN_FILE=cmake/aarch64-linux-gnu-clang.cmake -DPYRNN_PYTHON=OFF -DPYRNN_TESTS=ON
set(CMAKE_C_COMPILER clang)
set(CMAKE_CXX_COMPILER clang++)
set(CMAKE_C_COMPILER_TARGET aarch64-linux-gnu)
set(CMAKE_CXX_COMPILER_TARGET aarch64-linux-gnu)
include(${CMAKE_CURRENT_LIST_DIR}/aarch64-linux-gnu.cmake)
