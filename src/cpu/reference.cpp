// The oracle: one query at a time, two-pass softmax in double precision. Deliberately
// simple; speed only matters enough for the tests to stay quick.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "key_spans.hpp"
#include "lvsa/attention.hpp"
#include "tensor_io.hpp"

namespace lvsa {

void attention_reference(const KeyRanges& ranges, const AttentionParams& p) {
  validate_attention(ranges, p);
  refuse_quantized_scores(p, "the reference");
  using namespace cpu;
  const Geometry& g = ranges.geometry;
  const int64_t B = p.q.shape[0], Sq = p.q.shape[1], Hq = p.q.shape[2], D = p.q.shape[3];
  const int64_t group = Hq / p.k.shape[2];
  const double scale = p.scale > 0 ? double(p.scale) : 1.0 / std::sqrt(double(D));
  const QueryRows rows = query_rows(ranges, p);
  const int64_t video_end = rows.video_begin + g.video_tokens();

  std::vector<Span> spans;
  std::vector<double> q(D), k(D), v(D), acc(D), logits;
  std::vector<float> out_row(D);
  for (int64_t b = 0; b < B; ++b) {
    const int64_t valid = encoder_valid(ranges, p, b);
    for (int64_t h = 0; h < Hq; ++h) {
      const int64_t kvh = h / group;
      for (int64_t i = 0; i < Sq; ++i) {
        spans.clear();
        if (i >= rows.video_begin && i < video_end)
          video_query_keys(ranges, int((i - rows.video_begin) / g.tokens_per_frame), valid, spans);
        else if (i - rows.encoder_begin < valid)
          encoder_query_keys(ranges, valid, spans);

        load_row(p.q, row_offset(p.q, b, i, h), D, q.data());
        logits.clear();
        for (const Span& s : spans)
          for (int64_t j = s.begin; j < s.end; ++j) {
            load_row(p.k, row_offset(p.k, b, j, kvh), D, k.data());
            double dot = 0;
            for (int64_t d = 0; d < D; ++d) dot += q[d] * k[d];
            logits.push_back(dot * scale);
          }

        std::fill(acc.begin(), acc.end(), 0.0);
        double lse = -std::numeric_limits<double>::infinity();
        if (!logits.empty()) {
          const double max = *std::max_element(logits.begin(), logits.end());
          double sum = 0;
          size_t n = 0;
          for (const Span& s : spans)
            for (int64_t j = s.begin; j < s.end; ++j) {
              const double w = std::exp(logits[n++] - max);
              sum += w;
              load_row(p.v, row_offset(p.v, b, j, kvh), D, v.data());
              for (int64_t d = 0; d < D; ++d) acc[d] += w * v[d];
            }
          for (double& a : acc) a /= sum;
          lse = max + std::log(sum);
        }
        for (int64_t d = 0; d < D; ++d) out_row[d] = float(acc[d]);
        store_row(p.out, row_offset(p.out, b, i, h), D, out_row.data());
        if (p.lse) p.lse[(b * Hq + h) * Sq + i] = float(lse);
      }
    }
  }
}

}  // namespace lvsa
