// asdcap serve: continuous machine monitoring. Clips are submitted over a JSON HTTP API (or picked
// up from a watched folder), scored against each machine's normal references by exact k-NN, stored
// with their neighbours, and explained in the background when flagged. See docs/serve.md.
#pragma once
#include <functional>
#include <memory>
#include <string>

#include "asdcap/explain.hpp"

namespace asdcap {

struct ServeOptions {
  std::string listen = "127.0.0.1:8080";  // HOST:PORT; port 0 picks a free one
  std::string data_dir = "asdcap-serve-data";
  std::string store;        // "sqlite:PATH" | "postgresql://..."; empty: sqlite:DATA/asdcap.sqlite
  std::string model_path;   // model file: its backend embeds the clips
  std::string backend;      // overrides the model file's backend; default "acoustic"
  int k = 4;                // neighbours averaged into a score
  std::string token_file;   // empty: a random token in DATA/token (mode 0600)
  std::string watch_dir;    // empty: no folder watching
  std::string folder_root;  // non-empty: references/folder reads only folders under it
  // Explanations of flagged clips: `asdcap explain`'s methods (text, zeroshot, combined, acoustic,
  // all; comma-separated), or "none".
  std::string explain = "acoustic";
  std::string explain_model;  // msclap model file of text / zeroshot / combined; empty: model_path if msclap
  // How the methods run and who phrases them, as for `asdcap explain`: llm, llm_options (given
  // as they are: the CLI fills in OPENAI_BASE_URL / OPENAI_API_KEY), texts, templates,
  // caption_prompt, combined_evidence. Its other fields are not used.
  ExplainOptions explain_options;
  int threads = 0;                // the backend's threads and HTTP request threads (at least 4); 0: all cores
  int explain_workers = 1;        // background explanation threads
  int explain_lease_s = 120;      // a claimed job not finished within this many seconds is taken up again
  std::string tls_cert, tls_key;  // both set: HTTPS
  size_t max_upload_bytes = 64u << 20;
  double watch_interval_s = 1.0;
  std::function<void(const std::string&)> log;  // one line per notable event (stderr in the CLI)
};

// The service: store, machine indexes, HTTP server, explanation workers and folder watcher.
class Server {
 public:
  // Opens the store and the backend. Throws InvalidArgument for bad options, IoError / FormatError /
  // ModelError when the store, data folder or model cannot be used.
  explicit Server(ServeOptions options);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;
  // Binds the listening socket and starts serving on background threads. Throws IoError when the
  // address cannot be bound.
  void start();
  int port() const;
  std::string url() const;         // "http://HOST:PORT" (https with TLS)
  std::string token_path() const;  // the token file in use
  // Stops accepting requests, finishes the ones in flight and joins every thread. Idempotent.
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Starts a Server, logs "listening on URL" and serves until `cancelled` returns true (polled every
// 100 ms), then stops cleanly.
void run_server(const ServeOptions& options, const std::function<bool()>& cancelled);

}  // namespace asdcap
