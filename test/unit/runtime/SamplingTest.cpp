//===- SamplingTest.cpp - token sampling and stop strings -----------------===//
//
// Distributions are checked empirically: N draws from known logits, each
// token's count within 5 binomial standard deviations of N * p, with p worked
// out here (by hand, or by the naive full-sort reference below) rather than
// by the code under test. Every sampler has a fixed seed, so the tests are
// deterministic; 5 sigma leaves room for the seed to be changed.
//
//===----------------------------------------------------------------------===//

#include "runtime/src/sampling.h"
#include "runtime/src/error.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <string>
#include <vector>

using kiln::FinishReason;
using kiln::LogprobsMode;
using kiln::Sampler;
using kiln::SamplingParams;
using kiln::StopMatcher;

namespace {

constexpr int kDraws = 20000;

/// Six logits whose softmax is far from uniform at every temperature used.
const std::vector<float> kLogits = {1.0f, 2.0f, 0.5f, -1.0f, 3.0f, 0.0f};

SamplingParams seeded(uint64_t seed = 1234) {
  SamplingParams p;
  p.seed = seed;
  return p;
}

std::vector<double> softmax(const std::vector<float> &logits, double t = 1) {
  double m = *std::max_element(logits.begin(), logits.end());
  std::vector<double> p;
  for (float x : logits)
    p.push_back(std::exp((x - m) / t));
  double z = std::accumulate(p.begin(), p.end(), 0.0);
  for (double &v : p)
    v /= z;
  return p;
}

/// The distribution vLLM samples from, the slow obvious way: full sort in
/// double precision. Tokens filtered out get 0.
std::vector<double> reference(const std::vector<float> &logits, double t,
                              int topK, double topP, double minP) {
  int n = static_cast<int>(logits.size());
  std::vector<double> p = softmax(logits, t);
  double pmax = *std::max_element(p.begin(), p.end());
  for (double &v : p)
    if (v < minP * pmax)
      v = 0;
  std::vector<int> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](int a, int b) { return logits[a] > logits[b]; });
  if (topK > 0 && topK < n)
    for (int r = topK; r < n; ++r)
      if (logits[order[r]] < logits[order[topK - 1]])
        p[order[r]] = 0;
  double z = std::accumulate(p.begin(), p.end(), 0.0);
  for (double &v : p)
    v /= z;
  double before = 0;
  for (int r = 0; r < n; ++r) {
    double v = p[order[r]];
    if (before >= topP)
      p[order[r]] = 0;
    before += v;
  }
  z = std::accumulate(p.begin(), p.end(), 0.0);
  for (double &v : p)
    v /= z;
  return p;
}

std::vector<int> drawCounts(Sampler &s, const std::vector<float> &logits,
                            int draws = kDraws) {
  std::vector<int> counts(logits.size());
  for (int i = 0; i < draws; ++i)
    ++counts[s.sample(logits.data(), logits.size()).token];
  return counts;
}

/// Each count within 5 binomial sigmas of draws * p; exactly 0 where p is 0.
void expectDistribution(const std::vector<int> &counts,
                        const std::vector<double> &p, int draws = kDraws) {
  ASSERT_EQ(counts.size(), p.size());
  for (size_t i = 0; i < p.size(); ++i) {
    if (p[i] == 0) {
      EXPECT_EQ(counts[i], 0) << "token " << i << " should be filtered out";
      continue;
    }
    double mean = draws * p[i];
    double sigma = std::sqrt(draws * p[i] * (1 - p[i]));
    EXPECT_NEAR(counts[i], mean, 5 * sigma + 1)
        << "token " << i << " (p = " << p[i] << ")";
  }
}

std::vector<double> logSoftmax(const std::vector<double> &x) {
  double m = *std::max_element(x.begin(), x.end());
  double z = 0;
  for (double v : x)
    z += std::exp(v - m);
  std::vector<double> out;
  for (double v : x)
    out.push_back(v - m - std::log(z));
  return out;
}

/// The processed logprobs of all tokens (a greedy step lists every token,
/// sorted); returned by token id.
std::vector<double> processedLogprobs(Sampler &s,
                                      const std::vector<float> &logits) {
  kiln::SampleResult r = s.sample(logits.data(), logits.size());
  std::vector<double> out(logits.size(), NAN);
  for (const kiln::TokenLogprob &t : r.top)
    out[t.token] = t.logprob;
  return out;
}

void expectAllNear(const std::vector<double> &got,
                   const std::vector<double> &want, double tol = 1e-5) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i)
    EXPECT_NEAR(got[i], want[i], tol) << "token " << i;
}

} // namespace

//===----------------------------------------------------------------------===//
// Distributions
//===----------------------------------------------------------------------===//

TEST(SamplingDistribution, TemperatureOneIsTheSoftmax) {
  Sampler s(seeded(1), kLogits.size(), {});
  expectDistribution(drawCounts(s, kLogits), softmax(kLogits));
}

TEST(SamplingDistribution, TemperatureHalfSharpens) {
  SamplingParams p = seeded(2);
  p.temperature = 0.5f;
  Sampler s(p, kLogits.size(), {});
  expectDistribution(drawCounts(s, kLogits), softmax(kLogits, 0.5));
}

TEST(SamplingDistribution, TemperatureTwoFlattens) {
  SamplingParams p = seeded(3);
  p.temperature = 2.0f;
  Sampler s(p, kLogits.size(), {});
  expectDistribution(drawCounts(s, kLogits), softmax(kLogits, 2.0));
}

TEST(SamplingDistribution, TopKKeepsTheKHighest) {
  SamplingParams p = seeded(4);
  p.topK = 2;
  Sampler s(p, kLogits.size(), {});
  // Tokens 4 (3.0) and 1 (2.0), renormalized: e^3 / (e^3 + e^2).
  double p4 = std::exp(3.0) / (std::exp(3.0) + std::exp(2.0));
  expectDistribution(drawCounts(s, kLogits), {0, 1 - p4, 0, 0, p4, 0});
}

TEST(SamplingDistribution, TopKKeepsTiesWithTheKth) {
  SamplingParams p = seeded(5);
  p.topK = 2;
  std::vector<float> logits = {0.0f, 1.0f, 2.0f, 1.0f};
  Sampler s(p, logits.size(), {});
  // The 2nd highest is 1.0, held by tokens 1 and 3: both stay.
  expectDistribution(drawCounts(s, logits), softmax({-1e30f, 1, 2, 1}));
}

TEST(SamplingDistribution, TopPKeepsTheSmallestSetReachingP) {
  // Probabilities by rank: 0.605 (4), 0.222 (1), 0.082 (0), 0.050 (2)...
  // The mass above token 0 is 0.827 < 0.85, above token 2 it is 0.909: top
  // three kept.
  SamplingParams p = seeded(6);
  p.topP = 0.85f;
  Sampler s(p, kLogits.size(), {});
  std::vector<double> sm = softmax(kLogits);
  double z = sm[4] + sm[1] + sm[0];
  expectDistribution(drawCounts(s, kLogits),
                     {sm[0] / z, sm[1] / z, 0, 0, sm[4] / z, 0});
}

TEST(SamplingDistribution, TopPBelowTheTopTokenKeepsOnlyIt) {
  SamplingParams p = seeded(7);
  p.topP = 0.5f; // token 4 alone holds 0.605
  Sampler s(p, kLogits.size(), {});
  expectDistribution(drawCounts(s, kLogits, 2000), {0, 0, 0, 0, 1, 0}, 2000);
}

TEST(SamplingDistribution, MinPIsRelativeToTheTopProbability) {
  // min_p 0.2 keeps p >= 0.2 * p_max: logit >= 3 + ln 0.2 = 1.39, i.e.
  // tokens 4 and 1.
  SamplingParams p = seeded(8);
  p.minP = 0.2f;
  Sampler s(p, kLogits.size(), {});
  double p4 = std::exp(3.0) / (std::exp(3.0) + std::exp(2.0));
  expectDistribution(drawCounts(s, kLogits), {0, 1 - p4, 0, 0, p4, 0});
}

TEST(SamplingDistribution, MinPComesAfterTemperature) {
  // At temperature 2 the threshold is (logit - 3) / 2 >= ln 0.2: logit >=
  // -0.22, so only token 3 (-1.0) goes. Before temperature it would keep
  // only tokens 4 and 1.
  SamplingParams p = seeded(9);
  p.minP = 0.2f;
  p.temperature = 2.0f;
  Sampler s(p, kLogits.size(), {});
  std::vector<double> want = softmax({1.0f, 2.0f, 0.5f, -1e30f, 3.0f, 0.0f}, 2);
  expectDistribution(drawCounts(s, kLogits), want);
}

TEST(SamplingDistribution, TopPIsTakenAfterTopK) {
  // top_k 3 leaves tokens 4, 1, 0, renormalized to 0.665, 0.245, 0.090.
  // With top_p 0.85 the mass above token 0 is then 0.910 >= 0.85, so token 0
  // goes too; on the full distribution (0.827 < 0.85) it would stay.
  SamplingParams p = seeded(10);
  p.topK = 3;
  p.topP = 0.85f;
  Sampler s(p, kLogits.size(), {});
  std::vector<double> want = reference(kLogits, 1, 3, 0.85, 0);
  ASSERT_EQ(want[0], 0);
  ASSERT_GT(want[1], 0);
  expectDistribution(drawCounts(s, kLogits), want);
}

TEST(SamplingDistribution, AllFiltersTogetherMatchTheReference) {
  std::vector<float> logits;
  std::mt19937 gen(99);
  std::normal_distribution<float> normal(0, 1.5f);
  for (int i = 0; i < 40; ++i)
    logits.push_back(normal(gen));
  SamplingParams p = seeded(11);
  p.temperature = 0.8f;
  p.topK = 25;
  p.topP = 0.9f;
  p.minP = 0.02f;
  Sampler s(p, logits.size(), {});
  expectDistribution(drawCounts(s, logits),
                     reference(logits, 0.8, 25, 0.9, 0.02));
}

TEST(SamplingDistribution, LargeVocabularyTopPMatchesTheReference) {
  // SmolLM2's vocabulary size with a flat-ish distribution: the nucleus is
  // thousands of tokens, so the chunked partial sort runs several rounds.
  // Every drawn token must lie in the reference nucleus, with the
  // reference's renormalized logprob.
  const int vocab = 49152;
  std::vector<float> logits(vocab);
  std::mt19937 gen(7);
  std::normal_distribution<float> normal(0, 2.0f);
  for (float &x : logits)
    x = normal(gen);
  SamplingParams p = seeded(12);
  p.temperature = 0.7f;
  p.topP = 0.9f;
  p.logprobs = 5;
  Sampler s(p, vocab, {});
  std::vector<double> want = reference(logits, 0.7, 0, 0.9, 0);
  int kept = static_cast<int>(
      std::count_if(want.begin(), want.end(), [](double v) { return v > 0; }));
  ASSERT_GT(kept, 1000);
  ASSERT_LT(kept, vocab / 2);
  for (int i = 0; i < 100; ++i) {
    kiln::SampleResult r = s.sample(logits.data(), vocab);
    ASSERT_GT(want[r.token], 0) << "token " << r.token << " is outside top_p";
    EXPECT_NEAR(r.logprob, std::log(want[r.token]), 2e-3);
    ASSERT_EQ(r.top.size(), 5u);
    EXPECT_NEAR(r.top[0].logprob,
                std::log(*std::max_element(want.begin(), want.end())), 2e-3);
  }
}

TEST(SamplingDistribution, DrawSpansBlocksOfTheVocabulary) {
  // The draw sums weights a block of tokens at a time: tokens spread over
  // several blocks, and the mass of the rest, keep their probabilities.
  const int vocab = 1000;
  std::vector<float> logits(vocab, -2.0f);
  const int special[] = {10, 300, 600, 999};
  logits[10] = 2.0f;
  logits[300] = 1.0f;
  logits[600] = 0.5f;
  logits[999] = 1.5f;
  Sampler s(seeded(23), vocab, {});
  std::vector<int> counts = drawCounts(s, logits);
  std::vector<double> p = softmax(logits);
  std::vector<int> grouped = {0, 0, 0, 0, kDraws};
  std::vector<double> want = {0, 0, 0, 0, 1};
  for (int i = 0; i < 4; ++i) {
    grouped[i] = counts[special[i]];
    grouped[4] -= grouped[i];
    want[i] = p[special[i]];
    want[4] -= want[i];
  }
  ASSERT_GT(want[4], 0.3); // the rest matters too
  expectDistribution(grouped, want);
}

TEST(SamplingDistribution, FilterCombinationsStayInTheReferenceSupport) {
  // Logits rounded to 0.25 so that top_k's k-th value is often tied; k up to
  // vocab / 8 takes the heap path, larger k the nth_element one. Every drawn
  // token must be one the reference keeps, with its logprob.
  const int vocab = 3000;
  std::vector<float> logits(vocab);
  std::mt19937 gen(3);
  std::normal_distribution<float> normal(0, 2.5f);
  for (float &x : logits)
    x = std::round(normal(gen) * 4) / 4;
  const int topKs[] = {0, 1, 3, 40, 375, 376, 2000};
  const float topPs[] = {1.0f, 0.95f, 0.5f, 0.05f};
  const float minPs[] = {0.0f, 0.001f, 0.3f};
  const float temperatures[] = {0.3f, 1.0f, 1.7f};
  uint64_t seed = 100;
  for (int topK : topKs)
    for (float topP : topPs)
      for (float minP : minPs)
        for (float t : temperatures) {
          SamplingParams p = seeded(++seed);
          p.topK = topK;
          p.topP = topP;
          p.minP = minP;
          p.temperature = t;
          p.logprobs = 0;
          Sampler s(p, vocab, {});
          std::vector<double> want = reference(logits, t, topK, topP, minP);
          for (int i = 0; i < 40; ++i) {
            kiln::SampleResult r = s.sample(logits.data(), vocab);
            ASSERT_GT(want[r.token], 0)
                << "top_k " << topK << " top_p " << topP << " min_p " << minP
                << " T " << t << ": token " << r.token;
            ASSERT_NEAR(r.logprob, std::log(want[r.token]), 1e-3)
                << "top_k " << topK << " top_p " << topP << " min_p " << minP
                << " T " << t << ": token " << r.token;
          }
        }
}

//===----------------------------------------------------------------------===//
// Edge values
//===----------------------------------------------------------------------===//

TEST(SamplingEdge, TemperatureZeroIsArgmaxAndLeavesTheGeneratorAlone) {
  SamplingParams p = seeded(42);
  p.temperature = 0;
  p.topK = 1000; // filters do not apply to greedy requests
  p.minP = 0.9f;
  Sampler s(p, kLogits.size(), {});
  for (int i = 0; i < 100; ++i)
    EXPECT_EQ(s.sample(kLogits.data(), kLogits.size()).token, 4);
  EXPECT_TRUE(s.generator() == std::mt19937_64(42));
}

TEST(SamplingEdge, SampledStepsTakeOneValueEach) {
  Sampler s(seeded(42), kLogits.size(), {});
  for (int i = 0; i < 10; ++i)
    s.sample(kLogits.data(), kLogits.size());
  std::mt19937_64 g(42);
  g.discard(10);
  EXPECT_TRUE(s.generator() == g);
}

TEST(SamplingEdge, GreedyTiesGoToTheLowestId) {
  SamplingParams p;
  p.temperature = 0;
  std::vector<float> ties = {1.0f, 3.0f, 2.0f, 3.0f, 3.0f};
  Sampler s(p, ties.size(), {});
  EXPECT_EQ(s.sample(ties.data(), ties.size()).token, 1);
  std::vector<float> flat(7, -2.5f);
  Sampler t(p, flat.size(), {});
  EXPECT_EQ(t.sample(flat.data(), flat.size()).token, 0);
}

/// The same seed with the filter at its "off" value and with no filter at
/// all gives the same tokens: the value switches the filter off exactly.
void expectSameAsUnfiltered(const SamplingParams &p,
                            const std::vector<float> &logits) {
  SamplingParams off = seeded(*p.seed);
  off.temperature = p.temperature;
  Sampler a(p, logits.size(), {}), b(off, logits.size(), {});
  for (int i = 0; i < 500; ++i)
    ASSERT_EQ(a.sample(logits.data(), logits.size()).token,
              b.sample(logits.data(), logits.size()).token)
        << "draw " << i;
}

TEST(SamplingEdge, TopPOneIsOff) {
  SamplingParams p = seeded(13);
  p.topP = 1.0f;
  expectSameAsUnfiltered(p, kLogits);
}

TEST(SamplingEdge, TopKAtOrAboveTheVocabularyIsOff) {
  SamplingParams p = seeded(14);
  p.topK = static_cast<int32_t>(kLogits.size());
  expectSameAsUnfiltered(p, kLogits);
  p.topK = 1 << 20;
  expectSameAsUnfiltered(p, kLogits);
  // ...while one less than the vocabulary drops the lowest token.
  p.topK = static_cast<int32_t>(kLogits.size()) - 1;
  Sampler s(p, kLogits.size(), {});
  EXPECT_EQ(drawCounts(s, kLogits)[3], 0);
}

TEST(SamplingEdge, MinPZeroKeepsUnlikelyTokens) {
  // Token 1 has p = 1 / (1 + e^5) = 0.0067: kept at min_p 0, and dropped at
  // min_p 0.01 (0.0067 < 0.01 * 0.993).
  std::vector<float> logits = {0.0f, -5.0f};
  SamplingParams p = seeded(15);
  p.minP = 0;
  Sampler s(p, logits.size(), {});
  expectDistribution(drawCounts(s, logits), softmax(logits));
  p.minP = 0.01f;
  Sampler t(p, logits.size(), {});
  expectDistribution(drawCounts(t, logits), {1, 0});
}

TEST(SamplingEdge, TopKOneIsGreedyButDraws) {
  SamplingParams p = seeded(16);
  p.topK = 1;
  Sampler s(p, kLogits.size(), {});
  for (int i = 0; i < 50; ++i)
    EXPECT_EQ(s.sample(kLogits.data(), kLogits.size()).token, 4);
  std::mt19937_64 g(16);
  g.discard(50);
  EXPECT_TRUE(s.generator() == g);
}

TEST(SamplingEdge, NaNLogitsAreNeverChosen) {
  std::vector<float> logits = {NAN, -3.0f, NAN};
  Sampler s(seeded(17), logits.size(), {});
  expectDistribution(drawCounts(s, logits, 1000), {0, 1, 0}, 1000);
}

TEST(SamplingEdge, InfiniteLogitsShareTheMass) {
  const float inf = INFINITY;
  std::vector<float> logits = {0.0f, inf, 5.0f, inf};
  Sampler s(seeded(18), logits.size(), {});
  expectDistribution(drawCounts(s, logits), {0, 0.5, 0, 0.5});
  SamplingParams g;
  g.temperature = 0;
  Sampler t(g, logits.size(), {});
  EXPECT_EQ(t.sample(logits.data(), logits.size()).token, 1);
}

TEST(SamplingEdge, BadLogitsThrow) {
  Sampler s(seeded(), 3, {});
  std::vector<float> four = {0, 0, 0, 0};
  try {
    s.sample(four.data(), 4);
    FAIL() << "a vocabulary mismatch was accepted";
  } catch (const kiln::Error &e) {
    EXPECT_EQ(e.status(), KILN_ERROR_INVALID_ARGUMENT);
    EXPECT_STREQ(e.what(), "sample: 4 logits given; the request's vocabulary "
                           "has 3 tokens");
  }
  std::vector<float> dead = {-INFINITY, NAN, -INFINITY};
  EXPECT_THROW(s.sample(dead.data(), 3), kiln::Error);
}

//===----------------------------------------------------------------------===//
// Penalties and logit bias, on hand-computed examples
//===----------------------------------------------------------------------===//

namespace {

// Prompt {0, 1}, output so far {2, 2, 3}; token 4 appears in neither.
const std::vector<float> kPenaltyLogits = {2.0f, -1.0f, 0.5f, 1.0f, 3.0f};
const std::vector<int32_t> kPrompt = {0, 1};
const std::vector<int32_t> kOutput = {2, 2, 3};

/// A greedy sampler that reports processed logprobs of all five tokens.
std::vector<double> penalized(SamplingParams p) {
  p.temperature = 0;
  p.logprobs = 5;
  Sampler s(p, kPenaltyLogits.size(), kPrompt, kOutput);
  return processedLogprobs(s, kPenaltyLogits);
}

} // namespace

TEST(SamplingPenalty, RepetitionDividesPositiveAndMultipliesNegative) {
  SamplingParams p;
  p.repetitionPenalty = 2.0f;
  // Prompt and output tokens 0..3: 2 -> 1, -1 -> -2, 0.5 -> 0.25, 1 -> 0.5.
  expectAllNear(penalized(p), logSoftmax({1.0, -2.0, 0.25, 0.5, 3.0}));
}

TEST(SamplingPenalty, RepetitionBelowOneRewards) {
  SamplingParams p;
  p.repetitionPenalty = 0.5f;
  expectAllNear(penalized(p), logSoftmax({4.0, -0.5, 1.0, 2.0, 3.0}));
}

TEST(SamplingPenalty, FrequencyCountsOutputOccurrences) {
  SamplingParams p;
  p.frequencyPenalty = 0.5f;
  // Token 2 twice, token 3 once; the prompt does not count.
  expectAllNear(penalized(p), logSoftmax({2.0, -1.0, -0.5, 0.5, 3.0}));
}

TEST(SamplingPenalty, PresenceCountsOutputTokensOnce) {
  SamplingParams p;
  p.presencePenalty = 0.5f;
  expectAllNear(penalized(p), logSoftmax({2.0, -1.0, 0.0, 0.5, 3.0}));
}

TEST(SamplingPenalty, NegativePresenceEncouragesRepeats) {
  SamplingParams p;
  p.presencePenalty = -2.0f;
  expectAllNear(penalized(p), logSoftmax({2.0, -1.0, 2.5, 3.0, 3.0}));
}

TEST(SamplingPenalty, RepetitionThenFrequencyThenPresence) {
  SamplingParams p;
  p.repetitionPenalty = 2.0f;
  p.frequencyPenalty = 0.5f;
  p.presencePenalty = 0.5f;
  // 0.25 - 2 * 0.5 - 0.5 = -1.25; 0.5 - 0.5 - 0.5 = -0.5.
  expectAllNear(penalized(p), logSoftmax({1.0, -2.0, -1.25, -0.5, 3.0}));
}

TEST(SamplingPenalty, BiasComesBeforePenalties) {
  SamplingParams p;
  p.repetitionPenalty = 2.0f;
  p.logitBias = {{0, -3.0f}};
  p.logitBias[1] = 2.0f;
  // Token 1, bias first: -1 + 2 = 1, then / 2 = 0.5; penalty first would
  // give -1 * 2 + 2 = 0. Token 0: 2 - 3 = -1, then * 2 = -2.
  expectAllNear(penalized(p), logSoftmax({-2.0, 0.5, 0.25, 0.5, 3.0}));
}

TEST(SamplingPenalty, PenaltyChangesTheGreedyChoice) {
  SamplingParams p;
  p.temperature = 0;
  p.repetitionPenalty = 1.2f;
  std::vector<float> logits = {2.0f, 1.9f};
  Sampler plain(SamplingParams{p}, 2, {1});
  EXPECT_EQ(plain.sample(logits.data(), 2).token, 0); // 2.0 vs 1.9 / 1.2
  Sampler repeat(p, 2, {0});
  EXPECT_EQ(repeat.sample(logits.data(), 2).token, 1); // 2.0 / 1.2 < 1.9
}

TEST(SamplingPenalty, SampledTokensCountForLaterSteps) {
  // Frequency 0.3 lowers a token by 0.3 each time it is chosen: greedy then
  // alternates 0 (1.0), 1 (0.9 > 0.7), 0 (0.7 > 0.6), 1, ...
  SamplingParams p;
  p.temperature = 0;
  p.frequencyPenalty = 0.3f;
  std::vector<float> logits = {1.0f, 0.9f};
  Sampler s(p, 2, {});
  std::vector<int32_t> got;
  for (int i = 0; i < 6; ++i)
    got.push_back(s.sample(logits.data(), 2).token);
  EXPECT_EQ(got, (std::vector<int32_t>{0, 1, 0, 1, 0, 1}));
  EXPECT_EQ(s.numOutputTokens(), 6);
}

TEST(SamplingPenalty, PlusHundredBiasForcesAToken) {
  std::vector<float> logits(100);
  std::mt19937 gen(5);
  std::uniform_real_distribution<float> uni(-5, 5);
  for (float &x : logits)
    x = uni(gen);
  SamplingParams p = seeded(19);
  p.temperature = 1.5f;
  p.logitBias = {{37, 100.0f}};
  Sampler s(p, logits.size(), {});
  std::vector<int> counts = drawCounts(s, logits, 2000);
  EXPECT_EQ(counts[37], 2000);
}

TEST(SamplingPenalty, MinusHundredBiasBansAToken) {
  // Token 0 would be drawn ~99.99% of the time.
  std::vector<float> logits = {10.0f, 0.0f, 1.0f};
  SamplingParams p = seeded(20);
  p.logitBias = {{0, -100.0f}};
  Sampler s(p, logits.size(), {});
  std::vector<double> want = softmax({-1e30f, 0.0f, 1.0f});
  expectDistribution(drawCounts(s, logits), want);
  p.temperature = 0;
  Sampler g(p, logits.size(), {});
  EXPECT_EQ(g.sample(logits.data(), logits.size()).token, 2);
}

//===----------------------------------------------------------------------===//
// Seeds
//===----------------------------------------------------------------------===//

namespace {

std::vector<int32_t> sequence(const SamplingParams &p,
                              const std::vector<float> &logits, int n = 200) {
  Sampler s(p, logits.size(), {});
  std::vector<int32_t> out;
  for (int i = 0; i < n; ++i)
    out.push_back(s.sample(logits.data(), logits.size()).token);
  return out;
}

const std::vector<float> kFlat1000 = [] {
  std::vector<float> v(1000);
  for (int i = 0; i < 1000; ++i)
    v[i] = 0.001f * (i % 17);
  return v;
}();

} // namespace

TEST(SamplingSeed, SameSeedSameSequence) {
  SamplingParams p = seeded(777);
  p.topP = 0.95f; // both draw paths
  EXPECT_EQ(sequence(seeded(777), kFlat1000), sequence(seeded(777), kFlat1000));
  EXPECT_EQ(sequence(p, kFlat1000), sequence(p, kFlat1000));
}

TEST(SamplingSeed, DifferentSeedsDifferentSequences) {
  EXPECT_NE(sequence(seeded(1), kFlat1000), sequence(seeded(2), kFlat1000));
  SamplingParams unseeded; // std::random_device
  EXPECT_NE(sequence(unseeded, kFlat1000), sequence(unseeded, kFlat1000));
}

TEST(SamplingSeed, DrawIsPinnedToTheGeneratorsOutput) {
  // With 8 equal logits the draw is token floor(u * 8), u the top 53 bits of
  // one mt19937_64 output: the top 3 bits. This pins the seed -> tokens map
  // (std::mt19937_64 is specified exactly), so a seed means the same on
  // every platform and kiln version.
  std::vector<float> logits(8, 0.25f);
  std::mt19937_64 g(2024);
  std::vector<int32_t> want;
  for (int i = 0; i < 64; ++i)
    want.push_back(static_cast<int32_t>(g() >> 61));
  EXPECT_EQ(sequence(seeded(2024), logits, 64), want);
}

//===----------------------------------------------------------------------===//
// Logprobs
//===----------------------------------------------------------------------===//

// log(e^1 + e^2 + e^3) = 3.4076059644.
TEST(SamplingLogprobs, GreedyMatchesTheLogSoftmax) {
  std::vector<float> logits = {1.0f, 2.0f, 3.0f};
  SamplingParams p;
  p.temperature = 0;
  p.logprobs = 2;
  Sampler s(p, 3, {});
  kiln::SampleResult r = s.sample(logits.data(), 3);
  EXPECT_EQ(r.token, 2);
  EXPECT_NEAR(r.logprob, 3 - 3.4076059644, 1e-6);
  ASSERT_EQ(r.top.size(), 2u);
  EXPECT_EQ(r.top[0].token, 2);
  EXPECT_NEAR(r.top[0].logprob, 3 - 3.4076059644, 1e-6);
  EXPECT_EQ(r.top[1].token, 1);
  EXPECT_NEAR(r.top[1].logprob, 2 - 3.4076059644, 1e-6);
}

TEST(SamplingLogprobs, ProcessedIncludesTemperatureAndFilters) {
  std::vector<float> logits = {1.0f, 2.0f, 3.0f};
  SamplingParams p = seeded(21);
  p.temperature = 2.0f;
  p.logprobs = 3;
  Sampler s(p, 3, {});
  // Logits / 2 = 0.5, 1, 1.5; log(e^.5 + e^1 + e^1.5) = 2.1802697.
  for (int i = 0; i < 20; ++i) {
    kiln::SampleResult r = s.sample(logits.data(), 3);
    EXPECT_NEAR(r.logprob, logits[r.token] / 2 - 2.1802697, 1e-5);
    ASSERT_EQ(r.top.size(), 3u);
    EXPECT_NEAR(r.top[2].logprob, 0.5 - 2.1802697, 1e-5);
  }
  // top_k 2 at temperature 1: tokens 1 and 2 renormalized,
  // log(e^2 + e^3) = 3.3132617; token 0 is not listed.
  p.temperature = 1;
  p.topK = 2;
  Sampler k(p, 3, {});
  for (int i = 0; i < 20; ++i) {
    kiln::SampleResult r = k.sample(logits.data(), 3);
    ASSERT_NE(r.token, 0);
    EXPECT_NEAR(r.logprob, logits[r.token] - 3.3132617, 1e-5);
    ASSERT_EQ(r.top.size(), 2u);
    EXPECT_EQ(r.top[0].token, 2);
    EXPECT_EQ(r.top[1].token, 1);
  }
}

TEST(SamplingLogprobs, RawIgnoresBiasTemperatureAndFilters) {
  std::vector<float> logits = {1.0f, 2.0f, 3.0f};
  SamplingParams p = seeded(22);
  p.temperature = 0.5f;
  p.topK = 1;
  p.logitBias = {{0, 100.0f}};
  p.logprobs = 1;
  p.logprobsMode = LogprobsMode::Raw;
  Sampler s(p, 3, {});
  kiln::SampleResult r = s.sample(logits.data(), 3);
  EXPECT_EQ(r.token, 0);                          // forced by the bias...
  EXPECT_NEAR(r.logprob, 1 - 3.4076059644, 1e-6); // ...but reported as is
  ASSERT_EQ(r.top.size(), 1u);
  EXPECT_EQ(r.top[0].token, 2);
}

TEST(SamplingLogprobs, TopListOrdersTiesByIdAndZeroListsNone) {
  std::vector<float> logits = {1.0f, 2.0f, 2.0f, 0.0f};
  SamplingParams p;
  p.temperature = 0;
  p.logprobs = 3;
  Sampler s(p, 4, {});
  kiln::SampleResult r = s.sample(logits.data(), 4);
  ASSERT_EQ(r.top.size(), 3u);
  EXPECT_EQ(r.top[0].token, 1);
  EXPECT_EQ(r.top[1].token, 2);
  EXPECT_EQ(r.top[2].token, 0);
  p.logprobs = 0;
  Sampler z(p, 4, {});
  r = z.sample(logits.data(), 4);
  EXPECT_TRUE(r.top.empty());
  EXPECT_FALSE(std::isnan(r.logprob));
  p.logprobs.reset();
  Sampler off(p, 4, {});
  EXPECT_TRUE(std::isnan(off.sample(logits.data(), 4).logprob));
}

//===----------------------------------------------------------------------===//
// Finishing by token
//===----------------------------------------------------------------------===//

TEST(SamplingFinish, EosStopTokensAndMaxTokens) {
  SamplingParams p;
  p.stopTokenIds = {7};
  p.maxTokens = 3;
  Sampler s(p, 10, {}, {1});
  const std::vector<int32_t> eos = {2};
  EXPECT_EQ(s.finishAfter(2, eos), FinishReason::Stop);
  EXPECT_EQ(s.finishAfter(7, eos), FinishReason::Stop);
  EXPECT_EQ(s.finishAfter(5, eos), FinishReason::None);
  s.appendOutput(5);
  s.appendOutput(5);
  EXPECT_EQ(s.finishAfter(5, eos), FinishReason::Length);
  EXPECT_EQ(s.finishAfter(7, eos), FinishReason::Stop); // stop wins

  p.ignoreEos = true;
  Sampler i(p, 10, {});
  EXPECT_EQ(i.finishAfter(2, eos), FinishReason::None);
  EXPECT_EQ(i.finishAfter(7, eos), FinishReason::Stop);
}

//===----------------------------------------------------------------------===//
// Validation
//===----------------------------------------------------------------------===//

namespace {

template <typename Edit> std::string check(Edit edit, int64_t vocab = 100) {
  SamplingParams p;
  edit(p);
  return kiln::validate(p, vocab);
}

} // namespace

TEST(SamplingValidate, DefaultsAndBoundariesAreValid) {
  EXPECT_EQ(kiln::validate(SamplingParams{}, 100), "");
  SamplingParams p;
  p.temperature = 0;
  p.topK = 0;
  p.topP = 1;
  p.minP = 1;
  p.repetitionPenalty = 0.01f;
  p.presencePenalty = -2;
  p.frequencyPenalty = 2;
  p.logitBias = {{0, -100.0f}, {99, 100.0f}};
  p.maxTokens = 1;
  p.stopTokenIds = {0, 99};
  p.stop = {"x"};
  p.logprobs = 20;
  EXPECT_EQ(kiln::validate(p, 100), "");
  p.logprobs = 0;
  p.topK = 1 << 30;
  EXPECT_EQ(kiln::validate(p, 100), "");
}

TEST(SamplingValidate, MessagesNameTheParameterAndRange) {
  EXPECT_EQ(check([](auto &p) { p.temperature = -0.5f; }),
            "temperature is -0.5; it must be a finite number >= 0 (0 is "
            "greedy)");
  EXPECT_EQ(check([](auto &p) { p.temperature = INFINITY; }),
            "temperature is inf; it must be a finite number >= 0 (0 is "
            "greedy)");
  EXPECT_EQ(check([](auto &p) { p.topK = -1; }),
            "top_k is -1; it must be >= 0 (0 is off)");
  EXPECT_EQ(check([](auto &p) { p.topP = 0; }),
            "top_p is 0; it must be in (0, 1] (1 is off)");
  EXPECT_EQ(check([](auto &p) { p.topP = 1.5f; }),
            "top_p is 1.5; it must be in (0, 1] (1 is off)");
  EXPECT_EQ(check([](auto &p) { p.minP = -0.1f; }),
            "min_p is -0.1; it must be in [0, 1] (0 is off)");
  EXPECT_EQ(check([](auto &p) { p.minP = 1.25f; }),
            "min_p is 1.25; it must be in [0, 1] (0 is off)");
  EXPECT_EQ(check([](auto &p) { p.repetitionPenalty = 0; }),
            "repetition_penalty is 0; it must be a finite number > 0 (1 is "
            "off)");
  EXPECT_EQ(check([](auto &p) { p.presencePenalty = 2.5f; }),
            "presence_penalty is 2.5; it must be in [-2, 2] (0 is off)");
  EXPECT_EQ(check([](auto &p) { p.frequencyPenalty = -3; }),
            "frequency_penalty is -3; it must be in [-2, 2] (0 is off)");
  EXPECT_EQ(check([](auto &p) { p.logitBias = {{100, 1.0f}}; }),
            "logit_bias: token id 100 is outside the vocabulary [0, 100)");
  EXPECT_EQ(check([](auto &p) { p.logitBias = {{-1, 1.0f}}; }),
            "logit_bias: token id -1 is outside the vocabulary [0, 100)");
  EXPECT_EQ(check([](auto &p) { p.logitBias = {{5, 150.0f}}; }),
            "logit_bias for token 5 is 150; it must be in [-100, 100]");
  EXPECT_EQ(check([](auto &p) { p.maxTokens = 0; }),
            "max_tokens is 0; it must be >= 1");
  EXPECT_EQ(check([](auto &p) { p.stopTokenIds = {3, 100}; }),
            "stop_token_ids: token id 100 is outside the vocabulary [0, 100)");
  EXPECT_EQ(check([](auto &p) { p.stop = {"a", ""}; }),
            "stop[1] is empty; stop strings must be non-empty");
  EXPECT_EQ(check([](auto &p) { p.logprobs = 21; }),
            "logprobs is 21; it must be in [0, 20]");
  EXPECT_EQ(check([](auto &p) { p.logprobs = -1; }),
            "logprobs is -1; it must be in [0, 20]");
  EXPECT_EQ(kiln::validate(SamplingParams{}, 0),
            "the vocabulary has 0 tokens; it must have at least 1");
}

TEST(SamplingValidate, NaNIsRejectedEverywhere) {
  EXPECT_EQ(check([](auto &p) {
              p.temperature = NAN;
            }).rfind("temperature is nan", 0),
            0u);
  EXPECT_EQ(check([](auto &p) { p.topP = NAN; }).rfind("top_p is nan", 0), 0u);
  EXPECT_EQ(check([](auto &p) { p.minP = NAN; }).rfind("min_p is nan", 0), 0u);
  EXPECT_EQ(check([](auto &p) {
              p.repetitionPenalty = NAN;
            }).rfind("repetition_penalty is nan", 0),
            0u);
  EXPECT_EQ(check([](auto &p) {
              p.presencePenalty = NAN;
            }).rfind("presence_penalty is nan", 0),
            0u);
  EXPECT_EQ(check([](auto &p) {
              p.frequencyPenalty = NAN;
            }).rfind("frequency_penalty is nan", 0),
            0u);
  EXPECT_EQ(check([](auto &p) { p.logitBias = {{1, NAN}}; }),
            "logit_bias for token 1 is nan; it must be in [-100, 100]");
}

TEST(SamplingValidate, SamplerThrowsTheMessage) {
  SamplingParams p;
  p.topP = 2;
  try {
    Sampler s(p, 10, {});
    FAIL() << "invalid parameters were accepted";
  } catch (const kiln::Error &e) {
    EXPECT_EQ(e.status(), KILN_ERROR_INVALID_ARGUMENT);
    EXPECT_STREQ(e.what(), "top_p is 2; it must be in (0, 1] (1 is off)");
  }
  EXPECT_THROW((Sampler(SamplingParams{}, 10, {3, 10})), kiln::Error);
}

//===----------------------------------------------------------------------===//
// Stop strings
//===----------------------------------------------------------------------===//

namespace {

/// Feeds `pieces` and returns what was released, with "|" between feeds,
/// and the stop (index@offset) if one was found.
std::string run(StopMatcher &m, const std::vector<std::string> &pieces,
                bool finish = true) {
  std::string out;
  for (const std::string &piece : pieces) {
    StopMatcher::Result r = m.feed(piece);
    out += r.text + "|";
    if (r.stopped)
      return out + " stop " + std::to_string(r.stopIndex) + "@" +
             std::to_string(r.stopOffset);
  }
  if (finish)
    out += "finish:" + m.finish();
  return out;
}

} // namespace

TEST(StopMatcher, StopStringSpanningFeedsIsHeldThenDropped) {
  StopMatcher m({"END", "</s>"});
  EXPECT_EQ(run(m, {"Hello <", "/", "s> more"}), "Hello ||| stop 1@6");
  EXPECT_TRUE(m.stopped());
  EXPECT_EQ(m.feed("later").text, "");
  EXPECT_EQ(m.finish(), "");
}

TEST(StopMatcher, HeldTextIsReleasedWhenItCannotMatch) {
  StopMatcher m({"</s>"});
  StopMatcher::Result r = m.feed("a </");
  EXPECT_EQ(r.text, "a ");
  EXPECT_EQ(m.held(), 2u);
  r = m.feed("x> b");
  EXPECT_EQ(r.text, "</x> b");
  EXPECT_FALSE(r.stopped);
  EXPECT_EQ(m.held(), 0u);
}

TEST(StopMatcher, FinishReleasesTheHeldTail) {
  StopMatcher m({"STOP"});
  EXPECT_EQ(run(m, {"all done ST"}), "all done |finish:ST");
}

TEST(StopMatcher, HoldsTheLongestPossibleStart) {
  // "aab" can start at either of the last two bytes of "xaa": both held.
  StopMatcher m({"aab"});
  EXPECT_EQ(run(m, {"xaa", "a", "b"}, false), "x|a|| stop 0@2");
}

TEST(StopMatcher, SeveralStopsOnePending) {
  StopMatcher m({"abc", "bcd"});
  // "xab": "ab" may start "abc"; then "c" completes it.
  EXPECT_EQ(run(m, {"xab", "c"}), "x|| stop 0@1");
  StopMatcher n({"abc", "bcd"});
  EXPECT_EQ(run(n, {"xab", "d"}), "x|abd|finish:");
}

TEST(StopMatcher, FirstCompletedStopWins) {
  // In "abcd", "bc" is complete at byte 3, before "abcd" at byte 4: the
  // output is "a", however the text was cut. Of two ending together, the
  // longer one (earlier start) wins.
  StopMatcher whole({"abcd", "bc"});
  EXPECT_EQ(run(whole, {"abcd"}), "a| stop 1@1");
  StopMatcher bytes({"abcd", "bc"});
  EXPECT_EQ(run(bytes, {"a", "b", "c", "d"}), "||a| stop 1@1");
  StopMatcher halves({"abcd", "bc"});
  EXPECT_EQ(run(halves, {"ab", "cd"}), "|a| stop 1@1");
  StopMatcher together({"cd", "bcd"});
  EXPECT_EQ(run(together, {"abcde"}), "a| stop 1@1");
}

TEST(StopMatcher, ResultDoesNotDependOnHowTheTextIsCut) {
  const std::string text = "The answer is 42.\n\nUser: next question";
  const std::vector<std::string> stops = {"\n\nUser:", "42!", "question"};
  for (size_t size = 1; size <= text.size(); ++size) {
    StopMatcher m(stops);
    std::string out;
    StopMatcher::Result r;
    for (size_t at = 0; at < text.size() && !r.stopped; at += size) {
      r = m.feed(text.substr(at, size));
      out += r.text;
    }
    ASSERT_TRUE(r.stopped) << "pieces of " << size;
    EXPECT_EQ(out, "The answer is 42.") << "pieces of " << size;
    EXPECT_EQ(r.stopIndex, 0u);
    EXPECT_EQ(r.stopOffset, 17u);
  }
}

TEST(StopMatcher, NoStopStringsReleasesEverything) {
  StopMatcher m({});
  StopMatcher::Result r = m.feed("any </s> text");
  EXPECT_EQ(r.text, "any </s> text");
  EXPECT_FALSE(r.stopped);
  EXPECT_EQ(m.held(), 0u);
  StopMatcher e({""}); // an empty stop string matches nothing
  EXPECT_EQ(e.feed("abc").text, "abc");
}

TEST(StopMatcher, StopAtTheVeryStart) {
  StopMatcher m({"\n"});
  EXPECT_EQ(run(m, {"\nrest"}), "| stop 0@0");
}
