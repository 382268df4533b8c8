#pragma once
// Run-time weight type → compile-time template argument, for the launchers of gemv.cu,
// dequantize.cu and embedding.cu (the types kernels/blocks.h decodes).
#include <string>
#include <type_traits>

#include "engine/quant.h"

namespace ponder::cuda {

template <GgmlType kType>
using TypeTag = std::integral_constant<GgmlType, kType>;

/// Calls f(TypeTag<type>{}) and returns its result; false (f not called) for a type the kernels
/// do not read.
template <class F>
bool dispatch_type(GgmlType type, F&& f) {
  switch (type) {
    case GgmlType::f32: return f(TypeTag<GgmlType::f32>{});
    case GgmlType::f16: return f(TypeTag<GgmlType::f16>{});
    case GgmlType::bf16: return f(TypeTag<GgmlType::bf16>{});
    case GgmlType::q8_0: return f(TypeTag<GgmlType::q8_0>{});
    case GgmlType::q4_0: return f(TypeTag<GgmlType::q4_0>{});
    case GgmlType::q4_k: return f(TypeTag<GgmlType::q4_k>{});
    case GgmlType::q5_k: return f(TypeTag<GgmlType::q5_k>{});
    case GgmlType::q6_k: return f(TypeTag<GgmlType::q6_k>{});
    default: return false;
  }
}

/// "<what>: <reason>" in `error`; returns false.
inline bool launch_refused(const char* what, const std::string& reason, std::string* error) {
  if (error) *error = std::string(what) + ": " + reason;
  return false;
}

}  // namespace ponder::cuda
