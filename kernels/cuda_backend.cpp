// The CUDA backend: the model graph of Qwen2, Qwen3 and Llama with everything in device memory.
//
// Memory (planned before anything is allocated, kernels/plan.h): one buffer for the weights (the
// matrices in their stored type, uploaded once and streamed from the mapping through two pinned
// staging buffers; norms and biases widened to F32), one each for K and V of every layer, and one
// workspace for a prefill chunk's activations, the scratch of the cuBLAS products, the logits and
// the split-K partials of decode attention.
//
// Prefill: chunks of up to plan.chunk tokens; the products are cuBLAS GEMMs (F16/BF16 weights as
// they are, quantized weights dequantized to F16 into the scratch, F32 weights in F32), attention
// is kernels/attention.cu's flash kernel. The abort flag is read after each layer.
// Decode: one token through the same layer step with GEMV products (the weights read once, in
// their stored type) and split-K attention, captured once as a CUDA graph and replayed per token.
// The graph reads the token, its position and the sampling settings from a small device struct
// that its first node copies from pinned host memory, so one graph serves every step; it ends
// either with the logits copied to the host or with the sampler and the chosen id copied back.
//
// The layer step (per architecture, in one place, as the CPU backend's run_chunk):
//   xn = rms_norm(x (+ previous block's output)) · attn_norm
//   q, k, v = xn · Wq/Wk/Wv;  bias, per-head q/k norm, RoPE, K/V into the cache (qkv_rope_store)
//   att = attention(q, cache);  out = att · Wo
//   xn = rms_norm(x += out) · ffn_norm;  g = silu(xn · Wgate) ⊙ (xn · Wup);  out = g · Wdown
// and after the last layer xn = rms_norm(x += out) · output_norm, logits = xn · Woutput.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "engine/backend.h"
#include "engine/log.h"
#include "engine/rope.h"
#include "kernels/blas.h"
#include "kernels/check.cuh"
#include "kernels/cuda.h"
#include "kernels/ops.h"
#include "kernels/plan.h"

namespace ponder {
namespace {

using cuda::check;

constexpr std::size_t kAlign = 256;
constexpr std::size_t kStaging = std::size_t{32} << 20;  // bytes per pinned staging buffer

std::size_t aligned(std::size_t b) { return (b + kAlign - 1) / kAlign * kAlign; }

// A device allocation handed out in aligned pieces.
class Arena {
 public:
  ~Arena() { cudaFree(base_); }
  bool reserve(std::size_t bytes, const char* what, std::string* error) {
    size_ = bytes;
    return check(cudaMalloc(&base_, std::max<std::size_t>(bytes, 1)), what, error);
  }
  void* take(std::size_t bytes) {
    if (used_ + aligned(bytes) > size_) return nullptr;  // the plan is wrong: caught at init
    void* p = static_cast<unsigned char*>(base_) + used_;
    used_ += aligned(bytes);
    return p;
  }
  template <class T>
  T* take_n(std::size_t n) {
    return static_cast<T*>(take(n * sizeof(T)));
  }

 private:
  void* base_ = nullptr;
  std::size_t size_ = 0, used_ = 0;
};

struct DevWeight {
  const void* data = nullptr;
  GgmlType type = GgmlType::f32;
  std::size_t N = 0, K = 0;  // rows, elements per row
};

struct DevLayer {
  DevWeight wq, wk, wv, wo, gate, up, down;
  const float *attn_norm = nullptr, *ffn_norm = nullptr, *bq = nullptr, *bk = nullptr, *bv = nullptr,
              *q_norm = nullptr, *k_norm = nullptr;
};

// What the decode graph reads each step (copied by its first node from pinned host memory).
struct StepInput {
  std::int32_t token = 0;
  std::int32_t pos = 0;
  cuda::SampleParams sampling;
};

struct Snapshot final : KvSnapshot {
  std::uint32_t n = 0;
  std::size_t size = 0;
  void* data = nullptr;  // device memory: per layer, K rows [0, n) then V rows [0, n)
  ~Snapshot() override { cudaFree(data); }
  std::uint32_t positions() const override { return n; }
  std::size_t bytes() const override { return size; }
};

class CudaBackend final : public Backend {
 public:
  CudaBackend(const Model& model, const BackendOptions& options, const cuda::CudaBackendOptions& cuda_options)
      : model_(model), c_(model.config()), options_(options), cuda_options_(cuda_options) {}

  ~CudaBackend() override {
    if (stream_) cudaStreamSynchronize(stream_);
    for (cudaGraphExec_t g : {graph_logits_, graph_sample_})
      if (g) cudaGraphExecDestroy(g);
    blas_.reset();
    cudaFreeHost(host_);
    for (int i = 0; i < 2; ++i) {
      cudaFreeHost(staging_[i]);
      if (staged_[i]) cudaEventDestroy(staged_[i]);
      if (layer_done_[i]) cudaEventDestroy(layer_done_[i]);
    }
    if (stream_) cudaStreamDestroy(stream_);
  }

  bool init(std::string* error) {
    if (!cuda::available(error)) return false;
    if (options_.context == 0) {
      *error = "a context of 0 positions";
      return false;
    }
    if (c_.head_dim % 32 || c_.head_dim > 256 || c_.head_dim == 0) {
      *error = "the CUDA backend needs heads of a multiple of 32 elements, at most 256 (this model's are " +
               std::to_string(c_.head_dim) + ")";
      return false;
    }
    if (!check_weight_types(model_, cuda::supports, "the CUDA backend", error)) return false;
    if (!rope_inverse_frequencies(c_, model_.weights().rope_freqs, &inv_freq_, &rope_scale_, error)) return false;
    if (!check(cudaSetDevice(0), "cudaSetDevice", error) ||
        !check(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "cudaStreamCreate", error))
      return false;
    std::size_t free_bytes = 0, total_bytes = 0;
    if (!check(cudaMemGetInfo(&free_bytes, &total_bytes), "cudaMemGetInfo", error)) return false;
    if (!cuda::choose_plan(c_, model_.weights(), options_.context, options_.kv, free_bytes, &plan_, error))
      return false;
    if (cuda_options_.max_chunk) plan_.chunk = std::min(plan_.chunk, cuda_options_.max_chunk);
    q_dim_ = std::size_t{c_.n_head} * c_.head_dim;
    kv_dim_ = std::size_t{c_.n_head_kv} * c_.head_dim;
    kv_row_ = row_bytes(kv_type(), kv_dim_);
    return upload_weights(error) && allocate(error) && open_blas();
  }

  std::string_view name() const override { return "cuda"; }
  std::uint32_t context() const override { return options_.context; }
  std::uint32_t cached() const override { return cached_; }
  void truncate(std::uint32_t n) override { cached_ = std::min(cached_, n); }
  void set_abort_flag(const std::atomic<bool>* flag) override { abort_ = flag; }

  std::unique_ptr<KvSnapshot> save(std::uint32_t n, std::string* error) const override {
    n = std::min(n, cached_);
    auto snap = std::make_unique<Snapshot>();
    snap->n = n;
    const std::size_t span = std::size_t{n} * kv_row_;
    snap->size = 2 * c_.n_layer * span;
    if (!check(cudaMalloc(&snap->data, std::max<std::size_t>(snap->size, 1)), "GPU memory for a KV snapshot", error))
      return nullptr;
    auto* dst = static_cast<unsigned char*>(snap->data);
    for (std::uint32_t l = 0; l < c_.n_layer; ++l) {
      if (!check(cudaMemcpyAsync(dst, k_layer(l), span, cudaMemcpyDeviceToDevice, stream_), "copy K", error) ||
          !check(cudaMemcpyAsync(dst + span, v_layer(l), span, cudaMemcpyDeviceToDevice, stream_), "copy V", error))
        return nullptr;
      dst += 2 * span;
    }
    if (!check(cudaStreamSynchronize(stream_), "KV snapshot", error)) return nullptr;
    return snap;
  }

  void restore(const KvSnapshot& snapshot, std::uint32_t n) override {
    const auto& snap = static_cast<const Snapshot&>(snapshot);
    n = std::min({n, snap.n, options_.context});
    const std::size_t stride = std::size_t{snap.n} * kv_row_, span = std::size_t{n} * kv_row_;
    const auto* src = static_cast<const unsigned char*>(snap.data);
    std::string error;
    bool ok = true;
    for (std::uint32_t l = 0; l < c_.n_layer && ok; ++l) {
      ok = check(cudaMemcpyAsync(k_layer(l), src, span, cudaMemcpyDeviceToDevice, stream_), "restore K", &error) &&
           check(cudaMemcpyAsync(v_layer(l), src + stride, span, cudaMemcpyDeviceToDevice, stream_), "restore V",
                 &error);
      src += 2 * stride;
    }
    ok = ok && check(cudaStreamSynchronize(stream_), "KV restore", &error);
    if (!ok) {  // the interface has no error path here: keep nothing rather than a torn cache
      log::error("CUDA backend: ", error);
      cached_ = 0;
      return;
    }
    cached_ = n;
  }

  bool eval(const std::int32_t* tokens, std::size_t n, float* logits, std::size_t n_logits,
            std::string* error) override {
    if (!validate(tokens, n, n_logits, error)) return false;
    if (n == 1 && (n_logits == 1 || !logits)) {
      if (!decode(tokens[0], /*in=*/nullptr, error)) return false;  // logits, no sampling
      if (logits) std::memcpy(logits, host_logits_, std::size_t{c_.n_vocab} * sizeof(float));
      return true;
    }
    for (std::size_t begin = 0; begin < n; begin += plan_.chunk) {
      const std::size_t T = std::min<std::size_t>(plan_.chunk, n - begin);
      bool cancelled = false;
      if (!prefill_chunk(tokens + begin, T, &cancelled, error)) {
        cudaStreamSynchronize(stream_);
        return false;
      }
      if (cancelled) {
        *error = "cancelled";
        return false;
      }
      const std::size_t first_wanted = n - n_logits;
      if (logits && begin + T > first_wanted) {
        const std::size_t from = std::max(begin, first_wanted) - begin;
        if (!chunk_logits(from, T - from, logits + (begin + from - first_wanted) * c_.n_vocab, error)) return false;
      }
      cached_ += static_cast<std::uint32_t>(T);
    }
    return check(cudaStreamSynchronize(stream_), "prefill", error);
  }

  bool can_sample() const override { return true; }

  bool eval_sample(std::int32_t token, const SamplingParams& p, std::uint64_t seed, std::uint64_t draw,
                   std::uint32_t n_valid, std::int32_t* next, std::string* error) override {
    if (!validate(&token, 1, 0, error)) return false;
    StepInput in;
    in.sampling.temperature = p.temperature;
    in.sampling.top_p = p.top_p;
    in.sampling.min_p = p.min_p;
    in.sampling.top_k = p.top_k;
    in.sampling.seed = seed;
    in.sampling.step = draw;
    n_valid_ = std::min<std::uint32_t>(n_valid ? n_valid : c_.n_vocab, c_.n_vocab);
    if (!decode(token, &in, error)) return false;
    *next = *host_next_;
    return true;
  }

 private:
  GgmlType kv_type() const { return kv_ggml_type(options_.kv); }
  // A layer's K (V) rows: position p at + p * kv_row_.
  unsigned char* k_layer(std::uint32_t layer) const {
    return static_cast<unsigned char*>(k_cache_) + std::size_t{layer} * options_.context * kv_row_;
  }
  unsigned char* v_layer(std::uint32_t layer) const {
    return static_cast<unsigned char*>(v_cache_) + std::size_t{layer} * options_.context * kv_row_;
  }

  bool validate(const std::int32_t* tokens, std::size_t n, std::size_t n_logits, std::string* error) const {
    return check_eval(c_, cached_, options_.context, tokens, n, n_logits, error);
  }

  // ---- loading --------------------------------------------------------------------------------

  // Copies `bytes` from the mapping to the device through the pinned staging buffers (two, so
  // that filling one overlaps the transfer of the other), or fills random values instead.
  bool upload(const Weight& w, void* dst, std::string* error) {
    if (cuda_options_.random_weights)
      return cuda::fill_random(dst, w.type, w.elements(), cuda_options_.seed ^ (reinterpret_cast<std::uintptr_t>(dst) * 0x9e3779b97f4a7c15ull),
                               stream_, error);
    const unsigned char* src = w.data;
    auto* out = static_cast<unsigned char*>(dst);
    for (std::size_t done = 0; done < w.bytes;) {
      const std::size_t part = std::min<std::size_t>(kStaging, w.bytes - done);
      const int i = turn_++ & 1;
      if (!check(cudaEventSynchronize(staged_[i]), "staging", error)) return false;
      std::memcpy(staging_[i], src + done, part);
      if (!check(cudaMemcpyAsync(out + done, staging_[i], part, cudaMemcpyHostToDevice, stream_), "upload", error) ||
          !check(cudaEventRecord(staged_[i], stream_), "staging event", error))
        return false;
      done += part;
    }
    return true;
  }

  // A vector widened to F32 on the host and copied (norms, biases: a few KB each).
  const float* upload_vector(const Weight& w, std::string* error) {
    if (!w.present()) return nullptr;
    std::vector<float> v(w.elements());
    if (cuda_options_.random_weights) {  // norms near 1, biases near 0: a file with no data holds zeros
      const bool norm = w.source.find("norm") != std::string_view::npos;
      std::uint64_t h = cuda_options_.seed ^ (0x9e3779b97f4a7c15ull * (++vectors_));
      for (float& x : v) {
        h = h * 6364136223846793005ull + 1442695040888963407ull;
        const float u = static_cast<float>(h >> 40) * 0x1.0p-24f - 0.5f;
        x = norm ? 1.0f + 0.2f * u : 0.04f * u;
      }
    } else {
      dequantize(w.type, w.data, v.data(), v.size(), nullptr);
    }
    float* dst = weights_.take_n<float>(v.size());
    if (!dst) {
      *error = "the CUDA memory plan is short for '" + std::string(w.source) + "'";
      return nullptr;
    }
    if (!check(cudaMemcpy(dst, v.data(), v.size() * 4, cudaMemcpyHostToDevice), "upload", error)) return nullptr;
    return dst;
  }

  bool upload_matrix(const Weight& w, DevWeight* out, std::string* error) {
    if (!w.present()) return true;
    void* dst = weights_.take(w.bytes);
    if (!dst) {
      *error = "the CUDA memory plan is short for '" + std::string(w.source) + "'";
      return false;
    }
    out->data = dst;
    out->type = w.type;
    out->N = w.rows();
    out->K = w.ne[0];
    return upload(w, dst, error);
  }

  bool upload_weights(std::string* error) {
    for (int i = 0; i < 2; ++i)
      if (!check(cudaMallocHost(&staging_[i], kStaging), "pinned staging memory", error) ||
          !check(cudaEventCreateWithFlags(&staged_[i], cudaEventDisableTiming), "cudaEventCreate", error) ||
          !check(cudaEventCreateWithFlags(&layer_done_[i], cudaEventDisableTiming), "cudaEventCreate", error))
        return false;
    if (!weights_.reserve(plan_.weights, "GPU memory for the weights", error)) return false;
    const ModelWeights& w = model_.weights();
    bool ok = upload_matrix(w.tok_embd, &tok_embd_, error);
    if (ok && w.output.present() && w.output.data != w.tok_embd.data) ok = upload_matrix(w.output, &output_, error);
    else output_ = tok_embd_;
    if (!ok) return false;
    auto vec = [&](const Weight& x, const float** dst) {
      *dst = upload_vector(x, error);
      return !x.present() || *dst != nullptr;
    };
    if (!vec(w.output_norm, &output_norm_)) return false;
    layers_.resize(c_.n_layer);
    for (std::uint32_t i = 0; i < c_.n_layer; ++i) {
      const LayerWeights& l = w.layers[i];
      DevLayer& d = layers_[i];
      if (!upload_matrix(l.wq, &d.wq, error) || !upload_matrix(l.wk, &d.wk, error) ||
          !upload_matrix(l.wv, &d.wv, error) || !upload_matrix(l.wo, &d.wo, error) ||
          !upload_matrix(l.gate, &d.gate, error) || !upload_matrix(l.up, &d.up, error) ||
          !upload_matrix(l.down, &d.down, error) || !vec(l.attn_norm, &d.attn_norm) || !vec(l.ffn_norm, &d.ffn_norm) ||
          !vec(l.bq, &d.bq) || !vec(l.bk, &d.bk) || !vec(l.bv, &d.bv) || !vec(l.q_norm, &d.q_norm) ||
          !vec(l.k_norm, &d.k_norm))
        return false;
    }
    double* inv = weights_.take_n<double>(inv_freq_.size());
    if (!inv) {
      *error = "the CUDA memory plan is short for RoPE's frequencies";
      return false;
    }
    d_inv_freq_ = inv;
    return check(cudaMemcpy(inv, inv_freq_.data(), inv_freq_.size() * sizeof(double), cudaMemcpyHostToDevice),
                 "upload", error) &&
           // The device, not just stream_: the vectors above went by cudaMemcpy on the legacy stream,
           // which may return before a pageable copy's DMA lands, and stream_ is non-blocking.
           check(cudaDeviceSynchronize(), "weights upload", error);
  }

  bool allocate(std::string* error) {
    const std::size_t kv_bytes = std::size_t{c_.n_layer} * options_.context * kv_row_;
    if (!k_arena_.reserve(kv_bytes, "GPU memory for the K cache", error) ||
        !v_arena_.reserve(kv_bytes, "GPU memory for the V cache", error))
      return false;
    k_cache_ = k_arena_.take(kv_bytes);
    v_cache_ = v_arena_.take(kv_bytes);
    const std::size_t C = plan_.chunk, E = c_.n_embd, F = c_.n_ff;
    const std::size_t wide = std::max({E, q_dim_, F});
    const std::size_t step = aligned(sizeof(StepInput) + sizeof(std::int32_t));  // and the chosen id
    if (!work_.reserve(plan_.activations + plan_.scratch + plan_.logits + plan_.attention + step,
                       "GPU memory for the workspace", error))
      return false;
    x_ = work_.take_n<float>(C * E);
    xn_ = work_.take_n<float>(C * E);
    q_ = work_.take_n<float>(C * q_dim_);
    att_ = work_.take_n<float>(C * q_dim_);
    k_ = work_.take_n<float>(C * kv_dim_);
    v_ = work_.take_n<float>(C * kv_dim_);
    out_ = work_.take_n<float>(C * wide);
    gate_ = work_.take_n<float>(C * F);
    up_ = work_.take_n<float>(C * F);
    d_tokens_ = work_.take_n<std::int32_t>(C);
    w_scratch_ = work_.take_n<__half>(plan_.dequantized);
    x_scratch_ = work_.take(C * wide * 2);
    d_logits_ = work_.take_n<float>(cuda::kGemvMaxRows * std::size_t{c_.n_vocab});
    attention_ws_ = work_.take(cuda::attention_decode_workspace(c_.n_head, c_.head_dim));
    d_step_ = static_cast<StepInput*>(work_.take(sizeof(StepInput) + sizeof(std::int32_t)));
    if (!x_ || !xn_ || !q_ || !att_ || !k_ || !v_ || !out_ || !gate_ || !up_ || !d_tokens_ || !x_scratch_ ||
        (plan_.dequantized && !w_scratch_) || !d_logits_ || !attention_ws_ || !d_step_) {
      *error = "the CUDA memory plan is short for the workspace (chunk " + std::to_string(C) + ")";
      return false;
    }
    d_next_ = reinterpret_cast<std::int32_t*>(d_step_ + 1);
    // Pinned host memory: the step input, the chosen id, the tokens of a chunk, a row of logits
    // per gemv row.
    const std::size_t host_bytes = aligned(sizeof(StepInput)) + aligned(4) + aligned(C * 4) +
                                   cuda::kGemvMaxRows * std::size_t{c_.n_vocab} * 4;
    if (!check(cudaMallocHost(&host_, host_bytes), "pinned host memory", error)) return false;
    auto* h = static_cast<unsigned char*>(host_);
    host_step_ = reinterpret_cast<StepInput*>(h);
    host_next_ = reinterpret_cast<std::int32_t*>(h + aligned(sizeof(StepInput)));
    host_tokens_ = reinterpret_cast<std::int32_t*>(h + aligned(sizeof(StepInput)) + aligned(4));
    host_logits_ = reinterpret_cast<float*>(h + aligned(sizeof(StepInput)) + aligned(4) + aligned(C * 4));
    return true;
  }

  bool open_blas() {
    std::string why;
    blas_ = cuda::Blas::open(stream_, &why);
    if (!blas_) log::warn("CUDA backend: ", why, "; prefill products run as GEMV (slower)");
    return true;
  }

  // ---- the layer step -------------------------------------------------------------------------

  // y = x · Wᵀ for T rows: GEMV for a few rows, cuBLAS for more. `conv` remembers which x the
  // scratch holds converted to F16/BF16, for the products that share an input (q/k/v, gate/up);
  // the caller resets it when x changes.
  struct Converted {
    const float* x = nullptr;
    GgmlType as = GgmlType::f32;
  };
  bool matmul(const DevWeight& w, const float* x, std::size_t T, float* y, Converted* conv, std::string* error) {
    if (T <= cuda::kGemvMaxRows || !blas_) {
      for (std::size_t r = 0; r < T; r += cuda::kGemvMaxRows) {
        const std::size_t rows = std::min(cuda::kGemvMaxRows, T - r);
        if (!cuda::gemv(w.data, w.type, w.N, w.K, x + r * w.K, rows, y + r * w.N, stream_, error)) return false;
      }
      return true;
    }
    if (w.type == GgmlType::f32) return blas_->gemm(w.data, x, CUDA_R_32F, w.N, w.K, T, y, error);
    const GgmlType as = w.type == GgmlType::bf16 ? GgmlType::bf16 : GgmlType::f16;
    if (conv->x != x || conv->as != as) {
      const bool ok = as == GgmlType::bf16
                          ? cuda::to_bf16(x, static_cast<std::uint16_t*>(x_scratch_), T * w.K, stream_, error)
                          : cuda::to_f16(x, static_cast<__half*>(x_scratch_), T * w.K, stream_, error);
      if (!ok) return false;
      *conv = Converted{x, as};
    }
    const void* wdata = w.data;
    if (w.type != GgmlType::f16 && w.type != GgmlType::bf16) {
      if (!cuda::dequantize_f16(w.data, w.type, w.N * w.K, w_scratch_, stream_, error)) return false;
      wdata = w_scratch_;
    }
    return blas_->gemm(wdata, x_scratch_, as == GgmlType::bf16 ? CUDA_R_16BF : CUDA_R_16F, w.N, w.K, T, y, error);
  }

  // One layer over the T tokens in x_ (first position at *d_pos). Leaves the MLP's output in out_:
  // the next layer's (or the final) add_rms_norm adds it to x_.
  bool layer(std::uint32_t il, std::size_t T, const std::int32_t* d_pos, bool decode, std::string* error) {
    const DevLayer& l = layers_[il];
    const float eps = static_cast<float>(c_.rms_eps);
    const std::size_t E = c_.n_embd;
    const bool ok_norm = il == 0 ? cuda::rms_norm_device(x_, l.attn_norm, xn_, T, E, eps, stream_, error)
                                 : cuda::add_rms_norm(x_, out_, l.attn_norm, xn_, T, E, eps, stream_, error);
    if (!ok_norm) return false;
    Converted conv;
    if (!matmul(l.wq, xn_, T, q_, &conv, error) || !matmul(l.wk, xn_, T, k_, &conv, error) ||
        !matmul(l.wv, xn_, T, v_, &conv, error))
      return false;
    cuda::QkvArgs qa;
    qa.q = q_;
    qa.k = k_;
    qa.v = v_;
    if (c_.qkv_bias) qa.bq = l.bq, qa.bk = l.bk, qa.bv = l.bv;  // as the CPU: by architecture
    if (c_.qk_norm) qa.q_norm = l.q_norm, qa.k_norm = l.k_norm;
    qa.eps = eps;
    qa.inv_freq = d_inv_freq_;
    qa.rope_scale = static_cast<float>(rope_scale_);
    qa.adjacent_pairs = c_.rope.pairing == RopePairing::adjacent;
    qa.n_head = c_.n_head;
    qa.n_head_kv = c_.n_head_kv;
    qa.head_dim = c_.head_dim;
    qa.T = T;
    qa.d_pos = d_pos;
    qa.k_cache = k_layer(il);
    qa.v_cache = v_layer(il);
    qa.row_bytes = kv_row_;
    qa.kv_type = kv_type();
    if (!cuda::qkv_rope_store(qa, stream_, error)) return false;
    cuda::AttentionArgs aa;
    aa.q = q_;
    aa.out = att_;
    aa.k = k_layer(il);
    aa.v = v_layer(il);
    aa.row_bytes = kv_row_;
    aa.kv_type = kv_type();
    aa.n_head = c_.n_head;
    aa.n_head_kv = c_.n_head_kv;
    aa.head_dim = c_.head_dim;
    aa.T = T;
    aa.d_pos = d_pos;
    aa.max_positions = options_.context;
    const bool ok_att = decode ? cuda::attention_decode(aa, attention_ws_, stream_, error)
                               : cuda::attention_prefill(aa, stream_, error);
    if (!ok_att) return false;
    conv = {};
    if (!matmul(l.wo, att_, T, out_, &conv, error) ||
        !cuda::add_rms_norm(x_, out_, l.ffn_norm, xn_, T, E, eps, stream_, error))
      return false;
    conv = {};
    return matmul(l.gate, xn_, T, gate_, &conv, error) && matmul(l.up, xn_, T, up_, &conv, error) &&
           cuda::swiglu(gate_, up_, T * c_.n_ff, stream_, error) &&
           (conv = {}, matmul(l.down, gate_, T, out_, &conv, error));
  }

  // The whole step for T tokens already in d_tokens (prefill) or in the step input (decode):
  // embeddings, every layer, the final norm into xn_. `cancelled` (prefill only): the abort flag
  // was seen between layers; nothing more is queued.
  bool forward(const std::int32_t* d_tokens, std::size_t T, const std::int32_t* d_pos, bool decode,
               bool* cancelled, std::string* error) {
    if (!cuda::embed(tok_embd_.data, tok_embd_.type, c_.n_embd, d_tokens, T, x_, stream_, error)) return false;
    for (std::uint32_t il = 0; il < c_.n_layer; ++il) {
      if (cancelled && abort_) {
        // Prefill: the flag is read before each layer is queued, with the layer before last
        // finished (so the GPU always has one layer queued, and a cancel waits at most about two
        // layers: milliseconds, as on the CPU).
        if (il >= 2 && !check(cudaEventSynchronize(layer_done_[il % 2]), "prefill", error)) return false;
        if (abort_->load(std::memory_order_relaxed)) {
          *cancelled = true;
          return check(cudaStreamSynchronize(stream_), "prefill", error);
        }
      }
      if (!layer(il, T, d_pos, decode, error)) return false;
      if (cancelled && !check(cudaEventRecord(layer_done_[il % 2], stream_), "cudaEventRecord", error)) return false;
    }
    return cuda::add_rms_norm(x_, out_, output_norm_, xn_, T, c_.n_embd, static_cast<float>(c_.rms_eps), stream_,
                              error);
  }

  bool prefill_chunk(const std::int32_t* tokens, std::size_t T, bool* cancelled, std::string* error) {
    if (!check(cudaStreamSynchronize(stream_), "prefill", error)) return false;  // pinned buffers free
    std::memcpy(host_tokens_, tokens, T * sizeof(std::int32_t));
    host_step_->pos = static_cast<std::int32_t>(cached_);
    if (!check(cudaMemcpyAsync(d_tokens_, host_tokens_, T * 4, cudaMemcpyHostToDevice, stream_), "tokens", error) ||
        !check(cudaMemcpyAsync(&d_step_->pos, &host_step_->pos, 4, cudaMemcpyHostToDevice, stream_), "position", error))
      return false;
    return forward(d_tokens_, T, &d_step_->pos, /*decode=*/false, cancelled, error);
  }

  // Logits of rows [from, from + rows) of the chunk just run (xn_ holds its normed states).
  bool chunk_logits(std::size_t from, std::size_t rows, float* dst, std::string* error) {
    const std::size_t V = c_.n_vocab;
    for (std::size_t r = 0; r < rows; r += cuda::kGemvMaxRows) {
      const std::size_t n = std::min(cuda::kGemvMaxRows, rows - r);
      if (!cuda::gemv(output_.data, output_.type, output_.N, output_.K, xn_ + (from + r) * c_.n_embd, n, d_logits_,
                      stream_, error) ||
          !check(cudaMemcpyAsync(host_logits_, d_logits_, n * V * 4, cudaMemcpyDeviceToHost, stream_), "logits", error) ||
          !check(cudaStreamSynchronize(stream_), "logits", error))
        return false;
      std::memcpy(dst + r * V, host_logits_, n * V * 4);
    }
    return true;
  }

  // Captures the decode step: the step input's copy, the layers over one token, the logits, and
  // then either their copy to the host or the sampler and the id's copy.
  bool capture(bool sample, cudaGraphExec_t* exec, std::string* error) {
    cudaGraph_t graph = nullptr;
    if (!check(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeThreadLocal), "cudaStreamBeginCapture", error))
      return false;
    std::string step_error;
    bool ok = check(cudaMemcpyAsync(d_step_, host_step_, sizeof(StepInput), cudaMemcpyHostToDevice, stream_),
                    "step input", &step_error) &&
              forward(&d_step_->token, 1, &d_step_->pos, /*decode=*/true, nullptr, &step_error) &&
              cuda::gemv(output_.data, output_.type, output_.N, output_.K, xn_, 1, d_logits_, stream_, &step_error);
    if (ok && sample) {
      cuda::SampleArgs sa;
      sa.logits = d_logits_;
      sa.n_valid = n_valid_;
      sa.d_params = &d_step_->sampling;
      sa.out = d_next_;
      ok = cuda::sample(sa, nullptr, stream_, &step_error) &&
           check(cudaMemcpyAsync(host_next_, d_next_, 4, cudaMemcpyDeviceToHost, stream_), "next token", &step_error);
    } else if (ok) {
      ok = check(cudaMemcpyAsync(host_logits_, d_logits_, std::size_t{c_.n_vocab} * 4, cudaMemcpyDeviceToHost, stream_),
                 "logits", &step_error);
    }
    const bool ended = check(cudaStreamEndCapture(stream_, &graph), "cudaStreamEndCapture", error);
    if (!ok) {
      *error = "capturing the decode step: " + step_error;
      if (graph) cudaGraphDestroy(graph);
      return false;
    }
    if (!ended) return false;
    ok = check(cudaGraphInstantiate(exec, graph, 0), "cudaGraphInstantiate", error);
    cudaGraphDestroy(graph);
    return ok;
  }

  // One decode step as a graph replay. `in` null: logits to host_logits_; else the sampler's
  // choice to host_next_.
  bool decode(std::int32_t token, const StepInput* in, std::string* error) {
    cudaGraphExec_t* exec = in ? &graph_sample_ : &graph_logits_;
    if (in && *exec && sampled_valid_ != n_valid_) {  // the padding boundary is in the graph
      cudaGraphExecDestroy(*exec);
      *exec = nullptr;
    }
    if (!check(cudaStreamSynchronize(stream_), "decode", error)) return false;
    if (in) *host_step_ = *in;
    host_step_->token = token;
    host_step_->pos = static_cast<std::int32_t>(cached_);
    if (!*exec) {
      if (!capture(in != nullptr, exec, error)) return false;
      if (in) sampled_valid_ = n_valid_;
    }
    if (!check(cudaGraphLaunch(*exec, stream_), "cudaGraphLaunch", error) ||
        !check(cudaStreamSynchronize(stream_), "decode step", error))
      return false;
    ++cached_;
    return true;
  }

  const Model& model_;
  const ModelConfig& c_;
  BackendOptions options_;
  cuda::CudaBackendOptions cuda_options_;
  cuda::CudaPlan plan_;
  cudaStream_t stream_ = nullptr;
  std::unique_ptr<cuda::Blas> blas_;
  std::vector<double> inv_freq_;
  double rope_scale_ = 1;
  std::size_t q_dim_ = 0, kv_dim_ = 0, kv_row_ = 0;

  Arena weights_, k_arena_, v_arena_, work_;
  DevWeight tok_embd_, output_;
  const float* output_norm_ = nullptr;
  const double* d_inv_freq_ = nullptr;
  std::vector<DevLayer> layers_;
  void *k_cache_ = nullptr, *v_cache_ = nullptr;
  float *x_ = nullptr, *xn_ = nullptr, *q_ = nullptr, *att_ = nullptr, *k_ = nullptr, *v_ = nullptr, *out_ = nullptr,
        *gate_ = nullptr, *up_ = nullptr, *d_logits_ = nullptr;
  std::int32_t *d_tokens_ = nullptr, *d_next_ = nullptr;
  __half* w_scratch_ = nullptr;
  void* x_scratch_ = nullptr;
  void* attention_ws_ = nullptr;
  StepInput* d_step_ = nullptr;

  void* staging_[2] = {nullptr, nullptr};
  cudaEvent_t staged_[2] = {nullptr, nullptr};
  cudaEvent_t layer_done_[2] = {nullptr, nullptr};  // prefill: the last two layers queued
  unsigned turn_ = 0;
  std::uint64_t vectors_ = 0;  // vectors made up so far (random weights)
  void* host_ = nullptr;  // pinned: step input, next id, chunk tokens, logits
  StepInput* host_step_ = nullptr;
  std::int32_t* host_next_ = nullptr;
  std::int32_t* host_tokens_ = nullptr;
  float* host_logits_ = nullptr;

  cudaGraphExec_t graph_logits_ = nullptr, graph_sample_ = nullptr;
  std::uint32_t n_valid_ = 0, sampled_valid_ = 0;
  const std::atomic<bool>* abort_ = nullptr;
  std::uint32_t cached_ = 0;
};

}  // namespace

std::unique_ptr<Backend> make_cuda_backend(const Model& model, const BackendOptions& options, std::string* error,
                                           const cuda::CudaBackendOptions& cuda_options) {
  if (!model.has_weights() && !cuda_options.random_weights) {
    *error = model.path() + ": has no weights to run";
    return nullptr;
  }
  auto b = std::make_unique<CudaBackend>(model, options, cuda_options);
  if (!b->init(error)) return nullptr;
  return b;
}

}  // namespace ponder
