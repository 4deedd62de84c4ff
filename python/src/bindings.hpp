// What the binding's source files share: numpy <-> std::vector conversions without extra copies
// of results, the option texts (crop, channels) and the registration function of each part.
#pragma once
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "asdcap/audio.hpp"

namespace asdcap::python {

namespace py = pybind11;

// Float32 C-contiguous view of any array-like (converted when it is not float32 already).
using FloatArray = py::array_t<float, py::array::c_style | py::array::forcecast>;
using DoubleArray = py::array_t<double, py::array::c_style | py::array::forcecast>;

// A numpy array owning `values` (moved, not copied), of the given shape.
template <class T>
py::array_t<T> to_numpy(std::vector<T>&& values, std::vector<py::ssize_t> shape) {
  auto* owned = new std::vector<T>(std::move(values));
  py::capsule owner(owned, [](void* p) { delete static_cast<std::vector<T>*>(p); });
  return py::array_t<T>(std::move(shape), owned->data(), owner);
}
template <class T>
py::array_t<T> to_numpy(std::vector<T>&& values) {
  const auto n = static_cast<py::ssize_t>(values.size());
  return to_numpy(std::move(values), {n});
}

// A 1-D signal (any float dtype, any length >= 1) as a vector; throws InvalidArgument naming `what`.
std::vector<float> signal_vector(const FloatArray& signal, const std::string& what);
// A 2-D [rows x cols] matrix (a 1-D array is one row); throws InvalidArgument naming `what`.
struct Matrix {
  std::vector<float> values;
  int64_t rows = 0, cols = 0;
};
Matrix matrix(const FloatArray& array, const std::string& what);

// One crop text per clip: a single text applies to every clip.
std::vector<CropPolicy> crop_policies(const std::vector<std::string>& crops, size_t clips);

void register_errors(py::module_& m);
void register_clap(py::module_& m);
void register_backend(py::module_& m);
void register_detect(py::module_& m);

}  // namespace asdcap::python
