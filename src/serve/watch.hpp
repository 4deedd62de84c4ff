// --watch DIR: a thread that polls DIR and scores every new audio file once it is completely written.
//
// Where a file's machine comes from:
//   DIR/<type>/<id>/<file>.wav|.flac                       machine (type, id)
//   DIR/<type>/<split>/<..._id_NN_...>.wav (DCASE names)    machine (type, id_NN); split is train, test,
//                                                           source_test, target_test, supplemental
// A file is taken once its size and modification time have not changed over two polls. Each file is
// scored once: its event carries the idempotency key "watch:<path relative to DIR>", and the keys
// already in the store are loaded at start, so a restart does not score a file again.
#pragma once
#include <atomic>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>

#include "serve/store.hpp"

namespace asdcap::serve {

class Service;

// The machine a file at `relative` (to the watched folder, '/'-separated) belongs to; nullopt when
// the path has neither layout or the names are not valid machine names.
std::optional<MachineKey> watched_machine(const std::string& relative);

class Watcher {
 public:
  Watcher(Service& service, std::string dir, double interval_s, std::function<void(const std::string&)> log,
          std::function<void()> on_flagged);
  ~Watcher();
  Watcher(const Watcher&) = delete;
  Watcher& operator=(const Watcher&) = delete;
  void start();
  void stop();
  // One poll (exposed for tests): returns the number of files scored.
  int poll();

 private:
  struct Seen {
    uintmax_t size = 0;
    int64_t mtime = 0;
    int stable = 0;
  };
  void load_processed();
  void say(const std::string& line);

  Service& service_;
  std::string dir_;
  double interval_s_;
  std::function<void(const std::string&)> log_;
  std::function<void()> on_flagged_;
  std::map<std::string, Seen> seen_;
  std::set<std::string> processed_;  // relative paths
  std::set<std::string> reported_;   // files whose problem was logged once
  std::thread thread_;
  std::atomic<bool> stopping_{false};
  std::mutex mu_;
  std::condition_variable cv_;
};

}  // namespace asdcap::serve
