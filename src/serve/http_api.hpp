// The HTTP API v1 (docs/serve.md) on a cpp-httplib server: routes, bearer-token check on every
// POST, JSON errors, request metrics.
#pragma once
#include <functional>
#include <memory>
#include <string>

namespace httplib {
class Server;
}

namespace asdcap::serve {

class Service;
class Metrics;
class ExplainerWorker;

struct ApiContext {
  Service& service;
  Metrics& metrics;
  ExplainerWorker* explainer = nullptr;  // woken when a flagged clip queues a job
  std::string token;                     // bearer token of POST requests
  std::function<void(const std::string&)> log;
  std::shared_ptr<void> routes;  // set by install_api: what the installed handlers refer to
};

// Installs every route, the error and exception handlers on `http`. `ctx` must outlive it.
void install_api(httplib::Server& http, ApiContext& ctx);

// Constant-time comparison of a presented secret with the expected one.
bool secrets_equal(const std::string& presented, const std::string& expected);

}  // namespace asdcap::serve
