// Bindings for Gaussian log-densities and precision-Cholesky factors.
#include <cstdint>
#include <string>

#include "common.hpp"
#include "maxlik/gaussian.hpp"

namespace py = pybind11;
using namespace maxlik;
using maxlik::bind::carray;
using maxlik::bind::require;

namespace {

gaussian::CovType cov_type_of(int t) {
  require(t >= 0 && t <= 3, "covariance_type code must be 0..3");
  return static_cast<gaussian::CovType>(t);
}

template <class T>
py::array logpdf_impl(carray<T> X, carray<double> means, carray<double> prec, py::object log_weights,
                      py::object center, int type) {
  require(X.ndim() == 2 && means.ndim() == 2, "X and means must be 2-D");
  const std::size_t N = X.shape(0), D = X.shape(1), K = means.shape(0);
  require(static_cast<std::size_t>(means.shape(1)) == D, "means must have D columns");
  const auto t = cov_type_of(type);
  const std::size_t need = t == gaussian::CovType::full ? K * D * D
                         : t == gaussian::CovType::tied ? D * D
                         : t == gaussian::CovType::diag ? K * D : K;
  require(static_cast<std::size_t>(prec.size()) == need, "precision factor has the wrong size");
  const double* lw = nullptr;
  carray<double> lw_arr, c_arr;
  if (!log_weights.is_none()) {
    lw_arr = log_weights.cast<carray<double>>();
    require(static_cast<std::size_t>(lw_arr.size()) == K, "log_weights must have K entries");
    lw = lw_arr.data();
  }
  const double* c = nullptr;
  if (!center.is_none()) {
    c_arr = center.cast<carray<double>>();
    require(static_cast<std::size_t>(c_arr.size()) == D, "center must have D entries");
    c = c_arr.data();
  }
  auto model = gaussian::make_model<T>(t, K, D, means.data(), prec.data(), lw, c);
  carray<T> out({N, K});
  const T* xp = X.data();
  T* op = out.mutable_data();
  {
    // Safe: the kernel touches only raw buffers kept alive by this frame; no Python objects.
    py::gil_scoped_release nogil;
    gaussian::log_densities(model, xp, N, op);
  }
  return std::move(out);
}

// covariances: (K, D, D) float64 -> (U (K, D, D), status (K,)) with status
// 0 ok, 1 not symmetric, 2 not positive definite.
py::tuple precision_cholesky(carray<double> cov, double sym_tol) {
  require(cov.ndim() == 3 && cov.shape(1) == cov.shape(2), "covariances must be (K, D, D)");
  const std::size_t K = cov.shape(0), D = cov.shape(1);
  carray<double> U({K, D, D});
  py::array_t<std::int32_t> status(static_cast<py::ssize_t>(K));
  const double* a = cov.data();
  double* u = U.mutable_data();
  std::int32_t* s = status.mutable_data();
  {
    py::gil_scoped_release nogil;  // raw buffers only
    std::vector<double> L;
    for (std::size_t k = 0; k < K; ++k)
      s[k] = gaussian::precision_cholesky(a + k * D * D, D, u + k * D * D, sym_tol, L);
  }
  return py::make_tuple(U, status);
}

// Scratch bytes (besides the N x K output) of gaussian_logpdf for the memory
// guard in python/maxlik/stats.py.
double logpdf_scratch_bytes(int itemsize, int type, std::size_t D, std::size_t K) {
  const auto t = cov_type_of(type);
  const int threads = maxlik::get_num_threads();
  return itemsize == 4 ? gaussian::log_densities_scratch_bytes<float>(t, D, K, threads)
                       : gaussian::log_densities_scratch_bytes<double>(t, D, K, threads);
}

}  // namespace

void register_gaussian(py::module_& m) {
  m.def("_logpdf_scratch_bytes", &logpdf_scratch_bytes, py::arg("itemsize"), py::arg("cov_type"),
        py::arg("D"), py::arg("K"));
  m.def("gaussian_logpdf", &logpdf_impl<double>, py::arg("X"), py::arg("means"), py::arg("prec"),
        py::arg("log_weights"), py::arg("center"), py::arg("cov_type"));
  m.def("gaussian_logpdf", &logpdf_impl<float>, py::arg("X"), py::arg("means"), py::arg("prec"),
        py::arg("log_weights"), py::arg("center"), py::arg("cov_type"));
  m.def("precision_cholesky", &precision_cholesky, py::arg("covariances"), py::arg("sym_tol"));
}
