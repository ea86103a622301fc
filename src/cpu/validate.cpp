// Argument checking shared by every attention backend: a bad call fails here with a message
// naming the argument, never inside a kernel.
#include <algorithm>
#include <cmath>
#include <string>
#include <utility>

#include "lvsa/attention.hpp"
#include "memory_span.hpp"

namespace lvsa {
namespace {

std::string dims_str(const int64_t (&dims)[4]) {
  std::string s = "[";
  for (int i = 0; i < 4; ++i) (s += std::to_string(dims[i])) += i < 3 ? ", " : "]";
  return s;
}

std::string shape_str(const TensorRef& t) { return dims_str(t.shape); }

[[noreturn]] void fail(const std::string& message) { throw Error("lvsa: attention: " + message); }

void check_tensor(const TensorRef& t, const char* name) {
  const int dtype = int(t.dtype);
  if (dtype < 0 || dtype > int(DType::I8))
    fail(std::string(name) + " has an unknown dtype " + std::to_string(dtype) +
         ", expected float32 (0), float16 (1), bfloat16 (2), float8_e4m3 (3, q and k of fp8 scores or v of fp8 "
         "values) or int8 (4, q and k of int8 scores)");
  if (t.data == nullptr) fail(std::string(name) + " has no data (null pointer)");
  for (int i = 0; i < 4; ++i) {
    if (t.shape[i] <= 0)
      fail(std::string(name) + " must be 4-D [B, S, H, D] with every size > 0, got " + shape_str(t));
    if (t.stride[i] < 0)
      fail(std::string(name) + " has a negative stride " + std::to_string(t.stride[i]) +
           " in dim " + std::to_string(i) + "; negative strides are not supported");
  }
  if (!cpu::memory_span(t))
    fail(std::string(name) + " has shape " + shape_str(t) +
         " and strides that reach beyond the address space");
}

// Ordered by stride, each dim must step past everything the smaller dims reach: then no
// two elements share memory (the usual test; it accepts every slice and permutation of a
// contiguous tensor). memory_span has ruled out overflow.
bool elements_distinct(const TensorRef& t) {
  int order[4] = {0, 1, 2, 3};
  std::sort(order, order + 4, [&](int a, int b) { return t.stride[a] < t.stride[b]; });
  int64_t reach = 0;
  for (const int i : order) {
    if (t.shape[i] == 1) continue;
    if (t.stride[i] <= reach) return false;
    reach += (t.shape[i] - 1) * t.stride[i];
  }
  return true;
}

// out is written while q, k and v are still being read, by several threads at once.
void check_no_aliasing(const AttentionParams& p) {
  if (!elements_distinct(p.out))
    fail("out has strides " + dims_str(p.out.stride) + " for shape " + shape_str(p.out) +
         ", which can make distinct elements share memory; expected strides that, in increasing "
         "order, each step past everything the smaller ones reach (as in any slice or "
         "permutation of a contiguous tensor)");
  const cpu::MemorySpan out = *cpu::memory_span(p.out);
  const std::pair<const TensorRef*, const char*> inputs[] = {{&p.q, "q"}, {&p.k, "k"}, {&p.v, "v"}};
  for (const auto& [t, name] : inputs)
    if (out.overlaps(*cpu::memory_span(*t)))
      fail(std::string("out overlaps ") + name + " in memory; expected a separate buffer (the "
           "byte ranges their shapes and strides reach must be disjoint)");
}

void check_ranges(const KeyRanges& r) {
  const Geometry& g = r.geometry;
  const int T = g.frames;
  if (int64_t(r.range_offsets.size()) != int64_t(T) + 1)
    fail("ranges.range_offsets has " + std::to_string(r.range_offsets.size()) +
         " entries, expected frames + 1 = " + std::to_string(int64_t(T) + 1));
  if (r.range_begin.size() != r.range_end.size())
    fail("ranges.range_begin and ranges.range_end differ in size (" +
         std::to_string(r.range_begin.size()) + " vs " + std::to_string(r.range_end.size()) + ")");
  if (r.range_offsets[0] != 0 || size_t(r.range_offsets[T]) != r.range_begin.size())
    fail("ranges.range_offsets must run from 0 to the number of intervals " +
         std::to_string(r.range_begin.size()));
  const int64_t lo = g.video_begin(), hi = g.video_begin() + g.video_tokens();
  for (int f = 0; f < T; ++f) {
    if (r.range_offsets[f + 1] < r.range_offsets[f])
      fail("ranges.range_offsets must be non-decreasing (frame " + std::to_string(f) + ")");
    int64_t prev_end = lo;
    for (int i = r.range_offsets[f]; i < r.range_offsets[f + 1]; ++i) {
      // Overlapping or unsorted intervals would count keys twice; intervals outside the
      // video span would double as (possibly padded) encoder keys.
      if (r.range_begin[i] < prev_end || r.range_begin[i] >= r.range_end[i] || r.range_end[i] > hi)
        fail("ranges of frame " + std::to_string(f) + " must be sorted, disjoint, non-empty "
             "intervals within the video tokens [" + std::to_string(lo) + ", " +
             std::to_string(hi) + ") of the sequence [0, " + std::to_string(g.seq_len()) +
             "); got [" + std::to_string(r.range_begin[i]) + ", " +
             std::to_string(r.range_end[i]) + ")");
      prev_end = r.range_end[i];
    }
  }
}

}  // namespace

const char* dtype_name(DType dtype) {
  switch (dtype) {
    case DType::F32: return "float32";
    case DType::F16: return "float16";
    case DType::BF16: return "bfloat16";
    case DType::E4M3: return "float8_e4m3";
    case DType::I8: return "int8";
  }
  return "unknown";
}

void refuse_quantized_scores(const AttentionParams& p, const char* backend) {
  for (const TensorRef* t : {&p.q, &p.k})
    if (is_quantized_score(t->dtype))
      fail(std::string("q and k are ") + dtype_name(t->dtype) + " (quantised scores), which only the CUDA "
           "backend's sm90 kernels run, not " + backend + "; it takes float32, float16 or bfloat16");
}

bool video_queries_only(const KeyRanges& ranges, const AttentionParams& params) {
  const Geometry& g = ranges.geometry;
  return g.encoder_len > 0 && params.q.shape[1] == g.video_tokens();
}

void validate_attention(const KeyRanges& ranges, const AttentionParams& p) {
  const Geometry& g = ranges.geometry;
  validate(g);
  check_ranges(ranges);
  check_tensor(p.q, "q");
  check_tensor(p.k, "k");
  check_tensor(p.v, "v");
  check_tensor(p.out, "out");

  const auto dim = [](const char* name, int i, int64_t got, int64_t expected,
                      const std::string& what) {
    if (got != expected)
      fail(std::string(name) + " has " + what + " " + std::to_string(got) + " (dim " +
           std::to_string(i) + "), expected " + std::to_string(expected));
  };
  dim("k", 0, p.k.shape[0], p.q.shape[0], "batch size");
  dim("k", 3, p.k.shape[3], p.q.shape[3], "head dim");
  for (int i = 0; i < 4; ++i)
    if (p.v.shape[i] != p.k.shape[i])
      fail("v has shape " + shape_str(p.v) + " but k has " + shape_str(p.k) + "; they must match");
  if (p.q.shape[2] % p.k.shape[2] != 0)
    fail("q has " + std::to_string(p.q.shape[2]) + " heads, which is not a multiple of the " +
         std::to_string(p.k.shape[2]) + " heads of k and v (grouped-query attention)");
  dim("k", 1, p.k.shape[1], g.seq_len(), "sequence length");  // keys cover T*P + E
  const int64_t sq = p.q.shape[1];
  if (sq != g.seq_len() && !(g.encoder_len > 0 && sq == g.video_tokens()))
    fail("q has sequence length " + std::to_string(sq) + " but the plan expects " +
         std::to_string(g.seq_len()) + " (all tokens)" +
         (g.encoder_len > 0 ? " or " + std::to_string(g.video_tokens()) + " (video tokens only)"
                            : std::string()));
  for (int i = 0; i < 4; ++i)
    if (p.out.shape[i] != p.q.shape[i])
      fail("out has shape " + shape_str(p.out) + ", expected q's shape " + shape_str(p.q));
  const auto same_dtype = [&](const TensorRef& t, const char* name, const TensorRef& like, const char* like_name) {
    if (t.dtype != like.dtype)
      fail(std::string(name) + " has dtype " + dtype_name(t.dtype) + ", expected " + like_name + "'s dtype " +
           dtype_name(like.dtype));
  };
  same_dtype(p.k, "k", p.q, "q");
  const bool fp8_values = p.v.dtype == DType::E4M3;
  if (is_quantized_score(p.q.dtype)) {  // quantised scores: 16-bit or fp8 values, per-head descale factors
    const std::string scores = std::string(dtype_name(p.q.dtype)) + " q and k (quantised scores)";
    if (p.v.dtype != DType::F16 && p.v.dtype != DType::BF16 && !fp8_values)
      fail(std::string("v has dtype ") + dtype_name(p.v.dtype) + "; with " + scores +
           " v must be float16, bfloat16 or float8_e4m3 (fp8 values)");
    if (p.q_descale == nullptr || p.k_descale == nullptr)
      fail("q and k are " + std::string(dtype_name(p.q.dtype)) +
           " (quantised scores) but q_descale or k_descale is null; both are needed");
  } else {
    same_dtype(p.v, "v", p.q, "q");
    if (p.q_descale != nullptr || p.k_descale != nullptr)
      fail(std::string("q_descale or k_descale is set but q is ") + dtype_name(p.q.dtype) +
           "; descale factors come only with float8_e4m3 or int8 q and k (quantised scores)");
  }
  if (fp8_values) {  // the value pre-pass's layout (attention.hpp)
    const int64_t row = value_row_keys(p.v.shape[1]);
    if (p.v_descale == nullptr) fail("v is float8_e4m3 (fp8 values) but v_descale is null");
    if (p.v.stride[1] != 1 || p.v.stride[3] < row || p.v.stride[3] % 16 != 0)
      fail("v is float8_e4m3 (fp8 values) with strides " + dims_str(p.v.stride) +
           "; expected the value pre-pass's layout: keys contiguous (stride[1] = 1) in rows of at least " +
           std::to_string(row) + " keys, a multiple of 16 (stride[3])");
    if (p.out.dtype != DType::F16 && p.out.dtype != DType::BF16)
      fail(std::string("out has dtype ") + dtype_name(p.out.dtype) + "; with fp8 values out must be float16 or "
           "bfloat16");
  } else {
    if (p.v_descale != nullptr)
      fail(std::string("v_descale is set but v is ") + dtype_name(p.v.dtype) +
           "; it comes only with float8_e4m3 v (fp8 values)");
    same_dtype(p.out, "out", p.v, "v");
  }
  check_no_aliasing(p);

  if (p.encoder_valid)
    for (int64_t b = 0; b < p.q.shape[0]; ++b)
      if (p.encoder_valid[b] < 0 || p.encoder_valid[b] > g.encoder_len)
        fail("encoder_valid[" + std::to_string(b) + "] = " + std::to_string(p.encoder_valid[b]) +
             " is outside [0, encoder_len = " + std::to_string(g.encoder_len) + "]");
  if (!std::isfinite(p.scale) || p.scale < 0)
    fail("scale must be finite and >= 0 (0 means 1/sqrt(D)), got " + std::to_string(p.scale));
}

}  // namespace lvsa
