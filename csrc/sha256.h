// sha256.h — SHA-256 (FIPS 180-4), for model fingerprints that must equal Python's hashlib.sha256.
//
//   pyrnn::sha256 h;
//   h.update(bytes, n);                       // any number of times
//   std::string hex = h.hex_digest();         // 64 lower-case hex digits; ends the hash
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace pyrnn {

class sha256 {
  public:
    sha256();
    void update(const void* data, size_t n);
    std::string hex_digest(); // finalizes: call once

  private:
    void block(const uint8_t* p); // one 64-byte block
    uint32_t h_[8];
    uint8_t buf_[64];
    size_t buf_len_ = 0;
    uint64_t total_ = 0; // bytes
};

} // namespace pyrnn
