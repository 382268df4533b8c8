// What every backend checks and maps the same way (engine/backend.h).
#include "engine/backend.h"

namespace ponder {

bool check_eval(const ModelConfig& config, std::uint32_t cached, std::uint32_t context, const std::int32_t* tokens,
                std::size_t n, std::size_t n_logits, std::string* error) {
  if (n == 0) {
    *error = "no tokens to evaluate";
    return false;
  }
  if (n_logits > n) {
    *error = "asked for the logits of " + std::to_string(n_logits) + " of " + std::to_string(n) + " tokens";
    return false;
  }
  if (std::size_t{cached} + n > context) {
    *error = "context overflow: " + std::to_string(cached) + " cached + " + std::to_string(n) +
             " new tokens > the context of " + std::to_string(context);
    return false;
  }
  for (std::size_t i = 0; i < n; ++i)
    if (tokens[i] < 0 || static_cast<std::uint32_t>(tokens[i]) >= config.n_vocab) {
      *error = "token " + std::to_string(tokens[i]) + " at " + std::to_string(i) + " is outside the vocabulary (" +
               std::to_string(config.n_vocab) + " rows)";
      return false;
    }
  return true;
}

bool check_weight_types(const Model& model, bool (*supports)(GgmlType), std::string_view backend, std::string* error) {
  for (const auto& [name, w] : model.named_weights())
    if (w->n_dims >= 2 && !supports(w->type)) {
      *error = "tensor '" + name + "': " + std::string(backend) + " cannot multiply " +
               std::string(ggml_type_info(static_cast<std::uint32_t>(w->type))->name);
      return false;
    }
  return true;
}

GgmlType kv_ggml_type(KvType kv) {
  switch (kv) {
    case KvType::f32: return GgmlType::f32;
    case KvType::f16: return GgmlType::f16;
    case KvType::q8_0: return GgmlType::q8_0;
  }
  return GgmlType::f16;
}

}  // namespace ponder
