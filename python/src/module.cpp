// asdcap._asdcap: the compiled half of the Python package `asdcap` (python/asdcap/__init__.py
// re-exports it and adds the msclap-compatible CLAP class).
#include "bindings.hpp"

#include "asdcap/error.hpp"

namespace asdcap::python {

std::vector<float> signal_vector(const FloatArray& signal, const std::string& what) {
  if (signal.ndim() != 1)
    throw InvalidArgument(what + ": expected a 1-D signal, got " + std::to_string(signal.ndim()) + " dimensions");
  if (signal.size() == 0) throw InvalidArgument(what + ": the signal is empty");
  return {signal.data(), signal.data() + signal.size()};
}

Matrix matrix(const FloatArray& array, const std::string& what) {
  Matrix m;
  if (array.ndim() == 1) {
    m.rows = 1;
    m.cols = array.shape(0);
  } else if (array.ndim() == 2) {
    m.rows = array.shape(0);
    m.cols = array.shape(1);
  } else {
    throw InvalidArgument(what + ": expected a 2-D array (rows x dimensions), got " + std::to_string(array.ndim()) +
                          " dimensions");
  }
  m.values.assign(array.data(), array.data() + array.size());
  return m;
}

std::vector<CropPolicy> crop_policies(const std::vector<std::string>& crops, size_t clips) {
  if (crops.size() != 1 && crops.size() != clips)
    throw InvalidArgument("crop: give one crop for all clips or one per clip (" + std::to_string(clips) + " clips, " +
                          std::to_string(crops.size()) + " crops)");
  std::vector<CropPolicy> out;
  for (size_t i = 0; i < clips; ++i) out.push_back(CropPolicy::parse(crops.size() == 1 ? crops[0] : crops[i]));
  return out;
}

}  // namespace asdcap::python

PYBIND11_MODULE(_asdcap, m) {
  m.doc() =
      "asdcap's C++ library: CLAP audio/text embeddings, captions, embedding backends, exact k-NN, "
      "AUC/pAUC, detection and explanation runs. Use it through the package `asdcap`.";
  m.attr("__version__") = ASDCAP_VERSION;
  asdcap::python::register_errors(m);
  asdcap::python::register_clap(m);
  asdcap::python::register_backend(m);
  asdcap::python::register_detect(m);
}
