// Bindings for the loss kernels (maxlik/losses.hpp). Private entry points
// (leading underscore); python/maxlik/losses.py validates and converts the
// arguments (dtype, contiguity, shapes) and implements the reductions.
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "common.hpp"
#include "maxlik/losses.hpp"

namespace py = pybind11;
using maxlik::bind::carray;
using maxlik::bind::require;
namespace L = maxlik::losses;

namespace {

// Pointer to an optional array argument of dtype T with exactly `size`
// elements (None -> nullptr). The caller keeps `keep` alive while it is used.
template <class T>
const T* opt_in(const py::object& o, std::size_t size, const char* name, std::vector<carray<T>>& keep);

// Optional output buffer (must be writeable).
template <class T>
T* opt_out(const py::object& o, std::size_t size, const char* name, std::vector<carray<T>>& keep) {
  if (o.is_none()) return nullptr;
  opt_in<T>(o, size, name, keep);
  return keep.back().mutable_data();  // throws if the array is read-only
}

template <class T>
const T* opt_in(const py::object& o, std::size_t size, const char* name, std::vector<carray<T>>& keep) {
  if (o.is_none()) return nullptr;
  require(py::isinstance<carray<T>>(o), std::string(name) + ": expected a C-contiguous array of the logits' dtype");
  carray<T> a = o.cast<carray<T>>();
  require(static_cast<std::size_t>(a.size()) == size,
          std::string(name) + ": expected " + std::to_string(size) + " elements, got " +
              std::to_string(a.size()));
  keep.push_back(a);
  return a.data();
}

// All-or-nothing writes into a caller's gradient buffer (grad_out=). With
// `stage` the kernel writes into a private buffer that is copied into the
// caller's array only once the whole call has succeeded, so an interrupt
// (Ctrl-C polled between row blocks) or an exception (a bad target row found
// mid-pass, bad_alloc) leaves the caller's array bit-identical to before.
// Without `stage` (a fresh array the caller never saw) the kernel writes in place.
// The private buffer is a numpy array: numpy's allocator asks for huge pages
// on large requests, which makes first-touching it several times cheaper than
// a plain new[] (4 KiB page faults dominated the staged call otherwise).
template <class T> struct StagedOut {
  T* dst = nullptr;
  T* src = nullptr;  // the private buffer's data, or nullptr (no staging)
  std::size_t n = 0;
  py::array_t<T> buf;  // owns src; created and released with the GIL held
  // `stage`: False (write in place), True (allocate the private buffer here) or
  // the private buffer itself (a C-contiguous writeable array of `size`
  // elements of T: the Python layer passes reused memory, maxlik._buffers).
  StagedOut(T* d, std::size_t size, const py::object& stage) : dst(d), n(size) {
    if (d == nullptr || size == 0) return;
    if (py::isinstance<py::array>(stage)) {
      py::array a = py::reinterpret_borrow<py::array>(stage);
      maxlik::bind::require(a.dtype().is(py::dtype::of<T>()) && static_cast<std::size_t>(a.size()) == size &&
                                (a.flags() & py::array::c_style) && a.writeable(),
                            "stage must be a writeable C-contiguous array of the gradient's dtype and size");
      buf = py::reinterpret_borrow<py::array_t<T>>(stage);
      src = static_cast<T*>(a.mutable_data());
    } else if (py::cast<bool>(stage)) {
      buf = py::array_t<T>(static_cast<py::ssize_t>(size));  // MemoryError if refused
      src = buf.mutable_data();
    }
  }
  T* ptr() const { return src ? src : dst; }
  void commit() const {  // the copy is raw memory: safe without the GIL (the check takes it itself)
    if (!src) return;
    // A Ctrl-C that arrived after the kernel's last poll (a kernel shorter
    // than the poll interval never polls) raises here, before the caller's
    // buffer is touched, instead of after it was overwritten.
    maxlik::check_interrupt();
    std::memcpy(dst, src, n * sizeof(T));
  }
};

template <class T>
py::tuple ce_index(carray<T> logits, carray<std::int64_t> target, py::object class_w,
                   py::object row_w, std::int64_t ignore_index, double eps, bool mean,
                   bool want_rows, py::object grad, const py::object& stage) {
  require(logits.ndim() == 2, "logits must be 2-D (N, C)");
  const std::size_t N = logits.shape(0), C = logits.shape(1);
  require(C >= 1, "logits must have at least one class column");
  require(target.ndim() == 1 && static_cast<std::size_t>(target.shape(0)) == N,
          "target must have shape (N,) matching logits");
  std::vector<carray<T>> keep;
  const T* cw = opt_in<T>(class_w, C, "weight", keep);
  const T* rw = opt_in<T>(row_w, N, "sample_weight", keep);
  StagedOut<T> g(opt_out<T>(grad, N * C, "grad_out", keep), N * C, stage);
  T* gp = g.ptr();
  py::array_t<T> rows = want_rows ? py::array_t<T>(N) : py::array_t<T>(0);
  T* rl = want_rows ? rows.mutable_data() : nullptr;
  std::vector<double> bs(maxlik::n_blocks(N));
  const std::int64_t* tp = target.data();
  const T* zp = logits.data();
  double denom, total;
  {
    // Safe: only raw pointers into arrays the caller holds; no Python objects touched.
    py::gil_scoped_release nogil;
    denom = L::softmax_ce_index_check<T>(tp, N, C, cw, rw, ignore_index);
    const T scale = mean ? T(1.0 / denom) : T(1);
    L::softmax_ce_index<T>(zp, N, C, tp, cw, rw, ignore_index, T(eps), scale, gp, rl, bs.data());
    total = L::merge_blocks(bs.data(), bs.size());
    g.commit();
  }
  return py::make_tuple(total, denom, want_rows ? py::object(rows) : py::object(py::none()));
}

template <class T>
py::tuple ce_prob(carray<T> logits, carray<T> target, py::object class_w, double eps, bool mean,
                  bool want_rows, py::object grad, const py::object& stage) {
  require(logits.ndim() == 2, "logits must be 2-D (N, C)");
  const std::size_t N = logits.shape(0), C = logits.shape(1);
  require(target.ndim() == 2 && static_cast<std::size_t>(target.shape(0)) == N &&
              static_cast<std::size_t>(target.shape(1)) == C,
          "target must have the shape of logits");
  std::vector<carray<T>> keep;
  const T* cw = opt_in<T>(class_w, C, "weight", keep);
  StagedOut<T> g(opt_out<T>(grad, N * C, "grad_out", keep), N * C, stage);
  T* gp = g.ptr();
  py::array_t<T> rows = want_rows ? py::array_t<T>(N) : py::array_t<T>(0);
  T* rl = want_rows ? rows.mutable_data() : nullptr;
  std::vector<double> bs(maxlik::n_blocks(N));
  // Loose enough for float32-computed probabilities handed over as float64
  // (rounding grows with C), tight enough to catch unnormalised rows.
  const T tol = sizeof(T) == 4 ? T(1e-4) : T(1e-6 * std::max(1.0, double(C) / 10.0));
  std::int64_t bad = -1;
  int kind = 0;
  double total;
  {
    // Safe: only raw pointers into arrays the caller holds; no Python objects touched.
    py::gil_scoped_release nogil;
    const T scale = mean ? T(1.0 / double(N)) : T(1);
    L::softmax_ce_prob<T>(logits.data(), N, C, target.data(), cw, T(eps), tol, scale, gp, rl,
                          bs.data(), &bad, &kind);
    total = L::merge_blocks(bs.data(), bs.size());
    if (bad < 0) g.commit();  // a bad target row raises below: the caller's buffer stays as it was
  }
  if (bad >= 0) {
    const T* t = target.data() + bad * C;
    double s = 0;
    for (std::size_t c = 0; c < C; ++c) s += t[c];
    if (kind == 1)
      throw std::invalid_argument("target holds class probabilities, which must be non-negative "
                                  "(and not NaN); row " + std::to_string(bad) + " is not");
    throw std::invalid_argument("target holds class probabilities, whose rows must sum to 1; row " +
                                std::to_string(bad) + " sums to " + std::to_string(s));
  }
  return py::make_tuple(total, double(N), want_rows ? py::object(rows) : py::object(py::none()));
}

template <class T>
py::tuple bce(carray<T> x, carray<T> t, py::object weight, py::object pos_weight, double scale,
              bool want_elems, py::object grad, const py::object& stage) {
  const std::size_t n = x.size();
  require(static_cast<std::size_t>(t.size()) == n, "target must have the shape of logits");
  std::vector<carray<T>> keep;
  const T* w = opt_in<T>(weight, n, "weight", keep);
  const T* pw = opt_in<T>(pos_weight, n, "pos_weight", keep);
  StagedOut<T> g(opt_out<T>(grad, n, "grad_out", keep), n, stage);
  T* gp = g.ptr();
  py::array_t<T> el = want_elems ? py::array_t<T>(n) : py::array_t<T>(0);
  T* ep = want_elems ? el.mutable_data() : nullptr;
  std::vector<double> bs(maxlik::n_blocks(n, L::kElemBlock));
  double total;
  {
    // Safe: only raw pointers into arrays the caller holds; no Python objects touched.
    py::gil_scoped_release nogil;
    L::bce_with_logits<T>(x.data(), t.data(), n, w, pw, T(scale), gp, ep, bs.data());
    total = L::merge_blocks(bs.data(), bs.size());
    g.commit();
  }
  return py::make_tuple(total, want_elems ? py::object(el) : py::object(py::none()));
}

template <class T>
py::tuple gnll(carray<T> mu, carray<T> t, carray<T> var, std::size_t R, std::size_t K,
               bool var_per_row, double eps, bool full, double scale, bool want_elems,
               py::object grad_mu, py::object grad_var) {
  const std::size_t n = R * K;
  require(static_cast<std::size_t>(mu.size()) == n && static_cast<std::size_t>(t.size()) == n,
          "mean and target must have R*K elements");
  require(static_cast<std::size_t>(var.size()) == (var_per_row ? R : n), "var has the wrong size");
  std::vector<carray<T>> keep;
  T* gm = opt_out<T>(grad_mu, n, "grad_mean", keep);
  T* gv = opt_out<T>(grad_var, var_per_row ? R : n, "grad_var", keep);
  py::array_t<T> el = want_elems ? py::array_t<T>(n) : py::array_t<T>(0);
  T* ep = want_elems ? el.mutable_data() : nullptr;
  std::vector<double> bs(L::gaussian_nll_blocks(R, K, var_per_row));
  double total;
  {
    // Safe: only raw pointers into arrays the caller holds; no Python objects touched.
    py::gil_scoped_release nogil;
    L::gaussian_nll<T>(mu.data(), t.data(), var.data(), R, K, var_per_row, T(eps), full, T(scale),
                       gm, gv, ep, bs.data());
    total = L::merge_blocks(bs.data(), bs.size());
  }
  return py::make_tuple(total, want_elems ? py::object(el) : py::object(py::none()));
}

template <class T>
py::tuple mse(carray<T> x, carray<T> t, double scale, bool want_elems, py::object grad,
              const py::object& stage) {
  const std::size_t n = x.size();
  require(static_cast<std::size_t>(t.size()) == n, "target must have the shape of input");
  std::vector<carray<T>> keep;
  StagedOut<T> g(opt_out<T>(grad, n, "grad_out", keep), n, stage);
  T* gp = g.ptr();
  py::array_t<T> el = want_elems ? py::array_t<T>(n) : py::array_t<T>(0);
  T* ep = want_elems ? el.mutable_data() : nullptr;
  std::vector<double> bs(maxlik::n_blocks(n, L::kElemBlock));
  double total;
  {
    // Safe: only raw pointers into arrays the caller holds; no Python objects touched.
    py::gil_scoped_release nogil;
    L::mse<T>(x.data(), t.data(), n, T(scale), gp, ep, bs.data());
    total = L::merge_blocks(bs.data(), bs.size());
    g.commit();
  }
  return py::make_tuple(total, want_elems ? py::object(el) : py::object(py::none()));
}


// Objective pieces of LogisticRegression: (sum_i sw_i CE_i, grad_W (K, D), grad_b (K)).
py::tuple linear_ce(carray<double> X, carray<double> W, py::object b, carray<std::int64_t> y,
                    carray<double> sw) {
  require(X.ndim() == 2 && W.ndim() == 2 && X.shape(1) == W.shape(1), "X (N, D) and W (K, D)");
  const std::size_t N = X.shape(0), D = X.shape(1), K = W.shape(0);
  require(K >= 1, "W needs at least one row");
  require(static_cast<std::size_t>(y.size()) == N && static_cast<std::size_t>(sw.size()) == N,
          "y and sample_weight need N entries");
  std::vector<carray<double>> keep;
  const double* bp = opt_in<double>(b, K, "intercept", keep);
  const std::int64_t* yp = y.data();
  for (std::size_t i = 0; i < N; ++i)
    require(yp[i] >= 0 && yp[i] < static_cast<std::int64_t>(K == 1 ? 2 : K), "class codes out of range");
  const std::size_t nb = maxlik::n_blocks(N, L::linear_task_rows(N));
  const std::size_t P = K * (D + 1);
  std::vector<double> slots(nb * P), bs(nb);
  py::array_t<double> gW({K, D});
  py::array_t<double> gb(K);
  double* gw = gW.mutable_data();
  double* gbp = gb.mutable_data();
  double total;
  {
    // Safe: only raw pointers into arrays the caller holds; no Python objects touched.
    py::gil_scoped_release nogil;
    L::linear_ce<double>(X.data(), N, D, W.data(), bp, K, yp, sw.data(), slots.data(), bs.data());
    total = L::merge_blocks(bs.data(), nb);
    std::fill(gw, gw + K * D, 0.0);
    std::fill(gbp, gbp + K, 0.0);
    for (std::size_t blk = 0; blk < nb; ++blk) {  // block order: thread-count independent
      const double* s = slots.data() + blk * P;
      for (std::size_t j = 0; j < K * D; ++j) gw[j] += s[j];
      for (std::size_t k = 0; k < K; ++k) gbp[k] += s[K * D + k];
    }
  }
  return py::make_tuple(total, gW, gb);
}

}  // namespace

void register_losses(py::module_& m) {
  // float64 overloads first: pybind11 tries them in order and carray does not
  // convert dtypes (the Python layer has already chosen the dtype).
  // The trailing `stage` (default False; True or a private buffer, see
  // StagedOut) makes the write into `grad` all-or-nothing;
  // python/maxlik/losses.py passes a reused buffer for a caller's grad_out.
  m.def("_softmax_ce_index", &ce_index<double>, py::arg("logits"), py::arg("target"),
        py::arg("weight"), py::arg("sample_weight"), py::arg("ignore_index"), py::arg("eps"),
        py::arg("mean"), py::arg("want_rows"), py::arg("grad"), py::arg("stage") = py::bool_(false));
  m.def("_softmax_ce_index", &ce_index<float>, py::arg("logits"), py::arg("target"),
        py::arg("weight"), py::arg("sample_weight"), py::arg("ignore_index"), py::arg("eps"),
        py::arg("mean"), py::arg("want_rows"), py::arg("grad"), py::arg("stage") = py::bool_(false));
  m.def("_softmax_ce_prob", &ce_prob<double>, py::arg("logits"), py::arg("target"),
        py::arg("weight"), py::arg("eps"), py::arg("mean"), py::arg("want_rows"), py::arg("grad"),
        py::arg("stage") = py::bool_(false));
  m.def("_softmax_ce_prob", &ce_prob<float>, py::arg("logits"), py::arg("target"),
        py::arg("weight"), py::arg("eps"), py::arg("mean"), py::arg("want_rows"), py::arg("grad"),
        py::arg("stage") = py::bool_(false));
  m.def("_bce_with_logits", &bce<double>, py::arg("logits"), py::arg("target"), py::arg("weight"),
        py::arg("pos_weight"), py::arg("scale"), py::arg("want_elems"), py::arg("grad"),
        py::arg("stage") = py::bool_(false));
  m.def("_bce_with_logits", &bce<float>, py::arg("logits"), py::arg("target"), py::arg("weight"),
        py::arg("pos_weight"), py::arg("scale"), py::arg("want_elems"), py::arg("grad"),
        py::arg("stage") = py::bool_(false));
  m.def("_gaussian_nll", &gnll<double>);
  m.def("_gaussian_nll", &gnll<float>);
  m.def("_mse", &mse<double>, py::arg("input"), py::arg("target"), py::arg("scale"),
        py::arg("want_elems"), py::arg("grad"), py::arg("stage") = py::bool_(false));
  m.def("_mse", &mse<float>, py::arg("input"), py::arg("target"), py::arg("scale"),
        py::arg("want_elems"), py::arg("grad"), py::arg("stage") = py::bool_(false));
  m.def("_linear_ce", &linear_ce);
}
