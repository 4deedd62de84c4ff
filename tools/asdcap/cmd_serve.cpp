// asdcap serve: the monitoring service (HTTP API, dashboard, background explanations).
#include <csignal>
#include <cstdio>
#include <memory>

#include "asdcap/error.hpp"
#include "asdcap/serve.hpp"
#include "command.hpp"
#include "options.hpp"
#include "training.hpp"

namespace {

// While serving, SIGINT (Ctrl-C) and SIGTERM ask for a clean stop: requests in flight finish,
// threads are joined, the store is closed.
class StopSignals {
 public:
  StopSignals() {
    asdcap::cli::g_interrupted = 0;
    struct sigaction sa {};
    sa.sa_handler = [](int) { asdcap::cli::g_interrupted = 1; };
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_int_);
    sigaction(SIGTERM, &sa, &old_term_);
    std::signal(SIGPIPE, SIG_IGN);
  }
  ~StopSignals() {
    sigaction(SIGINT, &old_int_, nullptr);
    sigaction(SIGTERM, &old_term_, nullptr);
  }
  StopSignals(const StopSignals&) = delete;
  StopSignals& operator=(const StopSignals&) = delete;
  static bool requested() { return asdcap::cli::g_interrupted != 0; }

 private:
  struct sigaction old_int_ {
  }, old_term_{};
};

void setup(CLI::App& app) {
  auto o = std::make_shared<asdcap::ServeOptions>();
  auto max_upload_mb = std::make_shared<int>(64);
  auto files = std::make_shared<asdcap::cli::ExplainFiles>();
  auto* sub = app.add_subcommand(
      "serve", "Monitoring service: score submitted clips against each machine's references over HTTP (docs/serve.md)");
  sub->add_option("--listen", o->listen, "HOST:PORT to listen on (port 0: any free port)")->capture_default_str();
  sub->add_option("--data", o->data_dir, "Data folder: stored audio, the token and the default SQLite database")
      ->capture_default_str();
  sub->add_option("--store", o->store,
                  "Database: sqlite:PATH or postgresql://USER@HOST/DB (default: sqlite:DATA/asdcap.sqlite)");
  asdcap::cli::add_model(sub, o->model_path, "for the msclap, panns or laion backend (which one: from the file)");
  sub->add_option("--backend", o->backend,
                  "Embedding backend: acoustic, msclap, panns or laion (default: the one for --model's file; acoustic "
                  "without --model)")
      ->check(CLI::IsMember({"acoustic", "msclap", "panns", "laion"}));
  sub->add_option("--k", o->k, "Neighbours averaged into the score")->capture_default_str()->check(CLI::Range(1, 1000));
  sub->add_option("--token-file", o->token_file,
                  "File holding the bearer token of write requests (default: DATA/token, created with a random "
                  "token, mode 0600)")
      ->type_name("FILE");
  sub->add_option("--watch", o->watch_dir,
                  "Score every new file under DIR/<type>/<id>/ (or DCASE names DIR/<type>/test/..._id_NN_...) once "
                  "it is completely written")
      ->type_name("DIR");
  sub->add_option("--folder-root", o->folder_root,
                  "Folder enrolment (references/folder) reads only folders under DIR; a relative path is taken "
                  "from DIR (default: any folder the server can read)")
      ->type_name("DIR")
      ->check(CLI::ExistingDirectory);
  sub->add_option("--explain", o->explain,
                  "Explanations of flagged clips, as `asdcap explain --method`: text, zeroshot, combined (these need "
                  "an msclap model: --explain-model), acoustic (measured evidence) or all (comma-separated list "
                  "allowed); none: no explanations")
      ->capture_default_str();
  sub->add_option("--explain-model", o->explain_model,
                  "msclap model file (with the captioner for text and combined) of the text, zeroshot and combined "
                  "methods (default: --model when it is an msclap file)")
      ->type_name("FILE");
  asdcap::cli::add_explain_flags(sub, o->explain_options, *files);
  sub->add_option("--explain-workers", o->explain_workers, "Background explanation threads")
      ->capture_default_str()
      ->check(CLI::Range(1, 64));
  sub->add_option("--explain-lease", o->explain_lease_s,
                  "Seconds a worker holds an explanation job; a job of a killed process is taken up again after it")
      ->capture_default_str()
      ->check(CLI::Range(1, 86400));
  asdcap::cli::add_threads(sub, o->threads);
  auto* cert = sub->add_option("--tls-cert", o->tls_cert, "PEM certificate: serve HTTPS")->type_name("FILE");
  auto* key = sub->add_option("--tls-key", o->tls_key, "PEM private key of --tls-cert")->type_name("FILE");
  cert->needs(key);
  key->needs(cert);
  sub->add_option("--max-upload-mb", *max_upload_mb, "Largest request body accepted (413 beyond)")
      ->capture_default_str()
      ->check(CLI::Range(1, 4096));
  sub->callback([o, max_upload_mb, files] {
    asdcap::ServeOptions opts = *o;
    opts.max_upload_bytes = static_cast<size_t>(*max_upload_mb) << 20;
    asdcap::cli::require_model_for_backend(opts.backend, opts.model_path);
    asdcap::cli::finish_explain_flags(opts.explain_options, *files);
    opts.log = [](const std::string& line) {
      std::fprintf(stderr, "serve: %s\n", line.c_str());
      std::fflush(stderr);
    };
    const StopSignals signals;
    asdcap::cli::rethrow_for_flags([&] { asdcap::run_server(opts, &StopSignals::requested); });
  });
}

}  // namespace

ASDCAP_REGISTER_COMMAND(45, setup)
