// Internal to asdcap_compare: compare.json, the system list and the comparison page.
#pragma once
#include <string>
#include <vector>

#include "asdcap/compare.hpp"

namespace asdcap {

inline constexpr const char* kCompareManifest = "compare.json";
inline constexpr const char* kCompareTable = "table.csv";

// compare.json: written last by run_compare, read by build_compare_report.
struct CompareManifest {
  std::string data_root, created;
  std::vector<CompareSystem> systems;  // labels resolved
  std::vector<std::string> backends;   // the backend each system ran
};
void write_compare_manifest(const std::string& dir, const CompareManifest& manifest);
CompareManifest read_compare_manifest(const std::string& dir);

// Labels filled in and checked (distinct, usable as folder names); empty: the weight-free backends.
std::vector<CompareSystem> resolve_compare_systems(std::vector<CompareSystem> systems);

// Writes DIR/report.html for the comparison and returns its path.
std::string build_compare_report(const std::string& dir, const CompareTable& table, const CompareManifest& manifest);

}  // namespace asdcap
