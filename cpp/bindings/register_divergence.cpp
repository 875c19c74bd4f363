// Bindings for divergence.hpp: KL to the standard normal and the discrete
// entropy / cross-entropy / KL row reductions. Validation of values (sums to 1,
// negative entries, broadcasting, axis) is done by python/maxlik/divergences.py;
// here only shapes, dtypes and layouts are checked.
#include <cstdint>
#include <string>
#include <vector>

#include "common.hpp"
#include "maxlik/divergence.hpp"
#include "maxlik/moments.hpp"
#include "maxlik/parallel.hpp"

namespace py = pybind11;
using maxlik::bind::carray;
using maxlik::bind::require;

namespace {

template <class T>
py::object kl_std_normal_impl(const py::array& mu_in, const py::array& logvar_in, bool return_grad) {
  carray<T> mu = py::cast<carray<T>>(mu_in);
  carray<T> logvar = py::cast<carray<T>>(logvar_in);
  require(mu.ndim() == 2 && logvar.ndim() == 2, "kl_to_standard_normal: mu and logvar must be 2-D");
  require(mu.shape(0) == logvar.shape(0) && mu.shape(1) == logvar.shape(1),
          "kl_to_standard_normal: mu and logvar must have the same shape");
  const std::size_t N = static_cast<std::size_t>(mu.shape(0));
  const std::size_t D = static_cast<std::size_t>(mu.shape(1));
  carray<T> kl(static_cast<py::ssize_t>(N));
  carray<T> gmu, glv;
  if (return_grad) {
    gmu = carray<T>({mu.shape(0), mu.shape(1)});
    glv = carray<T>({mu.shape(0), mu.shape(1)});
  }
  const T* pm = mu.data();
  const T* px = logvar.data();
  T* pk = kl.mutable_data();
  T* pgm = return_grad ? gmu.mutable_data() : nullptr;
  T* pgx = return_grad ? glv.mutable_data() : nullptr;
  {
    // Safe without the GIL: the kernel touches only raw buffers owned by the
    // arrays above (kept alive by this frame); no Python object or refcount.
    py::gil_scoped_release release;
    const std::size_t buf_elems = std::max(maxlik::divergence::detail::kChunkElems, D);
    maxlik::parallel_for_blocks(N, maxlik::kRowBlock, [&](std::size_t, std::size_t r0, std::size_t r1) {
      thread_local std::vector<T> buf;
      if (buf.size() < buf_elems) buf.resize(buf_elems);
      maxlik::divergence::kl_to_standard_normal_rows<T>(pm, px, r0, r1, D, pk, pgm, pgx, buf.data());
    });
  }
  if (return_grad) return py::make_tuple(kl, gmu, glv);
  return std::move(kl);
}

py::object kl_std_normal(const py::array& mu, const py::array& logvar, bool return_grad) {
  require(mu.dtype().is(logvar.dtype()), "kl_to_standard_normal: mu and logvar must share a dtype");
  if (mu.dtype().is(py::dtype::of<double>())) return kl_std_normal_impl<double>(mu, logvar, return_grad);
  if (mu.dtype().is(py::dtype::of<float>())) return kl_std_normal_impl<float>(mu, logvar, return_grad);
  throw py::type_error("kl_to_standard_normal: expected float32 or float64 arrays");
}

// p, q: 2-D (N, D) arrays whose rows are contiguous; the row stride may be any
// multiple of the item size, including 0 (one row broadcast to all N).
template <class T>
py::tuple discrete_impl(maxlik::divergence::Kind kind, const py::array& p, const py::array& q) {
  const bool two = kind != maxlik::divergence::Kind::entropy;
  require(p.ndim() == 2, "discrete divergence: p must be 2-D");
  const auto N = static_cast<std::size_t>(p.shape(0));
  const auto D = static_cast<std::size_t>(p.shape(1));
  auto row_stride = [&](const py::array& a, const char* name) {
    require(a.ndim() == 2 && static_cast<std::size_t>(a.shape(0)) == N &&
                static_cast<std::size_t>(a.shape(1)) == D,
            std::string("discrete divergence: ") + name + " has the wrong shape");
    require(D <= 1 || a.strides(1) == static_cast<py::ssize_t>(sizeof(T)),
            std::string("discrete divergence: ") + name + " rows must be contiguous");
    require(a.strides(0) % static_cast<py::ssize_t>(sizeof(T)) == 0,
            std::string("discrete divergence: ") + name + " row stride is not a multiple of the item size");
    return static_cast<std::ptrdiff_t>(a.strides(0) / static_cast<py::ssize_t>(sizeof(T)));
  };
  const std::ptrdiff_t ps = row_stride(p, "p");
  const std::ptrdiff_t qs = two ? row_stride(q, "q") : 0;
  const T* pp = static_cast<const T*>(p.data());
  const T* qp = two ? static_cast<const T*>(q.data()) : nullptr;
  carray<T> out(static_cast<py::ssize_t>(N)), sum_p(static_cast<py::ssize_t>(N)),
      sum_q(static_cast<py::ssize_t>(two ? N : 0));
  T* po = out.mutable_data();
  T* psp = sum_p.mutable_data();
  T* psq = two ? sum_q.mutable_data() : nullptr;
  const std::size_t nb = maxlik::n_blocks(N);
  std::vector<maxlik::divergence::BadCount> bad(nb);
  {
    // Safe without the GIL: only raw buffers of arrays owned by this frame are read
    // or written; no Python object or refcount is touched.
    py::gil_scoped_release release;
    maxlik::parallel_for_blocks(N, maxlik::kRowBlock, [&](std::size_t b, std::size_t r0, std::size_t r1) {
      bad[b] = maxlik::divergence::discrete_rows<T>(kind, pp, ps, qp, qs, r0, r1, D, po, psp, psq);
    });
  }
  std::int64_t bp = 0, bq = 0;
  for (const auto& c : bad) {
    bp += c.p;
    bq += c.q;
  }
  return py::make_tuple(out, sum_p, two ? py::object(sum_q) : py::object(py::none()), bp, bq);
}

py::tuple discrete(const std::string& kind_s, const py::array& p, const py::object& q_obj) {
  using maxlik::divergence::Kind;
  Kind kind;
  if (kind_s == "entropy") kind = Kind::entropy;
  else if (kind_s == "cross_entropy") kind = Kind::cross_entropy;
  else if (kind_s == "kl") kind = Kind::kl;
  else throw std::invalid_argument("discrete divergence: unknown kind " + kind_s);
  py::array q = kind == Kind::entropy ? p : py::cast<py::array>(q_obj);
  require(p.dtype().is(q.dtype()), "discrete divergence: p and q must share a dtype");
  if (p.dtype().is(py::dtype::of<double>())) return discrete_impl<double>(kind, p, q);
  if (p.dtype().is(py::dtype::of<float>())) return discrete_impl<float>(kind, p, q);
  throw py::type_error("discrete divergence: expected float32 or float64 arrays");
}

// Mean and scatter for fit_gaussian (mle.py). Bound here rather than in a
// register_mle.cpp so that module.cpp needs no new entry.
template <class T>
py::tuple moments_impl(const py::array& X_in, const py::object& w_obj, bool full) {
  carray<T> X = py::cast<carray<T>>(X_in);
  require(X.ndim() == 2, "gaussian_moments: X must be 2-D");
  const auto N = static_cast<std::size_t>(X.shape(0));
  const auto D = static_cast<std::size_t>(X.shape(1));
  require(N > 0 && D > 0, "gaussian_moments: X must be non-empty");
  carray<double> w;
  const double* pw = nullptr;
  if (!w_obj.is_none()) {
    w = py::cast<carray<double>>(w_obj);
    require(w.ndim() == 1 && static_cast<std::size_t>(w.shape(0)) == N,
            "gaussian_moments: sample_weight must have shape (N,)");
    pw = w.data();
  }
  carray<double> mean(static_cast<py::ssize_t>(D));
  carray<double> amax(static_cast<py::ssize_t>(D));
  carray<double> scatter = full ? carray<double>({X.shape(1), X.shape(1)}) : carray<double>(X.shape(1));
  const T* px = X.data();
  double* pm = mean.mutable_data();
  double* ps = scatter.mutable_data();
  double* pa = amax.mutable_data();
  double W;
  int e = 0;
  {
    // Safe without the GIL: raw buffers of arrays owned by this frame only.
    py::gil_scoped_release release;
    W = maxlik::moments::weighted_scatter<T>(px, pw, N, D, full, pm, ps, &e, pa);
  }
  return py::make_tuple(mean, scatter, W, e, amax);
}

py::tuple gaussian_moments(const py::array& X, const py::object& w, bool full) {
  if (X.dtype().is(py::dtype::of<double>())) return moments_impl<double>(X, w, full);
  if (X.dtype().is(py::dtype::of<float>())) return moments_impl<float>(X, w, full);
  throw py::type_error("gaussian_moments: expected a float32 or float64 array");
}

}  // namespace

void register_divergence(py::module_& m) {
  m.def("kl_to_standard_normal", &kl_std_normal, py::arg("mu"), py::arg("logvar"),
        py::arg("return_grad") = false,
        "Per-row KL(N(mu, exp(logvar)) || N(0, I)) of 2-D C-contiguous arrays; "
        "with return_grad also d/dmu and d/dlogvar.");
  m.def("discrete_divergence", &discrete, py::arg("kind"), py::arg("p"), py::arg("q") = py::none(),
        "Row-wise entropy / cross_entropy / kl (nats) of 2-D arrays with contiguous rows. "
        "Returns (values, sum_p, sum_q, n_bad_p, n_bad_q).");
  m.def("gaussian_moments", &gaussian_moments, py::arg("X"), py::arg("sample_weight"), py::arg("full"),
        "Shifted two-pass weighted mean and scatter (sum of w (x-m)(x-m)^T, or its diagonal) "
        "in float64. Returns (mean, scatter, weight_sum, e, max_abs): the scatter is in units of "
        "2**(2 e) (e = 0 unless max |X| is beyond 2**400 or below 2**-400); max_abs is max |x| "
        "per column over the rows of nonzero weight (NaN entries are skipped).");
}
