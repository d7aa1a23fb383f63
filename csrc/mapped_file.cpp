#include "mapped_file.h"

#include <cerrno>
#include <cstring>

#ifdef _WIN32
#define WIN32_LEAN_AND_MEAN
#include <windows.h>
#else
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#endif

namespace pyrnn {

#ifdef _WIN32

mapped_file::mapped_file(const std::string& path) {
    HANDLE f = CreateFileA(path.c_str(), GENERIC_READ, FILE_SHARE_READ, nullptr, OPEN_EXISTING,
                           FILE_ATTRIBUTE_NORMAL, nullptr);
    if (f == INVALID_HANDLE_VALUE) {
        const DWORD e = GetLastError();
        const int code = (e == ERROR_FILE_NOT_FOUND || e == ERROR_PATH_NOT_FOUND) ? ENOENT : EIO;
        throw file_error("cannot open '" + path + "' (Windows error " + std::to_string(e) + ")", code);
    }
    LARGE_INTEGER sz;
    if (!GetFileSizeEx(f, &sz)) {
        CloseHandle(f);
        throw file_error("cannot read the size of '" + path + "'", EIO);
    }
    file_ = f;
    size_ = size_t(sz.QuadPart);
    if (size_ == 0) return; // nothing to map; the parser reports the empty file
    HANDLE m = CreateFileMappingA(f, nullptr, PAGE_READONLY, 0, 0, nullptr);
    if (m == nullptr) {
        CloseHandle(f);
        throw file_error("cannot map '" + path + "'", EIO);
    }
    mapping_ = m;
    data_ = static_cast<const uint8_t*>(MapViewOfFile(m, FILE_MAP_READ, 0, 0, 0));
    if (data_ == nullptr) {
        CloseHandle(m);
        CloseHandle(f);
        throw file_error("cannot map '" + path + "'", EIO);
    }
}

mapped_file::~mapped_file() {
    if (data_) UnmapViewOfFile(data_);
    if (mapping_) CloseHandle(mapping_);
    if (file_) CloseHandle(file_);
}

void mapped_file::release(const void*, size_t) const {} // (Windows trims working sets by itself)

#else

mapped_file::mapped_file(const std::string& path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        const int e = errno;
        throw file_error("cannot open '" + path + "': " + std::strerror(e), e);
    }
    struct stat st;
    if (::fstat(fd, &st) != 0) {
        const int e = errno;
        ::close(fd);
        throw file_error("cannot stat '" + path + "': " + std::strerror(e), e);
    }
    if (!S_ISREG(st.st_mode)) {
        ::close(fd);
        throw file_error("'" + path + "' is not a regular file", S_ISDIR(st.st_mode) ? EISDIR : EINVAL);
    }
    size_ = size_t(st.st_size);
    if (size_ > 0) {
        void* p = ::mmap(nullptr, size_, PROT_READ, MAP_SHARED, fd, 0);
        if (p == MAP_FAILED) {
            const int e = errno;
            ::close(fd);
            throw file_error("cannot map '" + path + "': " + std::strerror(e), e);
        }
        data_ = static_cast<const uint8_t*>(p);
    }
    ::close(fd); // the mapping keeps the file alive
}

mapped_file::~mapped_file() {
    if (data_) ::munmap(const_cast<uint8_t*>(data_), size_);
}

void mapped_file::release(const void* p, size_t n) const {
    const auto page = uintptr_t(::sysconf(_SC_PAGESIZE));
    const uintptr_t lo = (uintptr_t(p) + page - 1) / page * page, hi = (uintptr_t(p) + n) / page * page;
    if (data_ == nullptr || lo >= hi || lo < uintptr_t(data_) || hi > uintptr_t(data_) + size_) return;
    ::madvise(reinterpret_cast<void*>(lo), hi - lo, MADV_DONTNEED); // advice only: a failure changes nothing
}

#endif

} // namespace pyrnn
