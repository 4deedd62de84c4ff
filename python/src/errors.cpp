// asdcap::Error and its subclasses as Python exceptions with the library's messages:
//   Error(RuntimeError), UsageError(Error), InvalidArgument(Error, ValueError),
//   IoError(Error, OSError), FormatError(Error, ValueError), ModelError(Error), NetworkError(Error, OSError)
#include <Python.h>

#include "asdcap/error.hpp"
#include "bindings.hpp"

namespace asdcap::python {

namespace {

// The exception types live as long as the interpreter (module attributes hold references too).
struct ErrorTypes {
  PyObject *error = nullptr, *usage = nullptr, *invalid = nullptr, *io = nullptr, *format = nullptr, *model = nullptr,
           *network = nullptr;
};
ErrorTypes types;

PyObject* make_type(py::module_& m, const char* name, const char* doc, py::tuple bases) {
  const std::string qualified = std::string("asdcap.") + name;
  PyObject* type = PyErr_NewExceptionWithDoc(qualified.c_str(), doc, bases.ptr(), nullptr);
  if (!type) throw py::error_already_set();
  m.add_object(name, py::reinterpret_borrow<py::object>(type));
  return type;
}

}  // namespace

void register_errors(py::module_& m) {
  const py::handle runtime_error(PyExc_RuntimeError), value_error(PyExc_ValueError), os_error(PyExc_OSError);
  types.error = make_type(m, "Error", "Every failure asdcap reports (asdcap::Error).", py::make_tuple(runtime_error));
  const py::handle error(types.error);
  types.usage = make_type(m, "UsageError", "Bad command-line arguments (asdcap::UsageError).", py::make_tuple(error));
  types.invalid = make_type(m, "InvalidArgument",
                            "An argument the library does not accept: an unknown name, a size or index out of "
                            "range (asdcap::InvalidArgument). Also a ValueError.",
                            py::make_tuple(error, value_error));
  types.io = make_type(m, "IoError", "A file could not be opened, read or written (asdcap::IoError). Also an OSError.",
                       py::make_tuple(error, os_error));
  types.format = make_type(m, "FormatError",
                           "A file's content is not what it should be: corrupt audio, a bad checkpoint "
                           "(asdcap::FormatError). Also a ValueError.",
                           py::make_tuple(error, value_error));
  types.model =
      make_type(m, "ModelError", "A model file lacks something or does not fit the request (asdcap::ModelError).",
                py::make_tuple(error));
  types.network =
      make_type(m, "NetworkError", "A remote service (LLM server) failed (asdcap::NetworkError). Also an OSError.",
                py::make_tuple(error, os_error));

  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const UsageError& e) {
      PyErr_SetString(types.usage, e.what());
    } catch (const InvalidArgument& e) {
      PyErr_SetString(types.invalid, e.what());
    } catch (const IoError& e) {
      PyErr_SetString(types.io, e.what());
    } catch (const FormatError& e) {
      PyErr_SetString(types.format, e.what());
    } catch (const ModelError& e) {
      PyErr_SetString(types.model, e.what());
    } catch (const NetworkError& e) {
      PyErr_SetString(types.network, e.what());
    } catch (const Error& e) {
      PyErr_SetString(types.error, e.what());
    }
  });
}

}  // namespace asdcap::python
