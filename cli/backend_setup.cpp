// --backend: the compute backend and its memory check (cli/backend_setup.h).
#include "cli/backend_setup.h"

#include "engine/log.h"

namespace ponder::cli {

std::unique_ptr<Backend> make_checked_backend(BackendChoice choice, const Model& model, const BackendOptions& options,
                                              const std::string& spec, std::string* error, std::string* note) {
  auto backend = make_backend(choice, model, options, error, note);
  if (!backend && !spec.empty()) *error = spec + ": " + *error;
  return backend;
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
