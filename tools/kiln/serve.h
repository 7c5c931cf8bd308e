//===- serve.h - kiln serve: an OpenAI-compatible HTTP server --*- C++ -*-===//
//
// `kiln serve NAME.kiln` answers /v1/completions, /v1/chat/completions
// (streamed as server-sent events or not), /v1/models, /health and /metrics
// on cpp-httplib, with requests batched by one kiln_scheduler. docs/serving.md
// describes the endpoints, parameters, errors and metrics.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_TOOLS_KILN_SERVE_H
#define KILN_TOOLS_KILN_SERVE_H

#include <cstddef>
#include <cstdint>
#include <string>

namespace kiln::serve {

struct ServeOptions {
  std::string artifact;
  std::string host = "127.0.0.1";
  int port = 8000; ///< 0: any free port (the one chosen is printed)
  /// The name clients give as "model"; "" = the artifact's directory name
  /// without ".kiln".
  std::string modelName;
  /// Required as "Authorization: Bearer KEY" on /v1/ when not empty.
  std::string apiKey;
  /// A Jinja2 file that replaces the artifact's chat template.
  std::string chatTemplateFile;
  int threads = 0;           ///< kernel threads (0: one per core)
  int httpThreads = 128;     ///< connections served at once
  int64_t kvCacheTokens = 0; ///< 0: the engine's default
  int64_t maxStepTokens = 0; ///< 0: the compiled max_batch_tokens
  int maxRunning = 0;        ///< 0: the scheduler's default (64)
  int maxWaiting = 0;        ///< 0: the scheduler's default (256)
  bool prefixCache = true;
  size_t maxBodyBytes = 4u << 20; ///< larger bodies get 413
  int maxN = 16;                  ///< most choices per request (n x prompts)
  double drainSeconds = 30;       ///< graceful-shutdown wait for requests
  bool logRequests = false;       ///< one line per request on stderr
};

/// Runs the server until SIGINT or SIGTERM (the first drains, a second
/// stops at once). Returns the process exit code; errors opening the
/// artifact or binding the port are printed and give 1.
int serveCommand(const ServeOptions &options);

} // namespace kiln::serve

#endif // KILN_TOOLS_KILN_SERVE_H
