#pragma once
// A compute backend: runs a model's graph over its own KV cache (DESIGN.md, "Compute backends
// behind one small interface").
//
// The backend owns everything a forward pass touches — the weights as it reads them (the CPU
// backend reads the memory mapping in place), the KV cache for `context` positions, the
// activations — so a GPU backend can keep all of it in device memory and replay a decode step as
// one captured graph. The caller (the Engine) only appends tokens, asks for logits, and cuts the
// cache back to a prefix it wants to reuse.
//
// The per-architecture differences (Qwen2's q/k/v biases, Qwen3's per-head q/k RMSNorm, RoPE
// pairing and scaling) come from ModelConfig and live in one place per backend: the layer step.
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "engine/model.h"
#include "engine/sampler.h"

namespace ponder {

struct BackendOptions {
  std::uint32_t context = 4096;  // positions the KV cache holds
  KvType kv = KvType::f16;       // F16 by default; F32 for reference tests; Q8_0 halves it again
  unsigned threads = 0;          // 0 = every core
};

/// A copy of the first positions of a backend's KV cache, to be put back later (the Engine's
/// prefix cache). Opaque: only the backend that made it can restore it.
class KvSnapshot {
 public:
  virtual ~KvSnapshot() = default;
  /// Positions held.
  virtual std::uint32_t positions() const = 0;
  /// Memory it takes.
  virtual std::size_t bytes() const = 0;
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string_view name() const = 0;
  /// Positions the KV cache can hold.
  virtual std::uint32_t context() const = 0;
  /// Positions held now: the next token goes at this position.
  virtual std::uint32_t cached() const = 0;
  /// Runs `n` tokens at positions cached() .. cached() + n - 1 (their K and V join the cache) and,
  /// when `logits` is not null, writes the logits of the last `n_logits` of them (n_logits ≤ n;
  /// row-major, n_logits × n_vocab). False with `error` set (nothing changed) for a token out of
  /// range or a context overflow.
  virtual bool eval(const std::int32_t* tokens, std::size_t n, float* logits, std::size_t n_logits,
                    std::string* error) = 0;
  /// Keeps positions [0, n) and forgets the rest (n ≥ cached() does nothing).
  virtual void truncate(std::uint32_t n) = 0;
  /// A copy of positions [0, n) of the cache (n ≤ cached()); null with `error` when memory for
  /// it cannot be had.
  virtual std::unique_ptr<KvSnapshot> save(std::uint32_t n, std::string* error) const = 0;
  /// Replaces the cache by the first n positions of `snapshot` (n ≤ its positions(), ≤ context()).
  virtual void restore(const KvSnapshot& snapshot, std::uint32_t n) = 0;
  /// A flag that eval() polls between layers: once it reads true, eval stops, keeps the prefill
  /// chunks already finished (cached() says how far it got), and returns false with the error
  /// "cancelled". Null (the default) for none. The flag must outlive its use.
  virtual void set_abort_flag(const std::atomic<bool>* flag) = 0;

  /// True when the backend can choose the next token itself (eval_sample), so that only its id
  /// leaves the device (the CUDA backend). The CPU backend cannot: the Engine's Sampler runs there.
  virtual bool can_sample() const { return false; }
  /// Runs `token` at position cached() like eval(&token, 1, ...), then draws the next token from
  /// its logits with `params`' temperature, top-k, top-p and min-p (no penalties: the caller uses
  /// eval() and its Sampler for those), using draw number `draw` of `seed`; ids ≥ n_valid
  /// (padding rows) are never chosen. False with `error` as eval().
  virtual bool eval_sample(std::int32_t token, const SamplingParams& params, std::uint64_t seed, std::uint64_t draw,
                           std::uint32_t n_valid, std::int32_t* next, std::string* error) {
    (void)token, (void)params, (void)seed, (void)draw, (void)n_valid, (void)next;
    *error = std::string(name()) + " backend cannot sample by itself";
    return false;
  }
};

/// The checks every backend's eval() makes before touching anything: at least one token,
/// n_logits ≤ n, room in the context, every token inside the vocabulary. False with `error`.
bool check_eval(const ModelConfig& config, std::uint32_t cached, std::uint32_t context, const std::int32_t* tokens,
                std::size_t n, std::size_t n_logits, std::string* error);
/// Every matrix (2-D weight) of `model` has a type `supports` accepts; else false with an error
/// naming the tensor, the type and `backend` ("the CPU backend").
bool check_weight_types(const Model& model, bool (*supports)(GgmlType), std::string_view backend, std::string* error);
/// The element type of a KV cache of type `kv`.
GgmlType kv_ggml_type(KvType kv);

/// The CPU backend: weights read in place from the model's mapping (the Model must outlive it),
/// matrix products by engine/cpu/matmul, attention with an online softmax over the cache (memory
/// O(context), never a T×T matrix). Null with `error` when the KV cache type is not supported or
/// memory for the cache cannot be had.
std::unique_ptr<Backend> make_cpu_backend(const Model& model, const BackendOptions& options,
                                          std::string* error);

}  // namespace ponder
