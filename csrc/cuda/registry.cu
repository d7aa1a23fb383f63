// registry.cu — the CUDA backend's entry points (backend.h) and its list of architectures: the same
// as the CPU's (models/registry.cpp). An architecture pyrnn does not know gets the CPU's error; one
// the CPU runs and this list lacks (a new one, not yet ported) gets an error naming it.
#include <cuda_runtime.h>

#include <algorithm>

#include "../models/model.h"
#include "backend.h"
#include "runtime.h"

namespace pyrnn::cuda {

std::unique_ptr<device_model> load_rwkv4_device(std::shared_ptr<const gguf_file> f, int device);
std::unique_ptr<device_model> load_rwkv5_device(std::shared_ptr<const gguf_file> f, int device);
std::unique_ptr<device_model> load_rwkv6_device(std::shared_ptr<const gguf_file> f, int device);
std::unique_ptr<device_model> load_rwkv7_device(std::shared_ptr<const gguf_file> f, int device);
std::unique_ptr<device_model> load_mamba_device(std::shared_ptr<const gguf_file> f, int device);
std::unique_ptr<device_model> load_mamba2_device(std::shared_ptr<const gguf_file> f, int device);
std::unique_ptr<device_model> load_retnet_device(std::shared_ptr<const gguf_file> f, int device);

namespace {

struct arch_entry {
    const char* name;
    std::unique_ptr<device_model> (*load)(std::shared_ptr<const gguf_file>, int);
};

const arch_entry k_archs[] = {
    {"rwkv4", load_rwkv4_device},
    {"rwkv5", load_rwkv5_device},
    {"rwkv6", load_rwkv6_device},
    {"rwkv7", load_rwkv7_device},
    {"mamba", load_mamba_device},
    {"mamba2", load_mamba2_device},
    {"retnet", load_retnet_device},
};

} // namespace

bool built() { return true; }

int device_count() {
    int n = 0;
    const cudaError_t e = cudaGetDeviceCount(&n);
    if (e == cudaErrorNoDevice || e == cudaErrorInsufficientDriver) {
        cudaGetLastError(); // not sticky: clear it
        return 0;
    }
    check(e, "cudaGetDeviceCount");
    return n;
}

// The architecture is checked first, so that its error needs no device (and is tested without one).
std::unique_ptr<device_model> load_model(std::shared_ptr<const gguf_file> file, int device) {
    const std::string arch = file->get_string("general.architecture");
    const arch_entry* entry = nullptr;
    std::string names;
    for (const arch_entry& a : k_archs) {
        if (arch == a.name) entry = &a;
        names += std::string(names.empty() ? "" : ", ") + a.name;
    }
    if (!entry) {
        const std::vector<std::string> cpu = model_architectures();
        if (std::find(cpu.begin(), cpu.end(), arch) == cpu.end()) { // as models/registry.cpp says it
            std::string known;
            for (const std::string& c : cpu) known += (known.empty() ? "" : ", ") + c;
            throw format_error("metadata \"general.architecture\": expected one of " + known + ", found \"" + arch +
                               "\"");
        }
        throw cuda_error("device='cuda' is not implemented for " + arch + " yet (the CUDA backend runs " + names +
                         "; use device='cpu')");
    }
    const int n = device_count();
    if (n == 0) {
        int runtime = 0, driver = 0;
        cudaRuntimeGetVersion(&runtime);
        cudaDriverGetVersion(&driver);
        throw cuda_error("device='cuda': no CUDA device found (cudaGetDeviceCount: 0; CUDA runtime " +
                         std::to_string(runtime) + ", driver " + (driver ? std::to_string(driver) : "none") + ")");
    }
    if (device < 0 || device >= n) {
        throw cuda_error("device index: expected 0.." + std::to_string(n - 1) + ", found " + std::to_string(device));
    }
    return entry->load(std::move(file), device);
}

std::vector<std::string> architectures() {
    std::vector<std::string> out;
    for (const arch_entry& a : k_archs) out.push_back(a.name);
    return out;
}

} // namespace pyrnn::cuda
