// Fast CPU attention: flash-attention style online softmax over the plan's key intervals.
//
// Work items are (batch, head, query tile). A tile never crosses a frame boundary, so all
// its rows share one key list; encoder query rows form their own tiles with the dense key
// list. Keys are gathered across interval boundaries into full blocks, so a sparse pattern
// made of many one-frame intervals runs the same full-width inner loops as a dense one and
// time scales with the attended keys. Memory is O(tile) per thread, independent of S.
#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "key_spans.hpp"
#include "lvsa/attention.hpp"
#include "parallel_for.hpp"
#include "tensor_io.hpp"

namespace lvsa {
namespace {

using cpu::Span;

constexpr int kBlockM = 64;  // query rows per tile
constexpr int kBlockN = 64;  // keys per block
constexpr int kLanes = 8;    // score rows are padded to a multiple of this (see row_sum)
constexpr int kRows = 4;     // query rows per register tile: 4x8 fp32 accumulators fit SSE2
constexpr float kLog2e = 1.44269504088896340736f;
constexpr float kLn2 = 0.69314718055994530942f;
constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// 2^x for x <= 0 (scores minus their running maximum), relative error ~2e-7, and exactly 0
// below 2^-126 (including -inf); NaN stays NaN, so a NaN input reaches every output row
// that attends it. libm's exp2f is a call per element; this vectorises.
// The range checks are done on the bits with masks rather than a float conditional: GCC
// will not if-convert float arithmetic under the default -ftrapping-math. A NaN must not
// reach the float-to-int conversion (undefined behaviour), and a negative NaN, whose bits
// compare above -126's, must not be taken for a very negative number and give 0.
inline float exp2_nonpositive(float x) {
  constexpr uint32_t kMinusBits = 0xC2FC0000u;  // -126.0f; more negative floats compare above
  const uint32_t u = std::bit_cast<uint32_t>(x);
  const uint32_t nan = uint32_t((u & 0x7fffffffu) > 0x7f800000u) * 0xffffffffu;
  const uint32_t keep = uint32_t(u <= kMinusBits) * 0xffffffffu & ~nan;
  const float xc = std::bit_cast<float>((u & keep) | (kMinusBits & ~keep));
  const int32_t i = int32_t(xc - 0.5f);  // truncation: nearest integer for xc <= 0
  const float f = xc - float(i);         // in [-0.5, 0.5]
  // Cephes exp2f minimax polynomial on [-0.5, 0.5].
  float p = 1.535336188319500e-4f;
  p = p * f + 1.339887440266574e-3f;
  p = p * f + 9.618437357674640e-3f;
  p = p * f + 5.550332471162809e-2f;
  p = p * f + 2.402264791363012e-1f;
  p = p * f + 6.931472028550421e-1f;
  p = p * f + 1.0f;
  const float result = p * std::bit_cast<float>((uint32_t(i + 127) << 23) & keep);
  return std::bit_cast<float>((std::bit_cast<uint32_t>(result) & ~nan) | (u & nan));
}

// Maps a float to an int32 with the same ordering (negative floats have their magnitude
// bits flipped); it is its own inverse. An integer max reduction vectorises where a float
// one would need -ffast-math.
inline int32_t ordered_bits(int32_t b) { return b ^ ((b >> 31) & 0x7fffffff); }

// max(start, s[0..n)) in that order, which puts a positive NaN above +Inf: a NaN score
// becomes the running maximum and so reaches the output. (std::max(-inf, NaN) is -inf, and
// finite scores minus -inf would be +inf, outside exp2_nonpositive's domain.)
inline float row_max(float start, const float* __restrict s, int n) {
  int32_t m = ordered_bits(std::bit_cast<int32_t>(start));
  for (int j = 0; j < n; ++j) m = std::max(m, ordered_bits(std::bit_cast<int32_t>(s[j])));
  return std::bit_cast<float>(ordered_bits(m));
}

// n must be a multiple of kLanes; fixed-width partial sums vectorise (and, unlike a plain
// float reduction, need no -ffast-math).
inline float row_sum(const float* __restrict s, int n) {
  float lane[kLanes] = {};
  for (int j = 0; j < n; j += kLanes)
    for (int t = 0; t < kLanes; ++t) lane[t] += s[j + t];
  float sum = 0.0f;
  for (int t = 0; t < kLanes; ++t) sum += lane[t];
  return sum;
}

struct Tile {
  int64_t row_begin;  // first query row
  int32_t rows;
  int32_t frame;  // query frame, or -1 for encoder rows
};

// Encoder tiles come first: they are dense, hence the longest items, and the queue hands
// items out in order, so they start early and the cheap video tiles fill in behind them.
std::vector<Tile> make_tiles(const KeyRanges& ranges, const cpu::QueryRows& rows) {
  const Geometry& g = ranges.geometry;
  const int64_t P = g.tokens_per_frame;
  std::vector<Tile> tiles;
  const auto height = [](int64_t left) { return int32_t(std::min<int64_t>(kBlockM, left)); };
  for (int64_t r = 0; r < rows.encoder_rows; r += kBlockM)
    tiles.push_back({rows.encoder_begin + r, height(rows.encoder_rows - r), -1});
  for (int f = 0; f < g.frames; ++f)
    for (int64_t r = 0; r < P; r += kBlockM)
      tiles.push_back({rows.video_begin + f * P + r, height(P - r), f});
  return tiles;
}

// One thread's scratch and the per-tile algorithm. kD is the head dim when it is fixed at
// compile time (0: any head dim). With the V row stride known, GCC keeps P·V in register
// tiles; with a runtime stride it vectorises across keys with shuffles instead and the
// kernel runs at under half the speed, hence the instantiations in attention_cpu.
template <int kD>
class TileWorker {
 public:
  TileWorker(const KeyRanges& ranges, const AttentionParams& p, const std::vector<Tile>& tiles)
      : ranges_(ranges),
        p_(p),
        tiles_(tiles),
        rows_(cpu::query_rows(ranges, p)),
        D_(kD ? kD : int(p.q.shape[3])),
        group_(p.q.shape[2] / p.k.shape[2]),
        q_(size_t(kBlockM) * D_),
        o_(size_t(kBlockM) * D_),
        kt_(size_t(D_) * kBlockN),
        v_(size_t(kBlockN) * D_),
        s_(size_t(kBlockM) * kBlockN),
        m_(kBlockM),
        l_(kBlockM),
        row_(D_) {
    const float scale = p.scale > 0 ? p.scale : 1.0f / std::sqrt(float(dim()));
    // Scores are kept in log2 units so the exponential is a plain 2^x.
    qscale_ = scale * kLog2e;
  }

  void run(int64_t item) {
    const int64_t n_tiles = int64_t(tiles_.size()), Hq = p_.q.shape[2];
    const Tile& tile = tiles_[item % n_tiles];
    const int64_t h = (item / n_tiles) % Hq, b = item / (n_tiles * Hq);
    const int64_t kvh = h / group_;
    const int64_t valid = cpu::encoder_valid(ranges_, p_, b);

    int active = tile.rows;  // rows with keys to attend; padded encoder rows are not
    if (tile.frame >= 0) {
      cpu::video_query_keys(ranges_, tile.frame, valid, spans_);
    } else {
      const int64_t first = tile.row_begin - rows_.encoder_begin;
      active = int(std::clamp<int64_t>(valid - first, 0, tile.rows));
      cpu::encoder_query_keys(ranges_, valid, spans_);
    }

    const int D = dim();
    for (int i = 0; i < active; ++i) {
      float* q = q_.data() + size_t(i) * D;
      cpu::load_row(p_.q, cpu::row_offset(p_.q, b, tile.row_begin + i, h), D, q);
      for (int d = 0; d < D; ++d) q[d] *= qscale_;
    }
    std::fill_n(o_.data(), size_t(active) * D, 0.0f);
    std::fill_n(m_.data(), active, kNegInf);
    std::fill_n(l_.data(), active, 0.0f);

    if (active > 0) {
      size_t span = 0;
      int64_t pos = spans_.empty() ? 0 : spans_[0].begin;
      for (;;) {
        const int n = gather_block(b, kvh, span, pos);
        if (n == 0) break;
        attend_block(active, n);
      }
    }

    for (int i = 0; i < tile.rows; ++i) {
      const int64_t row = tile.row_begin + i;
      // l is >= 1 once a key was seen, and NaN when an attended input was: only rows that
      // saw no key are zeros; NaN rows must stay NaN.
      const bool has_keys = i < active && l_[i] != 0.0f;
      const float inv = has_keys ? 1.0f / l_[i] : 0.0f;
      const float* o = o_.data() + size_t(i) * D;
      for (int d = 0; d < D; ++d) row_[d] = has_keys ? o[d] * inv : 0.0f;
      cpu::store_row(p_.out, cpu::row_offset(p_.out, b, row, h), D, row_.data());
      if (p_.lse)
        p_.lse[(b * Hq + h) * p_.q.shape[1] + row] =
            has_keys ? (m_[i] + std::log2(l_[i])) * kLn2 : kNegInf;
    }
  }

 private:
  int dim() const { return kD ? kD : D_; }

  // Converts the next (up to) kBlockN keys of the tile's key list to fp32: K transposed to
  // [D][kBlockN] so scores vectorise over keys, V as [kBlockN][D] so P·V vectorises over D.
  // The block continues across interval boundaries. Returns the number of keys gathered;
  // the K^T columns up to the next multiple of kLanes are zeroed.
  int gather_block(int64_t b, int64_t kvh, size_t& span, int64_t& pos) {
    const int D = dim();
    float* kt = kt_.data();
    int n = 0;
    while (n < kBlockN && span < spans_.size()) {
      const int take = int(std::min<int64_t>(kBlockN - n, spans_[span].end - pos));
      for (int t = 0; t < take; ++t) {
        const int64_t j = pos + t;
        cpu::load_row(p_.k, cpu::row_offset(p_.k, b, j, kvh), D, row_.data());
        for (int d = 0; d < D; ++d) kt[size_t(d) * kBlockN + n + t] = row_[d];
        cpu::load_row(p_.v, cpu::row_offset(p_.v, b, j, kvh), D, v_.data() + size_t(n + t) * D);
      }
      n += take;
      pos += take;
      if (pos == spans_[span].end && ++span < spans_.size()) pos = spans_[span].begin;
    }
    const int padded = (n + kLanes - 1) / kLanes * kLanes;
    for (int d = 0; d < D; ++d)
      for (int j = n; j < padded; ++j) kt[size_t(d) * kBlockN + j] = 0.0f;
    return n;
  }

  // One online-softmax step of the first `rows` query rows against n gathered keys.
  void attend_block(int rows, int n) {
    const int padded = (n + kLanes - 1) / kLanes * kLanes;
    scores(rows, padded);
    for (int i = 0; i < rows; ++i) softmax_row(i, n, padded);
    accumulate(rows, n);
  }

  // s = q · K^T over the padded block, in register tiles of kRows rows x kLanes keys that
  // accumulate over d (each K^T load feeds kRows rows, nothing round-trips through memory).
  void scores(int rows, int padded) {
    int i = 0;
    for (; i + kRows <= rows; i += kRows) score_tile<kRows>(i, padded);
    for (; i < rows; ++i) score_tile<1>(i, padded);
  }

  template <int R>
  void score_tile(int i, int padded) {
    const int D = dim();
    const float* __restrict q = q_.data() + size_t(i) * D;
    float* __restrict s = s_.data() + size_t(i) * kBlockN;
    for (int j0 = 0; j0 < padded; j0 += kLanes) {
      float acc[R][kLanes] = {};
      for (int d = 0; d < D; ++d) {
        const float* __restrict k = kt_.data() + size_t(d) * kBlockN + j0;
        for (int r = 0; r < R; ++r) {
          const float a = q[r * D + d];
          for (int c = 0; c < kLanes; ++c) acc[r][c] += a * k[c];
        }
      }
      for (int r = 0; r < R; ++r)
        for (int c = 0; c < kLanes; ++c) s[r * kBlockN + j0 + c] = acc[r][c];
    }
  }

  // Turns row i of s into probabilities against the updated running max and rescales the
  // row's accumulator and sum.
  void softmax_row(int i, int n, int padded) {
    float* __restrict s = s_.data() + size_t(i) * kBlockN;
    for (int j = n; j < padded; ++j) s[j] = kNegInf;
    const float m_new = row_max(m_[i], s, padded);
    const float alpha = exp2_nonpositive(m_[i] - m_new);
    for (int j = 0; j < padded; ++j) s[j] = exp2_nonpositive(s[j] - m_new);
    const float block_sum = row_sum(s, padded);
    // A NaN (or +inf) score makes l NaN here (exp2_nonpositive keeps NaN), and NaN stays NaN
    // through every later rescale: run() turns it into a NaN output row.
    l_[i] = l_[i] * alpha + block_sum;
    m_[i] = m_new;
    if (alpha != 1.0f) {
      const int D = dim();
      float* __restrict o = o_.data() + size_t(i) * D;
      for (int d = 0; d < D; ++d) o[d] *= alpha;
    }
  }

  // o += p · V in register tiles of kRows rows x kLanes output dims that accumulate over
  // the keys; head dims that are not a multiple of kLanes take a plain row loop.
  void accumulate(int rows, int n) {
    if (dim() % kLanes != 0) {
      for (int i = 0; i < rows; ++i) accumulate_row(i, n);
      return;
    }
    int i = 0;
    for (; i + kRows <= rows; i += kRows) accumulate_tile<kRows>(i, n);
    for (; i < rows; ++i) accumulate_tile<1>(i, n);
  }

  template <int R>
  void accumulate_tile(int i, int n) {
    const int D = dim();
    const float* __restrict p = s_.data() + size_t(i) * kBlockN;
    float* __restrict o = o_.data() + size_t(i) * D;
    for (int d0 = 0; d0 < D; d0 += kLanes) {
      float acc[R][kLanes];
      for (int r = 0; r < R; ++r)
        for (int c = 0; c < kLanes; ++c) acc[r][c] = o[r * D + d0 + c];
      for (int j = 0; j < n; ++j) {
        const float* __restrict vj = v_.data() + size_t(j) * D + d0;
        for (int r = 0; r < R; ++r) {
          const float w = p[r * kBlockN + j];
          for (int c = 0; c < kLanes; ++c) acc[r][c] += w * vj[c];
        }
      }
      for (int r = 0; r < R; ++r)
        for (int c = 0; c < kLanes; ++c) o[r * D + d0 + c] = acc[r][c];
    }
  }

  void accumulate_row(int i, int n) {
    const int D = dim();
    const float* __restrict p = s_.data() + size_t(i) * kBlockN;
    float* __restrict o = o_.data() + size_t(i) * D;
    for (int j = 0; j < n; ++j) {
      const float w = p[j];
      const float* __restrict vj = v_.data() + size_t(j) * D;
      for (int d = 0; d < D; ++d) o[d] += w * vj[d];
    }
  }

  const KeyRanges& ranges_;
  const AttentionParams& p_;
  const std::vector<Tile>& tiles_;
  const cpu::QueryRows rows_;
  const int D_;
  const int64_t group_;
  float qscale_ = 1.0f;
  std::vector<float> q_, o_, kt_, v_, s_, m_, l_, row_;
  std::vector<Span> spans_;
};

template <int kD>
void run_tiles(const KeyRanges& ranges, const AttentionParams& params, int num_threads) {
  const std::vector<Tile> tiles = make_tiles(ranges, cpu::query_rows(ranges, params));
  const int64_t items = params.q.shape[0] * params.q.shape[2] * int64_t(tiles.size());
  cpu::parallel_for(items, num_threads, [&](cpu::WorkQueue& queue) {
    TileWorker<kD> worker(ranges, params, tiles);
    for (int64_t item; queue.next(item);) worker.run(item);
  });
}

}  // namespace

void attention_cpu(const KeyRanges& ranges, const AttentionParams& params, int num_threads) {
  validate_attention(ranges, params);
  refuse_quantized_scores(params, "the CPU kernels");
  switch (params.q.shape[3]) {
    case 64: return run_tiles<64>(ranges, params, num_threads);
    case 128: return run_tiles<128>(ranges, params, num_threads);
    default: return run_tiles<0>(ranges, params, num_threads);
  }
}

}  // namespace lvsa
