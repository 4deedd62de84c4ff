// Test support: a real `asdcap serve` child process on 127.0.0.1 (a free port), its token, an HTTP
// client for it, and WAV clips to send it.
#pragma once
#include <httplib.h>
#include <sys/types.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace asdcap::test {

using Json = nlohmann::json;

// A temporary folder removed with the object.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

class ServeProcess {
 public:
  // Starts `asdcap serve --listen 127.0.0.1:0 --data DATA <extra>` (`extra` may name another
  // 127.0.0.1 --listen) and waits (up to 60 s) for its "listening on" line; throws std::runtime_error with its stderr
  // when it does not come.
  ServeProcess(const std::string& data_dir, const std::vector<std::string>& extra = {});
  ~ServeProcess();  // SIGTERM, then waits for the exit
  ServeProcess(const ServeProcess&) = delete;
  ServeProcess& operator=(const ServeProcess&) = delete;

  int port() const { return port_; }
  pid_t pid() const { return pid_; }
  const std::string& token() const { return token_; }
  std::unique_ptr<httplib::Client> client() const;
  std::string log() const;
  void kill9();     // SIGKILL, reaped
  int terminate();  // SIGTERM; the exit status (WEXITSTATUS), -1 when it did not exit normally

  // Requests; the body parsed as JSON into `json` (null when it is not JSON).
  struct Reply {
    int status = -1;
    Json json;
    std::string body, content_type;
  };
  Reply get(const std::string& path) const;
  Reply post(const std::string& path, const std::string& body, const std::string& content_type,
             const httplib::Headers& headers = {}, bool with_token = true) const;
  Reply post_audio(const std::string& path, const std::string& wav, const httplib::Headers& headers = {}) const {
    return post(path, wav, "audio/wav", headers);
  }

 private:
  pid_t pid_ = -1;
  int port_ = 0;
  std::string token_, log_path_;
};

// A mono 16-bit WAV file's bytes at 16 kHz: a synthetic fan clip (asdcap::synthesize_clip; the seed
// picks the clip), normal or with the fan's first fault.
std::string machine_wav(uint32_t seed, bool anomalous, double seconds = 3.0);
// Writes bytes to a file.
void write_bytes(const std::string& path, const std::string& bytes);

}  // namespace asdcap::test
