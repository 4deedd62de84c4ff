// A loopback OpenAI-compatible chat-completions server for tests: binds 127.0.0.1 on a random
// port, serves POST /v1/chat/completions from a thread, records every request, and answers with
// a scripted handler. Handlers that "hang" wait on release() (called by the destructor), so a
// timeout test never leaves a sleeping thread behind.
#pragma once
#include <httplib.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

namespace asdcap::test {

struct RecordedRequest {
  std::string path, authorization, body;
};

class FakeLlmServer {
 public:
  // call: 1 for the first request, 2 for the second...
  using Handler = std::function<void(const httplib::Request&, httplib::Response&, int call, FakeLlmServer&)>;

  explicit FakeLlmServer(Handler handler) : handler_(std::move(handler)) {
    server_.Post("/v1/chat/completions", [this](const httplib::Request& req, httplib::Response& res) {
      int call;
      {
        std::lock_guard<std::mutex> lock(mu_);
        requests_.push_back({req.path, req.get_header_value("Authorization"), req.body});
        call = static_cast<int>(requests_.size());
      }
      handler_(req, res, call, *this);
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    // stop() before the listener runs would be lost and join() would hang: wait until it runs.
    while (!server_.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }

  ~FakeLlmServer() {
    release();
    server_.stop();
    thread_.join();
  }

  std::string base_url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/v1"; }
  int port() const { return port_; }

  std::vector<RecordedRequest> requests() const {
    std::lock_guard<std::mutex> lock(mu_);
    return requests_;
  }

  // For handlers simulating a server that never answers: blocks until release() or `limit`.
  void hang(std::chrono::milliseconds limit = std::chrono::milliseconds(5000)) {
    std::unique_lock<std::mutex> lock(hang_mu_);
    hang_cv_.wait_for(lock, limit, [this] { return released_; });
  }
  void release() {
    {
      std::lock_guard<std::mutex> lock(hang_mu_);
      released_ = true;
    }
    hang_cv_.notify_all();
  }

  // The body of a successful chat completion whose answer is `content`.
  static std::string completion(const std::string& content, const std::string& model = "fake-model") {
    nlohmann::json j = {
        {"id", "chatcmpl-1"},
        {"object", "chat.completion"},
        {"model", model},
        {"choices",
         {{{"index", 0}, {"message", {{"role", "assistant"}, {"content", content}}}, {"finish_reason", "stop"}}}}};
    return j.dump();
  }

 private:
  Handler handler_;
  httplib::Server server_;
  int port_ = -1;
  std::thread thread_;
  mutable std::mutex mu_;
  std::vector<RecordedRequest> requests_;
  std::mutex hang_mu_;
  std::condition_variable hang_cv_;
  bool released_ = false;
};

}  // namespace asdcap::test
