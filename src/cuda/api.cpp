// Host side of the CUDA backend: argument checks, the device plan buffers, and dispatch to
// the (family, dtype, head_dim) instantiations of generated/fwd_kernels.hpp.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <iterator>
#include <set>
#include <stdexcept>
#include <string>

#include "common/host.hpp"
#include "common/params.hpp"
#include "generated/fwd_kernels.hpp"
#include "lvsa/cuda.hpp"

namespace lvsa::cuda {
namespace {

[[noreturn]] void fail(const std::string& message) { throw Error("lvsa: cuda attention: " + message); }

void check(cudaError_t err, const char* what) {
  if (err != cudaSuccess) throw_cuda_error(what, int(err));
}

// Device-resident (or managed) memory, on the device that will run the kernel.
void check_device_pointer(const void* ptr, const char* name, int device) {
  cudaPointerAttributes attr{};
  const cudaError_t err = cudaPointerGetAttributes(&attr, ptr);
  if (err != cudaSuccess) {
    cudaGetLastError();  // clear the sticky-free error state of this query
    fail(std::string(name) + " is not a pointer the CUDA runtime knows (" + cudaGetErrorString(err) + ")");
  }
  if (attr.type != cudaMemoryTypeDevice && attr.type != cudaMemoryTypeManaged)
    fail(std::string(name) + " must point to CUDA device memory (got host memory)");
  if (attr.type == cudaMemoryTypeDevice && attr.device != device)
    fail(std::string(name) + " lives on cuda:" + std::to_string(attr.device) +
         " but the current device is cuda:" + std::to_string(device));
}

// fp8 values: the contract has checked V^T's row layout; TMA needs 16-byte aligned rows.
void check_value_layout(const TensorRef& v) {
  if (reinterpret_cast<uintptr_t>(v.data) % 16 != 0) fail("v (fp8 values) data pointer must be 16-byte aligned");
  for (int i : {0, 2})
    if (v.shape[i] > 1 && v.stride[i] % 16 != 0)
      fail("v (fp8 values) stride[" + std::to_string(i) + "] = " + std::to_string(v.stride[i]) +
           " is not a multiple of 16 (TMA's 16-byte aligned rows)");
}

void check_layout(const TensorRef& t, const char* name) {
  if (t.stride[3] != 1)
    fail(std::string(name) + " must have a contiguous last (head) dim, got stride[3] = " +
         std::to_string(t.stride[3]));
  // cp.async moves 16-byte chunks: every row must start on a 16-byte boundary.
  if (reinterpret_cast<uintptr_t>(t.data) % 16 != 0)
    fail(std::string(name) + " data pointer must be 16-byte aligned");
  const int64_t elem_bytes = is_quantized_score(t.dtype) ? 1 : 2;
  for (int i = 0; i < 3; ++i)
    if (t.shape[i] > 1 && (t.stride[i] * elem_bytes) % 16 != 0)
      fail(std::string(name) + " stride[" + std::to_string(i) + "] = " + std::to_string(t.stride[i]) +
           " elements is not a multiple of " + std::to_string(16 / elem_bytes) +
           " (16-byte aligned rows are required)");
}

template <class Pred>
constexpr bool any_kernel(Pred pred) {
  return std::any_of(std::begin(kFwdKernels), std::end(kFwdKernels), pred);
}
constexpr bool kSm90Built = any_kernel([](const KernelEntry& e) { return e.family == Family::Sm90; });
// Time of a plan's key walk at one key-tile width, in key-equivalents: every tile costs its
// width plus a fixed overhead (barrier waits, row max/sum shuffles, the O rescale). The
// overhead, 42 keys, is what makes 160-key tiles 1.9 % slower than 176-key ones where
// neither pads (Cosmos 2.5, 3520-token frames; H200, docs/perf/cuda_sm90.md).
double key_tile_cost(const KeyRanges& ranges, const KernelEntry& e) {
  constexpr double kTileOverheadKeys = 42;
  return double(key_tiles(ranges, e.tile_n, e.spanning)) * (e.tile_n + kTileOverheadKeys);
}

// What the frame-pair code costs a launch without pair tiles in the kernels that have it: 1.5-2 %
// on dense plans (H200, docs/perf/cuda_sm90.md v10). A kernel without it wins unless its width
// pads that much more.
constexpr double kPairCodeShare = 0.015;

// Whether LVSA_CUDA_KERNEL=auto picks the sm90 kernels on compute capability 9.0 devices.
constexpr bool kAutoPicksSm90 = true;  // tests/gpu pass with it, 1.6x+ over sm80 (cuda_sm90.md)

// What the instantiations cover, as the argument errors list it: "float16 or bfloat16",
// "64 and 128".
bool has_dtype(DType t) { return any_kernel([t](const KernelEntry& e) { return e.dtype == t; }); }
bool has_scores(DType scores, int64_t d) {
  return any_kernel([=](const KernelEntry& e) { return e.score_dtype == scores && e.head_dim == d; });
}
bool has_head_dim(int64_t d) { return any_kernel([d](const KernelEntry& e) { return e.head_dim == d; }); }
std::string dtype_choices() {
  std::string s;
  for (DType t : {DType::F32, DType::F16, DType::BF16})
    if (has_dtype(t)) s += (s.empty() ? "" : " or ") + std::string(dtype_name(t));
  return s;
}
// The head dims of the kernels with quantised scores of this dtype (F32: of all kernels).
std::string head_dim_choices(DType scores = DType::F32) {
  std::set<int> dims;
  for (const KernelEntry& e : kFwdKernels)
    if (scores == DType::F32 || e.score_dtype == scores) dims.insert(e.head_dim);
  std::string s;
  for (int d : dims) s += (s.empty() ? "" : " and ") + std::to_string(d);
  return s.empty() ? "none (built without the sm90 kernels)" : s;
}

const char* family_name(Family family) { return family == Family::Sm90 ? "sm90" : "sm80"; }

// "bfloat16 q and k, bfloat16 v with head_dim 64": what a kernel takes.
std::string operands(DType scores, DType values, int64_t head_dim) {
  return std::string(dtype_name(scores)) + " q and k, " + dtype_name(values) + " v with head_dim " +
         std::to_string(head_dim);
}

// LaunchOptions::kernel: the row of that name, which must run these arguments as they are.
const KernelEntry* named_kernel(const FwdParams& p, const AttentionParams& params, Family family,
                                const std::string& name) {
  const std::string what = "LaunchOptions::kernel is '" + name + "'";
  const auto e = std::find_if(std::begin(kFwdKernels), std::end(kFwdKernels),
                              [&](const KernelEntry& k) { return name == k.name; });
  if (e == std::end(kFwdKernels)) {
    std::string names;
    for (const KernelEntry& k : kFwdKernels) names += std::string(names.empty() ? "" : ", ") + "'" + k.name + "'";
    fail(what + ", which this build does not have; it has " + names);
  }
  if (e->family != family)
    fail(what + ", an " + family_name(e->family) + " kernel, and the kernel family here is " + family_name(family));
  if (!e->takes(params.out.dtype, params.q.dtype, params.v.dtype, params.q.shape[3]))
    fail(what + ", which takes " + operands(e->score_dtype, e->value_dtype, e->head_dim) + " and " +
         dtype_name(e->dtype) + " out; these are " + operands(params.q.dtype, params.v.dtype, params.q.shape[3]) +
         " and " + dtype_name(params.out.dtype) + " out");
  if (p.frame_pairs && !e->frame_pairs)
    fail(what + ", which has no frame-pair code, and this launch has query tiles with rows of two frames");
  return e;
}

}  // namespace

[[noreturn]] void throw_cuda_error(const char* what, int cuda_error) {
  throw std::runtime_error(std::string("lvsa: CUDA error while ") + what + ": " +
                           cudaGetErrorString(cudaError_t(cuda_error)));
}

KernelFamily choose_kernel_family(int device, const char* request) {
  const std::string want = request ? request : "auto";
  int major = 0, minor = 0;
  check(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device), "querying the device");
  check(cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device), "querying the device");
  if (major < 8)  // no cp.async / bf16 mma.sync: a launch would fail with an opaque CUDA error
    fail("the CUDA kernels need compute capability 8.0 or newer (Ampere+); cuda:" + std::to_string(device) +
         " is " + std::to_string(major) + "." + std::to_string(minor) + " (use the torch backend)");
  const bool hopper = major == 9 && minor == 0;
  if (want.empty() || want == "auto") return kSm90Built && kAutoPicksSm90 && hopper ? Family::Sm90 : Family::Sm80;
  if (want == "sm80") return Family::Sm80;
  if (want == "sm90") {
    if (!kSm90Built)
      fail("LVSA_CUDA_KERNEL=sm90, but this build has no sm_90a kernels (LVSA_CUDA_SM90 off or nvcc < 12.3)");
    if (!hopper)
      fail("LVSA_CUDA_KERNEL=sm90 needs a compute capability 9.0 GPU (H100/H200); cuda:" + std::to_string(device) +
           " is " + std::to_string(major) + "." + std::to_string(minor));
    return Family::Sm90;
  }
  fail("LVSA_CUDA_KERNEL must be auto, sm80 or sm90, got '" + want + "'");
}

int device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();
    return 0;
  }
  return n;
}

DevicePlan::DevicePlan(int frames, int64_t capacity) : frames_(frames), capacity_(capacity) {
  if (frames < 1) fail("DevicePlan frames must be >= 1, got " + std::to_string(frames));
  if (capacity < 1) fail("DevicePlan capacity must be >= 1, got " + std::to_string(capacity));
  const size_t bytes = size_t(packed_plan_size(frames, capacity)) * sizeof(int32_t);
  check(cudaMalloc(reinterpret_cast<void**>(&device_), bytes), "allocating the device plan");
  if (cudaMallocHost(reinterpret_cast<void**>(&staging_), bytes) != cudaSuccess || cudaEventCreateWithFlags(&copied_, cudaEventDisableTiming) != cudaSuccess) {
    cudaFree(device_);
    if (staging_) cudaFreeHost(staging_);
    throw_cuda_error("allocating the device plan staging buffer", int(cudaGetLastError()));
  }
  std::memset(staging_, 0, bytes);
}

DevicePlan::~DevicePlan() {
  if (copied_) {
    cudaEventSynchronize(copied_);
    cudaEventDestroy(copied_);
  }
  cudaFreeHost(staging_);
  cudaFree(device_);
}

void DevicePlan::upload(const KeyRanges& ranges, cudaStream_t stream) {
  if (ranges.geometry.frames != frames_)
    fail("the plan has " + std::to_string(ranges.geometry.frames) + " frames but this DevicePlan was made for " +
         std::to_string(frames_));
  check(cudaEventSynchronize(copied_), "waiting for the previous plan upload");
  pack_plan(ranges, capacity_, staging_);
  const size_t bytes = size_t(packed_plan_size(frames_, capacity_)) * sizeof(int32_t);
  check(cudaMemcpyAsync(device_, staging_, bytes, cudaMemcpyHostToDevice, stream), "uploading the plan");
  check(cudaEventRecord(copied_, stream), "recording the plan upload");
}

FwdParams build_fwd_params(const KeyRanges& ranges, const DevicePlanView& plan,
                           const AttentionParams& params, bool pointers_on_current_device, bool frame_pairs) {
  // Shapes and plan consistency are the shared checks; encoder_valid is a device pointer here
  // and must not be read on the host.
  AttentionParams shape_only = params;
  shape_only.encoder_valid = nullptr;
  validate_attention(ranges, shape_only);

  const Geometry& g = ranges.geometry;
  const TensorRef &q = params.q, &k = params.k, &v = params.v, &o = params.out;
  const bool quantized = is_quantized_score(q.dtype);  // validate_attention: then descales are set
  const TensorRef& typed = quantized ? o : q;          // the tensor whose dtype selects the kernels
  if (!has_dtype(typed.dtype))
    fail(std::string(quantized ? "out" : "q") + " has dtype " + dtype_name(typed.dtype) +
         "; the CUDA kernels take " + dtype_choices());
  const int64_t D = q.shape[3];
  if (!has_head_dim(D))
    fail("head_dim (q.shape[3]) is " + std::to_string(D) + "; the CUDA kernels support " + head_dim_choices());
  if (quantized && !has_scores(q.dtype, D))
    fail(std::string("q and k are ") + dtype_name(q.dtype) + " (quantised scores) with head_dim " + std::to_string(D) +
         "; the kernels with " + dtype_name(q.dtype) + " scores support head_dim " + head_dim_choices(q.dtype));
  check_layout(q, "q");
  check_layout(k, "k");
  if (v.dtype == DType::E4M3) check_value_layout(v);
  else check_layout(v, "v");
  check_layout(o, "out");
  if (plan.data == nullptr) fail("the device plan is empty (null buffer)");
  if (plan.frames != g.frames)
    fail("the device plan holds " + std::to_string(plan.frames) + " frames but the plan has " +
         std::to_string(g.frames));
  if (int64_t(ranges.range_begin.size()) > plan.capacity)
    fail("the plan has " + std::to_string(ranges.range_begin.size()) +
         " intervals, more than the device plan's capacity " + std::to_string(plan.capacity));
  // Tile starts advance by up to 128 past an interval end; keep that in int range.
  if (g.seq_len() > (int64_t(1) << 31) - 256)
    fail("sequence length " + std::to_string(g.seq_len()) + " is too long for the CUDA kernels");

  if (!pointers_on_current_device) {
    if (device_count() == 0) fail("no CUDA device is available");
    int device = 0;
    check(cudaGetDevice(&device), "querying the current device");
    check_device_pointer(q.data, "q", device);
    check_device_pointer(k.data, "k", device);
    check_device_pointer(v.data, "v", device);
    check_device_pointer(o.data, "out", device);
    check_device_pointer(plan.data, "plan", device);
    if (params.lse) check_device_pointer(params.lse, "lse", device);
    if (params.q_descale) check_device_pointer(params.q_descale, "q_descale", device);
    if (params.k_descale) check_device_pointer(params.k_descale, "k_descale", device);
    if (params.v_descale) check_device_pointer(params.v_descale, "v_descale", device);
    if (params.encoder_valid) check_device_pointer(params.encoder_valid, "encoder_valid", device);
  }

  FwdParams p;
  p.q = q.data;
  p.k = k.data;
  p.v = v.data;
  p.out = o.data;
  p.lse = params.lse;
  p.q_descale = params.q_descale;
  p.k_descale = params.k_descale;
  p.v_descale = params.v_descale;
  p.v_row_keys = v.dtype == DType::E4M3 ? v.stride[3] : 0;
  for (int i = 0; i < 3; ++i) {
    p.q_stride[i] = q.stride[i];
    p.k_stride[i] = k.stride[i];
    p.v_stride[i] = v.stride[i];
    p.o_stride[i] = o.stride[i];
  }
  p.batch = int(q.shape[0]);
  p.heads_q = int(q.shape[2]);
  p.heads_kv = int(k.shape[2]);
  p.group = p.heads_q / p.heads_kv;
  p.seq_q = int(q.shape[1]);
  p.seq_k = int(k.shape[1]);
  const double scale = params.scale > 0 ? params.scale : 1.0 / std::sqrt(double(D));
  p.scale_log2 = float(scale * 1.4426950408889634);

  p.frames = g.frames;
  // One run of all frames, so that no frame ends in a short tile (the last 24 of Wan's 1560 rows
  // occupied a whole CTA: 3.4 % of the time at T = 121; dense plans gained 4-9 %,
  // docs/perf/cuda_sm90.md). Where frames attend different keys, a tile then holds rows of two
  // frames (block_info.cuh): if a frame has at least a tile's rows and adjacent frames differ by
  // at most one span of keys each way (a sliding window); otherwise runs stay one frame long.
  const int M = kQueryTileRows;
  const bool shared_keys = frames_share_key_list(ranges);
  p.frame_pairs = frame_pairs && !shared_keys && g.tokens_per_frame >= M && frame_pairs_fit(ranges);
  p.frames_per_run = shared_keys || p.frame_pairs ? g.frames : 1;
  p.tokens_per_frame = g.tokens_per_frame;
  p.tokens_per_run = p.frames_per_run * g.tokens_per_frame;
  p.encoder_len = g.encoder_len;
  p.k_video_begin = int(g.video_begin());
  p.k_encoder_begin = int(g.encoder_begin());
  const bool video_only = video_queries_only(ranges, params);
  p.q_video_begin = video_only ? 0 : int(g.video_begin());
  p.q_encoder_begin = video_only ? 0 : int(g.encoder_begin());
  p.encoder_query_rows = video_only ? 0 : g.encoder_len;
  p.encoder_valid = params.encoder_valid;

  const PackedPlanLayout layout = packed_plan_layout(g.frames, plan.capacity);
  p.range_offsets = plan.data + layout.range_offsets;
  p.range_begin = plan.data + layout.range_begin;
  p.range_end = plan.data + layout.range_end;
  p.pair_offsets = plan.data + layout.pair_offsets;
  p.pair_begin = plan.data + layout.pair_begin;
  p.pair_end = plan.data + layout.pair_end;
  p.pair_only = plan.data + layout.pair_only;

  p.tiles_per_run = (p.tokens_per_run + M - 1) / M;
  p.encoder_tiles = (p.encoder_query_rows + M - 1) / M;
  const int64_t tiles = int64_t(g.frames / p.frames_per_run) * p.tiles_per_run + p.encoder_tiles;
  const int64_t ctas = int64_t(p.batch) * p.heads_q * tiles;
  if (tiles > INT32_MAX || ctas > INT32_MAX)
    fail("batch x heads x query tiles = " + std::to_string(ctas) + " exceeds the launch limit 2^31-1");
  p.tiles_per_head = int(tiles);
  return p;
}

const KernelEntry* choose_kernel(const KeyRanges& ranges, const FwdParams& p, const AttentionParams& params,
                                 Family family, const char* name) {
  if (name != nullptr) return named_kernel(p, params, family, name);
  return find_kernel(kFwdKernels, family, params.out.dtype, params.q.dtype, params.v.dtype, int(params.q.shape[3]),
                     p.frame_pairs != 0, [&](const KernelEntry& e) {
                       return key_tile_cost(ranges, e) *
                              (e.frame_pairs && !p.frame_pairs ? 1 + kPairCodeShare : 1.0);
                     });
}

void attention(const KeyRanges& ranges, const DevicePlanView& plan, const AttentionParams& params,
               cudaStream_t stream, const LaunchOptions& options) {
  const FwdParams p = build_fwd_params(ranges, plan, params, options.pointers_on_current_device);
  Family family = options.family;
  if (family == KernelFamily::Auto) {
    int device = 0;
    check(cudaGetDevice(&device), "querying the current device");
    family = choose_kernel_family(device, "auto");
  }
  // Both families take the same FwdParams: they tile queries in kQueryTileRows rows alike.
  const KernelEntry* kernel = choose_kernel(ranges, p, params, family, options.kernel);
  if (kernel == nullptr && is_quantized_score(params.q.dtype) && family != Family::Sm90)
    fail(std::string("q and k are ") + dtype_name(params.q.dtype) +
         " (quantised scores), which only the sm90 kernels (H100/H200) run; the kernel family here is sm80");
  if (kernel == nullptr)
    fail(std::string("this build has no ") + family_name(family) + " kernel for " +
         operands(params.q.dtype, params.v.dtype, params.q.shape[3]));
  kernel->launch(p, static_cast<void*>(stream));
}

}  // namespace lvsa::cuda
