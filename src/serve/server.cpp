// Server: wires the store, the backend, the scoring service, the HTTP API, the explanation workers
// and the folder watcher together, and stops them in the reverse order.
#include <fcntl.h>
#include <httplib.h>
#include <openssl/rand.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <optional>
#include <thread>

#include "asdcap/backend.hpp"
#include "asdcap/error.hpp"
#include "asdcap/serve.hpp"
#include "core/files.hpp"
#include "serve/explainer_worker.hpp"
#include "serve/http_api.hpp"
#include "serve/metrics.hpp"
#include "serve/service.hpp"
#include "serve/store.hpp"
#include "serve/watch.hpp"

namespace asdcap {
namespace fs = std::filesystem;
using namespace serve;

namespace {

std::string trim(const std::string& s) {
  const char* ws = " \t\r\n";
  const size_t b = s.find_first_not_of(ws);
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(ws) - b + 1);
}

// HOST:PORT ("[::1]:8080" for IPv6).
std::pair<std::string, int> parse_listen(const std::string& text) {
  const auto colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0)
    throw InvalidArgument("--listen: expected HOST:PORT, got '" + text + "'");
  std::string host = text.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  const std::string port_text = text.substr(colon + 1);
  int port = -1;
  if (!port_text.empty() && port_text.size() <= 5 && std::all_of(port_text.begin(), port_text.end(), ::isdigit))
    port = std::stoi(port_text);
  if (port < 0 || port > 65535) throw InvalidArgument("--listen: invalid port '" + port_text + "'");
  return {host, port};
}

// The token of --token-file, or DATA/token (created with a random token, mode 0600, when missing).
std::string load_token(const ServeOptions& o, std::string& path) {
  if (!o.token_file.empty()) {
    path = o.token_file;
    const std::string token = trim(read_text_file(path));
    if (token.empty()) throw InvalidArgument("--token-file: " + path + " is empty");
    return token;
  }
  path = (fs::path(o.data_dir) / "token").string();
  std::error_code ec;
  if (fs::exists(path, ec)) {
    const std::string token = trim(read_text_file(path));
    if (!token.empty()) return token;
  }
  unsigned char raw[32];
  if (RAND_bytes(raw, sizeof raw) != 1) throw IoError("cannot generate a random token");
  static const char* hex = "0123456789abcdef";
  std::string token;
  for (unsigned char c : raw) {
    token += hex[c >> 4];
    token += hex[c & 15];
  }
  const std::string tmp = path + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (fd < 0) throw IoError(tmp + ": cannot create: " + std::strerror(errno));
  const std::string line = token + "\n";
  const bool ok = ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size()) && ::fsync(fd) == 0;
  ::close(fd);
  if (!ok || ::rename(tmp.c_str(), path.c_str()) != 0) throw IoError(path + ": cannot write the token");
  return token;
}

std::string process_name() {
  char host[256] = {0};
  ::gethostname(host, sizeof host - 1);
  return std::string(host) + ":" + std::to_string(::getpid());
}

// The explanation workers' options (none for --explain none), checked before anything is written.
std::optional<ExplainerOptions> explainer_options(const ServeOptions& o, const std::string& backend_name) {
  if (o.explain == "none") return std::nullopt;
  ExplainerOptions eo;
  eo.explain = o.explain_options;
  try {
    eo.explain.methods = parse_methods(o.explain);
  } catch (const InvalidArgument& e) {
    throw InvalidArgument(std::string("--explain: ") + e.what() + " or none");
  }
  // The CLAP methods take --explain-model, or the scoring model when it is an msclap file.
  eo.explain.model_path = o.explain_model;
  const bool needs_model = std::any_of(eo.explain.methods.begin(), eo.explain.methods.end(),
                                       [](const std::string& m) { return m != "acoustic"; });
  if (needs_model && eo.explain.model_path.empty() && backend_name == "msclap") eo.explain.model_path = o.model_path;
  eo.explain.threads = o.threads;
  eo.workers = o.explain_workers;
  eo.lease_seconds = o.explain_lease_s;
  eo.worker_name = process_name();
  ExplainerWorker::check_options(eo);
  return eo;
}

}  // namespace

struct Server::Impl {
  ServeOptions options;
  std::string host, token_path, scheme = "http";
  int port = 0;
  std::unique_ptr<Store> store;
  std::unique_ptr<EmbeddingBackend> backend;
  Metrics metrics;
  std::unique_ptr<Service> service;
  std::unique_ptr<ExplainerWorker> explainer;
  std::unique_ptr<ApiContext> ctx;
  std::unique_ptr<httplib::Server> http;
  std::unique_ptr<Watcher> watcher;
  std::thread listener;
  std::atomic<bool> listener_done{false};
  bool started = false, stopped = false;

  void log(const std::string& line) const {
    if (options.log) options.log(line);
  }
};

Server::Server(ServeOptions o) : impl_(std::make_unique<Impl>()) {
  Impl& s = *impl_;
  if (o.k < 1) throw InvalidArgument("--k must be at least 1");
  if (o.explain_lease_s < 1) throw InvalidArgument("--explain-lease must be at least 1 second");
  if (o.max_upload_bytes == 0) throw InvalidArgument("--max-upload-mb must be at least 1");
  if (o.tls_cert.empty() != o.tls_key.empty()) throw InvalidArgument("--tls-cert and --tls-key go together");
  std::tie(s.host, s.port) = parse_listen(o.listen);
  if (o.data_dir.empty()) throw InvalidArgument("--data: no folder given");
  const std::string backend_name =
      !o.backend.empty() ? o.backend : (o.model_path.empty() ? "acoustic" : backend_for_model_file(o.model_path));
  const std::optional<ExplainerOptions> explainer = explainer_options(o, backend_name);
  // The explanation methods' models are opened (and a missing captioner refused) before the data
  // folder is created.
  if (explainer) s.explainer = std::make_unique<ExplainerWorker>(*explainer);
  std::error_code ec;
  fs::create_directories(o.data_dir, ec);
  if (ec || !fs::is_directory(o.data_dir))
    throw IoError(o.data_dir + ": cannot create the data folder" + (ec ? ": " + ec.message() : ""));
  o.data_dir = fs::absolute(o.data_dir).string();
  if (o.store.empty()) o.store = "sqlite:" + (fs::path(o.data_dir) / "asdcap.sqlite").string();
  s.options = o;

  BackendOptions bo;
  bo.model_path = o.model_path;
  bo.threads = o.threads;
  s.backend = make_backend(backend_name, bo);
  if (s.backend->machine_scorer())
    throw InvalidArgument("serve: the " + backend_name +
                          " backend trains a model per machine type; serve scores by k-NN (acoustic, msclap, "
                          "panns, laion)");
  s.store = open_store(o.store);
  std::string token_path;
  const std::string token = load_token(o, token_path);
  s.token_path = token_path;

  s.service =
      std::make_unique<Service>(*s.store, *s.backend, s.metrics, o.data_dir, o.k, explainer.has_value(), o.folder_root);
  if (s.explainer) s.explainer->attach(*s.store, s.metrics);

  if (!o.tls_cert.empty()) {
    auto ssl = std::make_unique<httplib::SSLServer>(o.tls_cert.c_str(), o.tls_key.c_str());
    if (!ssl->is_valid()) throw IoError("--tls-cert/--tls-key: cannot load " + o.tls_cert + " and " + o.tls_key);
    s.http = std::move(ssl);
    s.scheme = "https";
  } else {
    s.http = std::make_unique<httplib::Server>();
  }
  // At least 4 request threads, so that reads (the dashboard, /metrics) are answered while long
  // requests (a folder enrolment) run.
  const int cores = o.threads > 0 ? o.threads : static_cast<int>(std::thread::hardware_concurrency());
  const auto http_threads = static_cast<size_t>(std::max(4, cores));
  s.http->new_task_queue = [http_threads] { return new httplib::ThreadPool(http_threads); };
  s.http->set_payload_max_length(o.max_upload_bytes);
  s.http->set_read_timeout(30, 0);
  s.http->set_write_timeout(30, 0);
  s.ctx = std::make_unique<ApiContext>(ApiContext{*s.service, s.metrics, s.explainer.get(), token, o.log, nullptr});
  install_api(*s.http, *s.ctx);
  if (!o.watch_dir.empty())
    s.watcher = std::make_unique<Watcher>(*s.service, o.watch_dir, o.watch_interval_s, o.log, [e = s.explainer.get()] {
      if (e) e->wake();
    });
}

Server::~Server() { stop(); }

void Server::start() {
  Impl& s = *impl_;
  if (s.started) return;
  if (s.port == 0) {
    s.port = s.http->bind_to_any_port(s.host.c_str());
    if (s.port < 0) throw IoError("--listen: cannot bind " + s.host);
  } else if (!s.http->bind_to_port(s.host.c_str(), s.port)) {
    throw IoError("--listen: cannot bind " + s.options.listen + ": " + std::strerror(errno));
  }
  s.started = true;
  s.listener = std::thread([&s] {
    s.http->listen_after_bind();
    s.listener_done = true;
  });
  // Until the accept loop runs, httplib's stop() would not reach it: start() returns once it does.
  while (!s.http->is_running() && !s.listener_done) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  if (s.listener_done) {
    s.listener.join();
    s.started = false;
    throw IoError("--listen: cannot serve on " + s.options.listen);
  }
  if (s.explainer) s.explainer->start();
  if (s.watcher) s.watcher->start();
}

int Server::port() const { return impl_->port; }

std::string Server::url() const {
  const std::string host = impl_->host.find(':') != std::string::npos ? "[" + impl_->host + "]" : impl_->host;
  return impl_->scheme + "://" + host + ":" + std::to_string(impl_->port);
}

std::string Server::token_path() const { return impl_->token_path; }

void Server::stop() {
  Impl& s = *impl_;
  if (!s.started || s.stopped) return;
  s.stopped = true;
  if (s.watcher) s.watcher->stop();
  s.http->stop();
  if (s.listener.joinable()) s.listener.join();
  if (s.explainer) s.explainer->stop();
}

void run_server(const ServeOptions& options, const std::function<bool()>& cancelled) {
  Server server(options);
  server.start();
  if (options.log) {
    options.log("token: " + server.token_path());
    options.log("listening on " + server.url());
  }
  while (!(cancelled && cancelled())) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  if (options.log) options.log("stopping");
  server.stop();
}

}  // namespace asdcap
