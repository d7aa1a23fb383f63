// mapped_file.h — a read-only memory map of a whole file (POSIX mmap / Win32 file mapping).
//
//   mapped_file f("model.gguf");        // throws file_error (names the path and the OS reason)
//   const uint8_t* p = f.data(); size_t n = f.size();
//
// Pages are shared by every process that maps the same file, so weights cost RAM once (but for
// the matrices that the CPU kernels repack at load, which each process holds itself: loader.h).
#pragma once

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>

namespace pyrnn {

// An I/O failure (missing file, permission, mmap failure). `code` is the errno value (0 if none).
struct file_error : std::runtime_error {
    int code;
    file_error(const std::string& msg, int code_) : std::runtime_error(msg), code(code_) {}
};

class mapped_file {
  public:
    explicit mapped_file(const std::string& path);
    ~mapped_file();
    mapped_file(const mapped_file&) = delete;
    mapped_file& operator=(const mapped_file&) = delete;

    const uint8_t* data() const { return data_; }
    size_t size() const { return size_; }

    // Tells the OS that this process will not read the whole pages inside [p, p + n) soon (their
    // bytes are kept elsewhere, e.g. repacked): they leave its resident set, stay in the page cache,
    // and a later read maps them back from the file. The bytes never change. A no-op on Windows.
    void release(const void* p, size_t n) const;

  private:
    const uint8_t* data_ = nullptr;
    size_t size_ = 0;
#ifdef _WIN32
    void* file_ = nullptr;
    void* mapping_ = nullptr;
#endif
};

} // namespace pyrnn
