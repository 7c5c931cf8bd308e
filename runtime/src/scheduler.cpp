//===- scheduler.cpp - continuous batching over one engine ----------------===//
//
// kiln_scheduler_t runs one engine on its own thread. A request's tokens
// are its prompt followed by what it generated; `computed` of them are in
// its KV-cache sequence. Every step:
//
//  1. cancelled requests leave, their blocks freed;
//  2. running requests, in admission order, each get the next chunk of
//     their uncomputed tokens (one token when decoding) while the step's
//     token budget lasts; a chunk that needs KV blocks the cache cannot
//     give preempts the most recently admitted other request (its blocks
//     go back, its tokens wait to be recomputed) until it fits;
//  3. waiting requests are admitted first come first served while budget,
//     blocks and running slots last, starting on whatever leading blocks
//     of their tokens the prefix cache holds;
//  4. the engine runs the step (without the lock: submit, cancel and poll
//     go on meanwhile), and every request whose chunk reached the end of
//     its tokens samples its next token, which is detokenized, checked
//     against the stop conditions and sent as an event.
//
// A preempted request keeps its sampler (random state, penalty counts) and
// its output; recomputing it from the start gives the same keys and values
// (the kernels compute a row the same way in any batch), so its output is
// the one it would have had without preemption.
//
//===----------------------------------------------------------------------===//

#include "error.h"
#include "sampling.h"

#include "kiln/kiln.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <deque>
#include <limits>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

double secondsSince(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

/// An event with the storage its pointers refer to.
struct OwnedEvent {
  kiln_event event{};
  std::string text, error;
  std::vector<kiln_token_logprob> top;

  /// Points event's fields at this object's storage (after a copy/move).
  const kiln_event &fix() {
    event.text = text.data();
    event.text_length = text.size();
    event.error = error.c_str();
    event.top = top.empty() ? nullptr : top.data();
    event.num_top = static_cast<int32_t>(top.size());
    return event;
  }
};

struct Request {
  uint64_t id = 0;
  std::vector<int32_t> tokens; ///< prompt, then output
  int64_t promptLength = 0;
  std::unique_ptr<kiln::Sampler> sampler;
  kiln::StopMatcher stop{{}};
  kiln_detokenizer_t *detok = nullptr;
  kiln_event_callback callback = nullptr;
  void *userData = nullptr;

  enum State { Waiting, Running, Finished } state = Waiting;
  int64_t seq = -1;
  int64_t computed = 0;
  uint64_t admission = 0; ///< order of the latest admission
  bool cancelRequested = false;
  kiln_usage usage{};
  Clock::time_point submitted;
  bool scheduledOnce = false, producedToken = false;

  // Poll mode: events not taken yet, the one handed out last, and whether
  // the final one has been taken.
  std::deque<OwnedEvent> events;
  OwnedEvent current;
  bool finalTaken = false;

  ~Request() { kiln_detokenizer_free(detok); }
};

using RequestPtr = std::shared_ptr<Request>;

/// The text `det` releases for token `id` (id < 0: at the end), into `out`,
/// growing the buffer when the detokenizer asks for more (a run of byte
/// tokens can release many bytes at once).
bool detokenize(kiln_detokenizer_t *det, int32_t id, std::string &out) {
  out.resize(256);
  for (;;) {
    size_t n = 0;
    kiln_status_t rc =
        id >= 0 ? kiln_detokenizer_push(det, id, out.data(), out.size(), &n)
                : kiln_detokenizer_finish(det, out.data(), out.size(), &n);
    if (rc == KILN_ERROR_BUFFER_TOO_SMALL) {
      out.resize(n + 1);
      continue;
    }
    out.resize(rc == KILN_OK ? n : 0);
    return rc == KILN_OK;
  }
}

} // namespace

struct kiln_scheduler_t {
  kiln_model_t *model = nullptr;
  kiln_model_info info{};   ///< context_length: the served one (see create)
  int64_t modelContext = 0; ///< the model's own context length
  kiln_engine_t *engine = nullptr;
  kiln_tokenizer_t *tokenizer = nullptr;
  std::vector<int32_t> eosIds;
  int64_t maxStepTokens = 0;
  int32_t maxRunning = 0, maxWaiting = 0;

  std::mutex mu;
  std::condition_variable wake;    ///< the scheduler thread's
  std::condition_variable changed; ///< pollers' and drainers'
  bool stopping = false, draining = false;
  std::deque<RequestPtr> waiting;
  std::vector<RequestPtr> running;
  std::unordered_map<uint64_t, RequestPtr> byId;
  uint64_t nextId = 1, nextAdmission = 1;
  kiln_scheduler_stats stats{};
  std::thread thread;
  /// The engine's block counts as of the last step: get_stats reads these,
  /// as the engine itself is only touched by the scheduler thread.
  int64_t blocksFree = 0, blocksTotal = 0, blocksCached = 0;

  // The step being built (scheduler thread only).
  std::vector<kiln_seq_tokens> stepSeqs;
  std::vector<float> logits;

  ~kiln_scheduler_t() {
    kiln_engine_free(engine);
    kiln_tokenizer_free(tokenizer);
  }

  void run();
  /// Ends `r` (lock held): frees its sequence, records the final event.
  /// Callback events are appended to `out` to be delivered unlocked.
  void finish(const RequestPtr &r, kiln_finish_reason reason,
              const std::string &error, OwnedEvent ev,
              std::vector<std::pair<RequestPtr, OwnedEvent>> &out);
  void deliver(const RequestPtr &r, OwnedEvent ev,
               std::vector<std::pair<RequestPtr, OwnedEvent>> &out);
  void preempt(const RequestPtr &r);
  void snapshotBlocks() {
    blocksFree = kiln_engine_free_blocks(engine);
    blocksTotal = kiln_engine_total_blocks(engine);
    blocksCached = kiln_engine_cached_blocks(engine);
  }
  std::string cacheTooSmall() const {
    return "the KV cache (" + std::to_string(blocksTotal) + " blocks of " +
           std::to_string(info.block_size) +
           " tokens) cannot hold this request; create the scheduler with a "
           "larger kv_cache_tokens";
  }
  int64_t blocksFor(int64_t tokens) const {
    return (tokens + info.block_size - 1) / info.block_size;
  }
};

void kiln_scheduler_t::deliver(
    const RequestPtr &r, OwnedEvent ev,
    std::vector<std::pair<RequestPtr, OwnedEvent>> &out) {
  ev.event.request = r->id;
  ev.event.usage = r->usage;
  ev.event.usage.total_seconds = secondsSince(r->submitted);
  if (r->callback)
    out.emplace_back(r, std::move(ev));
  else {
    r->events.push_back(std::move(ev));
    changed.notify_all();
  }
}

void kiln_scheduler_t::finish(
    const RequestPtr &r, kiln_finish_reason reason, const std::string &error,
    OwnedEvent ev, std::vector<std::pair<RequestPtr, OwnedEvent>> &out) {
  if (r->seq >= 0) {
    kiln_engine_seq_free(engine, r->seq);
    r->seq = -1;
  }
  if (r->state == Request::Running)
    running.erase(std::find(running.begin(), running.end(), r));
  else if (r->state == Request::Waiting)
    waiting.erase(std::find(waiting.begin(), waiting.end(), r));
  r->state = Request::Finished;
  // What is still held back is released: the text can no longer grow into
  // a stop string (unless one matched, when everything after it is gone).
  if (reason != KILN_FINISH_ERROR && !r->stop.stopped()) {
    std::string tail;
    if (r->detok && detokenize(r->detok, -1, tail))
      ev.text += r->stop.feed(tail).text;
    if (!r->stop.stopped())
      ev.text += r->stop.finish();
  }
  ev.event.finish = reason;
  ev.error = error;
  ++stats.requests_finished;
  if (r->callback)
    byId.erase(r->id); // forgotten once the final callback has run
  deliver(r, std::move(ev), out);
}

void kiln_scheduler_t::preempt(const RequestPtr &r) {
  kiln_engine_seq_free(engine, r->seq);
  r->seq = -1;
  r->computed = 0;
  r->state = Request::Waiting;
  ++r->usage.preemptions;
  ++stats.preemptions;
  running.erase(std::find(running.begin(), running.end(), r));
  waiting.push_front(r);
}

void kiln_scheduler_t::run() {
  std::vector<std::pair<RequestPtr, OwnedEvent>> out;
  std::vector<std::pair<RequestPtr, int64_t>> batch;
  std::unique_lock<std::mutex> lock(mu);
  for (;;) {
    wake.wait(lock,
              [&] { return stopping || !waiting.empty() || !running.empty(); });
    if (stopping)
      break;

    // 1. Cancellations.
    std::vector<RequestPtr> cancelled;
    for (const RequestPtr &r : running)
      if (r->cancelRequested)
        cancelled.push_back(r);
    for (const RequestPtr &r : waiting)
      if (r->cancelRequested)
        cancelled.push_back(r);
    for (const RequestPtr &r : cancelled)
      finish(r, KILN_FINISH_CANCELLED, "", OwnedEvent{}, out);

    // 2. Running requests, oldest admission first.
    batch.clear();
    int64_t budget = maxStepTokens;
    // Blocks the step's chunks will take (the engine takes them in the
    // step itself), and what is left for more.
    int64_t reserved = 0;
    auto available = [&] { return kiln_engine_free_blocks(engine) - reserved; };
    std::sort(running.begin(), running.end(),
              [](const RequestPtr &a, const RequestPtr &b) {
                return a->admission < b->admission;
              });
    for (size_t i = 0; i < running.size() && budget > 0;) {
      RequestPtr r = running[i];
      int64_t pending = static_cast<int64_t>(r->tokens.size()) - r->computed;
      int64_t n = std::min(pending, budget);
      int64_t need = blocksFor(r->computed + n) - blocksFor(r->computed);
      // Preempt the newest others (never one already in this step) until
      // the chunk fits, or shrink it to what fits.
      while (need > available() && running.size() > i + 1)
        preempt(running.back());
      if (need > available()) {
        int64_t room = blocksFor(r->computed) * info.block_size - r->computed +
                       std::max<int64_t>(0, available()) * info.block_size;
        n = std::min(n, room);
        need = blocksFor(r->computed + n) - blocksFor(r->computed);
      }
      if (n <= 0) {
        if (batch.empty() && running.size() == 1) {
          finish(r, KILN_FINISH_ERROR, cacheTooSmall(), OwnedEvent{}, out);
          continue;
        }
        break;
      }
      batch.emplace_back(r, n);
      budget -= n;
      reserved += need;
      ++i;
    }

    // 3. Admissions, first come first served.
    while (budget > 0 && !waiting.empty() &&
           static_cast<int32_t>(running.size()) < maxRunning) {
      RequestPtr r = waiting.front();
      int64_t seq = -1, cached = 0;
      if (kiln_engine_seq_create_cached(engine, r->tokens.data(),
                                        static_cast<int64_t>(r->tokens.size()),
                                        &seq, &cached) != KILN_OK)
        break;
      int64_t pending = static_cast<int64_t>(r->tokens.size()) - cached;
      int64_t n = std::min(pending, budget);
      int64_t room = blocksFor(cached) * info.block_size - cached +
                     std::max<int64_t>(0, available()) * info.block_size;
      n = std::min(n, room);
      if (n <= 0) {
        kiln_engine_seq_free(engine, seq);
        if (running.empty() && batch.empty()) {
          waiting.pop_front();
          r->state = Request::Running; // for finish()'s bookkeeping
          running.push_back(r);
          finish(r, KILN_FINISH_ERROR, cacheTooSmall(), OwnedEvent{}, out);
          continue;
        }
        break;
      }
      waiting.pop_front();
      r->seq = seq;
      r->computed = cached;
      r->state = Request::Running;
      r->admission = nextAdmission++;
      if (!r->scheduledOnce) {
        r->scheduledOnce = true;
        r->usage.queue_seconds = secondsSince(r->submitted);
      }
      if (r->usage.preemptions == 0) {
        r->usage.cached_prompt_tokens = std::min(cached, r->promptLength);
        stats.cached_prompt_tokens += r->usage.cached_prompt_tokens;
      }
      running.push_back(r);
      batch.emplace_back(r, n);
      budget -= n;
      reserved += blocksFor(cached + n) - blocksFor(cached);
    }

    if (batch.empty()) {
      // Nothing could run (every request waits on blocks no one frees):
      // wait for a submit or a cancel rather than spin.
      if (out.empty())
        wake.wait_for(lock, std::chrono::milliseconds(50));
    } else {
      // 4. The step, unlocked: only this thread touches the engine.
      stepSeqs.clear();
      for (auto &[r, n] : batch)
        stepSeqs.push_back(
            kiln_seq_tokens{r->seq, r->tokens.data() + r->computed, n});
      logits.resize(batch.size() * info.vocab_size);
      lock.unlock();
      kiln_status_t rc = kiln_engine_step(engine, stepSeqs.data(),
                                          static_cast<int64_t>(stepSeqs.size()),
                                          logits.data(), logits.size());
      std::string why = rc == KILN_OK ? "" : kiln_last_error_message();
      lock.lock();
      ++stats.steps;
      for (size_t b = 0; b < batch.size(); ++b) {
        auto &[r, n] = batch[b];
        if (rc != KILN_OK) {
          finish(r, KILN_FINISH_ERROR, "the engine step failed: " + why,
                 OwnedEvent{}, out);
          continue;
        }
        r->computed += n;
        if (r->computed < static_cast<int64_t>(r->tokens.size()))
          continue; // more of the prompt (or of a recomputation) to go
        if (r->cancelRequested)
          continue; // finished as cancelled before the next step
        OwnedEvent ev;
        kiln::SampleResult s;
        try {
          s = r->sampler->sample(logits.data() + b * info.vocab_size,
                                 info.vocab_size);
        } catch (const std::exception &e) {
          finish(r, KILN_FINISH_ERROR, e.what(), std::move(ev), out);
          continue;
        }
        r->tokens.push_back(s.token);
        ++r->usage.completion_tokens;
        ++stats.generated_tokens;
        if (!r->producedToken) {
          r->producedToken = true;
          r->usage.ttft_seconds = secondsSince(r->submitted);
        }
        ev.event.token = s.token;
        ev.event.logprob = s.logprob;
        for (const kiln::TokenLogprob &t : s.top)
          ev.top.push_back(kiln_token_logprob{t.token, t.logprob});
        kiln::FinishReason fr = r->sampler->finishAfter(s.token, eosIds);
        kiln_finish_reason reason =
            fr == kiln::FinishReason::Stop     ? KILN_FINISH_STOP
            : fr == kiln::FinishReason::Length ? KILN_FINISH_LENGTH
                                               : KILN_FINISH_NONE;
        // A token that ends the request by id is not part of the text.
        std::string piece;
        if (reason != KILN_FINISH_STOP && r->detok &&
            detokenize(r->detok, s.token, piece)) {
          kiln::StopMatcher::Result m = r->stop.feed(piece);
          ev.text = std::move(m.text);
          if (m.stopped)
            reason = KILN_FINISH_STOP;
        }
        if (reason == KILN_FINISH_NONE &&
            static_cast<int64_t>(r->tokens.size()) >= info.context_length)
          reason = KILN_FINISH_LENGTH;
        if (reason != KILN_FINISH_NONE)
          finish(r, reason, "", std::move(ev), out);
        else
          deliver(r, std::move(ev), out);
      }
    }

    snapshotBlocks();
    // Callbacks run unlocked, in order.
    if (!out.empty()) {
      std::vector<std::pair<RequestPtr, OwnedEvent>> now;
      now.swap(out);
      lock.unlock();
      for (auto &[r, ev] : now)
        r->callback(&ev.fix(), r->userData);
      lock.lock();
    }
    changed.notify_all();
  }

  // Shutdown: everything still here is cancelled.
  std::vector<RequestPtr> left(running.begin(), running.end());
  left.insert(left.end(), waiting.begin(), waiting.end());
  for (const RequestPtr &r : left)
    finish(r, KILN_FINISH_CANCELLED, "", OwnedEvent{}, out);
  lock.unlock();
  for (auto &[r, ev] : out)
    r->callback(&ev.fix(), r->userData);
  lock.lock();
  changed.notify_all();
}

//===----------------------------------------------------------------------===//
// C API
//===----------------------------------------------------------------------===//

using kiln::fail;
using kiln::guard;

extern "C" void kiln_scheduler_options_init(kiln_scheduler_options *options) {
  if (options)
    *options = kiln_scheduler_options{0, 0, 1, 0, 0, 0, 1};
}

extern "C" void kiln_sampling_params_init(kiln_sampling_params *params) {
  if (!params)
    return;
  *params = kiln_sampling_params{};
  params->temperature = 1.0f;
  params->top_p = 1.0f;
  params->repetition_penalty = 1.0f;
  params->logprobs = -1;
}

extern "C" kiln_status_t
kiln_scheduler_create(kiln_model_t *model,
                      const kiln_scheduler_options *options,
                      kiln_scheduler_t **out) {
  if (out)
    *out = nullptr;
  if (!model || !out)
    return fail(KILN_ERROR_INVALID_ARGUMENT,
                "kiln_scheduler_create: model and out must not be NULL");
  kiln_scheduler_options o;
  kiln_scheduler_options_init(&o);
  if (options)
    o = *options;
  if (o.num_threads < 0 || o.kv_cache_tokens < 0 || o.max_step_tokens < 0 ||
      o.max_running < 0 || o.max_waiting < 0)
    return fail(KILN_ERROR_INVALID_ARGUMENT,
                "kiln_scheduler_create: options must not be negative");
  return guard("kiln_scheduler_create", [&] {
    auto s = std::make_unique<kiln_scheduler_t>();
    s->model = model;
    kiln_model_get_info(model, &s->info);
    if (o.max_step_tokens > s->info.max_batch_tokens)
      throw kiln::Error(KILN_ERROR_INVALID_ARGUMENT,
                        "kiln_scheduler_create: max_step_tokens " +
                            std::to_string(o.max_step_tokens) +
                            " is more than the model was compiled for (" +
                            std::to_string(s->info.max_batch_tokens) +
                            ", kilnc --max-batch-tokens)");
    s->maxStepTokens =
        o.max_step_tokens ? o.max_step_tokens : s->info.max_batch_tokens;
    s->maxRunning = o.max_running ? o.max_running : 64;
    s->maxWaiting = o.max_waiting ? o.max_waiting : 256;
    s->eosIds.assign(s->info.eos_token_ids,
                     s->info.eos_token_ids + s->info.num_eos_tokens);
    kiln_engine_options eo;
    kiln_engine_options_init(&eo);
    eo.num_threads = o.num_threads;
    eo.kv_cache_tokens = o.kv_cache_tokens;
    eo.prefix_cache = o.prefix_cache;
    eo.batch_invariant = o.batch_invariant;
    if (kiln_status_t rc = kiln_engine_create(model, &eo, &s->engine))
      return rc;
    // A request can never hold more tokens than the whole cache: serve
    // that much context (a request reaching it ends with LENGTH) rather
    // than fail it half-way.
    s->modelContext = s->info.context_length;
    s->info.context_length =
        std::min(s->info.context_length,
                 kiln_engine_total_blocks(s->engine) * s->info.block_size);
    if (s->info.tokenizer_path && *s->info.tokenizer_path)
      if (kiln_status_t rc =
              kiln_tokenizer_load(s->info.tokenizer_path, &s->tokenizer))
        return rc;
    s->snapshotBlocks();
    kiln_scheduler_t *raw = s.get();
    s->thread = std::thread([raw] { raw->run(); });
    *out = s.release();
    return KILN_OK;
  });
}

extern "C" void kiln_scheduler_free(kiln_scheduler_t *scheduler) {
  if (!scheduler)
    return;
  {
    std::lock_guard<std::mutex> lock(scheduler->mu);
    scheduler->stopping = true;
  }
  scheduler->wake.notify_all();
  if (scheduler->thread.joinable())
    scheduler->thread.join();
  delete scheduler;
}

extern "C" kiln_status_t kiln_scheduler_drain(kiln_scheduler_t *scheduler,
                                              int64_t timeout_ms) {
  if (!scheduler)
    return fail(KILN_ERROR_INVALID_ARGUMENT,
                "kiln_scheduler_drain: scheduler must not be NULL");
  std::unique_lock<std::mutex> lock(scheduler->mu);
  scheduler->draining = true;
  auto done = [&] {
    return scheduler->running.empty() && scheduler->waiting.empty();
  };
  scheduler->wake.notify_all();
  if (timeout_ms < 0)
    scheduler->changed.wait(lock, done);
  else if (!scheduler->changed.wait_for(
               lock, std::chrono::milliseconds(timeout_ms), done))
    return fail(
        KILN_ERROR_TIMEOUT,
        "kiln_scheduler_drain: " + std::to_string(scheduler->running.size()) +
            " requests still running after " + std::to_string(timeout_ms) +
            " ms");
  return KILN_OK;
}

extern "C" kiln_status_t
kiln_scheduler_submit(kiln_scheduler_t *scheduler, const int32_t *prompt,
                      int64_t prompt_length, const kiln_sampling_params *params,
                      kiln_event_callback callback, void *user_data,
                      uint64_t *request) {
  if (request)
    *request = 0;
  if (!scheduler || !request || (prompt_length > 0 && !prompt))
    return fail(KILN_ERROR_INVALID_ARGUMENT,
                "kiln_scheduler_submit: scheduler, prompt and request must "
                "not be NULL");
  return guard("kiln_scheduler_submit", [&] {
    const kiln_model_info &info = scheduler->info;
    if (prompt_length < 1 || prompt_length >= info.context_length)
      throw kiln::Error(
          KILN_ERROR_INVALID_ARGUMENT,
          "the prompt has " + std::to_string(prompt_length) +
              " tokens; it must have at least 1 and fewer than the context "
              "length " +
              std::to_string(info.context_length) +
              (info.context_length < scheduler->modelContext
                   ? " (the KV cache's capacity; the model's is " +
                         std::to_string(scheduler->modelContext) + ")"
                   : ""));
    kiln_sampling_params p;
    kiln_sampling_params_init(&p);
    if (params)
      p = *params;
    kiln::SamplingParams sp;
    sp.temperature = p.temperature;
    sp.topK = p.top_k;
    sp.topP = p.top_p;
    sp.minP = p.min_p;
    sp.repetitionPenalty = p.repetition_penalty;
    sp.presencePenalty = p.presence_penalty;
    sp.frequencyPenalty = p.frequency_penalty;
    if (p.has_seed)
      sp.seed = p.seed;
    if (p.max_tokens < 0)
      throw kiln::Error(KILN_ERROR_INVALID_ARGUMENT,
                        "max_tokens is " + std::to_string(p.max_tokens) +
                            "; it must be >= 1 (0: until the context is "
                            "full)");
    if (p.max_tokens > 0)
      sp.maxTokens = p.max_tokens;
    sp.ignoreEos = p.ignore_eos != 0;
    if (p.logprobs >= 0)
      sp.logprobs = p.logprobs;
    if (p.num_stop_token_ids < 0 || p.num_stop < 0 || p.num_logit_bias < 0 ||
        (p.num_stop_token_ids > 0 && !p.stop_token_ids) ||
        (p.num_stop > 0 && !p.stop) ||
        (p.num_logit_bias > 0 &&
         (!p.logit_bias_tokens || !p.logit_bias_values)))
      throw kiln::Error(KILN_ERROR_INVALID_ARGUMENT,
                        "a stop_token_ids, stop or logit_bias array is NULL "
                        "or has a negative length");
    sp.stopTokenIds.assign(p.stop_token_ids,
                           p.stop_token_ids + p.num_stop_token_ids);
    for (int32_t i = 0; i < p.num_stop; ++i) {
      if (!p.stop[i])
        throw kiln::Error(KILN_ERROR_INVALID_ARGUMENT,
                          "stop[" + std::to_string(i) + "] is NULL");
      sp.stop.emplace_back(p.stop[i]);
    }
    for (int32_t i = 0; i < p.num_logit_bias; ++i)
      sp.logitBias[p.logit_bias_tokens[i]] = p.logit_bias_values[i];
    if (!sp.stop.empty() && !scheduler->tokenizer)
      throw kiln::Error(KILN_ERROR_UNSUPPORTED,
                        "stop strings need the model's tokenizer, and this "
                        "artifact has none");

    auto r = std::make_shared<Request>();
    r->tokens.assign(prompt, prompt + prompt_length);
    r->promptLength = prompt_length;
    r->usage.prompt_tokens = prompt_length;
    // Validates the parameters and the prompt's ids.
    r->sampler =
        std::make_unique<kiln::Sampler>(sp, info.vocab_size, r->tokens);
    r->stop = kiln::StopMatcher(sp.stop);
    if (scheduler->tokenizer)
      if (kiln_status_t rc =
              kiln_detokenizer_init(scheduler->tokenizer, 1, &r->detok))
        return rc;
    r->callback = callback;
    r->userData = user_data;
    r->submitted = Clock::now();

    std::lock_guard<std::mutex> lock(scheduler->mu);
    if (scheduler->draining || scheduler->stopping)
      throw kiln::Error(KILN_ERROR_BUSY, "the scheduler is shutting down");
    if (static_cast<int32_t>(scheduler->waiting.size()) >=
        scheduler->maxWaiting)
      throw kiln::Error(KILN_ERROR_BUSY,
                        "the queue is full (" +
                            std::to_string(scheduler->maxWaiting) +
                            " requests waiting)");
    r->id = scheduler->nextId++;
    scheduler->byId[r->id] = r;
    scheduler->waiting.push_back(r);
    scheduler->stats.prompt_tokens += prompt_length;
    *request = r->id;
    scheduler->wake.notify_all();
    return KILN_OK;
  });
}

extern "C" kiln_status_t kiln_scheduler_cancel(kiln_scheduler_t *scheduler,
                                               uint64_t request) {
  if (!scheduler)
    return fail(KILN_ERROR_INVALID_ARGUMENT,
                "kiln_scheduler_cancel: scheduler must not be NULL");
  std::lock_guard<std::mutex> lock(scheduler->mu);
  auto it = scheduler->byId.find(request);
  if (it == scheduler->byId.end())
    return fail(KILN_ERROR_NOT_FOUND,
                "kiln_scheduler_cancel: no request " + std::to_string(request));
  if (it->second->state != Request::Finished) {
    it->second->cancelRequested = true;
    scheduler->wake.notify_all();
  }
  return KILN_OK;
}

extern "C" kiln_status_t kiln_scheduler_poll(kiln_scheduler_t *scheduler,
                                             uint64_t request,
                                             kiln_event *event,
                                             int64_t timeout_ms) {
  if (!scheduler || !event)
    return fail(KILN_ERROR_INVALID_ARGUMENT,
                "kiln_scheduler_poll: scheduler and event must not be NULL");
  std::unique_lock<std::mutex> lock(scheduler->mu);
  auto it = scheduler->byId.find(request);
  if (it == scheduler->byId.end() || it->second->callback ||
      it->second->finalTaken)
    return fail(KILN_ERROR_NOT_FOUND,
                "kiln_scheduler_poll: no polled request " +
                    std::to_string(request) + " with events to come");
  RequestPtr r = it->second;
  auto ready = [&] { return !r->events.empty(); };
  if (timeout_ms < 0)
    scheduler->changed.wait(lock, ready);
  else if (!scheduler->changed.wait_for(
               lock, std::chrono::milliseconds(timeout_ms), ready))
    return fail(KILN_ERROR_TIMEOUT, "kiln_scheduler_poll: no event for "
                                    "request " +
                                        std::to_string(request) + " within " +
                                        std::to_string(timeout_ms) + " ms");
  r->current = std::move(r->events.front());
  r->events.pop_front();
  if (r->current.event.finish != KILN_FINISH_NONE)
    r->finalTaken = true;
  *event = r->current.fix();
  return KILN_OK;
}

extern "C" kiln_status_t kiln_scheduler_release(kiln_scheduler_t *scheduler,
                                                uint64_t request) {
  if (!scheduler)
    return fail(KILN_ERROR_INVALID_ARGUMENT,
                "kiln_scheduler_release: scheduler must not be NULL");
  std::lock_guard<std::mutex> lock(scheduler->mu);
  auto it = scheduler->byId.find(request);
  if (it == scheduler->byId.end() || it->second->callback)
    return fail(KILN_ERROR_NOT_FOUND, "kiln_scheduler_release: no polled "
                                      "request " +
                                          std::to_string(request));
  if (it->second->state != Request::Finished) {
    // The scheduler thread finishes it before the next step; its final
    // event has no one to go to.
    it->second->cancelRequested = true;
    scheduler->wake.notify_all();
  }
  scheduler->byId.erase(it);
  return KILN_OK;
}

extern "C" kiln_status_t kiln_scheduler_get_stats(kiln_scheduler_t *scheduler,
                                                  kiln_scheduler_stats *stats) {
  if (!scheduler || !stats)
    return fail(KILN_ERROR_INVALID_ARGUMENT,
                "kiln_scheduler_get_stats: scheduler and stats must not be "
                "NULL");
  std::lock_guard<std::mutex> lock(scheduler->mu);
  *stats = scheduler->stats;
  stats->waiting = static_cast<int64_t>(scheduler->waiting.size());
  stats->running = static_cast<int64_t>(scheduler->running.size());
  stats->kv_blocks_total = scheduler->blocksTotal;
  stats->kv_blocks_used = scheduler->blocksTotal - scheduler->blocksFree;
  stats->kv_blocks_cached = scheduler->blocksCached;
  stats->context_length = scheduler->info.context_length;
  return KILN_OK;
}
