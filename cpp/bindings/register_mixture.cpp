// Bindings for the fused EM pass (statistics of one E-step + M-step inputs).
#include <cstdint>

#include "common.hpp"
#include "maxlik/mixture.hpp"

namespace py = pybind11;
using namespace maxlik;
using maxlik::bind::carray;
using maxlik::bind::require;
using maxlik::bind::row_weights;

namespace {

// Returns (nk (K,), sx (K, D), sxx, loglik, wsum); sxx upper triangle mirrored.
template <class T>
py::tuple em_stats_impl(carray<T> X, py::object sample_weight, int type, carray<double> shift,
                        py::object means, py::object prec, py::object log_weights, py::object resp,
                        py::object labels, std::size_t K) {
  require(X.ndim() == 2, "X must be 2-D");
  require(type >= 0 && type <= 3, "covariance_type code must be 0..3");
  const auto t = static_cast<gaussian::CovType>(type);
  const std::size_t N = X.shape(0), D = X.shape(1);
  const bool tied = t == gaussian::CovType::tied;
  require(static_cast<std::size_t>(shift.size()) == (tied ? D : K * D), "shift has the wrong size");
  std::vector<T> shift_t(shift.data(), shift.data() + shift.size());
  carray<T> w_arr;
  const T* w = row_weights(sample_weight, N, w_arr);
  mixture::RespSource src = mixture::RespSource::estep;
  gaussian::Model<T> model;
  carray<T> resp_arr;
  py::array_t<std::int64_t, py::array::c_style> lab_arr;
  if (!resp.is_none()) {
    src = mixture::RespSource::dense;
    resp_arr = resp.cast<carray<T>>();
    require(resp_arr.ndim() == 2 && static_cast<std::size_t>(resp_arr.shape(0)) == N &&
                static_cast<std::size_t>(resp_arr.shape(1)) == K,
            "resp must be (N, K)");
  } else if (!labels.is_none()) {
    src = mixture::RespSource::labels;
    lab_arr = labels.cast<py::array_t<std::int64_t, py::array::c_style>>();
    require(static_cast<std::size_t>(lab_arr.size()) == N, "labels must have N entries");
  } else {
    auto mu = means.cast<carray<double>>();
    auto pr = prec.cast<carray<double>>();
    auto lw = log_weights.cast<carray<double>>();
    require(static_cast<std::size_t>(mu.size()) == K * D, "means must be (K, D)");
    require(static_cast<std::size_t>(lw.size()) == K, "log_weights must be (K,)");
    const std::size_t need = t == gaussian::CovType::full ? K * D * D
                           : tied ? D * D
                           : t == gaussian::CovType::diag ? K * D : K;
    require(static_cast<std::size_t>(pr.size()) == need, "precision factor has the wrong size");
    model = gaussian::make_model<T>(t, K, D, mu.data(), pr.data(), lw.data(),
                                    tied ? shift.data() : nullptr);
  }
  // diag and spherical share one statistics layout (Σγ(x−μ)² per feature).
  const auto stat_type = t == gaussian::CovType::spherical ? gaussian::CovType::diag : t;
  mixture::Stats st;
  {
    // Safe: only raw buffers owned by arrays that live in this frame.
    py::gil_scoped_release nogil;
    st = mixture::em_pass<T>(stat_type, src == mixture::RespSource::estep ? &model : nullptr,
                             X.data(), w, N, D, K, shift_t.data(), src,
                             src == mixture::RespSource::dense ? resp_arr.data() : nullptr,
                             src == mixture::RespSource::labels ? lab_arr.data() : nullptr);
  }
  carray<double> nk(static_cast<py::ssize_t>(K));
  std::copy(st.nk.begin(), st.nk.end(), nk.mutable_data());
  carray<double> sx({K, D});
  std::copy(st.sx.begin(), st.sx.end(), sx.mutable_data());
  py::array sxx;
  if (stat_type == gaussian::CovType::full || tied) {
    const std::size_t KK = tied ? 1 : K;
    carray<double> q({KK, D, D});
    double* p = q.mutable_data();
    for (std::size_t k = 0; k < KK; ++k)
      for (std::size_t i = 0; i < D; ++i)
        for (std::size_t j = 0; j < D; ++j)
          p[(k * D + i) * D + j] = j >= i ? st.sxx[(k * D + i) * D + j] : st.sxx[(k * D + j) * D + i];
    sxx = tied ? py::array(q.reshape({D, D})) : py::array(q);
  } else {
    carray<double> q({K, D});
    std::copy(st.sxx.begin(), st.sxx.end(), q.mutable_data());
    sxx = q;
  }
  return py::make_tuple(nk, sx, sxx, st.loglik, st.wsum);
}

// Bytes one em_statistics call allocates (for the memory guard in
// python/maxlik/mixture.py, before anything is allocated).
double em_pass_bytes(int itemsize, int type, std::size_t N, std::size_t D, std::size_t K) {
  require(type >= 0 && type <= 3, "covariance_type code must be 0..3");
  auto t = static_cast<gaussian::CovType>(type);
  if (t == gaussian::CovType::spherical) t = gaussian::CovType::diag;  // shared layout
  const int threads = maxlik::get_num_threads();
  return itemsize == 4 ? mixture::em_pass_bytes<float>(t, N, D, K, threads)
                       : mixture::em_pass_bytes<double>(t, N, D, K, threads);
}

}  // namespace

void register_mixture(py::module_& m) {
    m.def("_em_pass_bytes", &em_pass_bytes, py::arg("itemsize"), py::arg("cov_type"), py::arg("N"),
          py::arg("D"), py::arg("K"));

    m.def("em_statistics", &em_stats_impl<double>, py::arg("X"), py::arg("sample_weight"),
          py::arg("cov_type"), py::arg("shift"), py::arg("means"), py::arg("prec"),
          py::arg("log_weights"), py::arg("resp"), py::arg("labels"),
          py::arg("n_components"));
    m.def("em_statistics", &em_stats_impl<float>, py::arg("X"), py::arg("sample_weight"),
          py::arg("cov_type"), py::arg("shift"), py::arg("means"), py::arg("prec"),
          py::arg("log_weights"), py::arg("resp"), py::arg("labels"),
          py::arg("n_components"));
}
