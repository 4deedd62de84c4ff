#include "serve_process.hpp"

#include "asdcap/synth.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sndfile.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace asdcap::test {
namespace fs = std::filesystem;

namespace {

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

ServeProcess::Reply to_reply(const httplib::Result& r) {
  ServeProcess::Reply out;
  if (!r) return out;
  out.status = r->status;
  out.body = r->body;
  out.content_type = r->get_header_value("Content-Type");
  out.json = Json::parse(r->body, nullptr, false);
  if (out.json.is_discarded()) out.json = nullptr;
  return out;
}

}  // namespace

TempDir::TempDir() {
  std::string tmpl = (fs::temp_directory_path() / "asdcap_serve_XXXXXX").string();
  if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
  path_ = tmpl;
}

TempDir::~TempDir() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

ServeProcess::ServeProcess(const std::string& data_dir, const std::vector<std::string>& extra) {
  static int counter = 0;
  log_path_ = data_dir + ".serve" + std::to_string(counter++) + ".log";
  std::vector<std::string> args = {ASDCAP_CLI, "serve", "--data", data_dir, "--threads", "2"};
  if (std::find(extra.begin(), extra.end(), "--listen") == extra.end()) {
    args.push_back("--listen");
    args.push_back("127.0.0.1:0");
  }
  args.insert(args.end(), extra.begin(), extra.end());
  pid_ = ::fork();
  if (pid_ < 0) throw std::runtime_error("fork failed");
  if (pid_ == 0) {
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    const int fd = ::open(log_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) {
      ::dup2(fd, 2);
      ::dup2(fd, 1);
    }
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  const std::regex line("listening on https?://127\\.0\\.0\\.1:([0-9]+)");
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (std::chrono::steady_clock::now() < deadline) {
    std::smatch m;
    const std::string text = slurp(log_path_);
    if (std::regex_search(text, m, line)) {
      port_ = std::stoi(m[1].str());
      break;
    }
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      throw std::runtime_error("asdcap serve exited before listening: " + text);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  if (port_ == 0) {
    kill9();
    throw std::runtime_error("asdcap serve did not print its listening line: " + slurp(log_path_));
  }
  std::string token = slurp(data_dir + "/token");
  for (size_t i = 0; i < extra.size(); ++i)
    if (extra[i] == "--token-file" && i + 1 < extra.size()) token = slurp(extra[i + 1]);
  while (!token.empty() && (token.back() == '\n' || token.back() == ' ')) token.pop_back();
  token_ = token;
}

ServeProcess::~ServeProcess() {
  if (pid_ > 0) terminate();
  std::error_code ec;
  fs::remove(log_path_, ec);
}

std::string ServeProcess::log() const { return slurp(log_path_); }

void ServeProcess::kill9() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGKILL);
  int status = 0;
  ::waitpid(pid_, &status, 0);
  pid_ = -1;
}

int ServeProcess::terminate() {
  if (pid_ <= 0) return -1;
  ::kill(pid_, SIGTERM);
  int status = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (::waitpid(pid_, &status, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() > deadline) {
      kill9();
      return -1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  pid_ = -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::unique_ptr<httplib::Client> ServeProcess::client() const {
  auto c = std::make_unique<httplib::Client>("127.0.0.1", port_);
  c->set_connection_timeout(10, 0);
  c->set_read_timeout(60, 0);
  c->set_write_timeout(60, 0);
  return c;
}

ServeProcess::Reply ServeProcess::get(const std::string& path) const { return to_reply(client()->Get(path.c_str())); }

ServeProcess::Reply ServeProcess::post(const std::string& path, const std::string& body,
                                       const std::string& content_type, const httplib::Headers& headers,
                                       bool with_token) const {
  httplib::Headers h = headers;
  if (with_token) h.emplace("Authorization", "Bearer " + token_);
  return to_reply(client()->Post(path.c_str(), h, body, content_type.c_str()));
}

std::string machine_wav(uint32_t seed, bool anomalous, double seconds) {
  constexpr int kRate = 16000;
  const std::vector<float> x =
      synthesize_clip("fan", "id_00", anomalous ? synth_faults("fan").front() : "none", 7, seed, seconds, kRate);
  std::vector<short> pcm(x.size());
  for (size_t i = 0; i < x.size(); ++i)
    pcm[i] = static_cast<short>(std::lround(std::clamp(static_cast<double>(x[i]), -1.0, 1.0) * 32767));
  // libsndfile's virtual I/O into a string.
  struct Sink {
    std::string bytes;
    sf_count_t pos = 0;
  } sink;
  SF_VIRTUAL_IO io{};
  io.get_filelen = [](void* u) { return static_cast<sf_count_t>(static_cast<Sink*>(u)->bytes.size()); };
  io.seek = [](sf_count_t off, int whence, void* u) {
    auto* s = static_cast<Sink*>(u);
    const sf_count_t base = whence == SEEK_SET   ? 0
                            : whence == SEEK_CUR ? s->pos
                                                 : static_cast<sf_count_t>(s->bytes.size());
    s->pos = base + off;
    return s->pos;
  };
  io.read = [](void* ptr, sf_count_t count, void* u) {
    auto* s = static_cast<Sink*>(u);
    const sf_count_t avail = std::max<sf_count_t>(0, static_cast<sf_count_t>(s->bytes.size()) - s->pos);
    const sf_count_t k = std::min(count, avail);
    std::memcpy(ptr, s->bytes.data() + s->pos, static_cast<size_t>(k));
    s->pos += k;
    return k;
  };
  io.write = [](const void* ptr, sf_count_t count, void* u) {
    auto* s = static_cast<Sink*>(u);
    const auto end = static_cast<size_t>(s->pos + count);
    if (s->bytes.size() < end) s->bytes.resize(end);
    std::memcpy(s->bytes.data() + s->pos, ptr, static_cast<size_t>(count));
    s->pos += count;
    return count;
  };
  io.tell = [](void* u) { return static_cast<Sink*>(u)->pos; };
  SF_INFO info{};
  info.samplerate = kRate;
  info.channels = 1;
  info.format = SF_FORMAT_WAV | SF_FORMAT_PCM_16;
  SNDFILE* f = sf_open_virtual(&io, SFM_WRITE, &info, &sink);
  if (!f) throw std::runtime_error("sf_open_virtual failed");
  sf_write_short(f, pcm.data(), static_cast<sf_count_t>(pcm.size()));
  sf_close(f);
  return sink.bytes;
}

void write_bytes(const std::string& path, const std::string& bytes) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

}  // namespace asdcap::test
