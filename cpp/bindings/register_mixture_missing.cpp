// Bindings for Gaussian mixtures with missing values (NaN entries): the EM
// statistics pass, per-row observed-data log-densities, and imputation.
#include <cstdint>

#include "common.hpp"
#include "maxlik/mixture_missing.hpp"

namespace py = pybind11;
using namespace maxlik;
using maxlik::bind::carray;
using maxlik::bind::require;
using maxlik::bind::row_weights;

namespace {

mixture_missing::Model model_of(int type, std::size_t D, const carray<double>& means,
                                const carray<double>& prec, const carray<double>& log_weights) {
  require(type >= 0 && type <= 3, "covariance_type code must be 0..3");
  const auto t = static_cast<gaussian::CovType>(type);
  require(means.ndim() == 2 && static_cast<std::size_t>(means.shape(1)) == D,
          "means must be (K, D) with the columns of X");
  const std::size_t K = means.shape(0);
  require(static_cast<std::size_t>(log_weights.size()) == K, "log_weights must be (K,)");
  const std::size_t need = t == gaussian::CovType::full ? K * D * D
                         : t == gaussian::CovType::tied ? D * D
                         : t == gaussian::CovType::diag ? K * D : K;
  require(static_cast<std::size_t>(prec.size()) == need, "precision factor has the wrong size");
  return mixture_missing::make_model(t, K, D, means.data(), prec.data(), log_weights.data());
}

// (nk (K,), sx (K, D), sxx, loglik, wsum) in the layout of em_statistics:
// sxx (K, D, D) full, (D, D) tied (pooled around `shift`), (K, D) diag/spherical.
template <class T>
py::tuple em_missing_impl(carray<T> X, py::object sample_weight, int type, carray<double> shift,
                          carray<double> means, carray<double> prec, carray<double> log_weights) {
  require(X.ndim() == 2, "X must be 2-D");
  const std::size_t N = X.shape(0), D = X.shape(1);
  const auto model = model_of(type, D, means, prec, log_weights);
  const std::size_t K = model.K;
  const bool tied = static_cast<gaussian::CovType>(type) == gaussian::CovType::tied;
  require(static_cast<std::size_t>(shift.size()) == (tied ? D : K * D), "shift has the wrong size");
  carray<T> w_arr;
  const T* w = row_weights(sample_weight, N, w_arr);
  mixture::Stats st;
  {
    py::gil_scoped_release nogil;
    st = mixture_missing::em_missing_pass<T>(model, X.data(), w, N);
  }
  carray<double> nk(static_cast<py::ssize_t>(K));
  std::copy(st.nk.begin(), st.nk.end(), nk.mutable_data());
  carray<double> sx({K, D});
  double* psx = sx.mutable_data();
  std::copy(st.sx.begin(), st.sx.end(), psx);
  py::array sxx;
  if (model.full) {
    // mirror the upper triangles
    std::vector<double> q(K * D * D);
    for (std::size_t k = 0; k < K; ++k)
      for (std::size_t i = 0; i < D; ++i)
        for (std::size_t j = 0; j < D; ++j)
          q[(k * D + i) * D + j] = j >= i ? st.sxx[(k * D + i) * D + j] : st.sxx[(k * D + j) * D + i];
    if (!tied) {
      carray<double> out({K, D, D});
      std::copy(q.begin(), q.end(), out.mutable_data());
      sxx = out;
    } else {
      // recentre each component's statistics from μ_k to the centre c and pool:
      // Σγ(x−c) = a + n δ,  Σγ(x−c)(x−c)ᵀ = Q + aδᵀ + δaᵀ + n δδᵀ,  δ = μ_k − c
      carray<double> out({D, D});
      double* po = out.mutable_data();
      std::fill(po, po + D * D, 0.0);
      const double* c = shift.data();
      const double* mu = means.data();
      std::vector<double> delta(D);
      for (std::size_t k = 0; k < K; ++k) {
        for (std::size_t i = 0; i < D; ++i) delta[i] = mu[k * D + i] - c[i];
        const double n = st.nk[k];
        const double* a = st.sx.data() + k * D;
        for (std::size_t i = 0; i < D; ++i)
          for (std::size_t j = 0; j < D; ++j)
            po[i * D + j] += q[(k * D + i) * D + j] + a[i] * delta[j] + delta[i] * a[j] +
                             n * delta[i] * delta[j];
        for (std::size_t i = 0; i < D; ++i) psx[k * D + i] = a[i] + n * delta[i];
      }
      sxx = out;
    }
  } else {
    carray<double> out({K, D});
    std::copy(st.sxx.begin(), st.sxx.end(), out.mutable_data());
    sxx = out;
  }
  return py::make_tuple(nk, sx, sxx, st.loglik, st.wsum);
}

// (N, K) float64: log π_k + log N(x_o | μ_k,o, Σ_k,oo) of every row.
template <class T>
carray<double> logpdf_missing_impl(carray<T> X, int type, carray<double> means, carray<double> prec,
                                   carray<double> log_weights) {
  require(X.ndim() == 2, "X must be 2-D");
  const std::size_t N = X.shape(0), D = X.shape(1);
  const auto model = model_of(type, D, means, prec, log_weights);
  carray<double> out({N, model.K});
  double* po = out.mutable_data();
  {
    py::gil_scoped_release nogil;
    mixture_missing::rows_pass<T>(model, X.data(), N, po, nullptr);
  }
  return out;
}

// A copy of X with each NaN replaced by E[x_m | x_o] under the mixture.
template <class T>
carray<T> impute_impl(carray<T> X, int type, carray<double> means, carray<double> prec,
                      carray<double> log_weights) {
  require(X.ndim() == 2, "X must be 2-D");
  const std::size_t N = X.shape(0), D = X.shape(1);
  const auto model = model_of(type, D, means, prec, log_weights);
  carray<T> out({N, D});
  T* po = out.mutable_data();
  std::copy(X.data(), X.data() + N * D, po);
  {
    py::gil_scoped_release nogil;
    mixture_missing::rows_pass<T>(model, X.data(), N, nullptr, po);
  }
  return out;
}

// Bytes of the per-thread scratch of the passes above (memory guard).
double em_missing_bytes(std::size_t D, std::size_t K) {
  return double(std::max(1, maxlik::get_num_threads())) * mixture_missing::scratch_bytes(D, K);
}

}  // namespace

void register_mixture_missing(py::module_& m) {
  m.def("_em_missing_bytes", &em_missing_bytes, py::arg("D"), py::arg("K"));
  m.def("em_missing_statistics", &em_missing_impl<double>, py::arg("X"), py::arg("sample_weight"),
        py::arg("cov_type"), py::arg("shift"), py::arg("means"), py::arg("prec"),
        py::arg("log_weights"));
  m.def("em_missing_statistics", &em_missing_impl<float>, py::arg("X"), py::arg("sample_weight"),
        py::arg("cov_type"), py::arg("shift"), py::arg("means"), py::arg("prec"),
        py::arg("log_weights"));
  m.def("mixture_logpdf_missing", &logpdf_missing_impl<double>, py::arg("X"), py::arg("cov_type"),
        py::arg("means"), py::arg("prec"), py::arg("log_weights"));
  m.def("mixture_logpdf_missing", &logpdf_missing_impl<float>, py::arg("X"), py::arg("cov_type"),
        py::arg("means"), py::arg("prec"), py::arg("log_weights"));
  m.def("mixture_impute", &impute_impl<double>, py::arg("X"), py::arg("cov_type"),
        py::arg("means"), py::arg("prec"), py::arg("log_weights"));
  m.def("mixture_impute", &impute_impl<float>, py::arg("X"), py::arg("cov_type"),
        py::arg("means"), py::arg("prec"), py::arg("log_weights"));
}
