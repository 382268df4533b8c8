// --backend: the compute backend and its memory check (cli/backend_setup.h).
#include "cli/backend_setup.h"

#include "engine/log.h"

namespace ponder::cli {

std::unique_ptr<Backend> make_checked_backend(BackendChoice choice, const Model& model, const BackendOptions& options,
                                              const std::string& spec, std::string* error, std::string* note) {
  if (note) note->clear();
  if (choice != BackendChoice::cpu) {
    std::string why;
    if (choice == BackendChoice::cuda || cuda::available(&why)) {
      if (auto b = make_cuda_backend(model, options, &why)) return b;
      if (choice == BackendChoice::cuda) {
        *error = spec.empty() ? why : spec + ": " + why;
        return nullptr;
      }
      if (note) *note = "the GPU is not used: " + why;
    }
  }
  const MemoryEstimate need = estimate_memory(model.config(), model.weight_bytes(), options.context, options.kv);
  if (!check_memory(model.config(), need, available_memory(), error)) {
    if (!spec.empty()) *error = spec + ": " + *error;
    return nullptr;
  }
  return make_cpu_backend(model, options, error);
}

std::function<std::unique_ptr<Backend>(const Model&, const BackendOptions&, std::string*)> backend_maker(
    BackendChoice choice, std::string spec) {
  return [choice, spec = std::move(spec)](const Model& model, const BackendOptions& options, std::string* error) {
    std::string note;
    auto backend = make_checked_backend(choice, model, options, spec, error, &note);
    if (!note.empty()) log::info(note);
    if (backend) log::info("backend: ", backend->name());
    return backend;
  };
}

bool parse_backend_option(const std::string& value, BackendChoice* choice, std::string* error) {
  if (parse_backend_choice(value, choice)) return true;
  *error = "--backend " + value + ": expected cpu, cuda or auto";
  return false;
}

}  // namespace ponder::cli
