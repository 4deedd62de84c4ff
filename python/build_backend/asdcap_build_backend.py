"""A PEP 517 build backend that builds the Python package with the project's CMake build.

`pip install .` (pyproject.toml at the root names this file) configures the source tree into
`build-wheel/` (or config setting `build-dir`; `cmake-args` adds configure arguments, `jobs` sets the
build's parallelism), builds the `_asdcap` target for the interpreter running pip, and packs
build/python/asdcap into a wheel. Nothing is downloaded: the C++
dependencies are the Debian packages of scripts/setup.sh; ccache is used when it is on PATH.
"""

import base64
import hashlib
import os
import pathlib
import shutil
import subprocess
import sys
import sysconfig
import zipfile

SOURCE = pathlib.Path(__file__).resolve().parents[2]
NAME = "asdcap"


def _version() -> str:
    for line in (SOURCE / "CMakeLists.txt").read_text().splitlines():
        if line.startswith("project(asdcap VERSION"):
            return line.split("VERSION")[1].split()[0]
    raise RuntimeError("CMakeLists.txt: no project version")


def _tag() -> str:
    py = f"cp{sys.version_info.major}{sys.version_info.minor}"
    platform = sysconfig.get_platform().replace("-", "_").replace(".", "_")
    return f"{py}-{py}-{platform}"


def _metadata() -> str:
    return (
        "Metadata-Version: 2.1\n"
        f"Name: {NAME}\n"
        f"Version: {_version()}\n"
        "Summary: Anomalous sound detection with CLAP embeddings, captions and explanations (msclap-compatible)\n"
        "Requires-Python: >=3.9\n"
        "Requires-Dist: numpy\n"
    )


def _build(config_settings) -> pathlib.Path:
    settings = config_settings or {}
    build = pathlib.Path(settings.get("build-dir", SOURCE / "build-wheel"))
    configure = ["cmake", "-S", str(SOURCE), "-B", str(build), "-G", "Ninja", "-DCMAKE_BUILD_TYPE=Release",
                 "-DASDCAP_BENCH=OFF", "-DASDCAP_PYTHON=ON", f"-DPython3_EXECUTABLE={sys.executable}"]
    configure += settings.get("cmake-args", "").split()
    if shutil.which("ccache"):
        configure += ["-DCMAKE_CXX_COMPILER_LAUNCHER=ccache", "-DCMAKE_C_COMPILER_LAUNCHER=ccache"]
    subprocess.run(configure, check=True, stdout=sys.stderr)
    jobs = str(settings.get("jobs", os.cpu_count() or 1))
    subprocess.run(["cmake", "--build", str(build), "--target", "_asdcap", "-j", jobs], check=True, stdout=sys.stderr)
    package = build / "python" / NAME
    if not any(package.glob("_asdcap*.so")):
        raise RuntimeError(f"{package}: the module was not built (is pybind11-dev installed?)")
    return package


def _record_line(name: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def get_requires_for_build_wheel(config_settings=None):
    return []


def prepare_metadata_for_build_wheel(metadata_directory, config_settings=None):
    info = pathlib.Path(metadata_directory) / f"{NAME}-{_version()}.dist-info"
    info.mkdir(parents=True, exist_ok=True)
    (info / "METADATA").write_text(_metadata())
    return info.name


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    package = _build(config_settings)
    dist_info = f"{NAME}-{_version()}.dist-info"
    wheel_name = f"{NAME}-{_version()}-{_tag()}.whl"
    files = {}
    for path in sorted(package.iterdir()):
        if path.is_file() and (path.suffix in (".py", ".pyi", ".so") or path.name == "py.typed"):
            files[f"{NAME}/{path.name}"] = path.read_bytes()
    files[f"{dist_info}/METADATA"] = _metadata().encode()
    files[f"{dist_info}/WHEEL"] = (
        f"Wheel-Version: 1.0\nGenerator: asdcap_build_backend\nRoot-Is-Purelib: false\nTag: {_tag()}\n"
    ).encode()
    record = [_record_line(name, data) for name, data in files.items()] + [f"{dist_info}/RECORD,,"]
    files[f"{dist_info}/RECORD"] = ("\n".join(record) + "\n").encode()
    out = pathlib.Path(wheel_directory) / wheel_name
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as wheel:
        for name, data in files.items():
            wheel.writestr(name, data)
    return wheel_name
