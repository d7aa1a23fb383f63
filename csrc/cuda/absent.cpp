// absent.cpp — the CUDA backend of a CPU-only build (-DPYRNN_CUDA=OFF, the default): it reports
// itself absent, and asking for a device says how to get one.
#include "backend.h"

namespace pyrnn::cuda {

bool built() { return false; }

int device_count() { return 0; }

std::unique_ptr<device_model> load_model(std::shared_ptr<const gguf_file>, int) {
    throw cuda_error("device='cuda': this build has no CUDA backend: rebuild with -DPYRNN_CUDA=ON "
                     "(e.g. pip install . -Ccmake.define.PYRNN_CUDA=ON, or tools/build_cuda.sh); see docs/CUDA.md");
}

std::vector<std::string> architectures() { return {}; }

} // namespace pyrnn::cuda
