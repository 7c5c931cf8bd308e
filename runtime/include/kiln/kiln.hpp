//===- kiln/kiln.hpp - header-only C++ wrapper of kiln.h --------*- C++ -*-===//
//
// RAII handles over the C API in kiln.h, for C++17 and later. Nothing here
// adds behaviour: every call forwards to the C function of the same name,
// and the threading and ownership rules are kiln.h's. What changes:
//
//  - handles free themselves (move-only: Tokenizer, Detokenizer, Model,
//    Engine);
//  - a failing call throws kiln::Error, which carries the status and the
//    message kiln_last_error_message() gave right after the failure;
//  - output buffers are std::string / std::vector, grown and retried when
//    the C call reports KILN_ERROR_BUFFER_TOO_SMALL.
//
// An Engine keeps a pointer to its Model: the Model must outlive it.
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
  int32_t numThreads = 0;    ///< kernel threads, the caller's included
  int64_t kvCacheTokens = 0; ///< KV-cache capacity over all sequences
  bool prefixCache = true;   ///< keep released full blocks for reuse
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

/// The index of the largest of the first `n` logits (the first on ties).
inline int32_t argmax(const float *logits, int64_t n) {
  return kiln_argmax(logits, n);
}
inline int32_t argmax(const std::vector<float> &logits) {
  return kiln_argmax(logits.data(), static_cast<int64_t>(logits.size()));
}

} // namespace kiln::api

#endif // KILN_KILN_HPP
