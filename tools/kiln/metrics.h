//===- metrics.h - kiln serve's Prometheus metrics -------------*- C++ -*-===//
//
// Counters, gauges and histograms of a running `kiln serve`, written in the
// Prometheus text exposition format (version 0.0.4) by render(). Updated
// from the scheduler thread (token events) and HTTP threads (responses);
// every member is thread-safe.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_TOOLS_KILN_METRICS_H
#define KILN_TOOLS_KILN_METRICS_H

#include "kiln/kiln.h"

#include <array>
#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace kiln::serve {

/// A cumulative histogram with fixed upper bounds (seconds).
class Histogram {
public:
  explicit Histogram(std::vector<double> bounds);
  void observe(double value);
  /// Appends `name`'s HELP, TYPE, buckets, _sum and _count lines.
  void write(std::string &out, const std::string &name,
             const std::string &help) const;

private:
  std::vector<double> bounds_;
  std::vector<uint64_t> counts_; ///< per bucket, not cumulative; +Inf last
  double sum_ = 0;
  uint64_t count_ = 0;
};

class Metrics {
public:
  Metrics();

  /// A generated token; `sinceLast` is the time since the request's
  /// previous token (negative for its first).
  void onToken(double sinceLast);
  /// A finished request's usage and why it ended.
  void onFinished(const kiln_usage &usage, kiln_finish_reason reason);
  /// An HTTP response sent with `status`.
  void onResponse(int status);

  /// The exposition text; `stats` is the scheduler's snapshot, `active` the
  /// HTTP requests being generated for.
  std::string render(const kiln_scheduler_stats &stats, int64_t active,
                     bool draining) const;

private:
  using Clock = std::chrono::steady_clock;
  mutable std::mutex mutex_;
  Histogram ttft_, itl_, e2e_, queue_;
  std::map<int, uint64_t> responses_;
  std::map<std::string, uint64_t> finished_;
  uint64_t promptTokens_ = 0, completionTokens_ = 0, cachedTokens_ = 0;
  /// Tokens generated in each of the last seconds (a ring indexed by the
  /// second since start), for the tokens/s gauge.
  static constexpr int kWindow = 10;
  std::array<uint64_t, kWindow + 1> perSecond_{};
  std::array<int64_t, kWindow + 1> secondOf_{};
  Clock::time_point start_ = Clock::now();
};

} // namespace kiln::serve

#endif // KILN_TOOLS_KILN_METRICS_H
