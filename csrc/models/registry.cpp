// registry.cpp — the one list of architectures. A new one: its models/<arch>.cpp and one line here.
#include <functional>

#include "model.h"

namespace pyrnn {

using model_loader = std::unique_ptr<model> (*)(std::shared_ptr<const gguf_file>);

std::unique_ptr<model> load_rwkv4(std::shared_ptr<const gguf_file> f);
std::unique_ptr<model> load_rwkv5(std::shared_ptr<const gguf_file> f);
std::unique_ptr<model> load_rwkv6(std::shared_ptr<const gguf_file> f);
std::unique_ptr<model> load_rwkv7(std::shared_ptr<const gguf_file> f);
std::unique_ptr<model> load_mamba(std::shared_ptr<const gguf_file> f);
std::unique_ptr<model> load_mamba2(std::shared_ptr<const gguf_file> f);
std::unique_ptr<model> load_retnet(std::shared_ptr<const gguf_file> f);

namespace {

struct arch_entry {
    const char* name; // general.architecture
    model_loader load;
};

const arch_entry k_archs[] = {
    {"rwkv4", load_rwkv4},
    {"rwkv5", load_rwkv5},
    {"rwkv6", load_rwkv6},
    {"rwkv7", load_rwkv7},
    {"mamba", load_mamba},
    {"mamba2", load_mamba2},
    {"retnet", load_retnet},
};

} // namespace

std::unique_ptr<model> load_model(std::shared_ptr<const gguf_file> file) {
    const std::string arch = file->get_string("general.architecture");
    for (const arch_entry& a : k_archs) {
        if (arch == a.name) return a.load(std::move(file));
    }
    std::string names;
    for (const arch_entry& a : k_archs) names += std::string(names.empty() ? "" : ", ") + a.name;
    throw format_error("metadata \"general.architecture\": expected one of " + names + ", found \"" + arch + "\"");
}

std::vector<std::string> model_architectures() {
    std::vector<std::string> out;
    for (const arch_entry& a : k_archs) out.push_back(a.name);
    return out;
}

} // namespace pyrnn
