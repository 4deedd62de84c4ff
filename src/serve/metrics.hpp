// A small thread-safe registry of Prometheus counters, gauges and histograms, rendered in the
// Prometheus text exposition format (version 0.0.4).
#pragma once
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace asdcap::serve {

using Labels = std::vector<std::pair<std::string, std::string>>;

class Metrics {
 public:
  // Declares a metric family (name, help, type "counter" | "gauge" | "histogram"); histograms take
  // their bucket upper bounds (seconds).
  void declare(const std::string& name, const std::string& help, const std::string& type,
               std::vector<double> buckets = {});
  void add(const std::string& name, const Labels& labels, double v = 1);  // counter
  void set(const std::string& name, const Labels& labels, double v);      // gauge
  void observe(const std::string& name, const Labels& labels, double v);  // histogram
  std::string render() const;

 private:
  struct Series {
    double value = 0;              // counter / gauge
    std::vector<uint64_t> counts;  // histogram: per bucket (not cumulative)
    double sum = 0;
    uint64_t count = 0;
  };
  struct Family {
    std::string help, type;
    std::vector<double> buckets;
    std::map<std::string, Series> series;  // by rendered label set
  };
  Family& family(const std::string& name);
  mutable std::mutex mu_;
  std::map<std::string, Family> families_;
};

// The label set as Prometheus writes it: {a="x",b="y"} with \, " and newlines escaped; "" if none.
std::string render_labels(const Labels& labels);

}  // namespace asdcap::serve
