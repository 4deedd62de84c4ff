// libFuzzer target: the HTTP API of `asdcap serve`. An input is the raw bytes a client sends on one
// connection (one request, or up to four kept alive). They go through cpp-httplib's request parsing
// (request line, headers, body: Content-Length, chunked, Expect, ...) and routing to the routes
// install_api() installs, over the real Service on a real SQLite store with the acoustic backend.
//
// Every input starts from the same state, restored before it runs: a data folder in /dev/shm with
// machine fan/id_00 (references 1-3, event 1 normal, event 2 flagged with its explanation job
// queued) and a folder root (--folder-root) holding folder "refs" (three WAVs, one named in bytes
// that are not UTF-8, and a text file). The bearer token is "fuzz-token"; request bodies above
// 256 KiB get 413.
//
// Findings: crashes and sanitizer reports, and any 500 answer (an internal error: in this sandbox the
// store and the data folder always work, so a 500 is a request the API failed to answer as a 4xx).
#include <httplib.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "asdcap/backend.hpp"
#include "asdcap/error.hpp"
#include "serve/http_api.hpp"
#include "serve/metrics.hpp"
#include "serve/service.hpp"
#include "serve/store.hpp"

namespace {

namespace fs = std::filesystem;
using namespace asdcap::serve;

constexpr const char* kToken = "fuzz-token";
constexpr size_t kMaxBody = 256 << 10;
constexpr int kMaxRequests = 4;

// The input as the client side of a connection: reads come from it, then end of stream (the
// client shut its writing side); what the server writes is discarded.
class InputStream final : public httplib::Stream {
 public:
  InputStream(const uint8_t* data, size_t size) : data_(data), size_(size) {}
  bool is_readable() const override { return pos_ < size_; }
  bool is_writable() const override { return true; }
  ssize_t read(char* ptr, size_t size) override {
    const size_t n = std::min(size, size_ - pos_);
    if (n) std::memcpy(ptr, data_ + pos_, n);
    pos_ += n;
    return static_cast<ssize_t>(n);
  }
  ssize_t write(const char*, size_t size) override { return static_cast<ssize_t>(size); }
  using httplib::Stream::write;
  void get_remote_ip_and_port(std::string& ip, int& port) const override {
    ip = "127.0.0.1";
    port = 40000;
  }
  void get_local_ip_and_port(std::string& ip, int& port) const override {
    ip = "127.0.0.1";
    port = 8080;
  }
  socket_t socket() const override { return INVALID_SOCKET; }

 private:
  const uint8_t* data_;
  size_t size_, pos_ = 0;
};

// httplib's server, with the per-connection request loop of its accept thread callable on a stream.
class ConnectionServer final : public httplib::Server {
 public:
  void serve(httplib::Stream& stream) {
    bool closed = false;
    for (int i = 0; i < kMaxRequests && !closed && stream.is_readable(); ++i) {
      const bool last = i + 1 == kMaxRequests;
      if (!process_request(stream, last, closed, nullptr)) break;
    }
  }
};

// A 16-bit mono WAV at 8 kHz: a tone (and a harmonic) of `hz`, with `noise` of a fixed generator.
std::string wav(double hz, double noise, int frames, uint32_t seed) {
  auto u32 = [](std::string& s, uint32_t v) {
    for (int i = 0; i < 4; ++i) s += static_cast<char>((v >> (8 * i)) & 0xff);
  };
  auto u16 = [](std::string& s, uint16_t v) {
    s += static_cast<char>(v & 0xff);
    s += static_cast<char>(v >> 8);
  };
  std::string data;
  for (int i = 0; i < frames; ++i) {
    seed = seed * 1664525u + 1013904223u;
    const double n = noise * (static_cast<double>(seed >> 8) / 16777216.0 - 0.5);
    const double x = 0.4 * std::sin(2 * M_PI * hz * i / 8000) + 0.2 * std::sin(4 * M_PI * hz * i / 8000) + n;
    u16(data, static_cast<uint16_t>(static_cast<int16_t>(std::lround(std::clamp(x, -1.0, 1.0) * 32000))));
  }
  std::string s = "RIFF";
  u32(s, static_cast<uint32_t>(36 + data.size()));
  s += "WAVEfmt ";
  u32(s, 16);
  u16(s, 1);
  u16(s, 1);
  u32(s, 8000);
  u32(s, 16000);
  u16(s, 2);
  u16(s, 16);
  s += "data";
  u32(s, static_cast<uint32_t>(data.size()));
  return s + data;
}

void write_bytes(const fs::path& path, const std::string& bytes) {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f || std::fwrite(bytes.data(), 1, bytes.size(), f) != bytes.size()) __builtin_trap();
  std::fclose(f);
}

// The process's sandbox, built once; never destroyed (the exit handler still uses it).
struct Sandbox {
  fs::path root, data, snapshot, folders;
  std::unique_ptr<asdcap::EmbeddingBackend> backend;

  std::string store_url() const { return "sqlite:" + (data / "asdcap.sqlite").string(); }

  // The state every input starts from: the data folder as the snapshot left it.
  void restore() const {
    std::error_code ec;
    fs::remove_all(data, ec);
    fs::copy(snapshot, data, fs::copy_options::recursive, ec);
    if (ec) {
      std::fprintf(stderr, "fuzz_http_api: cannot restore %s: %s\n", data.c_str(), ec.message().c_str());
      std::abort();
    }
  }
};

struct Instance {
  std::unique_ptr<Store> store;
  Metrics metrics;
  std::unique_ptr<Service> service;
  std::unique_ptr<ApiContext> ctx;
  ConnectionServer http;

  explicit Instance(const Sandbox& box) {
    store = open_store(box.store_url());
    service = std::make_unique<Service>(*store, *box.backend, metrics, box.data.string(), 2, /*explain=*/true,
                                        box.folders.string());
    ctx = std::make_unique<ApiContext>(ApiContext{*service, metrics, nullptr, kToken, nullptr, nullptr});
    http.set_payload_max_length(kMaxBody);
    install_api(http, *ctx);
    http.set_logger([](const httplib::Request& req, const httplib::Response& res) {
      if (res.status != 500) return;
      std::fprintf(stderr, "fuzz_http_api: 500 for %s %s: %s\n", req.method.c_str(), req.path.c_str(),
                   res.body.c_str());
      __builtin_trap();
    });
  }
};

const Sandbox& sandbox() {
  static const Sandbox* const box = [] {
    auto* b = new Sandbox;
    const fs::path base = fs::is_directory("/dev/shm") ? fs::path("/dev/shm") : fs::temp_directory_path();
    // Sandboxes of earlier processes that crashed (no exit handler ran) are removed.
    const std::string prefix = "asdcap-fuzz-http-";
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(base, ec)) {
      const std::string name = e.path().filename().string();
      if (name.rfind(prefix, 0) != 0) continue;
      const long pid = std::strtol(name.c_str() + prefix.size(), nullptr, 10);
      if (pid > 0 && ::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH) fs::remove_all(e.path(), ec);
    }
    b->root = base / (prefix + std::to_string(::getpid()));
    b->data = b->root / "data";
    b->snapshot = b->root / "snapshot";
    b->folders = b->root / "folders";
    fs::remove_all(b->root);
    fs::create_directories(b->folders / "refs");
    fs::create_directories(b->folders / "empty");
    write_bytes(b->folders / "refs" / "a.wav", wav(440, 0.05, 2000, 11));
    write_bytes(b->folders / "refs" / "b.wav", wav(445, 0.05, 2000, 12));
    write_bytes(b->folders / "refs" / "\xff-c.wav", wav(450, 0.05, 2000, 13));  // a name that is not UTF-8
    write_bytes(b->folders / "refs" / "notes.txt", "not audio\n");
    std::atexit([] {
      std::error_code ec;
      fs::remove_all(sandbox().root, ec);
    });
    asdcap::BackendOptions bo;
    bo.threads = 1;
    b->backend = asdcap::make_backend("acoustic", bo);
    {
      Instance it(*b);
      const MachineKey fan{"fan", "id_00"};
      for (int i = 0; i < 3; ++i)
        it.service->enrol(fan, wav(440 + i, 0.05, 4000, 100 + static_cast<uint32_t>(i)), "ref" + std::to_string(i),
                          "upload");
      it.service->submit(fan, wav(441, 0.05, 4000, 101), "normal.wav", "");
      const ScoreResult flagged = it.service->submit(fan, wav(1900, 0.6, 4000, 7), "whine.wav", "");
      if (flagged.event.id != 2 || flagged.event.label != "anomaly") {
        std::fprintf(stderr, "fuzz_http_api: the starting state has no flagged event 2\n");
        std::abort();
      }
    }
    fs::copy(b->data, b->snapshot, fs::copy_options::recursive);
    return b;
  }();
  return *box;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  sandbox();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const Sandbox& box = sandbox();
  box.restore();
  Instance it(box);
  InputStream stream(data, size);
  it.http.serve(stream);
  return 0;
}
