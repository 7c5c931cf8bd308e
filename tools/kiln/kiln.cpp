//===- kiln.cpp - run and measure compiled models -------------------------===//
//
//   kiln run NAME.kiln --prompt "..." [--chat] [--max-tokens N] [--threads N]
//   kiln bench NAME.kiln [--prompt-len 128] [--gen-len 128] [--threads N]
//   kiln serve NAME.kiln [--host H] [--port P] [--api-key KEY] ...
//
// Links only the runtime (kiln.h): what a service would do. `run` streams
// greedy output and prints prefill and decode speed on stderr; `bench`
// prints time to first token, prefill and decode tokens/s and peak RSS;
// `serve` is the OpenAI-compatible HTTP server of serve.cpp.
//
//===----------------------------------------------------------------------===//

#include "serve.h"

#include "kiln/kiln.hpp"

#include <CLI/CLI.hpp>

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdio>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <sys/resource.h>

namespace {

using Clock = std::chrono::steady_clock;

double seconds(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

/// An opened artifact with an engine.
struct Session {
  kiln::api::Model model;
  kiln::api::Engine engine;
  Session(const std::string &path, int threads, int64_t cacheTokens)
      : model(path), engine(model, {threads, cacheTokens}) {}
  const kiln_model_info &info() const { return model.info(); }
};

/// Feeds `tokens` to `seq` in chunks of the compiled token budget; the
/// logits after the last token end up in `logits`.
void prefill(Session &s, int64_t seq, const std::vector<int32_t> &tokens,
             std::vector<float> &logits) {
  for (size_t at = 0; at < tokens.size();) {
    size_t n = std::min<size_t>(s.info().max_batch_tokens, tokens.size() - at);
    s.engine.step({{seq, std::vector<int32_t>(tokens.begin() + at,
                                              tokens.begin() + at + n)}},
                  logits);
    at += n;
  }
}

/// A usage error (not from the runtime): printed as is.
struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

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

/// The prompt as the model's chat template renders one user message (after
/// a system message when `system` is set): the text an instruct model was
/// trained to answer.
std::string chatPrompt(const std::string &path, const std::string &prompt,
                       const std::optional<std::string> &system) {
  nlohmann::json messages = nlohmann::json::array();
  if (system)
    messages.push_back({{"role", "system"}, {"content", *system}});
  messages.push_back({{"role", "user"}, {"content", prompt}});
  return kiln::api::ChatTemplate(path).render(messages.dump(), true);
}

/// Whether the artifact carries a chat template (what --chat renders).
bool hasChatTemplate(const std::string &path) {
  kiln_chat_template_t *tmpl = nullptr;
  if (kiln_chat_template_load(path.c_str(), nullptr, nullptr, &tmpl) != KILN_OK)
    return false;
  kiln_chat_template_free(tmpl);
  return true;
}

int runCommand(const std::string &path, const std::string &prompt,
               int64_t maxTokens, int threads, int64_t cacheTokens, bool chat,
               const std::optional<std::string> &system) {
  Session s(path, threads, cacheTokens);
  if (!*s.info().tokenizer_path)
    throw UsageError(path + " has no tokenizer.json");
  kiln::api::Tokenizer tokenizer(s.info().tokenizer_path);
  // A rendered chat prompt carries its special tokens already.
  std::vector<int32_t> ids =
      chat ? tokenizer.encode(chatPrompt(path, prompt, system), false)
           : tokenizer.encode(prompt);
  if (ids.empty())
    throw UsageError("the prompt is empty");
  if (static_cast<int64_t>(ids.size()) >= s.info().context_length)
    throw UsageError("the prompt has " + std::to_string(ids.size()) +
                     " tokens; the model's context holds " +
                     std::to_string(s.info().context_length) +
                     " (prompt and output together)");
  int64_t seq = s.engine.newSequence();
  std::vector<float> logits;
  auto t0 = Clock::now();
  prefill(s, seq, ids, logits);
  auto t1 = Clock::now();

  kiln::api::Detokenizer detokenizer(tokenizer);
  auto emit = [](const std::string &text) {
    std::fwrite(text.data(), 1, text.size(), stdout);
    std::fflush(stdout);
  };
  int64_t generated = 0;
  int32_t next = kiln::api::argmax(logits);
  std::string stop = "max tokens";
  while (generated < maxTokens) {
    if (s.model.isEos(next)) {
      stop = "end of sequence";
      break;
    }
    emit(detokenizer.push(next));
    ++generated;
    if (generated == maxTokens)
      break;
    if (s.engine.sequenceLength(seq) >= s.info().context_length) {
      stop = "context full";
      break;
    }
    s.engine.step({{seq, {next}}}, logits);
    next = kiln::api::argmax(logits);
  }
  emit(detokenizer.finish());
  auto t2 = Clock::now();
  std::printf("\n");
  double pre = seconds(t0, t1), dec = seconds(t1, t2);
  std::fprintf(stderr,
               "kiln: prefill %zu tokens in %.3f s (%.1f tok/s); decode %lld "
               "tokens in %.3f s (%.1f tok/s); stopped: %s\n",
               ids.size(), pre, ids.size() / pre,
               static_cast<long long>(generated), dec,
               generated > 1 ? (generated - 1) / dec : 0.0, stop.c_str());
  // An instruct model given a bare question often ends the text at once:
  // what it was trained to answer is a chat message.
  if (generated == 0 && !chat && hasChatTemplate(path))
    std::fprintf(stderr, "kiln: the model ended the text at once; to ask "
                         "an instruct model something, add --chat\n");
  return 0;
}

int benchCommand(const std::string &path, int64_t promptLen, int64_t genLen,
                 int threads, int repeats) {
  auto opening = Clock::now();
  Session s(path, threads, 0);
  double openSeconds = seconds(opening, Clock::now());
  if (promptLen < 1 || genLen < 1 ||
      promptLen + genLen > s.info().context_length)
    throw UsageError("--prompt-len + --gen-len must be at least 2 and at "
                     "most the context length " +
                     std::to_string(s.info().context_length));
  // A fixed pseudo-random prompt: speed does not depend on the text.
  std::vector<int32_t> prompt(promptLen);
  uint32_t x = 12345;
  for (auto &id : prompt) {
    x = x * 1103515245u + 12345u;
    id = static_cast<int32_t>((x >> 8) % s.info().vocab_size);
  }
  std::vector<float> logits;
  double bestTtft = 1e30, bestPrefill = 1e30, bestDecode = 1e30;
  for (int r = 0; r < repeats + 1; ++r) { // the first run warms up
    int64_t seq = s.engine.newSequence();
    auto t0 = Clock::now();
    prefill(s, seq, prompt, logits);
    int32_t next = kiln::api::argmax(logits);
    auto t1 = Clock::now();
    std::vector<kiln::api::SeqTokens> step = {{seq, {next}}};
    for (int64_t g = 1; g < genLen; ++g) {
      step[0].tokens[0] = next;
      s.engine.step(step, logits);
      next = kiln::api::argmax(logits);
    }
    auto t2 = Clock::now();
    s.engine.freeSequence(seq);
    if (r == 0)
      continue;
    bestTtft = std::min(bestTtft, seconds(t0, t1));
    bestPrefill = std::min(bestPrefill, seconds(t0, t1));
    bestDecode = std::min(bestDecode, seconds(t1, t2));
  }
  double peakMb = peakRssMb();
  double decodeTokS = genLen > 1 ? (genLen - 1) / bestDecode : 0.0;
  std::printf("model           %s (%s)\n", path.c_str(), s.info().target_cpu);
  std::printf("threads         %d\n", threads);
  std::printf("prompt / gen    %lld / %lld tokens (best of %d)\n",
              static_cast<long long>(promptLen), static_cast<long long>(genLen),
              repeats);
  std::printf("open            %.1f ms (model + engine)\n", openSeconds * 1e3);
  std::printf("ttft            %.2f ms\n", bestTtft * 1e3);
  std::printf("prefill         %.1f tok/s\n", promptLen / bestPrefill);
  std::printf("decode          %.1f tok/s\n", decodeTokS);
  std::printf("decode bytes/s  %.2f GB/s (weights %.1f MB x tok/s)\n",
              s.info().weights_bytes * decodeTokS / 1e9,
              s.info().weights_bytes / 1e6);
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
  bool chat = false;
  std::optional<std::string> system;
  CLI::Option *chatFlag =
      run->add_flag("--chat", chat,
                    "wrap the prompt in the model's chat template as a user "
                    "message");
  run->add_option("--system", system,
                  "with --chat: a system message before the prompt (default: "
                  "the template's own, if any)")
      ->needs(chatFlag);
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

  kiln::serve::ServeOptions serve;
  CLI::App *srv = app.add_subcommand("serve", "OpenAI-compatible HTTP server");
  srv->add_option("artifact", serve.artifact, "NAME.kiln directory")
      ->required();
  srv->add_option("--host", serve.host, "address to listen on")
      ->capture_default_str();
  srv->add_option("--port", serve.port, "port (0: any free one, printed)")
      ->check(CLI::Range(0, 65535))
      ->capture_default_str();
  srv->add_option("--model-name", serve.modelName,
                  "the model's name in the API (default: the artifact's "
                  "directory name without .kiln)");
  srv->add_option("--api-key", serve.apiKey,
                  "require 'Authorization: Bearer KEY' on /v1/ (default: "
                  "$KILN_API_KEY, else none)")
      ->envname("KILN_API_KEY");
  srv->add_option("--chat-template", serve.chatTemplateFile,
                  "a Jinja2 file to use instead of the model's chat template")
      ->check(CLI::ExistingFile);
  srv->add_option("--threads,-t", serve.threads,
                  "kernel threads (0: one per core)")
      ->check(CLI::NonNegativeNumber);
  srv->add_option("--http-threads", serve.httpThreads,
                  "connections served at once")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  srv->add_option("--kv-cache-tokens", serve.kvCacheTokens,
                  "KV-cache capacity in tokens (0: the engine's default)")
      ->check(CLI::NonNegativeNumber);
  srv->add_option("--max-step-tokens", serve.maxStepTokens,
                  "most tokens per step (0: the compiled max_batch_tokens)")
      ->check(CLI::NonNegativeNumber);
  srv->add_option("--max-running", serve.maxRunning,
                  "most requests in the running batch (0: 64)")
      ->check(CLI::NonNegativeNumber);
  srv->add_option("--max-waiting", serve.maxWaiting,
                  "most queued requests; beyond, 429 (0: 256)")
      ->check(CLI::NonNegativeNumber);
  bool noPrefixCache = false;
  srv->add_flag("--no-prefix-cache", noPrefixCache,
                "do not reuse the KV blocks of shared prompt prefixes");
  srv->add_option("--max-body-bytes", serve.maxBodyBytes,
                  "larger request bodies get 413")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  srv->add_option("--max-n", serve.maxN,
                  "most choices per request (n x prompts)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  srv->add_option("--drain-seconds", serve.drainSeconds,
                  "on SIGINT/SIGTERM, how long to let requests finish")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  srv->add_flag("--log-requests", serve.logRequests,
                "print one line per request on stderr");

  CLI11_PARSE(app, argc, argv);
  serve.prefixCache = !noPrefixCache;
  try {
    if (run->parsed())
      return runCommand(path, prompt, maxTokens, threads, cacheTokens, chat,
                        system);
    if (srv->parsed())
      return kiln::serve::serveCommand(serve);
    return benchCommand(path, promptLen, genLen, threads, repeats);
  } catch (const kiln::api::Error &e) {
    // The runtime's messages name the file, sequence or limit at fault.
    std::fprintf(stderr, "kiln: error: %s\n", e.message().c_str());
    return 1;
  } catch (const std::exception &e) {
    std::fprintf(stderr, "kiln: error: %s\n", e.what());
    return 1;
  }
}
