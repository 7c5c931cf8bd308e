//===- kiln.cpp - run and measure compiled models -------------------------===//
//
//   kiln run NAME.kiln --prompt "..." [--max-tokens N] [--threads N]
//   kiln bench NAME.kiln [--prompt-len 128] [--gen-len 128] [--threads N]
//
// Links only the runtime (kiln.h): what a service would do. `run` streams
// greedy output and prints prefill and decode speed on stderr; `bench`
// prints time to first token, prefill and decode tokens/s and peak RSS.
//
//===----------------------------------------------------------------------===//

#include "kiln/kiln.h"

#include <CLI/CLI.hpp>

#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include <sys/resource.h>

namespace {

using Clock = std::chrono::steady_clock;

double seconds(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

int fail(const std::string &what) {
  std::fprintf(stderr, "kiln: error: %s: %s\n", what.c_str(),
               kiln_last_error_message());
  return 1;
}

/// An opened artifact with an engine and (optionally) its tokenizer.
struct Session {
  kiln_model_t *model = nullptr;
  kiln_engine_t *engine = nullptr;
  kiln_tokenizer_t *tokenizer = nullptr;
  kiln_model_info info{};
  ~Session() {
    kiln_tokenizer_free(tokenizer);
    kiln_engine_free(engine);
    kiln_model_free(model);
  }
};

int openSession(Session &s, const std::string &path, int threads,
                int64_t cacheTokens, bool needTokenizer) {
  if (kiln_model_open(path.c_str(), &s.model) != KILN_OK)
    return fail("cannot open " + path);
  kiln_model_get_info(s.model, &s.info);
  kiln_engine_options options;
  kiln_engine_options_init(&options);
  options.num_threads = threads;
  options.kv_cache_tokens = cacheTokens;
  if (kiln_engine_create(s.model, &options, &s.engine) != KILN_OK)
    return fail("cannot create an engine");
  if (needTokenizer) {
    if (!*s.info.tokenizer_path) {
      std::fprintf(stderr, "kiln: error: %s has no tokenizer.json\n",
                   path.c_str());
      return 1;
    }
    if (kiln_tokenizer_load(s.info.tokenizer_path, &s.tokenizer) != KILN_OK)
      return fail("cannot load the tokenizer");
  }
  return 0;
}

/// Feeds `tokens` to `seq` in chunks of the compiled token budget; the
/// logits after the last token end up in `logits`.
int prefill(Session &s, int64_t seq, const std::vector<int32_t> &tokens,
            std::vector<float> &logits) {
  for (size_t at = 0; at < tokens.size();) {
    int64_t n = std::min<int64_t>(s.info.max_batch_tokens,
                                  static_cast<int64_t>(tokens.size() - at));
    kiln_seq_tokens input{seq, tokens.data() + at, n};
    if (kiln_engine_step(s.engine, &input, 1, logits.data(), logits.size()) !=
        KILN_OK)
      return fail("prefill failed");
    at += n;
  }
  return 0;
}

/// This process's peak RSS: VmHWM (reset at exec; getrusage's ru_maxrss
/// is not, so a child of a large parent reports the parent's size).
double peakRssMb() {
  if (FILE *f = std::fopen("/proc/self/status", "r")) {
    char line[256];
    long kb = -1;
    while (std::fgets(line, sizeof line, f))
      if (std::sscanf(line, "VmHWM: %ld kB", &kb) == 1)
        break;
    std::fclose(f);
    if (kb >= 0)
      return kb / 1024.0;
  }
  struct rusage usage;
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_maxrss / 1024.0;
}

bool isEos(const kiln_model_info &info, int32_t id) {
  for (int i = 0; i < info.num_eos_tokens; ++i)
    if (info.eos_token_ids[i] == id)
      return true;
  return false;
}

int runCommand(const std::string &path, const std::string &prompt,
               int64_t maxTokens, int threads, int64_t cacheTokens) {
  Session s;
  if (int rc = openSession(s, path, threads, cacheTokens, true))
    return rc;
  size_t n = 0;
  std::vector<int32_t> ids(prompt.size() + 16);
  kiln_status_t st = kiln_tokenizer_encode(
      s.tokenizer, prompt.data(), prompt.size(), 1, ids.data(), ids.size(), &n);
  if (st == KILN_ERROR_BUFFER_TOO_SMALL) { // byte fallback: several ids/byte
    ids.resize(n);
    st = kiln_tokenizer_encode(s.tokenizer, prompt.data(), prompt.size(), 1,
                               ids.data(), ids.size(), &n);
  }
  if (st != KILN_OK)
    return fail("cannot tokenize the prompt");
  ids.resize(n);
  if (ids.empty()) {
    std::fprintf(stderr, "kiln: error: the prompt is empty\n");
    return 1;
  }
  if (static_cast<int64_t>(ids.size()) >= s.info.context_length) {
    std::fprintf(stderr,
                 "kiln: error: the prompt has %zu tokens; the model's context "
                 "holds %lld (prompt and output together)\n",
                 ids.size(), static_cast<long long>(s.info.context_length));
    return 1;
  }
  int64_t seq;
  kiln_engine_seq_create(s.engine, &seq);
  std::vector<float> logits(s.info.vocab_size);
  auto t0 = Clock::now();
  if (int rc = prefill(s, seq, ids, logits))
    return rc;
  auto t1 = Clock::now();

  kiln_detokenizer_t *det = nullptr;
  kiln_detokenizer_init(s.tokenizer, 1, &det);
  std::vector<char> text(256);
  int64_t generated = 0;
  auto emit = [&](int32_t id) {
    size_t bytes = 0;
    kiln_status_t st =
        kiln_detokenizer_push(det, id, text.data(), text.size(), &bytes);
    if (st == KILN_ERROR_BUFFER_TOO_SMALL) {
      text.resize(bytes + 1);
      st = kiln_detokenizer_push(det, id, text.data(), text.size(), &bytes);
    }
    if (st == KILN_OK) {
      std::fwrite(text.data(), 1, bytes, stdout);
      std::fflush(stdout);
    }
  };
  int32_t next = kiln_argmax(logits.data(), s.info.vocab_size);
  std::string stop = "max tokens";
  while (generated < maxTokens) {
    if (isEos(s.info, next)) {
      stop = "end of sequence";
      break;
    }
    emit(next);
    ++generated;
    if (generated == maxTokens)
      break;
    if (kiln_engine_seq_length(s.engine, seq) >= s.info.context_length) {
      stop = "context full";
      break;
    }
    kiln_seq_tokens input{seq, &next, 1};
    if (kiln_engine_step(s.engine, &input, 1, logits.data(), logits.size()) !=
        KILN_OK) {
      kiln_detokenizer_free(det);
      return fail("decode step failed");
    }
    next = kiln_argmax(logits.data(), s.info.vocab_size);
  }
  size_t bytes = 0;
  if (kiln_detokenizer_finish(det, text.data(), text.size(), &bytes) == KILN_OK)
    std::fwrite(text.data(), 1, bytes, stdout);
  kiln_detokenizer_free(det);
  auto t2 = Clock::now();
  std::printf("\n");
  double pre = seconds(t0, t1), dec = seconds(t1, t2);
  std::fprintf(stderr,
               "kiln: prefill %zu tokens in %.3f s (%.1f tok/s); decode %lld "
               "tokens in %.3f s (%.1f tok/s); stopped: %s\n",
               ids.size(), pre, ids.size() / pre,
               static_cast<long long>(generated), dec,
               generated > 1 ? (generated - 1) / dec : 0.0, stop.c_str());
  return 0;
}

int benchCommand(const std::string &path, int64_t promptLen, int64_t genLen,
                 int threads, int repeats) {
  Session s;
  auto opening = Clock::now();
  if (int rc = openSession(s, path, threads, 0, false))
    return rc;
  double openSeconds = seconds(opening, Clock::now());
  if (promptLen < 1 || genLen < 1 ||
      promptLen + genLen > s.info.context_length) {
    std::fprintf(stderr,
                 "kiln: error: --prompt-len + --gen-len must be at least 2 "
                 "and at most the context length %lld\n",
                 static_cast<long long>(s.info.context_length));
    return 1;
  }
  // A fixed pseudo-random prompt: speed does not depend on the text.
  std::vector<int32_t> prompt(promptLen);
  uint32_t x = 12345;
  for (auto &id : prompt) {
    x = x * 1103515245u + 12345u;
    id = static_cast<int32_t>((x >> 8) % s.info.vocab_size);
  }
  std::vector<float> logits(s.info.vocab_size);
  double bestTtft = 1e30, bestPrefill = 1e30, bestDecode = 1e30;
  for (int r = 0; r < repeats + 1; ++r) { // the first run warms up
    int64_t seq;
    kiln_engine_seq_create(s.engine, &seq);
    auto t0 = Clock::now();
    if (int rc = prefill(s, seq, prompt, logits))
      return rc;
    int32_t next = kiln_argmax(logits.data(), s.info.vocab_size);
    auto t1 = Clock::now();
    for (int64_t g = 1; g < genLen; ++g) {
      kiln_seq_tokens input{seq, &next, 1};
      if (kiln_engine_step(s.engine, &input, 1, logits.data(), logits.size()) !=
          KILN_OK)
        return fail("decode step failed");
      next = kiln_argmax(logits.data(), s.info.vocab_size);
    }
    auto t2 = Clock::now();
    kiln_engine_seq_free(s.engine, seq);
    if (r == 0)
      continue;
    bestTtft = std::min(bestTtft, seconds(t0, t1));
    bestPrefill = std::min(bestPrefill, seconds(t0, t1));
    bestDecode = std::min(bestDecode, seconds(t1, t2));
  }
  double peakMb = peakRssMb();
  double decodeTokS = genLen > 1 ? (genLen - 1) / bestDecode : 0.0;
  std::printf("model           %s (%s)\n", path.c_str(), s.info.target_cpu);
  std::printf("threads         %d\n", threads);
  std::printf("prompt / gen    %lld / %lld tokens (best of %d)\n",
              static_cast<long long>(promptLen), static_cast<long long>(genLen),
              repeats);
  std::printf("open            %.1f ms (model + engine)\n", openSeconds * 1e3);
  std::printf("ttft            %.2f ms\n", bestTtft * 1e3);
  std::printf("prefill         %.1f tok/s\n", promptLen / bestPrefill);
  std::printf("decode          %.1f tok/s\n", decodeTokS);
  std::printf("decode bytes/s  %.2f GB/s (weights %.1f MB x tok/s)\n",
              s.info.weights_bytes * decodeTokS / 1e9,
              s.info.weights_bytes / 1e6);
  std::printf("peak rss        %.1f MB\n", peakMb);
  return 0;
}

} // namespace

int main(int argc, char **argv) {
  CLI::App app{"kiln: run compiled models"};
  app.require_subcommand(1);

  std::string path, prompt;
  int64_t maxTokens = 128, promptLen = 128, genLen = 128;
  int threads = 0, repeats = 3;
  int64_t cacheTokens = 0;

  CLI::App *run = app.add_subcommand("run", "generate text greedily");
  run->add_option("artifact", path, "NAME.kiln directory")->required();
  run->add_option("--prompt,-p", prompt, "the prompt")->required();
  run->add_option("--max-tokens,-n", maxTokens, "most tokens to generate")
      ->check(CLI::PositiveNumber);
  run->add_option("--threads,-t", threads, "threads (0: one per core)")
      ->check(CLI::NonNegativeNumber);
  run->add_option("--kv-cache-tokens", cacheTokens,
                  "KV-cache capacity in tokens (0: 4 x context length)")
      ->check(CLI::NonNegativeNumber);

  CLI::App *bench = app.add_subcommand("bench", "measure speed");
  bench->add_option("artifact", path, "NAME.kiln directory")->required();
  bench->add_option("--prompt-len", promptLen, "prompt tokens")
      ->check(CLI::PositiveNumber);
  bench->add_option("--gen-len", genLen, "generated tokens")
      ->check(CLI::PositiveNumber);
  bench->add_option("--threads,-t", threads, "threads (0: one per core)")
      ->check(CLI::NonNegativeNumber);
  bench->add_option("--repeats", repeats, "measured runs (after a warm-up)")
      ->check(CLI::PositiveNumber);

  CLI11_PARSE(app, argc, argv);
  if (run->parsed())
    return runCommand(path, prompt, maxTokens, threads, cacheTokens);
  return benchCommand(path, promptLen, genLen, threads, repeats);
}
