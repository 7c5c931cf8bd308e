//===- serve.cpp - kiln serve: an OpenAI-compatible HTTP server -----------===//
//
// Each HTTP request becomes one or more scheduler requests (prompts x n
// choices) whose events land in a Job: a queue the HTTP thread drains into
// one JSON response or a stream of server-sent events. The scheduler thread
// only copies events into the queue, so a slow client never holds the batch
// back. A client that goes away is noticed within a poll interval (a failed
// write, or end of file on its socket) and its requests are cancelled,
// freeing their KV blocks at once.
//
//===----------------------------------------------------------------------===//

#include "serve.h"

#include "metrics.h"

#include "kiln/kiln.hpp"

#include <httplib.h>
#include <nlohmann/json.hpp>

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <thread>

namespace kiln::serve {
namespace {

using Json = nlohmann::json;
using OJson = nlohmann::ordered_json;
using Clock = std::chrono::steady_clock;

constexpr auto kPollInterval = std::chrono::milliseconds(50);
/// Request bodies may nest JSON arrays and objects this deep.
constexpr int kMaxJsonDepth = 64;

/// An error answered in OpenAI's shape:
/// {"error": {"message", "type", "param", "code"}}.
struct ApiError {
  int status;
  std::string message;
  std::string param;
  std::string code;
};

[[noreturn]] void badRequest(const std::string &param,
                             const std::string &message) {
  throw ApiError{400, message, param, ""};
}

std::string errorType(int status) {
  switch (status) {
  case 400:
  case 413:
    return "invalid_request_error";
  case 401:
    return "authentication_error";
  case 404:
    return "not_found_error";
  case 429:
    return "rate_limit_error";
  case 503:
    return "service_unavailable_error";
  default:
    return status >= 500 ? "internal_server_error" : "invalid_request_error";
  }
}

OJson errorBody(const ApiError &e) {
  OJson err;
  err["message"] = e.message;
  err["type"] = errorType(e.status);
  err["param"] = e.param.empty() ? OJson() : OJson(e.param);
  err["code"] = e.code.empty() ? OJson() : OJson(e.code);
  return OJson{{"error", err}};
}

void sendError(httplib::Response &res, const ApiError &e) {
  res.status = e.status;
  if (e.status == 429 || e.status == 503)
    res.set_header("Retry-After", "1");
  // Messages can quote the request (a JSON parse error quotes the bytes it
  // stopped at), which may not be UTF-8: replace those rather than throw.
  res.set_content(
      errorBody(e).dump(-1, ' ', false, OJson::error_handler_t::replace),
      "application/json");
}

std::string randomId(const char *prefix) {
  static std::mutex mutex;
  static std::mt19937_64 rng{std::random_device{}()};
  std::lock_guard<std::mutex> lock(mutex);
  char buf[40];
  std::snprintf(buf, sizeof buf, "%s%016llx", prefix,
                static_cast<unsigned long long>(rng()));
  return buf;
}

int64_t unixTime() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

//===-- Client disconnects
//-------------------------------------------------===//

/// The socket of the connection `req` arrived on. cpp-httplib 0.11 (Debian
/// 12) gives handlers neither the socket nor a closed-connection check, so
/// the socket is found by its addresses among this process's descriptors.
/// -1 when not found (then only failed writes reveal a disconnect).
int connectionSocket(const httplib::Request &req) {
  DIR *dir = opendir("/proc/self/fd");
  if (!dir)
    return -1;
  int found = -1;
  while (dirent *entry = readdir(dir)) {
    char *end = nullptr;
    long fd = std::strtol(entry->d_name, &end, 10);
    if (*end || end == entry->d_name)
      continue;
    sockaddr_storage peer{}, local{};
    socklen_t peerLen = sizeof peer, localLen = sizeof local;
    if (getpeername(static_cast<int>(fd), reinterpret_cast<sockaddr *>(&peer),
                    &peerLen) != 0 ||
        getsockname(static_cast<int>(fd), reinterpret_cast<sockaddr *>(&local),
                    &localLen) != 0)
      continue;
    char ip[INET6_ADDRSTRLEN] = "";
    int peerPort = -1, localPort = -1;
    if (peer.ss_family == AF_INET) {
      auto *p = reinterpret_cast<sockaddr_in *>(&peer);
      inet_ntop(AF_INET, &p->sin_addr, ip, sizeof ip);
      peerPort = ntohs(p->sin_port);
      localPort = ntohs(reinterpret_cast<sockaddr_in *>(&local)->sin_port);
    } else if (peer.ss_family == AF_INET6) {
      auto *p = reinterpret_cast<sockaddr_in6 *>(&peer);
      inet_ntop(AF_INET6, &p->sin6_addr, ip, sizeof ip);
      peerPort = ntohs(p->sin6_port);
      localPort = ntohs(reinterpret_cast<sockaddr_in6 *>(&local)->sin6_port);
    } else {
      continue;
    }
    if (peerPort == req.remote_port && localPort == req.local_port &&
        req.remote_addr == ip) {
      found = static_cast<int>(fd);
      break;
    }
  }
  closedir(dir);
  return found;
}

/// True when the peer of `fd` has closed the connection (end of file or an
/// error; pending bytes, such as a pipelined request, mean it has not).
bool peerClosed(int fd) {
  if (fd < 0)
    return false;
  char c;
  ssize_t n = recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
  if (n > 0)
    return false;
  if (n == 0)
    return true;
  return errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR;
}

//===-- Jobs: a request's events on their way to the client ---------------===//

struct Item {
  int choice;
  int32_t token;
  float logprob;
  std::vector<kiln_token_logprob> top;
  std::string text;
  kiln_finish_reason finish;
  std::string error;
  kiln_usage usage;
};

/// The scheduler requests of one HTTP request and the queue their events
/// arrive in. Shared by the HTTP thread and the event callbacks.
struct Job {
  std::mutex mutex;
  std::condition_variable ready;
  std::deque<Item> items;
  std::vector<uint64_t> requests;
  int total = 0, finished = 0;

  void push(Item item) {
    {
      std::lock_guard<std::mutex> lock(mutex);
      if (item.finish != KILN_FINISH_NONE)
        ++finished;
      items.push_back(std::move(item));
    }
    ready.notify_one();
  }

  /// Moves the queued events to `out`, waiting up to `timeout` for one.
  void take(std::vector<Item> &out, Clock::duration timeout) {
    std::unique_lock<std::mutex> lock(mutex);
    ready.wait_for(lock, timeout, [&] { return !items.empty(); });
    while (!items.empty()) {
      out.push_back(std::move(items.front()));
      items.pop_front();
    }
  }
};

//===-- Request parsing
//-----------------------------------------------------===//

/// One prompt of a request: its tokens and, for echo, its text.
struct Prompt {
  std::vector<int32_t> tokens;
  std::string text;
};

/// What the two endpoints share once parsed.
struct Generation {
  bool chat = false;
  bool stream = false;
  bool includeUsage = false;
  bool echo = false;
  int n = 1;
  /// -1: none; else how many alternatives per token.
  int logprobs = -1;
  std::vector<Prompt> prompts;
  api::SamplingParams params;
};

const Json *field(const Json &body, const char *name) {
  auto it = body.find(name);
  if (it == body.end() || it->is_null())
    return nullptr;
  return &*it;
}

double numberField(const Json &body, const char *name, double def, double lo,
                   double hi) {
  const Json *v = field(body, name);
  if (!v)
    return def;
  if (!v->is_number())
    badRequest(name, std::string(name) + ": expected a number");
  double x = v->get<double>();
  if (!(x >= lo && x <= hi))
    badRequest(name, std::string(name) + ": expected a number in [" +
                         std::to_string(lo) + ", " + std::to_string(hi) +
                         "], got " + v->dump());
  return x;
}

int64_t intField(const Json &body, const char *name, int64_t def, int64_t lo,
                 int64_t hi) {
  const Json *v = field(body, name);
  if (!v)
    return def;
  if (!v->is_number_integer())
    badRequest(name, std::string(name) + ": expected an integer");
  int64_t x = v->get<int64_t>();
  if (x < lo || x > hi)
    badRequest(name, std::string(name) + ": expected an integer in [" +
                         std::to_string(lo) + ", " + std::to_string(hi) +
                         "], got " + std::to_string(x));
  return x;
}

bool boolField(const Json &body, const char *name, bool def) {
  const Json *v = field(body, name);
  if (!v)
    return def;
  if (!v->is_boolean())
    badRequest(name, std::string(name) + ": expected true or false");
  return v->get<bool>();
}

/// The sampling fields both endpoints take (OpenAI's, plus vLLM's top_k,
/// min_p, repetition_penalty, ignore_eos, stop_token_ids).
void parseSampling(const Json &body, Generation &g, int64_t vocab) {
  api::SamplingParams &p = g.params;
  p.temperature = float(numberField(body, "temperature", 1.0, 0, 2));
  p.topP = float(numberField(body, "top_p", 1.0, 0, 1));
  if (p.topP <= 0)
    badRequest("top_p", "top_p: expected a number in (0, 1], got 0");
  p.topK = int32_t(intField(body, "top_k", 0, -1, INT32_MAX));
  if (p.topK < 0)
    p.topK = 0; // vLLM's -1: off
  p.minP = float(numberField(body, "min_p", 0, 0, 1));
  p.presencePenalty = float(numberField(body, "presence_penalty", 0, -2, 2));
  p.frequencyPenalty = float(numberField(body, "frequency_penalty", 0, -2, 2));
  p.repetitionPenalty =
      float(numberField(body, "repetition_penalty", 1, 1e-6, 1e6));
  p.ignoreEos = boolField(body, "ignore_eos", false);
  if (const Json *seed = field(body, "seed")) {
    if (!seed->is_number_integer())
      badRequest("seed", "seed: expected an integer");
    p.hasSeed = true;
    p.seed = seed->is_number_unsigned() ? seed->get<uint64_t>()
                                        : uint64_t(seed->get<int64_t>());
  }
  if (const Json *stop = field(body, "stop")) {
    if (stop->is_string()) {
      if (!stop->get<std::string>().empty())
        p.stop.push_back(stop->get<std::string>());
    } else if (stop->is_array()) {
      for (const Json &s : *stop) {
        if (!s.is_string())
          badRequest("stop", "stop: expected a string or a list of strings");
        if (!s.get<std::string>().empty())
          p.stop.push_back(s.get<std::string>());
      }
    } else {
      badRequest("stop", "stop: expected a string or a list of strings");
    }
  }
  if (const Json *ids = field(body, "stop_token_ids")) {
    if (!ids->is_array())
      badRequest("stop_token_ids", "stop_token_ids: expected a list of ids");
    for (const Json &id : *ids) {
      if (!id.is_number_integer() || id.get<int64_t>() < 0 ||
          id.get<int64_t>() >= vocab)
        badRequest("stop_token_ids", "stop_token_ids: expected token ids in "
                                     "[0, " +
                                         std::to_string(vocab) + ")");
      p.stopTokenIds.push_back(id.get<int32_t>());
    }
  }
  if (const Json *bias = field(body, "logit_bias")) {
    if (!bias->is_object())
      badRequest("logit_bias", "logit_bias: expected an object mapping token "
                               "ids to numbers");
    for (auto it = bias->begin(); it != bias->end(); ++it) {
      char *end = nullptr;
      long long id = std::strtoll(it.key().c_str(), &end, 10);
      if (it.key().empty() || *end || id < 0 || id >= vocab)
        badRequest("logit_bias", "logit_bias: '" + it.key() +
                                     "' is not a token id in [0, " +
                                     std::to_string(vocab) + ")");
      if (!it.value().is_number() || std::fabs(it->get<double>()) > 100)
        badRequest("logit_bias", "logit_bias['" + it.key() +
                                     "']: expected a number in [-100, 100]");
      p.logitBias.push_back({int32_t(id), it->get<float>()});
    }
  }
  g.n = int(intField(body, "n", 1, 1, 1 << 20));
  if (const Json *bestOf = field(body, "best_of"))
    if (!bestOf->is_number_integer() || bestOf->get<int64_t>() != g.n)
      badRequest("best_of", "best_of: only best_of equal to n is supported");
  if (intField(body, "min_tokens", 0, 0, INT32_MAX) > 0)
    badRequest("min_tokens", "min_tokens: not supported");
  g.stream = boolField(body, "stream", false);
  if (const Json *options = field(body, "stream_options")) {
    if (!options->is_object())
      badRequest("stream_options", "stream_options: expected an object");
    if (!g.stream)
      badRequest("stream_options",
                 "stream_options: only allowed when stream is true");
    g.includeUsage = boolField(*options, "include_usage", false);
  }
}

/// A list of token ids, checked against the vocabulary.
std::vector<int32_t> tokenList(const Json &ids, int64_t vocab,
                               const std::string &param) {
  std::vector<int32_t> out;
  for (const Json &id : ids) {
    if (!id.is_number_integer() || id.get<int64_t>() < 0 ||
        id.get<int64_t>() >= vocab)
      badRequest(param, param + ": token ids must be integers in [0, " +
                            std::to_string(vocab) + "), got " + id.dump());
    out.push_back(id.get<int32_t>());
  }
  return out;
}

/// Joins a message's content parts ([{"type": "text", "text": ...}]) into
/// the string the common templates expect, as vLLM does.
Json flattenContent(const Json &messages) {
  if (!messages.is_array() || messages.empty())
    badRequest("messages", "messages: expected a non-empty list of messages");
  Json out = messages;
  for (size_t i = 0; i < out.size(); ++i) {
    Json &m = out[i];
    std::string where = "messages[" + std::to_string(i) + "]";
    if (!m.is_object())
      badRequest("messages", where + ": expected an object");
    auto role = m.find("role");
    if (role == m.end() || !role->is_string())
      badRequest("messages", where + ".role: expected a string");
    auto content = m.find("content");
    if (content == m.end() || !content->is_array())
      continue;
    std::string text;
    for (size_t j = 0; j < content->size(); ++j) {
      const Json &part = (*content)[j];
      std::string partWhere = where + ".content[" + std::to_string(j) + "]";
      if (!part.is_object() || part.value("type", "") != "text" ||
          !part.contains("text") || !part["text"].is_string())
        badRequest("messages", partWhere +
                                   ": only {\"type\": \"text\", \"text\": "
                                   "...} parts are supported");
      if (j)
        text += "\n";
      text += part["text"].get<std::string>();
    }
    *content = text;
  }
  return out;
}

//===-- The server
//----------------------------------------------------------===//

class Server {
public:
  explicit Server(const ServeOptions &options);
  int run();

private:
  void routes();
  void handleGeneration(const httplib::Request &req, httplib::Response &res,
                        bool chat);
  Generation parseCompletion(const Json &body);
  Generation parseChat(const Json &body);
  std::shared_ptr<Job> submit(Generation &g);
  void respond(const Generation &g, const std::shared_ptr<Job> &job,
               const httplib::Request &req, httplib::Response &res);
  void stream(const Generation &g, const std::shared_ptr<Job> &job,
              const httplib::Request &req, httplib::Response &res);
  OJson usageJson(const Generation &g, const std::vector<kiln_usage> &usage);
  std::string tokenText(int32_t token) const;
  OJson chatLogprobs(const Item &item) const;
  void addCompletionLogprobs(OJson &lists, const Item &item,
                             size_t textOffset) const;
  void cancel(Job &job);
  bool authorized(const httplib::Request &req, httplib::Response &res);
  void shutdown(bool immediate);
  const kiln_model_info &info() const { return model_.info(); }

  ServeOptions options_;
  api::Model model_;
  std::optional<api::Tokenizer> tokenizer_;
  std::optional<api::ChatTemplate> chatTemplate_;
  std::string chatTemplateError_;
  std::string name_;
  int64_t created_ = unixTime();
  Metrics metrics_; ///< before the scheduler: its callbacks use it
  api::Scheduler scheduler_;
  httplib::Server http_;
  /// Most tokens a request may hold (the model's context, or the KV
  /// cache's capacity when smaller).
  int64_t context_ = 0;
  std::atomic<bool> draining_{false};
  std::atomic<int64_t> active_{0};
};

std::string defaultName(const std::string &artifact) {
  std::string path = artifact;
  while (path.size() > 1 && path.back() == '/')
    path.pop_back();
  size_t slash = path.find_last_of('/');
  std::string base = slash == std::string::npos ? path : path.substr(slash + 1);
  if (base.size() > 5 && base.compare(base.size() - 5, 5, ".kiln") == 0)
    base.resize(base.size() - 5);
  return base;
}

api::SchedulerOptions schedulerOptions(const ServeOptions &o) {
  api::SchedulerOptions s;
  s.numThreads = o.threads;
  s.kvCacheTokens = o.kvCacheTokens;
  s.prefixCache = o.prefixCache;
  s.maxStepTokens = o.maxStepTokens;
  s.maxRunning = o.maxRunning;
  s.maxWaiting = o.maxWaiting;
  return s;
}

Server::Server(const ServeOptions &options)
    : options_(options), model_(options.artifact),
      name_(options.modelName.empty() ? defaultName(options.artifact)
                                      : options.modelName),
      scheduler_(model_, schedulerOptions(options)) {
  context_ = scheduler_.stats().context_length;
  if (*info().tokenizer_path)
    tokenizer_.emplace(info().tokenizer_path);
  // The chat template: --chat-template, else the artifact's own. Without
  // one the server still runs; /v1/chat/completions then answers 400 with
  // the reason.
  try {
    chatTemplate_.emplace(options.artifact, "", options.chatTemplateFile);
  } catch (const api::Error &e) {
    if (!options.chatTemplateFile.empty())
      throw; // asked for by name: not starting is the clear answer
    chatTemplateError_ = e.message();
  }
}

std::string Server::tokenText(int32_t token) const {
  if (!tokenizer_)
    return std::to_string(token);
  return tokenizer_->decode({token}, false);
}

/// The API key check of every /v1/ route. It runs in the handlers, after
/// cpp-httplib has read the body: answered before (pre-routing), the unread
/// body would be parsed as the connection's next request.
bool Server::authorized(const httplib::Request &req, httplib::Response &res) {
  if (options_.apiKey.empty() ||
      req.get_header_value("Authorization") == "Bearer " + options_.apiKey)
    return true;
  sendError(res, ApiError{401,
                          "a valid API key is required: send "
                          "'Authorization: Bearer KEY'",
                          "", "invalid_api_key"});
  return false;
}

void Server::cancel(Job &job) {
  std::vector<uint64_t> ids;
  {
    std::lock_guard<std::mutex> lock(job.mutex);
    ids = job.requests;
  }
  for (uint64_t id : ids)
    scheduler_.cancel(id);
}

Generation Server::parseCompletion(const Json &body) {
  Generation g;
  parseSampling(body, g, info().vocab_size);
  g.params.maxTokens = intField(body, "max_tokens", 16, 1, INT32_MAX);
  g.echo = boolField(body, "echo", false);
  if (field(body, "suffix"))
    badRequest("suffix", "suffix: not supported");
  if (const Json *lp = field(body, "logprobs")) {
    if (lp->is_boolean()) // some clients send true
      g.logprobs = lp->get<bool>() ? 0 : -1;
    else
      g.logprobs = int(intField(body, "logprobs", -1, 0, 20));
  }
  if (g.echo && g.logprobs >= 0)
    badRequest("echo", "echo with logprobs needs prompt logprobs, which kiln "
                       "does not compute");
  const Json *prompt = field(body, "prompt");
  if (!prompt)
    badRequest("prompt", "prompt: required");
  auto fromText = [&](const std::string &text) {
    if (!tokenizer_)
      badRequest("prompt", "prompt: this model has no tokenizer; send token "
                           "ids");
    return Prompt{tokenizer_->encode(text, true), text};
  };
  auto fromIds = [&](const Json &ids) {
    Prompt p{tokenList(ids, info().vocab_size, "prompt"), ""};
    if (g.echo && tokenizer_)
      p.text = tokenizer_->decode(p.tokens, false);
    return p;
  };
  if (prompt->is_string()) {
    g.prompts.push_back(fromText(prompt->get<std::string>()));
  } else if (prompt->is_array() && !prompt->empty()) {
    if ((*prompt)[0].is_number_integer()) {
      g.prompts.push_back(fromIds(*prompt));
    } else {
      for (const Json &p : *prompt) {
        if (p.is_string())
          g.prompts.push_back(fromText(p.get<std::string>()));
        else if (p.is_array())
          g.prompts.push_back(fromIds(p));
        else
          badRequest("prompt", "prompt: expected a string, a list of "
                               "strings, a list of token ids or a list of "
                               "lists of token ids");
      }
    }
  } else {
    badRequest("prompt", "prompt: expected a non-empty string or list");
  }
  return g;
}

Generation Server::parseChat(const Json &body) {
  Generation g;
  g.chat = true;
  parseSampling(body, g, info().vocab_size);
  // max_completion_tokens replaces max_tokens; without either, until the
  // end of the sequence or of the context.
  g.params.maxTokens = intField(body, "max_tokens", 0, 1, INT32_MAX);
  g.params.maxTokens =
      intField(body, "max_completion_tokens", g.params.maxTokens, 1, INT32_MAX);
  if (boolField(body, "logprobs", false))
    g.logprobs = int(intField(body, "top_logprobs", 0, 0, 20));
  else if (field(body, "top_logprobs"))
    badRequest("top_logprobs", "top_logprobs: needs logprobs to be true");
  for (const char *unsupported : {"tools", "functions", "response_format"})
    if (const Json *v = field(body, unsupported))
      if (!(v->is_array() && v->empty()) &&
          !(std::string(unsupported) == "response_format" && v->is_object() &&
            v->value("type", "") == "text"))
        badRequest(unsupported,
                   std::string(unsupported) + ": not supported by kiln serve");
  if (boolField(body, "continue_final_message", false))
    badRequest("continue_final_message", "continue_final_message: not "
                                         "supported");
  if (!chatTemplate_)
    throw ApiError{
        400,
        "this model has no usable chat template: " + chatTemplateError_ +
            " (start kiln serve with --chat-template FILE)",
        "messages", "no_chat_template"};
  if (!tokenizer_)
    throw ApiError{400, "this model has no tokenizer", "messages", ""};
  const Json *messages = field(body, "messages");
  if (!messages)
    badRequest("messages", "messages: required");
  Json flat = flattenContent(*messages);
  std::string variables;
  if (const Json *kwargs = field(body, "chat_template_kwargs")) {
    if (!kwargs->is_object())
      badRequest("chat_template_kwargs",
                 "chat_template_kwargs: expected an object");
    variables = kwargs->dump();
  }
  bool addGenerationPrompt = boolField(body, "add_generation_prompt", true);
  std::string text;
  try {
    text = chatTemplate_->render(flat.dump(), addGenerationPrompt, variables);
  } catch (const api::Error &e) {
    badRequest("messages", e.message());
  }
  g.prompts.push_back(Prompt{tokenizer_->encode(text, false), text});
  return g;
}

std::shared_ptr<Job> Server::submit(Generation &g) {
  int64_t context = context_;
  for (size_t i = 0; i < g.prompts.size(); ++i) {
    const Prompt &p = g.prompts[i];
    if (p.tokens.empty())
      badRequest(g.chat ? "messages" : "prompt",
                 "the prompt is empty after tokenization");
    if (int64_t(p.tokens.size()) >= context)
      throw ApiError{413,
                     "This model's maximum context length is " +
                         std::to_string(context) +
                         " tokens, prompt and output together; the prompt" +
                         (g.prompts.size() > 1 ? " " + std::to_string(i) : "") +
                         " has " + std::to_string(p.tokens.size()) + " tokens",
                     g.chat ? "messages" : "prompt", "context_length_exceeded"};
  }
  int64_t choices = int64_t(g.prompts.size()) * g.n;
  if (choices > options_.maxN)
    badRequest("n", "n x prompts is " + std::to_string(choices) +
                        "; this server allows at most " +
                        std::to_string(options_.maxN) + " (--max-n)");
  g.params.logprobs = g.logprobs;

  auto job = std::make_shared<Job>();
  job->total = int(choices);
  for (int c = 0; c < int(choices); ++c) {
    api::SamplingParams params = g.params;
    if (params.hasSeed)
      params.seed += uint64_t(c);
    // Each request's callback sees its events in order on the scheduler
    // thread; `last` times the gap between its tokens.
    auto last = std::make_shared<Clock::time_point>();
    auto callback = [this, job, c, last](const kiln_event &e) {
      Clock::time_point now = Clock::now();
      if (e.token >= 0) {
        metrics_.onToken(
            last->time_since_epoch().count() == 0
                ? -1.0
                : std::chrono::duration<double>(now - *last).count());
        *last = now;
      }
      if (e.finish != KILN_FINISH_NONE)
        metrics_.onFinished(e.usage, e.finish);
      job->push(Item{c, e.token, e.logprob,
                     std::vector<kiln_token_logprob>(e.top, e.top + e.num_top),
                     std::string(e.text, e.text_length), e.finish,
                     e.error ? e.error : "", e.usage});
    };
    try {
      const Prompt &p = g.prompts[size_t(c) / size_t(g.n)];
      uint64_t id = scheduler_.submit(p.tokens, params, callback);
      std::lock_guard<std::mutex> lock(job->mutex);
      job->requests.push_back(id);
    } catch (const api::Error &e) {
      cancel(*job);
      if (e.status() == KILN_ERROR_BUSY)
        throw draining_
            ? ApiError{503, "the server is shutting down", "", ""}
            : ApiError{429, "the server's request queue is full; retry later",
                       "", "queue_full"};
      if (e.status() == KILN_ERROR_INVALID_ARGUMENT ||
          e.status() == KILN_ERROR_UNSUPPORTED)
        badRequest("", e.message());
      throw ApiError{500, e.message(), "", ""};
    }
  }
  return job;
}

OJson Server::usageJson(const Generation &g,
                        const std::vector<kiln_usage> &usage) {
  int64_t prompt = 0, completion = 0, cached = 0;
  for (size_t c = 0; c < usage.size(); ++c) {
    if (c % size_t(g.n) == 0) { // each prompt once
      prompt += usage[c].prompt_tokens;
      cached += usage[c].cached_prompt_tokens;
    }
    completion += usage[c].completion_tokens;
  }
  return OJson{{"prompt_tokens", prompt},
               {"completion_tokens", completion},
               {"total_tokens", prompt + completion},
               {"prompt_tokens_details", {{"cached_tokens", cached}}}};
}

OJson bytesOf(const std::string &s) {
  OJson out = OJson::array();
  for (unsigned char ch : s)
    out.push_back(int(ch));
  return out;
}

/// One token's entry in chat's logprobs.content: {"token", "logprob",
/// "bytes", "top_logprobs"}.
OJson Server::chatLogprobs(const Item &item) const {
  std::string text = tokenText(item.token);
  OJson top = OJson::array();
  for (const kiln_token_logprob &t : item.top) {
    std::string s = tokenText(t.token);
    top.push_back(
        {{"token", s}, {"logprob", t.logprob}, {"bytes", bytesOf(s)}});
  }
  return OJson{{"token", text},
               {"logprob", item.logprob},
               {"bytes", bytesOf(text)},
               {"top_logprobs", top}};
}

/// Completions' logprobs: four parallel lists, empty.
OJson completionLogprobs() {
  return OJson{{"tokens", OJson::array()},
               {"token_logprobs", OJson::array()},
               {"top_logprobs", OJson::array()},
               {"text_offset", OJson::array()}};
}

/// Appends one token, which starts at `textOffset` of the choice's text, to
/// completionLogprobs()' lists.
void Server::addCompletionLogprobs(OJson &lists, const Item &item,
                                   size_t textOffset) const {
  OJson top = OJson::object();
  for (const kiln_token_logprob &t : item.top)
    top[tokenText(t.token)] = t.logprob;
  lists["tokens"].push_back(tokenText(item.token));
  lists["token_logprobs"].push_back(item.logprob);
  lists["top_logprobs"].push_back(std::move(top));
  lists["text_offset"].push_back(textOffset);
}

/// OpenAI's finish_reason: kiln's, with a cancelled request "abort" (as
/// vLLM says).
const char *finishName(kiln_finish_reason reason) {
  return reason == KILN_FINISH_CANCELLED ? "abort"
                                         : kiln_finish_reason_string(reason);
}

/// Per choice: its text, logprobs and end, accumulated from events.
struct Choice {
  std::string text;
  OJson logprobs; ///< chat: the content list; completions: the four lists
  kiln_finish_reason finish = KILN_FINISH_NONE;
  std::string error;
  kiln_usage usage{};
};

void Server::respond(const Generation &g, const std::shared_ptr<Job> &job,
                     const httplib::Request &req, httplib::Response &res) {
  std::vector<Choice> choices(size_t(job->total));
  for (size_t c = 0; c < choices.size(); ++c) {
    if (g.echo)
      choices[c].text = g.prompts[c / size_t(g.n)].text;
    if (g.logprobs >= 0)
      choices[c].logprobs = g.chat ? OJson::array() : completionLogprobs();
  }
  int fd = connectionSocket(req);
  std::vector<Item> items;
  int finished = 0;
  while (finished < job->total) {
    items.clear();
    job->take(items, kPollInterval);
    for (Item &item : items) {
      Choice &ch = choices[size_t(item.choice)];
      if (item.token >= 0 && g.logprobs >= 0) {
        if (g.chat)
          ch.logprobs.push_back(chatLogprobs(item));
        else
          addCompletionLogprobs(ch.logprobs, item, ch.text.size());
      }
      ch.text += item.text;
      if (item.finish != KILN_FINISH_NONE) {
        ch.finish = item.finish;
        ch.error = item.error;
        ch.usage = item.usage;
        ++finished;
      }
    }
    if (finished < job->total && peerClosed(fd)) {
      cancel(*job); // nobody to answer; the events still arrive, ignored
      fd = -1;
    }
  }
  std::vector<kiln_usage> usage;
  for (const Choice &ch : choices) {
    if (ch.finish == KILN_FINISH_ERROR)
      throw ApiError{500, ch.error, "", ""};
    usage.push_back(ch.usage);
  }
  OJson out;
  out["id"] = randomId(g.chat ? "chatcmpl-" : "cmpl-");
  out["object"] = g.chat ? "chat.completion" : "text_completion";
  out["created"] = unixTime();
  out["model"] = name_;
  out["choices"] = OJson::array();
  for (size_t c = 0; c < choices.size(); ++c) {
    const Choice &ch = choices[c];
    OJson choice{{"index", c}};
    if (g.chat)
      choice["message"] = {{"role", "assistant"}, {"content", ch.text}};
    else
      choice["text"] = ch.text;
    if (g.logprobs < 0)
      choice["logprobs"] = nullptr;
    else if (g.chat)
      choice["logprobs"] = {{"content", ch.logprobs}};
    else
      choice["logprobs"] = ch.logprobs;
    choice["finish_reason"] = finishName(ch.finish);
    out["choices"].push_back(choice);
  }
  out["usage"] = usageJson(g, usage);
  res.set_content(out.dump(), "application/json");
}

void Server::stream(const Generation &g, const std::shared_ptr<Job> &job,
                    const httplib::Request &req, httplib::Response &res) {
  struct State {
    std::string id;
    int64_t created;
    int fd;
    std::vector<kiln_usage> usage;
    std::vector<size_t> textLength;
    int finished = 0;
    bool started = false;
  };
  auto state = std::make_shared<State>();
  state->id = randomId(g.chat ? "chatcmpl-" : "cmpl-");
  state->created = unixTime();
  state->fd = connectionSocket(req);
  state->usage.resize(size_t(job->total));
  state->textLength.resize(size_t(job->total));
  auto gen = std::make_shared<Generation>(g);

  auto chunk = [this, state, gen](OJson choices) {
    OJson out;
    out["id"] = state->id;
    out["object"] = gen->chat ? "chat.completion.chunk" : "text_completion";
    out["created"] = state->created;
    out["model"] = name_;
    out["choices"] = std::move(choices);
    return out;
  };
  auto send = [](httplib::DataSink &sink, const OJson &data) {
    std::string line = "data: " + data.dump() + "\n\n";
    return sink.write(line.data(), line.size());
  };

  res.set_header("Cache-Control", "no-cache");
  res.set_chunked_content_provider(
      "text/event-stream",
      [this, job, state, gen, chunk, send](size_t, httplib::DataSink &sink) {
        const Generation &g = *gen;
        if (!state->started) {
          state->started = true;
          for (int c = 0; c < job->total; ++c) {
            OJson first{{"index", c}};
            if (g.chat)
              first["delta"] = {{"role", "assistant"}, {"content", ""}};
            else if (g.echo)
              first["text"] = g.prompts[size_t(c) / size_t(g.n)].text;
            else
              continue;
            first["logprobs"] = nullptr;
            first["finish_reason"] = nullptr;
            if (!send(sink, chunk(OJson::array({first}))))
              return false;
          }
        }
        std::vector<Item> items;
        job->take(items, kPollInterval);
        for (Item &item : items) {
          OJson choice{{"index", item.choice}};
          bool hasToken = item.token >= 0 && g.logprobs >= 0;
          if (item.finish == KILN_FINISH_ERROR) {
            OJson err = errorBody(ApiError{500, item.error, "", ""});
            if (!send(sink, err))
              return false;
          }
          if (!item.text.empty() || hasToken ||
              item.finish != KILN_FINISH_NONE) {
            if (g.chat)
              choice["delta"] = item.text.empty() && !hasToken
                                    ? OJson::object()
                                    : OJson{{"content", item.text}};
            else
              choice["text"] = item.text;
            if (!hasToken)
              choice["logprobs"] = nullptr;
            else if (g.chat)
              choice["logprobs"] = {
                  {"content", OJson::array({chatLogprobs(item)})}};
            else {
              choice["logprobs"] = completionLogprobs();
              addCompletionLogprobs(choice["logprobs"], item,
                                    state->textLength[size_t(item.choice)]);
            }
            choice["finish_reason"] = item.finish == KILN_FINISH_NONE
                                          ? OJson()
                                          : OJson(finishName(item.finish));
            state->textLength[size_t(item.choice)] += item.text.size();
            if (!send(sink, chunk(OJson::array({choice}))))
              return false;
          }
          if (item.finish != KILN_FINISH_NONE) {
            state->usage[size_t(item.choice)] = item.usage;
            ++state->finished;
          }
        }
        if (state->finished == job->total) {
          if (g.includeUsage) {
            OJson last = chunk(OJson::array());
            last["usage"] = usageJson(g, state->usage);
            if (!send(sink, last))
              return false;
          }
          static const char done[] = "data: [DONE]\n\n";
          if (!sink.write(done, sizeof done - 1))
            return false;
          sink.done();
          return true;
        }
        return !peerClosed(state->fd);
      },
      [this, job](bool success) {
        if (!success)
          cancel(*job); // the client went away: free its KV blocks now
        --active_;
      });
}

void Server::handleGeneration(const httplib::Request &req,
                              httplib::Response &res, bool chat) {
  ++active_;
  bool streaming = false;
  try {
    if (draining_)
      throw ApiError{503, "the server is shutting down", "", ""};
    Json body;
    try {
      // Refuse deep nesting while parsing: dump() (error messages quote
      // values) recurses, and 200000 nested brackets, a 400 KB body,
      // overflowed the HTTP thread's stack.
      body = Json::parse(req.body, [](int depth, Json::parse_event_t, Json &) {
        if (depth > kMaxJsonDepth)
          badRequest("", "the body nests deeper than " +
                             std::to_string(kMaxJsonDepth) + " levels");
        return true;
      });
    } catch (const Json::parse_error &e) {
      badRequest("", std::string("the body is not valid JSON: ") + e.what());
    }
    if (!body.is_object())
      badRequest("", "the body must be a JSON object");
    if (const Json *model = field(body, "model"))
      if (!model->is_string() || model->get<std::string>() != name_)
        throw ApiError{404,
                       "The model `" +
                           (model->is_string() ? model->get<std::string>()
                                               : model->dump()) +
                           "` does not exist; this server serves `" + name_ +
                           "`",
                       "model", "model_not_found"};
    Generation g = chat ? parseChat(body) : parseCompletion(body);
    std::shared_ptr<Job> job = submit(g);
    if (g.stream) {
      stream(g, job, req, res);
      streaming = true; // the release callback ends it
    } else {
      respond(g, job, req, res);
    }
  } catch (const ApiError &e) {
    sendError(res, e);
  } catch (const api::Error &e) {
    sendError(res, ApiError{500, e.message(), "", ""});
  } catch (const std::exception &e) {
    sendError(res, ApiError{500, e.what(), "", ""});
  }
  if (!streaming)
    --active_;
}

void Server::routes() {
  // Errors cpp-httplib answers itself (unknown path, oversized body, ...)
  // get an OpenAI-style body too.
  http_.set_error_handler(httplib::Server::HandlerWithResponse(
      [this](const httplib::Request &req, httplib::Response &res) {
        if (!res.body.empty())
          return httplib::Server::HandlerResponse::Unhandled;
        std::string message =
            res.status == 404 ? "no route " + req.method + " " + req.path
            : res.status == 413
                ? "the request body is larger than this server accepts (" +
                      std::to_string(options_.maxBodyBytes) +
                      " bytes; --max-body-bytes)"
                : "HTTP status " + std::to_string(res.status);
        sendError(res, ApiError{res.status, message, "", ""});
        return httplib::Server::HandlerResponse::Handled;
      }));
  http_.set_exception_handler([](const httplib::Request &,
                                 httplib::Response &res,
                                 std::exception_ptr ep) {
    std::string message = "internal error";
    try {
      std::rethrow_exception(ep);
    } catch (const std::exception &e) {
      message = e.what();
    } catch (...) {
    }
    sendError(res, ApiError{500, message, "", ""});
  });
  http_.set_logger(
      [this](const httplib::Request &req, const httplib::Response &res) {
        metrics_.onResponse(res.status);
        if (options_.logRequests)
          std::fprintf(stderr, "kiln serve: %s %s %s -> %d\n",
                       req.remote_addr.c_str(), req.method.c_str(),
                       req.path.c_str(), res.status);
      });

  http_.Get("/health",
            [this](const httplib::Request &, httplib::Response &res) {
              if (draining_)
                return sendError(
                    res, ApiError{503, "the server is shutting down", "", ""});
              res.set_content("{\"status\":\"ok\"}", "application/json");
            });
  auto modelJson = [this] {
    return OJson{{"id", name_},
                 {"object", "model"},
                 {"created", created_},
                 {"owned_by", "kiln"},
                 {"max_model_len", context_}};
  };
  http_.Get("/v1/models", [this, modelJson](const httplib::Request &req,
                                            httplib::Response &res) {
    if (!authorized(req, res))
      return;
    OJson out{{"object", "list"}, {"data", OJson::array({modelJson()})}};
    res.set_content(out.dump(), "application/json");
  });
  http_.Get(R"(/v1/models/(.+))", [this, modelJson](const httplib::Request &req,
                                                    httplib::Response &res) {
    if (!authorized(req, res))
      return;
    if (req.matches[1] != name_)
      return sendError(res, ApiError{404,
                                     "The model `" + req.matches[1].str() +
                                         "` does not exist",
                                     "model", "model_not_found"});
    res.set_content(modelJson().dump(), "application/json");
  });
  http_.Get(
      "/metrics", [this](const httplib::Request &, httplib::Response &res) {
        res.set_content(metrics_.render(scheduler_.stats(), active_, draining_),
                        "text/plain; version=0.0.4");
      });
  http_.Post("/v1/completions",
             [this](const httplib::Request &req, httplib::Response &res) {
               if (authorized(req, res))
                 handleGeneration(req, res, false);
             });
  http_.Post("/v1/chat/completions",
             [this](const httplib::Request &req, httplib::Response &res) {
               if (authorized(req, res))
                 handleGeneration(req, res, true);
             });
}

void Server::shutdown(bool immediate) {
  if (immediate) {
    std::fprintf(stderr, "kiln serve: stopping now\n");
    http_.stop();
    return;
  }
  std::fprintf(stderr,
               "kiln serve: draining (up to %.0f s; a second signal stops "
               "at once)\n",
               options_.drainSeconds);
  draining_ = true;
  auto deadline = Clock::now() + std::chrono::milliseconds(
                                     int64_t(options_.drainSeconds * 1000));
  scheduler_.drain(int64_t(options_.drainSeconds * 1000));
  // The last events may still be on their way to clients.
  while (active_ > 0 && Clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  std::fprintf(stderr, "kiln serve: drained; stopping\n");
  http_.stop();
}

int Server::run() {
  routes();
  http_.set_payload_max_length(options_.maxBodyBytes);
  int httpThreads = options_.httpThreads;
  http_.new_task_queue = [httpThreads] {
    return new httplib::ThreadPool(size_t(httpThreads));
  };
  int port = options_.port;
  if (port == 0) {
    port = http_.bind_to_any_port(options_.host);
    if (port < 0)
      port = 0;
  } else if (!http_.bind_to_port(options_.host, port)) {
    port = 0;
  }
  if (port == 0) {
    std::fprintf(stderr, "kiln serve: error: cannot listen on %s:%d: %s\n",
                 options_.host.c_str(), options_.port, std::strerror(errno));
    return 1;
  }

  // SIGINT/SIGTERM are taken by a thread of their own (blocked everywhere
  // else: every thread started below inherits this mask).
  std::thread signals([this] {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    int sig = 0;
    sigwait(&set, &sig);
    std::thread([this] { shutdown(false); }).detach();
    sigwait(&set, &sig);
    shutdown(true);
  });
  signals.detach();

  std::printf("kiln serve: listening on http://%s:%d (model %s, context %lld "
              "tokens)\n",
              options_.host.c_str(), port, name_.c_str(),
              static_cast<long long>(context_));
  if (!chatTemplate_)
    std::printf("kiln serve: no chat template (%s): /v1/chat/completions "
                "will answer 400\n",
                chatTemplateError_.c_str());
  std::fflush(stdout);
  bool ok = http_.listen_after_bind();
  return ok || draining_ ? 0 : 1;
}

} // namespace

int serveCommand(const ServeOptions &options) {
  // Block the shutdown signals before any thread starts (the scheduler's
  // and the kernels' included), so only the signal thread receives them.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  signal(SIGPIPE, SIG_IGN); // a vanished client is a failed write
  Server server(options);
  return server.run();
}

} // namespace kiln::serve
