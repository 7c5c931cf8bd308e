//===- metrics.cpp - kiln serve's Prometheus metrics ----------------------===//

#include "metrics.h"

#include <cmath>
#include <cstdio>

namespace kiln::serve {

namespace {

std::string number(double v) {
  if (std::isinf(v))
    return v > 0 ? "+Inf" : "-Inf";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

void header(std::string &out, const std::string &name, const char *type,
            const std::string &help) {
  out += "# HELP " + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
}

void sample(std::string &out, const std::string &name, const char *type,
            const std::string &help, double value) {
  header(out, name, type, help);
  out += name + " " + number(value) + "\n";
}

} // namespace

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)), counts_(bounds_.size() + 1, 0) {}

void Histogram::observe(double value) {
  size_t i = 0;
  while (i < bounds_.size() && value > bounds_[i])
    ++i;
  ++counts_[i];
  sum_ += value;
  ++count_;
}

void Histogram::write(std::string &out, const std::string &name,
                      const std::string &help) const {
  header(out, name, "histogram", help);
  uint64_t cumulative = 0;
  for (size_t i = 0; i <= bounds_.size(); ++i) {
    cumulative += counts_[i];
    std::string le = i < bounds_.size() ? number(bounds_[i]) : "+Inf";
    out += name + "_bucket{le=\"" + le + "\"} " + std::to_string(cumulative) +
           "\n";
  }
  out += name + "_sum " + number(sum_) + "\n";
  out += name + "_count " + std::to_string(count_) + "\n";
}

Metrics::Metrics()
    : ttft_({0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4,
             0.5,   0.75, 1,     2.5,  5,     7.5, 10,   20,  40,  80}),
      itl_({0.005, 0.01, 0.015, 0.02, 0.025, 0.03, 0.04, 0.05, 0.075, 0.1, 0.15,
            0.2, 0.3, 0.4, 0.5, 0.75, 1, 2.5, 5}),
      e2e_({0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15, 20, 30, 40, 50, 60, 120, 240}),
      queue_({0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 40,
              80}) {
  secondOf_.fill(-1);
}

void Metrics::onToken(double sinceLast) {
  std::lock_guard<std::mutex> lock(mutex_);
  ++completionTokens_;
  if (sinceLast >= 0)
    itl_.observe(sinceLast);
  int64_t second =
      std::chrono::duration_cast<std::chrono::seconds>(Clock::now() - start_)
          .count();
  size_t slot = static_cast<size_t>(second % (kWindow + 1));
  if (secondOf_[slot] != second) {
    secondOf_[slot] = second;
    perSecond_[slot] = 0;
  }
  ++perSecond_[slot];
}

void Metrics::onFinished(const kiln_usage &usage, kiln_finish_reason reason) {
  std::lock_guard<std::mutex> lock(mutex_);
  ++finished_[kiln_finish_reason_string(reason)];
  promptTokens_ += usage.prompt_tokens;
  cachedTokens_ += usage.cached_prompt_tokens;
  if (usage.completion_tokens > 0)
    ttft_.observe(usage.ttft_seconds);
  e2e_.observe(usage.total_seconds);
  queue_.observe(usage.queue_seconds);
}

void Metrics::onResponse(int status) {
  std::lock_guard<std::mutex> lock(mutex_);
  ++responses_[status];
}

std::string Metrics::render(const kiln_scheduler_stats &stats, int64_t active,
                            bool draining) const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::string out;
  sample(out, "kiln_num_requests_waiting", "gauge",
         "Requests queued in the scheduler, not yet admitted.", stats.waiting);
  sample(out, "kiln_num_requests_running", "gauge",
         "Requests in the running batch.", stats.running);
  sample(out, "kiln_http_requests_active", "gauge",
         "Generation requests whose HTTP response is not finished.", active);
  sample(out, "kiln_draining", "gauge",
         "1 while the server drains before shutting down.", draining ? 1 : 0);
  sample(out, "kiln_kv_blocks_used", "gauge",
         "KV-cache blocks held by running requests.", stats.kv_blocks_used);
  sample(out, "kiln_kv_blocks_total", "gauge", "KV-cache blocks in all.",
         stats.kv_blocks_total);
  sample(out, "kiln_kv_blocks_cached", "gauge",
         "KV-cache blocks kept in the prefix cache.", stats.kv_blocks_cached);
  sample(out, "kiln_kv_cache_usage_ratio", "gauge",
         "Fraction of KV-cache blocks held by running requests.",
         stats.kv_blocks_total
             ? double(stats.kv_blocks_used) / double(stats.kv_blocks_total)
             : 0.0);
  sample(out, "kiln_steps_total", "counter", "Engine steps run.", stats.steps);
  sample(out, "kiln_preemptions_total", "counter",
         "Requests preempted for lack of KV blocks (recomputed later).",
         stats.preemptions);
  sample(out, "kiln_prompt_tokens_total", "counter",
         "Prompt tokens of finished requests.", promptTokens_);
  sample(out, "kiln_prompt_tokens_cached_total", "counter",
         "Prompt tokens of finished requests found in the prefix cache.",
         cachedTokens_);
  sample(out, "kiln_generation_tokens_total", "counter", "Tokens generated.",
         completionTokens_);

  // Tokens/s over the last kWindow whole seconds.
  int64_t now =
      std::chrono::duration_cast<std::chrono::seconds>(Clock::now() - start_)
          .count();
  uint64_t recent = 0;
  for (size_t i = 0; i < perSecond_.size(); ++i)
    if (secondOf_[i] >= now - kWindow && secondOf_[i] < now)
      recent += perSecond_[i];
  int64_t span = std::min<int64_t>(kWindow, now);
  sample(out, "kiln_generation_tokens_per_second", "gauge",
         "Tokens generated per second over the last 10 s.",
         span > 0 ? double(recent) / double(span) : 0.0);

  header(out, "kiln_request_success_total", "counter",
         "Finished requests by finish reason.");
  for (const auto &[reason, n] : finished_)
    out += "kiln_request_success_total{finished_reason=\"" + reason + "\"} " +
           std::to_string(n) + "\n";
  header(out, "kiln_http_responses_total", "counter",
         "HTTP responses by status code.");
  for (const auto &[status, n] : responses_)
    out += "kiln_http_responses_total{code=\"" + std::to_string(status) +
           "\"} " + std::to_string(n) + "\n";

  ttft_.write(out, "kiln_time_to_first_token_seconds",
              "Time from submission to the first generated token.");
  itl_.write(out, "kiln_inter_token_latency_seconds",
             "Time between consecutive tokens of a request.");
  e2e_.write(out, "kiln_e2e_request_latency_seconds",
             "Time from submission to the end of a request.");
  queue_.write(out, "kiln_request_queue_time_seconds",
               "Time from submission to first being scheduled.");
  return out;
}

} // namespace kiln::serve
