// Which backend runs a model: --backend cpu|cuda|auto.
#include "kernels/cuda.h"

namespace ponder {

bool parse_backend_choice(std::string_view name, BackendChoice* choice) {
  if (name == "cpu") *choice = BackendChoice::cpu;
  else if (name == "cuda") *choice = BackendChoice::cuda;
  else if (name == "auto") *choice = BackendChoice::automatic;
  else return false;
  return true;
}

std::unique_ptr<Backend> make_backend(BackendChoice choice, const Model& model, const BackendOptions& options,
                                      std::string* error, std::string* note) {
  if (note) note->clear();
  if (choice == BackendChoice::cuda) return make_cuda_backend(model, options, error);
  std::string why;
  if (choice == BackendChoice::automatic && cuda::available(&why)) {
    if (auto b = make_cuda_backend(model, options, &why)) return b;
    if (note) *note = "the GPU is not used: " + why;
  }
  // The CPU backend's memory is the host's: the weights (mapped, paged in as they are read), the
  // KV cache and the workspace must fit in what this process may use.
  const MemoryEstimate need = estimate_memory(model.config(), model.weight_bytes(), options.context, options.kv);
  if (!check_memory(model.config(), need, available_memory(), error)) return nullptr;
  return make_cpu_backend(model, options, error);
}

}  // namespace ponder
