// The linear grid lookup of `mlplab.nn.hashgrid.GridEncoding` as two fused CPU loops.
//
// grid_lookup_forward(x (B, D) fp32, table (rows, F) fp32, levels...) -> (B, L, F)
// grid_lookup_backward(x, grad (B, L, F) fp32, rows, levels...) -> d table (rows, F)
//
// Per point and level: the 2^D corners' rows and multilinear weights (GridEncoding.taps /
// lookup_indices: int32 products that wrap, dense levels add the axes' shares, hashed ones xor
// them, the level's offset on axis 0), then the weighted sum of the rows. The forward runs
// parallel over points and does the eager code's float operations in its order (corner 0's
// product, then one fused multiply-add per corner, as ATen's vectorised `addcmul_` does; the
// rest built with -ffp-contract=off), so its outputs are the eager path's bit for bit. The
// backward runs parallel over levels (their table regions are disjoint: no atomic adds) in
// blocks of points kept in cache, adding each point's corners in turn: a row's sum is taken in
// another order than the eager corner-by-corner `scatter_add_`s (equal to float rounding), and
// in the same order on any number of threads, so it is reproducible.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <type_traits>
#include <vector>

namespace {

constexpr int kMaxDims = 3;

struct Level {
  float res;
  int32_t top, mask, offset;
  int32_t mult[kMaxDims];
  bool dense;
};

std::vector<Level> levels_of(const at::Tensor& res, const at::Tensor& top, const at::Tensor& mult,
                             const at::Tensor& masks, const at::Tensor& offsets) {
  const int64_t n = res.numel(), d = mult.size(0);
  const auto r = res.contiguous(), t = top.contiguous(), m = mult.contiguous();
  const auto k = masks.contiguous(), o = offsets.contiguous();
  const float* rp = r.data_ptr<float>();
  const int32_t *tp = t.data_ptr<int32_t>(), *mp = m.data_ptr<int32_t>();
  const int32_t *kp = k.data_ptr<int32_t>(), *op = o.data_ptr<int32_t>();
  std::vector<Level> out(n);
  for (int64_t l = 0; l < n; ++l) {
    out[l] = {rp[l], tp[l], kp[l], op[l], {0, 0, 0}, kp[l] == -1};
    for (int64_t a = 0; a < d; ++a) out[l].mult[a] = mp[a * n + l];
  }
  return out;
}

inline float unit(float x) { return (std::min(std::max(x, -1.0f), 1.0f) + 1.0f) * 0.5f; }

// The 2^D corners of the point u on level v; corner c's bit (D - 1 - a) picks axis a's high
// vertex, as GridEncoding orders them (axis 0 most significant).
template <int D>
inline void corners(const float* u, const Level& v, int32_t* rows, float* w) {
  int32_t share[D][2];
  float weight[D][2];
#pragma GCC unroll 4
  for (int a = 0; a < D; ++a) {
    const float p = u[a] * v.res;
    const int32_t base = std::min(static_cast<int32_t>(p), v.top);
    const float frac = p - static_cast<float>(base);
    const uint32_t lo = static_cast<uint32_t>(base) * static_cast<uint32_t>(v.mult[a]);
    share[a][0] = static_cast<int32_t>(lo) & v.mask;
    share[a][1] = static_cast<int32_t>(lo + static_cast<uint32_t>(v.mult[a])) & v.mask;
    weight[a][0] = 1.0f - frac;
    weight[a][1] = frac;
  }
  share[0][0] += v.offset;
  share[0][1] += v.offset;
#pragma GCC unroll 8
  for (int c = 0; c < (1 << D); ++c) {
    int32_t row = share[0][(c >> (D - 1)) & 1];
    float wc = weight[0][(c >> (D - 1)) & 1];
#pragma GCC unroll 4
    for (int a = 1; a < D; ++a) {
      const int bit = (c >> (D - 1 - a)) & 1;
      row = v.dense ? row + share[a][bit] : row ^ share[a][bit];
      wc = wc * weight[a][bit];
    }
    rows[c] = row;
    w[c] = wc;
  }
}

void check(const at::Tensor& x, const at::Tensor& values, int64_t d) {
  TORCH_CHECK(x.device().is_cpu() && values.device().is_cpu(), "grid_lookup: CPU tensors only");
  TORCH_CHECK(x.scalar_type() == at::kFloat && values.scalar_type() == at::kFloat,
              "grid_lookup: float32 coordinates and values");
  TORCH_CHECK(x.dim() == 2 && x.size(1) == d && d >= 1 && d <= kMaxDims,
              "grid_lookup: coordinates (batch, d_in), d_in in 1..3");
}

// FS: the number of features where known at compile time (1, 2, 4), else 0 (read from the table)
template <int D, int FS>
at::Tensor forward_d(const at::Tensor& x, const at::Tensor& table, const std::vector<Level>& lv) {
  constexpr int C = 1 << D;
  const int64_t B = x.size(0), L = lv.size(), F = FS ? FS : table.size(1);
  auto out = at::empty({B, L, F}, table.options());
  const float* xs = x.data_ptr<float>();
  const float* t = table.data_ptr<float>();
  float* o = out.data_ptr<float>();
  at::parallel_for(0, B, 256, [&](int64_t begin, int64_t end) {
    int32_t rows[C];
    float w[C], u[D];
    for (int64_t b = begin; b < end; ++b) {
      for (int a = 0; a < D; ++a) u[a] = unit(xs[b * D + a]);
      for (int64_t l = 0; l < L; ++l) {
        corners<D>(u, lv[l], rows, w);
        if constexpr (FS > 0) {
          float acc[FS];
          const float* src = t + static_cast<int64_t>(rows[0]) * FS;
          for (int f = 0; f < FS; ++f) acc[f] = src[f] * w[0];
#pragma GCC unroll 8
          for (int c = 1; c < C; ++c) {
            src = t + static_cast<int64_t>(rows[c]) * FS;
            for (int f = 0; f < FS; ++f) acc[f] = std::fma(src[f], w[c], acc[f]);
          }
          float* dst = o + (b * L + l) * FS;
          for (int f = 0; f < FS; ++f) dst[f] = acc[f];
        } else {  // features not known at compile time: accumulate in the output
          float* __restrict__ dst = o + (b * L + l) * F;
          const float* src = t + static_cast<int64_t>(rows[0]) * F;
          for (int64_t f = 0; f < F; ++f) dst[f] = src[f] * w[0];
          for (int c = 1; c < C; ++c) {
            src = t + static_cast<int64_t>(rows[c]) * F;
            for (int64_t f = 0; f < F; ++f) dst[f] = std::fma(src[f], w[c], dst[f]);
          }
        }
      }
    }
  });
  return out;
}

template <int D, int FS>
at::Tensor backward_d(const at::Tensor& x, const at::Tensor& grad, int64_t n_rows,
                      const std::vector<Level>& lv) {
  constexpr int C = 1 << D;
  const int64_t B = x.size(0), L = lv.size(), F = FS ? FS : grad.size(2);
  auto out = at::zeros({n_rows, F}, grad.options());
  const float* xs = x.data_ptr<float>();
  const float* g = grad.data_ptr<float>();
  float* o = out.data_ptr<float>();
  at::parallel_for(0, L, 1, [&](int64_t l_begin, int64_t l_end) {
    int32_t rows[C];
    float w[C], u[D];
    constexpr int64_t block = 512;  // points per pass over this thread's levels (grad in cache)
    for (int64_t b0 = 0; b0 < B; b0 += block) {
      const int64_t b1 = std::min(B, b0 + block);
      for (int64_t l = l_begin; l < l_end; ++l)
        for (int64_t b = b0; b < b1; ++b) {
          for (int a = 0; a < D; ++a) u[a] = unit(xs[b * D + a]);
          corners<D>(u, lv[l], rows, w);
          const float* __restrict__ src = g + (b * L + l) * F;
#pragma GCC unroll 8
          for (int c = 0; c < C; ++c) {
            float* __restrict__ dst = o + static_cast<int64_t>(rows[c]) * F;
            for (int64_t f = 0; f < F; ++f) dst[f] = dst[f] + w[c] * src[f];
          }
        }
    }
  });
  return out;
}

template <int V>
using Int = std::integral_constant<int, V>;

// calls fn(Int<D>, Int<FS>) for d in 1..3 and features 1, 2, 4 (FS = features) or other (0)
template <int D, typename Fn>
at::Tensor dispatch_features(int64_t features, Fn&& fn) {
  switch (features) {
    case 1: return fn(Int<D>{}, Int<1>{});
    case 2: return fn(Int<D>{}, Int<2>{});
    case 4: return fn(Int<D>{}, Int<4>{});
    default: return fn(Int<D>{}, Int<0>{});
  }
}

template <typename Fn>
at::Tensor dispatch(int64_t d, int64_t features, Fn&& fn) {
  switch (d) {
    case 1: return dispatch_features<1>(features, fn);
    case 2: return dispatch_features<2>(features, fn);
    default: return dispatch_features<3>(features, fn);
  }
}

at::Tensor grid_lookup_forward(const at::Tensor& x, const at::Tensor& table, const at::Tensor& res,
                               const at::Tensor& top, const at::Tensor& mult,
                               const at::Tensor& masks, const at::Tensor& offsets) {
  check(x, table, mult.size(0));
  const auto lv = levels_of(res, top, mult, masks, offsets);
  const auto xc = x.contiguous(), tc = table.contiguous();
  return dispatch(x.size(1), tc.size(1), [&](auto d, auto f) {
    return forward_d<decltype(d)::value, decltype(f)::value>(xc, tc, lv);
  });
}

at::Tensor grid_lookup_backward(const at::Tensor& x, const at::Tensor& grad, int64_t n_rows,
                                const at::Tensor& res, const at::Tensor& top,
                                const at::Tensor& mult, const at::Tensor& masks,
                                const at::Tensor& offsets) {
  check(x, grad, mult.size(0));
  TORCH_CHECK(grad.dim() == 3 && grad.size(0) == x.size(0) && grad.size(1) == res.numel(),
              "grid_lookup_backward: grad (batch, levels, features)");
  const auto lv = levels_of(res, top, mult, masks, offsets);
  const auto xc = x.contiguous(), gc = grad.contiguous();
  return dispatch(x.size(1), gc.size(2), [&](auto d, auto f) {
    return backward_d<decltype(d)::value, decltype(f)::value>(xc, gc, n_rows, lv);
  });
}

}  // namespace

TORCH_LIBRARY(mlplab_grid, m) {
  m.def("forward(Tensor x, Tensor table, Tensor res, Tensor top, Tensor mult, Tensor masks, "
        "Tensor offsets) -> Tensor");
  m.def("backward(Tensor x, Tensor grad, int rows, Tensor res, Tensor top, Tensor mult, "
        "Tensor masks, Tensor offsets) -> Tensor");
  m.impl("forward", c10::DispatchKey::CPU, TORCH_FN(grid_lookup_forward));
  m.impl("backward", c10::DispatchKey::CPU, TORCH_FN(grid_lookup_backward));
}
