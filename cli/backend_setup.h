#pragma once
// Which compute backend a command runs on (--backend cpu|cuda|auto, the LSP's "backend" setting),
// with the memory check that goes with it: the host's memory for the CPU backend (weights + KV
// cache + workspace, engine/model.h), the GPU's for the CUDA backend (its own plan).
#include <functional>
#include <memory>
#include <string>

#include "engine/backend.h"
#include "engine/model.h"
#include "kernels/cuda.h"

namespace ponder::cli {

/// kernels/cuda.h's make_backend (the choice and its memory check), with `spec` (the model's name)
/// at the start of its error messages unless empty.
std::unique_ptr<Backend> make_checked_backend(BackendChoice choice, const Model& model, const BackendOptions& options,
                                              const std::string& spec, std::string* error, std::string* note);

/// The same as EngineOptions::make_backend (a note is logged at info level).
std::function<std::unique_ptr<Backend>(const Model&, const BackendOptions&, std::string*)> backend_maker(
    BackendChoice choice, std::string spec);

/// "cpu", "cuda" or "auto", else false with `error` naming the value.
bool parse_backend_option(const std::string& value, BackendChoice* choice, std::string* error);

}  // namespace ponder::cli
