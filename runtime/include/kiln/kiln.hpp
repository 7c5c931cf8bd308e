//===- kiln/kiln.hpp - header-only C++ wrapper of kiln.h --------*- C++ -*-===//
//
// RAII handles over the C API in kiln.h, for C++17 and later. Nothing here
// adds behaviour: every call forwards to the C function of the same name,
// and the threading and ownership rules are kiln.h's. What changes:
//
//  - handles free themselves (move-only: Tokenizer, Detokenizer,
//    ChatTemplate, Model, Engine, Scheduler);
//  - a failing call throws kiln::Error, which carries the status and the
//    message kiln_last_error_message() gave right after the failure;
//  - output buffers are std::string / std::vector, grown and retried when
//    the C call reports KILN_ERROR_BUFFER_TOO_SMALL.
//
// An Engine or Scheduler keeps a pointer to its Model: the Model must
// outlive it. A Scheduler's callbacks are std::functions.
// Everything is in namespace kiln::api (the runtime's own C++ internals
// live in namespace kiln and are not part of the interface).
//
//   kiln::api::Model model("smollm2.kiln");
//   kiln::api::Engine engine(model);
//   kiln::api::Tokenizer tok(model.info().tokenizer_path);
//   int64_t seq = engine.newSequence();
//   std::vector<int32_t> ids = tok.encode("The capital of France is");
//   std::vector<float> logits = engine.step({{seq, ids}});
//   int32_t next = kiln::api::argmax(logits);
//
//===----------------------------------------------------------------------===//

#ifndef KILN_KILN_HPP
#define KILN_KILN_HPP

#include "kiln/kiln.h"

#include <cstdint>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace kiln::api {

/// A failed kiln call: its status and message. what() is "call: message".
class Error : public std::runtime_error {
public:
  Error(kiln_status_t status, const std::string &call,
        const std::string &message)
      : std::runtime_error(call + ": " + message), status_(status), call_(call),
        message_(message) {}
  kiln_status_t status() const noexcept { return status_; }
  /// The C function that failed, e.g. "kiln_model_open".
  const std::string &call() const noexcept { return call_; }
  /// kiln_last_error_message() right after the failure (or the status's
  /// description when it was empty).
  const std::string &message() const noexcept { return message_; }

private:
  kiln_status_t status_;
  std::string call_, message_;
};

namespace detail {
/// Throws Error for a non-OK status, with the thread's last message.
inline void check(kiln_status_t status, const char *call) {
  if (status == KILN_OK)
    return;
  std::string message = kiln_last_error_message();
  throw Error(status, call,
              message.empty() ? kiln_status_string(status) : message);
}

/// Calls `fill(data, capacity, &size)` and, when the buffer was too small,
/// once more with the size the call asked for (plus one: text outputs are
/// NUL-terminated).
template <typename T, typename Fill>
std::vector<T> grow(size_t guess, const char *call, Fill fill) {
  std::vector<T> out(guess);
  size_t size = 0;
  kiln_status_t status = fill(out.data(), out.size(), &size);
  if (status == KILN_ERROR_BUFFER_TOO_SMALL) {
    out.resize(size + 1);
    status = fill(out.data(), out.size(), &size);
  }
  check(status, call);
  out.resize(size);
  return out;
}

template <typename T, void (*Free)(T *)> struct Deleter {
  void operator()(T *p) const noexcept { Free(p); }
};
} // namespace detail

/// kiln_tokenizer_t: immutable, usable from any number of threads.
class Tokenizer {
public:
  explicit Tokenizer(const std::string &path) {
    kiln_tokenizer_t *tok = nullptr;
    detail::check(kiln_tokenizer_load(path.c_str(), &tok),
                  "kiln_tokenizer_load");
    handle_.reset(tok);
  }

  std::vector<int32_t> encode(const std::string &text,
                              bool addSpecialTokens = true) const {
    return detail::grow<int32_t>(text.size() + 16, "kiln_tokenizer_encode",
                                 [&](int32_t *ids, size_t capacity, size_t *n) {
                                   return kiln_tokenizer_encode(
                                       handle_.get(), text.data(), text.size(),
                                       addSpecialTokens, ids, capacity, n);
                                 });
  }

  std::string decode(const std::vector<int32_t> &ids,
                     bool skipSpecialTokens = true) const {
    std::vector<char> bytes = detail::grow<char>(
        ids.size() * 8 + 16, "kiln_tokenizer_decode",
        [&](char *out, size_t capacity, size_t *n) {
          return kiln_tokenizer_decode(handle_.get(), ids.data(), ids.size(),
                                       skipSpecialTokens, out, capacity, n);
        });
    return std::string(bytes.begin(), bytes.end());
  }

  size_t vocabSize() const { return kiln_tokenizer_vocab_size(handle_.get()); }

  int32_t tokenToId(const std::string &token) const {
    int32_t id = 0;
    detail::check(kiln_tokenizer_token_to_id(handle_.get(), token.c_str(), &id),
                  "kiln_tokenizer_token_to_id");
    return id;
  }

  std::string idToToken(int32_t id) const {
    const char *token = nullptr;
    detail::check(kiln_tokenizer_id_to_token(handle_.get(), id, &token),
                  "kiln_tokenizer_id_to_token");
    return token;
  }

  bool isSpecial(int32_t id) const {
    return kiln_tokenizer_is_special(handle_.get(), id) != 0;
  }

  const kiln_tokenizer_t *get() const noexcept { return handle_.get(); }

private:
  std::unique_ptr<kiln_tokenizer_t,
                  detail::Deleter<kiln_tokenizer_t, kiln_tokenizer_free>>
      handle_;
};

/// kiln_detokenizer_t: streams ids to text that never splits a UTF-8
/// character. One thread at a time; the Tokenizer must outlive it.
class Detokenizer {
public:
  explicit Detokenizer(const Tokenizer &tok, bool skipSpecialTokens = true) {
    kiln_detokenizer_t *det = nullptr;
    detail::check(kiln_detokenizer_init(tok.get(), skipSpecialTokens, &det),
                  "kiln_detokenizer_init");
    handle_.reset(det);
  }

  /// The text `id` completes (possibly empty).
  std::string push(int32_t id) {
    std::vector<char> bytes = detail::grow<char>(
        64, "kiln_detokenizer_push",
        [&](char *out, size_t capacity, size_t *n) {
          return kiln_detokenizer_push(handle_.get(), id, out, capacity, n);
        });
    return std::string(bytes.begin(), bytes.end());
  }

  /// Whatever is still held back (an incomplete character at the end).
  std::string finish() {
    std::vector<char> bytes = detail::grow<char>(
        64, "kiln_detokenizer_finish",
        [&](char *out, size_t capacity, size_t *n) {
          return kiln_detokenizer_finish(handle_.get(), out, capacity, n);
        });
    return std::string(bytes.begin(), bytes.end());
  }

private:
  std::unique_ptr<kiln_detokenizer_t,
                  detail::Deleter<kiln_detokenizer_t, kiln_detokenizer_free>>
      handle_;
};

/// kiln_chat_template_t: a model's chat template; immutable, usable from any
/// number of threads.
class ChatTemplate {
public:
  /// Loads the template of model or artifact directory `dir` (`name` "" =
  /// the "default" entry when tokenizer_config.json lists several), or the
  /// Jinja2 file `templateFile` with `dir`'s special tokens.
  explicit ChatTemplate(const std::string &dir, const std::string &name = "",
                        const std::string &templateFile = "") {
    kiln_chat_template_t *tmpl = nullptr;
    detail::check(kiln_chat_template_load(dir.c_str(), name.c_str(),
                                          templateFile.c_str(), &tmpl),
                  "kiln_chat_template_load");
    handle_.reset(tmpl);
  }

  /// The prompt for `messagesJson` (a JSON array of message objects);
  /// `variablesJson`, if not empty, a JSON object of extra variables.
  std::string render(const std::string &messagesJson,
                     bool addGenerationPrompt = true,
                     const std::string &variablesJson = "") const {
    std::vector<char> bytes = detail::grow<char>(
        messagesJson.size() + 256, "kiln_chat_template_render",
        [&](char *out, size_t capacity, size_t *n) {
          return kiln_chat_template_render(
              handle_.get(), messagesJson.c_str(), addGenerationPrompt,
              variablesJson.c_str(), out, capacity, n);
        });
    return std::string(bytes.begin(), bytes.end());
  }

  std::string name() const { return kiln_chat_template_name(handle_.get()); }
  const kiln_chat_template_t *get() const noexcept { return handle_.get(); }

private:
  std::unique_ptr<
      kiln_chat_template_t,
      detail::Deleter<kiln_chat_template_t, kiln_chat_template_free>>
      handle_;
};

/// kiln_model_t: an opened artifact.
class Model {
public:
  explicit Model(const std::string &path) {
    kiln_model_t *model = nullptr;
    detail::check(kiln_model_open(path.c_str(), &model), "kiln_model_open");
    handle_.reset(model);
    detail::check(kiln_model_get_info(model, &info_), "kiln_model_get_info");
  }

  const kiln_model_info &info() const noexcept { return info_; }
  bool isEos(int32_t id) const noexcept {
    for (int32_t i = 0; i < info_.num_eos_tokens; ++i)
      if (info_.eos_token_ids[i] == id)
        return true;
    return false;
  }
  kiln_model_t *get() const noexcept { return handle_.get(); }

private:
  std::unique_ptr<kiln_model_t, detail::Deleter<kiln_model_t, kiln_model_free>>
      handle_;
  kiln_model_info info_{};
};

/// One sequence's new tokens in a step.
struct SeqTokens {
  int64_t seq;
  std::vector<int32_t> tokens;
};

/// kiln_engine_options (0 = the runtime's default for each).
struct EngineOptions {
  int32_t numThreads = 0;      ///< kernel threads, the caller's included
  int64_t kvCacheTokens = 0;   ///< KV-cache capacity over all sequences
  bool prefixCache = true;     ///< keep released full blocks for reuse
  bool batchInvariant = false; ///< rows independent of the batch (kiln.h)
};

/// kiln_engine_t: the KV cache, scratch memory and threads that run steps.
/// One thread at a time (kiln.h).
class Engine {
public:
  explicit Engine(const Model &model, EngineOptions options = {})
      : model_(&model) {
    kiln_engine_options o;
    kiln_engine_options_init(&o);
    o.num_threads = options.numThreads;
    o.kv_cache_tokens = options.kvCacheTokens;
    o.prefix_cache = options.prefixCache ? 1 : 0;
    o.batch_invariant = options.batchInvariant ? 1 : 0;
    kiln_engine_t *engine = nullptr;
    detail::check(kiln_engine_create(model.get(), &o, &engine),
                  "kiln_engine_create");
    handle_.reset(engine);
  }

  int64_t newSequence() {
    int64_t seq = 0;
    detail::check(kiln_engine_seq_create(handle_.get(), &seq),
                  "kiln_engine_seq_create");
    return seq;
  }
  void freeSequence(int64_t seq) {
    detail::check(kiln_engine_seq_free(handle_.get(), seq),
                  "kiln_engine_seq_free");
  }
  int64_t sequenceLength(int64_t seq) const {
    return kiln_engine_seq_length(handle_.get(), seq);
  }
  int64_t freeBlocks() const { return kiln_engine_free_blocks(handle_.get()); }
  int64_t totalBlocks() const {
    return kiln_engine_total_blocks(handle_.get());
  }

  /// One step; returns the logits of each sequence's last token, one row
  /// of vocab_size per entry of `batch`, in order.
  std::vector<float> step(const std::vector<SeqTokens> &batch) {
    std::vector<float> logits;
    step(batch, logits);
    return logits;
  }

  /// As above, reusing `logits` (resized to the rows needed).
  void step(const std::vector<SeqTokens> &batch, std::vector<float> &logits) {
    std::vector<kiln_seq_tokens> seqs;
    seqs.reserve(batch.size());
    for (const SeqTokens &s : batch)
      seqs.push_back(
          {s.seq, s.tokens.data(), static_cast<int64_t>(s.tokens.size())});
    logits.resize(batch.size() * model_->info().vocab_size);
    detail::check(kiln_engine_step(handle_.get(), seqs.data(),
                                   static_cast<int64_t>(seqs.size()),
                                   logits.data(), logits.size()),
                  "kiln_engine_step");
  }

  kiln_engine_t *get() const noexcept { return handle_.get(); }

private:
  const Model *model_;
  std::unique_ptr<kiln_engine_t,
                  detail::Deleter<kiln_engine_t, kiln_engine_free>>
      handle_;
};

/// kiln_scheduler_options (0 = the runtime's default for each).
struct SchedulerOptions {
  int32_t numThreads = 0;
  int64_t kvCacheTokens = 0;
  bool prefixCache = true;
  int64_t maxStepTokens = 0;
  int32_t maxRunning = 0;
  int32_t maxWaiting = 0;
  bool batchInvariant = true;
};

/// kiln_sampling_params with owned arrays; the defaults are
/// kiln_sampling_params_init()'s.
struct SamplingParams {
  SamplingParams() {
    kiln_sampling_params p;
    kiln_sampling_params_init(&p);
    temperature = p.temperature;
    topK = p.top_k;
    topP = p.top_p;
    minP = p.min_p;
    repetitionPenalty = p.repetition_penalty;
    presencePenalty = p.presence_penalty;
    frequencyPenalty = p.frequency_penalty;
    maxTokens = p.max_tokens;
    logprobs = p.logprobs;
  }
  float temperature, topP, minP, repetitionPenalty, presencePenalty,
      frequencyPenalty;
  int32_t topK;
  bool hasSeed = false;
  uint64_t seed = 0;
  int64_t maxTokens;
  bool ignoreEos = false;
  int32_t logprobs;
  std::vector<int32_t> stopTokenIds;
  std::vector<std::string> stop;
  std::vector<std::pair<int32_t, float>> logitBias;
};

/// kiln_scheduler_t: continuous batching on its own thread; every member is
/// thread-safe. Events reach a std::function on the scheduler thread (see
/// kiln_event_callback for what it may do), or wait for poll().
class Scheduler {
public:
  using Callback = std::function<void(const kiln_event &)>;

  explicit Scheduler(const Model &model, SchedulerOptions options = {}) {
    kiln_scheduler_options o;
    kiln_scheduler_options_init(&o);
    o.num_threads = options.numThreads;
    o.kv_cache_tokens = options.kvCacheTokens;
    o.prefix_cache = options.prefixCache ? 1 : 0;
    o.max_step_tokens = options.maxStepTokens;
    o.max_running = options.maxRunning;
    o.max_waiting = options.maxWaiting;
    o.batch_invariant = options.batchInvariant ? 1 : 0;
    kiln_scheduler_t *s = nullptr;
    detail::check(kiln_scheduler_create(model.get(), &o, &s),
                  "kiln_scheduler_create");
    handle_.reset(s);
  }

  /// Queues a request; with a `callback` it receives every event and is
  /// destroyed after the final one, without one the events wait for poll()
  /// and the request for release(). Returns the request id; throws Error
  /// (KILN_ERROR_BUSY when the queue is full or draining).
  uint64_t submit(const std::vector<int32_t> &prompt,
                  const SamplingParams &params, Callback callback = nullptr) {
    kiln_sampling_params p;
    kiln_sampling_params_init(&p);
    p.temperature = params.temperature;
    p.top_k = params.topK;
    p.top_p = params.topP;
    p.min_p = params.minP;
    p.repetition_penalty = params.repetitionPenalty;
    p.presence_penalty = params.presencePenalty;
    p.frequency_penalty = params.frequencyPenalty;
    p.has_seed = params.hasSeed;
    p.seed = params.seed;
    p.max_tokens = params.maxTokens;
    p.ignore_eos = params.ignoreEos;
    p.logprobs = params.logprobs;
    p.stop_token_ids = params.stopTokenIds.data();
    p.num_stop_token_ids = static_cast<int32_t>(params.stopTokenIds.size());
    std::vector<const char *> stop;
    for (const std::string &s : params.stop)
      stop.push_back(s.c_str());
    p.stop = stop.data();
    p.num_stop = static_cast<int32_t>(stop.size());
    std::vector<int32_t> biasTokens;
    std::vector<float> biasValues;
    for (const auto &[token, bias] : params.logitBias) {
      biasTokens.push_back(token);
      biasValues.push_back(bias);
    }
    p.logit_bias_tokens = biasTokens.data();
    p.logit_bias_values = biasValues.data();
    p.num_logit_bias = static_cast<int32_t>(biasTokens.size());

    Callback *owned = callback ? new Callback(std::move(callback)) : nullptr;
    uint64_t id = 0;
    kiln_status_t status = kiln_scheduler_submit(
        handle_.get(), prompt.data(), static_cast<int64_t>(prompt.size()), &p,
        owned ? &Scheduler::trampoline : nullptr, owned, &id);
    if (status != KILN_OK)
      delete owned;
    detail::check(status, "kiln_scheduler_submit");
    return id;
  }

  /// False when the request is unknown or already finished.
  bool cancel(uint64_t request) {
    return kiln_scheduler_cancel(handle_.get(), request) == KILN_OK;
  }

  /// The next event of a polled request, or false after `timeoutMs` (< 0:
  /// wait forever). What the event points to is valid until the next
  /// poll() or release() of this request. Throws for unknown requests.
  bool poll(uint64_t request, kiln_event &event, int64_t timeoutMs = -1) {
    kiln_status_t status =
        kiln_scheduler_poll(handle_.get(), request, &event, timeoutMs);
    if (status == KILN_ERROR_TIMEOUT)
      return false;
    detail::check(status, "kiln_scheduler_poll");
    return true;
  }

  void release(uint64_t request) {
    detail::check(kiln_scheduler_release(handle_.get(), request),
                  "kiln_scheduler_release");
  }

  /// Stops accepting requests and waits up to `timeoutMs` (< 0: forever);
  /// true when none is left.
  bool drain(int64_t timeoutMs = -1) {
    kiln_status_t status = kiln_scheduler_drain(handle_.get(), timeoutMs);
    if (status == KILN_ERROR_TIMEOUT)
      return false;
    detail::check(status, "kiln_scheduler_drain");
    return true;
  }

  kiln_scheduler_stats stats() const {
    kiln_scheduler_stats s{};
    detail::check(kiln_scheduler_get_stats(handle_.get(), &s),
                  "kiln_scheduler_get_stats");
    return s;
  }

  kiln_scheduler_t *get() const noexcept { return handle_.get(); }

private:
  static void trampoline(const kiln_event *event, void *user) {
    auto *callback = static_cast<Callback *>(user);
    try {
      (*callback)(*event);
    } catch (...) {
      // Exceptions must not cross the C callback; the caller's function
      // is expected to handle its own.
    }
    if (event->finish != KILN_FINISH_NONE)
      delete callback;
  }

  std::unique_ptr<kiln_scheduler_t,
                  detail::Deleter<kiln_scheduler_t, kiln_scheduler_free>>
      handle_;
};

/// The index of the largest of the first `n` logits (the first on ties).
inline int32_t argmax(const float *logits, int64_t n) {
  return kiln_argmax(logits, n);
}
inline int32_t argmax(const std::vector<float> &logits) {
  return kiln_argmax(logits.data(), static_cast<int64_t>(logits.size()));
}

} // namespace kiln::api

#endif // KILN_KILN_HPP
