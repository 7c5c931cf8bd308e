//===- SchedulerTest.cpp - continuous batching on a compiled model --------===//
//
// kiln-scheduler-tests runs compiled artifacts, so it is a program of its
// own, run by scripts/test.sh after the fixtures are compiled:
//
//   KILN_TEST_ARTIFACT=build/test-artifacts/llama-gqa.kiln         (fp32)
//   KILN_TEST_TEXT_ARTIFACT=build/test-artifacts/smollm2-....kiln  (text)
//
// Without them every test fails, naming the variable: nothing here is
// skipped. The reference for a request's greedy output is a plain engine
// loop (kiln_engine_step + kiln_argmax) over that request alone.
//
//===----------------------------------------------------------------------===//

#include "kiln/kiln.h"
#include "kiln/kiln.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace {

struct ModelDeleter {
  void operator()(kiln_model_t *m) const { kiln_model_free(m); }
};
struct SchedulerDeleter {
  void operator()(kiln_scheduler_t *s) const { kiln_scheduler_free(s); }
};
using ModelPtr = std::unique_ptr<kiln_model_t, ModelDeleter>;
using SchedulerPtr = std::unique_ptr<kiln_scheduler_t, SchedulerDeleter>;

ModelPtr openFromEnv(const char *var) {
  const char *path = std::getenv(var);
  if (!path || !*path) {
    ADD_FAILURE() << var << " is not set: run through scripts/test.sh";
    return nullptr;
  }
  kiln_model_t *m = nullptr;
  kiln_status_t rc = kiln_model_open(path, &m);
  EXPECT_EQ(rc, KILN_OK) << kiln_last_error_message();
  return ModelPtr(m);
}

kiln_model_info infoOf(kiln_model_t *m) {
  kiln_model_info info;
  kiln_model_get_info(m, &info);
  return info;
}

/// Greedy tokens after `prompt`, by the engine alone, one sequence.
std::vector<int32_t> engineGreedy(kiln_model_t *model,
                                  const std::vector<int32_t> &prompt,
                                  int64_t maxTokens) {
  kiln_model_info info = infoOf(model);
  kiln_engine_t *engine = nullptr;
  EXPECT_EQ(kiln_engine_create(model, nullptr, &engine), KILN_OK);
  int64_t seq;
  kiln_engine_seq_create(engine, &seq);
  std::vector<float> logits(info.vocab_size);
  std::vector<int32_t> out, feed = prompt;
  while (static_cast<int64_t>(out.size()) < maxTokens) {
    // The prompt in chunks of the compiled budget, then one at a time.
    size_t done = 0;
    while (done < feed.size()) {
      int64_t n = std::min<int64_t>(info.max_batch_tokens, feed.size() - done);
      kiln_seq_tokens st{seq, feed.data() + done, n};
      EXPECT_EQ(kiln_engine_step(engine, &st, 1, logits.data(), logits.size()),
                KILN_OK)
          << kiln_last_error_message();
      done += n;
    }
    int32_t t = kiln_argmax(logits.data(), info.vocab_size);
    out.push_back(t);
    if (kiln_engine_seq_length(engine, seq) + 1 >= info.context_length)
      break;
    feed = {t};
  }
  kiln_engine_free(engine);
  return out;
}

/// A request's events, collected by the callback.
struct Collected {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<int32_t> tokens;
  std::string text;
  kiln_finish_reason finish = KILN_FINISH_NONE;
  std::string error;
  kiln_usage usage{};
  int events = 0;

  static void callback(const kiln_event *e, void *user) {
    auto *c = static_cast<Collected *>(user);
    std::lock_guard<std::mutex> lock(c->mu);
    ++c->events;
    if (e->token >= 0)
      c->tokens.push_back(e->token);
    c->text.append(e->text, e->text_length);
    c->usage = e->usage;
    if (e->finish != KILN_FINISH_NONE) {
      c->finish = e->finish;
      c->error = e->error;
      c->cv.notify_all();
    }
  }
  void wait() {
    std::unique_lock<std::mutex> lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(120), [&] {
      return finish != KILN_FINISH_NONE;
    })) << "request did not finish";
  }
};

kiln_sampling_params greedy(int64_t maxTokens) {
  kiln_sampling_params p;
  kiln_sampling_params_init(&p);
  p.temperature = 0;
  p.max_tokens = maxTokens;
  p.ignore_eos = 1;
  return p;
}

std::vector<int32_t> randomPrompt(std::mt19937 &rng, int64_t n, int64_t vocab) {
  std::vector<int32_t> p(n);
  for (auto &t : p)
    t = static_cast<int32_t>(rng() % vocab);
  return p;
}

SchedulerPtr makeScheduler(kiln_model_t *m, int64_t kvTokens = 0,
                           int32_t prefixCache = 1, int64_t stepTokens = 0,
                           int32_t maxRunning = 0, int32_t maxWaiting = 0) {
  kiln_scheduler_options o;
  kiln_scheduler_options_init(&o);
  o.num_threads = 2;
  o.kv_cache_tokens = kvTokens;
  o.prefix_cache = prefixCache;
  o.max_step_tokens = stepTokens;
  o.max_running = maxRunning;
  o.max_waiting = maxWaiting;
  kiln_scheduler_t *s = nullptr;
  EXPECT_EQ(kiln_scheduler_create(m, &o, &s), KILN_OK)
      << kiln_last_error_message();
  return SchedulerPtr(s);
}

uint64_t submit(kiln_scheduler_t *s, const std::vector<int32_t> &prompt,
                const kiln_sampling_params &p, Collected *c) {
  uint64_t id = 0;
  EXPECT_EQ(kiln_scheduler_submit(s, prompt.data(),
                                  static_cast<int64_t>(prompt.size()), &p,
                                  c ? Collected::callback : nullptr, c, &id),
            KILN_OK)
      << kiln_last_error_message();
  return id;
}

kiln_scheduler_stats statsOf(kiln_scheduler_t *s) {
  kiln_scheduler_stats st;
  kiln_scheduler_get_stats(s, &st);
  return st;
}

/// Holds the scheduler thread still: a one-token request whose final
/// callback blocks until release(). What is submitted meanwhile waits, so
/// tests of batching, queueing and preemption do not depend on how fast
/// the submitting threads get the CPU (the kernel threads spin).
struct Gate {
  std::mutex mu;
  std::condition_variable cv;
  bool entered = false, open = false;

  static void callback(const kiln_event *e, void *user) {
    if (e->finish == KILN_FINISH_NONE)
      return;
    auto *g = static_cast<Gate *>(user);
    std::unique_lock<std::mutex> lock(g->mu);
    g->entered = true;
    g->cv.notify_all();
    g->cv.wait(lock, [&] { return g->open; });
  }
  /// Returns once the scheduler thread is blocked in the callback.
  void hold(kiln_scheduler_t *s) {
    kiln_sampling_params p;
    kiln_sampling_params_init(&p);
    p.temperature = 0;
    p.max_tokens = 1;
    int32_t token = 1;
    uint64_t id;
    ASSERT_EQ(kiln_scheduler_submit(s, &token, 1, &p, callback, this, &id),
              KILN_OK);
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return entered; });
  }
  void release() {
    std::lock_guard<std::mutex> lock(mu);
    open = true;
    cv.notify_all();
  }
};

/// Many requests of different lengths, submitted together in a shuffled
/// order from several threads: each one's greedy output is what it is
/// alone.
void expectBatchInvariant(kiln_model_t *m, SchedulerPtr s, int requests,
                          uint32_t seed, bool expectPreemption) {
  kiln_model_info info = infoOf(m);
  std::mt19937 rng(seed);
  std::vector<std::vector<int32_t>> prompts;
  std::vector<int64_t> gens;
  for (int i = 0; i < requests; ++i) {
    int64_t len = 3 + rng() % (info.context_length / 2);
    prompts.push_back(randomPrompt(rng, len, info.vocab_size));
    gens.push_back(4 + rng() % (info.context_length - len - 8));
  }
  std::vector<Collected> got(requests);
  std::vector<int> order(requests);
  for (int i = 0; i < requests; ++i)
    order[i] = i;
  std::shuffle(order.begin(), order.end(), rng);
  // All of them arrive while the scheduler is held, then run together.
  Gate gate;
  gate.hold(s.get());
  std::vector<std::thread> threads;
  for (int t = 0; t < 3; ++t)
    threads.emplace_back([&, t] {
      for (int k = t; k < requests; k += 3) {
        int i = order[k];
        submit(s.get(), prompts[i], greedy(gens[i]), &got[i]);
        std::this_thread::sleep_for(std::chrono::milliseconds(k % 4));
      }
    });
  for (auto &t : threads)
    t.join();
  gate.release();
  for (int i = 0; i < requests; ++i) {
    got[i].wait();
    EXPECT_EQ(got[i].finish, KILN_FINISH_LENGTH) << got[i].error;
    EXPECT_EQ(got[i].tokens, engineGreedy(m, prompts[i], gens[i]))
        << "request " << i << " (prompt " << prompts[i].size() << " tokens, "
        << gens[i] << " generated, " << got[i].usage.preemptions
        << " preemptions, " << got[i].usage.cached_prompt_tokens
        << " cached prompt tokens)";
  }
  kiln_scheduler_stats st = statsOf(s.get());
  EXPECT_EQ(st.requests_finished, requests + 1); // and the gate
  EXPECT_EQ(st.running + st.waiting, 0);
  EXPECT_EQ(st.kv_blocks_used, 0) << "blocks leaked";
  if (expectPreemption)
    EXPECT_GT(st.preemptions, 0) << "the cache was meant to run out";
}

TEST(Scheduler, GreedyOutputIsTheSameWhateverElseIsInTheBatch) {
  ModelPtr m = openFromEnv("KILN_TEST_ARTIFACT");
  ASSERT_TRUE(m);
  expectBatchInvariant(m.get(), makeScheduler(m.get()), 12, 1, false);
}

TEST(Scheduler, ChunkedPrefillUnderASmallStepBudget) {
  ModelPtr m = openFromEnv("KILN_TEST_ARTIFACT");
  ASSERT_TRUE(m);
  // 7 tokens a step: every prompt is prefilled in chunks, beside decodes.
  expectBatchInvariant(m.get(), makeScheduler(m.get(), 0, 1, 7), 6, 2, false);
}

TEST(Scheduler, PreemptionWhenTheCacheRunsOutKeepsOutputs) {
  ModelPtr m = openFromEnv("KILN_TEST_ARTIFACT");
  ASSERT_TRUE(m);
  kiln_model_info info = infoOf(m.get());
  // Room for a little more than one full-length sequence.
  expectBatchInvariant(
      m.get(), makeScheduler(m.get(), info.context_length + 32, 1), 8, 3, true);
}

TEST(Scheduler, PrefixCacheHitSkipsPrefillAndKeepsOutput) {
  ModelPtr m = openFromEnv("KILN_TEST_ARTIFACT");
  ASSERT_TRUE(m);
  kiln_model_info info = infoOf(m.get());
  std::mt19937 rng(4);
  std::vector<int32_t> shared =
      randomPrompt(rng, 3 * info.block_size + 5, info.vocab_size);
  SchedulerPtr s = makeScheduler(m.get());
  Collected first;
  submit(s.get(), shared, greedy(5), &first);
  first.wait();
  EXPECT_EQ(first.usage.cached_prompt_tokens, 0);
  // The same prefix with another ending: its three full blocks are cached.
  std::vector<int32_t> second = shared;
  second.push_back(7);
  second.push_back(9);
  Collected hit;
  submit(s.get(), second, greedy(6), &hit);
  hit.wait();
  EXPECT_EQ(hit.usage.cached_prompt_tokens, 3 * info.block_size);
  EXPECT_EQ(hit.tokens, engineGreedy(m.get(), second, 6));
  EXPECT_EQ(statsOf(s.get()).cached_prompt_tokens, 3 * info.block_size);

  // Off: nothing is found.
  SchedulerPtr off = makeScheduler(m.get(), 0, 0);
  Collected a, b;
  submit(off.get(), shared, greedy(2), &a);
  a.wait();
  submit(off.get(), second, greedy(6), &b);
  b.wait();
  EXPECT_EQ(b.usage.cached_prompt_tokens, 0);
  EXPECT_EQ(b.tokens, hit.tokens);
}

TEST(Scheduler, CancelFreesBlocksAtOnce) {
  ModelPtr m = openFromEnv("KILN_TEST_ARTIFACT");
  ASSERT_TRUE(m);
  kiln_model_info info = infoOf(m.get());
  SchedulerPtr s = makeScheduler(m.get(), 0, 0);
  std::mt19937 rng(5);
  Collected c;
  Gate gate;
  gate.hold(s.get());
  uint64_t id = submit(s.get(), randomPrompt(rng, 20, info.vocab_size),
                       greedy(info.context_length), &c);
  // Not done (it cannot even start): a drain that does not wait times out,
  // with a message.
  EXPECT_EQ(kiln_scheduler_drain(s.get(), 0), KILN_ERROR_TIMEOUT);
  EXPECT_NE(std::string(kiln_last_error_message()).find("still running"),
            std::string::npos);
  EXPECT_EQ(kiln_scheduler_cancel(s.get(), id), KILN_OK);
  gate.release();
  c.wait();
  EXPECT_EQ(c.finish, KILN_FINISH_CANCELLED);
  EXPECT_LT(static_cast<int64_t>(c.tokens.size()), info.context_length - 20);
  EXPECT_EQ(statsOf(s.get()).kv_blocks_used, 0);
  // Forgotten after its final event.
  EXPECT_EQ(kiln_scheduler_cancel(s.get(), id), KILN_ERROR_NOT_FOUND);
}

TEST(Scheduler, PollModeDeliversEveryEventThenForgets) {
  ModelPtr m = openFromEnv("KILN_TEST_ARTIFACT");
  ASSERT_TRUE(m);
  kiln_model_info info = infoOf(m.get());
  SchedulerPtr s = makeScheduler(m.get());
  std::mt19937 rng(6);
  std::vector<int32_t> prompt = randomPrompt(rng, 9, info.vocab_size);
  kiln_sampling_params p = greedy(5);
  p.logprobs = 3;
  uint64_t id = submit(s.get(), prompt, p, nullptr);
  std::vector<int32_t> tokens;
  kiln_event e;
  for (;;) {
    ASSERT_EQ(kiln_scheduler_poll(s.get(), id, &e, 60000), KILN_OK)
        << kiln_last_error_message();
    EXPECT_EQ(e.request, id);
    if (e.token >= 0) {
      tokens.push_back(e.token);
      ASSERT_EQ(e.num_top, 3);
      // Greedy: the chosen token is the most likely one.
      EXPECT_EQ(e.top[0].token, e.token);
      EXPECT_LE(e.logprob, 0.0f);
      EXPECT_GE(e.top[0].logprob, e.top[1].logprob);
    }
    if (e.finish != KILN_FINISH_NONE)
      break;
  }
  EXPECT_EQ(e.finish, KILN_FINISH_LENGTH);
  EXPECT_EQ(e.usage.completion_tokens, 5);
  EXPECT_EQ(e.usage.prompt_tokens, 9);
  EXPECT_GE(e.usage.total_seconds, e.usage.ttft_seconds);
  EXPECT_EQ(tokens, engineGreedy(m.get(), prompt, 5));
  EXPECT_EQ(kiln_scheduler_poll(s.get(), id, &e, 0), KILN_ERROR_NOT_FOUND);
  EXPECT_EQ(kiln_scheduler_release(s.get(), id), KILN_OK);
  EXPECT_EQ(kiln_scheduler_release(s.get(), id), KILN_ERROR_NOT_FOUND);
}

TEST(Scheduler, SeededSamplingRepeatsAndStopTokensEnd) {
  ModelPtr m = openFromEnv("KILN_TEST_ARTIFACT");
  ASSERT_TRUE(m);
  kiln_model_info info = infoOf(m.get());
  SchedulerPtr s = makeScheduler(m.get());
  std::mt19937 rng(7);
  std::vector<int32_t> prompt = randomPrompt(rng, 12, info.vocab_size);
  kiln_sampling_params p;
  kiln_sampling_params_init(&p);
  p.temperature = 1.5f;
  p.top_p = 0.9f;
  p.has_seed = 1;
  p.seed = 1234;
  p.max_tokens = 20;
  p.ignore_eos = 1;
  Collected a, b;
  submit(s.get(), prompt, p, &a);
  submit(s.get(), prompt, p, &b); // batched with a, same seed
  a.wait();
  b.wait();
  EXPECT_EQ(a.tokens.size(), 20u);
  EXPECT_EQ(a.tokens, b.tokens);
  // A stop token id taken from that output ends the request right there.
  int32_t stopAt = a.tokens[5];
  size_t first = 0;
  while (a.tokens[first] != stopAt)
    ++first;
  p.stop_token_ids = &stopAt;
  p.num_stop_token_ids = 1;
  Collected c;
  submit(s.get(), prompt, p, &c);
  c.wait();
  EXPECT_EQ(c.finish, KILN_FINISH_STOP);
  EXPECT_EQ(c.tokens, std::vector<int32_t>(a.tokens.begin(),
                                           a.tokens.begin() + first + 1));
}

TEST(Scheduler, CppWrapperStreamsToFunctionsAndPolls) {
  const char *path = std::getenv("KILN_TEST_ARTIFACT");
  ASSERT_TRUE(path && *path) << "KILN_TEST_ARTIFACT is not set";
  kiln::api::Model model(path);
  int64_t vocab = model.info().vocab_size;
  kiln::api::Scheduler s(model, {/*numThreads=*/2});
  std::mt19937 rng(11);
  kiln::api::SamplingParams greedyParams;
  greedyParams.temperature = 0;
  greedyParams.maxTokens = 8;
  greedyParams.ignoreEos = true;

  // Callbacks are std::functions, destroyed after their final event.
  struct Result {
    std::vector<int32_t> tokens;
    kiln_finish_reason finish = KILN_FINISH_NONE;
  };
  std::mutex mu;
  std::condition_variable cv;
  std::vector<std::vector<int32_t>> prompts;
  std::vector<Result> results(3);
  int finished = 0;
  for (int i = 0; i < 3; ++i) {
    prompts.push_back(randomPrompt(rng, 5 + 7 * i, vocab));
    auto owned = std::make_shared<int>(i); // dies with the function
    s.submit(prompts.back(), greedyParams, [&, i, owned](const kiln_event &e) {
      std::lock_guard<std::mutex> lock(mu);
      if (e.token >= 0)
        results[i].tokens.push_back(e.token);
      if (e.finish != KILN_FINISH_NONE) {
        results[i].finish = e.finish;
        ++finished;
        cv.notify_all();
      }
    });
  }
  {
    std::unique_lock<std::mutex> lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(120),
                            [&] { return finished == 3; }));
  }
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(results[i].finish, KILN_FINISH_LENGTH);
    EXPECT_EQ(results[i].tokens, engineGreedy(model.get(), prompts[i], 8));
  }

  // Without a callback: poll, then release.
  uint64_t id = s.submit(prompts[0], greedyParams);
  std::vector<int32_t> polled;
  kiln_event e;
  do {
    ASSERT_TRUE(s.poll(id, e, 60000));
    if (e.token >= 0)
      polled.push_back(e.token);
  } while (e.finish == KILN_FINISH_NONE);
  EXPECT_EQ(polled, results[0].tokens);
  s.release(id);
  EXPECT_FALSE(s.cancel(id));

  // A refused request throws and leaks nothing (the sanitizer run checks).
  kiln::api::SamplingParams bad = greedyParams;
  bad.topP = 1.5f;
  try {
    s.submit(prompts[0], bad, [](const kiln_event &) {});
    FAIL() << "top_p 1.5 was accepted";
  } catch (const kiln::api::Error &err) {
    EXPECT_EQ(err.status(), KILN_ERROR_INVALID_ARGUMENT);
    EXPECT_NE(err.message().find("top_p"), std::string::npos) << err.message();
  }
  EXPECT_TRUE(s.drain(60000));
  EXPECT_EQ(s.stats().running, 0);
}

TEST(Scheduler, BadRequestsAreRefusedWithAMessage) {
  ModelPtr m = openFromEnv("KILN_TEST_ARTIFACT");
  ASSERT_TRUE(m);
  kiln_model_info info = infoOf(m.get());
  SchedulerPtr s = makeScheduler(m.get());
  uint64_t id;
  std::vector<int32_t> prompt = {1, 2, 3};
  auto refused = [&](const kiln_sampling_params &p, const char *what) {
    EXPECT_EQ(kiln_scheduler_submit(s.get(), prompt.data(), 3, &p, nullptr,
                                    nullptr, &id),
              KILN_ERROR_INVALID_ARGUMENT);
    EXPECT_NE(std::string(kiln_last_error_message()).find(what),
              std::string::npos)
        << kiln_last_error_message();
  };
  kiln_sampling_params p = greedy(4);
  p.temperature = -1;
  refused(p, "temperature");
  p = greedy(4);
  p.top_p = 1.5f;
  refused(p, "top_p");
  p = greedy(4);
  p.max_tokens = -2;
  refused(p, "max_tokens");
  p = greedy(4);
  int32_t bad = static_cast<int32_t>(info.vocab_size);
  float bias = 5;
  p.logit_bias_tokens = &bad;
  p.logit_bias_values = &bias;
  p.num_logit_bias = 1;
  refused(p, "logit_bias");
  // The prompt: empty, too long, an id outside the vocabulary.
  p = greedy(4);
  EXPECT_EQ(kiln_scheduler_submit(s.get(), prompt.data(), 0, &p, nullptr,
                                  nullptr, &id),
            KILN_ERROR_INVALID_ARGUMENT);
  std::vector<int32_t> tooLong(info.context_length, 1);
  EXPECT_EQ(kiln_scheduler_submit(s.get(), tooLong.data(),
                                  static_cast<int64_t>(tooLong.size()), &p,
                                  nullptr, nullptr, &id),
            KILN_ERROR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(kiln_last_error_message()).find("context length"),
            std::string::npos);
  prompt[1] = bad;
  EXPECT_EQ(kiln_scheduler_submit(s.get(), prompt.data(), 3, &p, nullptr,
                                  nullptr, &id),
            KILN_ERROR_INVALID_ARGUMENT);
  // Stop strings need a tokenizer, which this artifact lacks.
  if (!*info.tokenizer_path) {
    const char *stop = "x";
    p.stop = &stop;
    p.num_stop = 1;
    prompt[1] = 2;
    EXPECT_EQ(kiln_scheduler_submit(s.get(), prompt.data(), 3, &p, nullptr,
                                    nullptr, &id),
              KILN_ERROR_UNSUPPORTED);
  }
  EXPECT_EQ(statsOf(s.get()).requests_finished, 0);
}

TEST(Scheduler, FullQueueAnswersBusyAndDrainFinishesEverything) {
  ModelPtr m = openFromEnv("KILN_TEST_ARTIFACT");
  ASSERT_TRUE(m);
  kiln_model_info info = infoOf(m.get());
  // One running, two waiting at most.
  SchedulerPtr s = makeScheduler(m.get(), 0, 1, 0, 1, 2);
  std::mt19937 rng(8);
  std::vector<Collected> got(8);
  int accepted = 0, busy = 0;
  Gate gate;
  gate.hold(s.get());
  for (auto &c : got) {
    std::vector<int32_t> prompt = randomPrompt(rng, 10, info.vocab_size);
    kiln_sampling_params p = greedy(40);
    uint64_t id;
    kiln_status_t rc = kiln_scheduler_submit(s.get(), prompt.data(), 10, &p,
                                             Collected::callback, &c, &id);
    if (rc == KILN_OK)
      ++accepted;
    else {
      EXPECT_EQ(rc, KILN_ERROR_BUSY);
      c.finish = KILN_FINISH_ERROR; // never submitted
      ++busy;
    }
  }
  // The scheduler is held: two wait, the rest are refused.
  EXPECT_EQ(accepted, 2);
  EXPECT_EQ(busy, 6);
  gate.release();
  EXPECT_EQ(kiln_scheduler_drain(s.get(), 120000), KILN_OK);
  for (auto &c : got)
    if (c.events)
      EXPECT_EQ(c.finish, KILN_FINISH_LENGTH);
  uint64_t id;
  std::vector<int32_t> prompt = {1, 2};
  kiln_sampling_params p = greedy(2);
  EXPECT_EQ(kiln_scheduler_submit(s.get(), prompt.data(), 2, &p, nullptr,
                                  nullptr, &id),
            KILN_ERROR_BUSY);
}

TEST(Scheduler, FreeCancelsWhatIsLeft) {
  ModelPtr m = openFromEnv("KILN_TEST_ARTIFACT");
  ASSERT_TRUE(m);
  kiln_model_info info = infoOf(m.get());
  // One request runs at a time; a fixture's step takes microseconds, so
  // the first may fill its context before the free: each request either
  // finished whole or is cancelled, and the last, queued behind the
  // others' thousands of steps, is cancelled.
  std::vector<Collected> got(16);
  {
    SchedulerPtr s = makeScheduler(m.get(), 0, 1, 0, 1);
    std::mt19937 rng(9);
    for (auto &c : got)
      submit(s.get(), randomPrompt(rng, 10, info.vocab_size),
             greedy(info.context_length), &c);
  }
  for (auto &c : got)
    if (c.finish != KILN_FINISH_CANCELLED) {
      EXPECT_EQ(c.finish, KILN_FINISH_LENGTH);
      EXPECT_EQ(static_cast<int64_t>(c.tokens.size()),
                info.context_length - 10);
    }
  EXPECT_EQ(got.back().finish, KILN_FINISH_CANCELLED);
}

// Text: the events' text is the decoded output, and a stop string spanning
// tokens ends it without appearing in it.
TEST(Scheduler, TextEventsAndStopStrings) {
  ModelPtr m = openFromEnv("KILN_TEST_TEXT_ARTIFACT");
  ASSERT_TRUE(m);
  kiln_model_info info = infoOf(m.get());
  ASSERT_TRUE(*info.tokenizer_path) << "the text artifact has no tokenizer";
  kiln_tokenizer_t *tok = nullptr;
  ASSERT_EQ(kiln_tokenizer_load(info.tokenizer_path, &tok), KILN_OK);
  const char *text = "The capital of France is";
  std::vector<int32_t> prompt(64);
  size_t n = 0;
  ASSERT_EQ(kiln_tokenizer_encode(tok, text, std::strlen(text), 0,
                                  prompt.data(), prompt.size(), &n),
            KILN_OK);
  prompt.resize(n);
  SchedulerPtr s = makeScheduler(m.get());
  Collected a;
  submit(s.get(), prompt, greedy(24), &a);
  a.wait();
  std::vector<char> buf(4096);
  size_t len = 0;
  ASSERT_EQ(kiln_tokenizer_decode(tok, a.tokens.data(), a.tokens.size(), 1,
                                  buf.data(), buf.size(), &len),
            KILN_OK);
  EXPECT_EQ(a.text, std::string(buf.data(), len));
  ASSERT_GT(a.text.size(), 8u) << a.text;
  // A stop string from the middle of that output (spanning tokens, most
  // likely): the output ends just before it.
  std::string stop = a.text.substr(a.text.size() / 2, 5);
  size_t at = a.text.find(stop);
  kiln_sampling_params p = greedy(24);
  const char *stops[] = {"never appears \x01", stop.c_str()};
  p.stop = stops;
  p.num_stop = 2;
  Collected b;
  submit(s.get(), prompt, p, &b);
  b.wait();
  EXPECT_EQ(b.finish, KILN_FINISH_STOP);
  EXPECT_EQ(b.text, a.text.substr(0, at));
  kiln_tokenizer_free(tok);
}

// A long run of byte-fallback tokens is released by the detokenizer all at
// once at the end: the event text must hold all of it. The fp32 fixture
// with a SentencePiece-style tokenizer (byte fallback) put beside it, and
// <0x41> ("A") forced by logit bias.
TEST(Scheduler, LongRunsOfByteTokensReachTheText) {
  const char *path = std::getenv("KILN_TEST_ARTIFACT");
  ASSERT_TRUE(path && *path) << "KILN_TEST_ARTIFACT is not set";
  namespace fs = std::filesystem;
  fs::path dir = fs::path(testing::TempDir()) / "kiln-bytes.kiln";
  fs::remove_all(dir);
  fs::copy(path, dir, fs::copy_options::recursive);
  fs::path tok = fs::path(KILN_SOURCE_DIR) /
                 "test/fixtures/tokenizers/llama2-bpe/tokenizer.json";
  fs::copy_file(tok, dir / "tokenizer.json");
  nlohmann::json manifest;
  std::ifstream(dir / "manifest.json") >> manifest;
  manifest["files"]["tokenizer.json"] = {
      {"size", static_cast<int64_t>(fs::file_size(tok))}, {"sha256", ""}};
  std::ofstream(dir / "manifest.json") << manifest.dump(2);

  kiln_model_t *raw = nullptr;
  ASSERT_EQ(kiln_model_open(dir.c_str(), &raw), KILN_OK)
      << kiln_last_error_message();
  ModelPtr m(raw);
  kiln_tokenizer_t *t = nullptr;
  ASSERT_EQ(kiln_tokenizer_load(tok.c_str(), &t), KILN_OK);
  int32_t byteA = -1;
  ASSERT_EQ(kiln_tokenizer_token_to_id(t, "<0x41>", &byteA), KILN_OK);
  kiln_tokenizer_free(t);
  ASSERT_LT(byteA, infoOf(m.get()).vocab_size);

  SchedulerPtr s = makeScheduler(m.get());
  kiln_sampling_params p = greedy(100);
  float bias = 100;
  p.logit_bias_tokens = &byteA;
  p.logit_bias_values = &bias;
  p.num_logit_bias = 1;
  Collected c;
  submit(s.get(), {1, 2, 3}, p, &c);
  c.wait();
  EXPECT_EQ(c.finish, KILN_FINISH_LENGTH);
  EXPECT_EQ(c.tokens, std::vector<int32_t>(100, byteA));
  EXPECT_EQ(c.text, std::string(100, 'A'));
  fs::remove_all(dir);
}

} // namespace
