//===- sampling.cpp - choosing the next token, and stop strings -----------===//
//
// One sample() is a handful of passes over the vocabulary, written so that
// the compiler vectorizes them (no calls, selects instead of branches,
// several running sums): copy the logits, add the bias and penalties (only
// at the tokens concerned), take the max, then one exp pass that also
// applies top_k's threshold and min_p, then block sums for the draw. Only
// top_p needs an order, and only of its head: a mass threshold first drops
// the tokens that cannot be in the nucleus, and the rest are sorted in
// growing chunks until their mass reaches top_p. A peaked distribution
// costs a sort of a few dozen tokens, never a sort of the vocabulary.
//
//===----------------------------------------------------------------------===//

#include "sampling.h"

#include "error.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <limits>

using namespace kiln;

namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();

/// The largest number of top logprobs a request may ask for (OpenAI's
/// top_logprobs limit).
constexpr int32_t kMaxLogprobs = 20;

/// Tokens per block of the draw's running sums.
constexpr int64_t kBlock = 256;

/// Running sums and maxima use this many lanes so that the loops vectorize
/// (floating-point reductions are not reassociated by the compiler).
constexpr int kLanes = 8;

std::string num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

/// Per-thread buffers of vocabulary size, reused from step to step so that
/// a sampler per request costs no vocabulary-sized memory.
struct Scratch {
  std::vector<float> w;      ///< processed logits, then (x - max) / T
  std::vector<float> e;      ///< exp of the above; 0 = filtered out
  std::vector<float> raw;    ///< the logits as given, for Raw logprobs
  std::vector<float> heap;   ///< top_k's selection
  std::vector<double> block; ///< sums of e over blocks of kBlock
  std::vector<int32_t> idx;  ///< top_p's candidates
};

Scratch &scratch() {
  thread_local Scratch s;
  return s;
}

/// Copies logits, NaN becoming -inf.
void copyLogits(const float *logits, int64_t n, std::vector<float> &out) {
  out.resize(n);
  float *o = out.data();
  for (int64_t i = 0; i < n; ++i) {
    float v = logits[i];
    o[i] = v != v ? -kInf : v;
  }
}

/// The largest of x[0..n), n >= 1, none of them NaN.
float maxOf(const float *x, int64_t n) {
  float lane[kLanes];
  std::fill(lane, lane + kLanes, -kInf);
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int j = 0; j < kLanes; ++j)
      lane[j] = x[i + j] > lane[j] ? x[i + j] : lane[j];
  float m = -kInf;
  for (; i < n; ++i)
    m = std::max(m, x[i]);
  for (float v : lane)
    m = std::max(m, v);
  return m;
}

/// The sum of x[0..n), in float lanes (each block is short enough that
/// float keeps ~7 digits) added up in double.
double sumOf(const float *x, int64_t n) {
  float lane[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int j = 0; j < kLanes; ++j)
      lane[j] += x[i + j];
  double z = 0;
  for (; i < n; ++i)
    z += x[i];
  for (float v : lane)
    z += v;
  return z;
}

/// Four floats, and four int32 masks (-1 = true) as vector comparisons
/// give: written with these, the exp loops vectorize, which plain loops
/// with selects do not (GCC will not if-convert float comparisons that may
/// trap). 16 bytes is SSE2, which every x86-64 has.
typedef float V4 __attribute__((vector_size(16)));
typedef int32_t I4 __attribute__((vector_size(16)));
typedef uint32_t U4 __attribute__((vector_size(16)));

inline V4 load4(const float *p) {
  V4 v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

inline void store4(float *p, V4 v) { std::memcpy(p, &v, sizeof v); }

/// Runs body(V4) -> V4 over x[0..n) four at a time, the tail padded with
/// `pad`, storing each result to out (which may be x).
template <typename Body>
inline void map4(const float *x, float *out, int64_t n, float pad, Body body) {
  int64_t i = 0;
  for (; i + 4 <= n; i += 4)
    store4(out + i, body(load4(x + i)));
  if (i < n) {
    float tail[4] = {pad, pad, pad, pad};
    std::memcpy(tail, x + i, (n - i) * sizeof(float));
    V4 r = body(load4(tail));
    std::memcpy(out + i, &r, (n - i) * sizeof(float));
  }
}

/// exp(x) for x <= 0, within a few ulp, and exactly 0 below -87 (where
/// float's normal range ends; such a token cannot be drawn) and for -inf.
/// Cephes' expf: x = n ln2 + r, |r| <= ln2 / 2, a degree-6 polynomial for
/// e^r, and 2^n put into the exponent bits. std::exp does not vectorize.
inline V4 expNonPositive(V4 x) {
  const V4 lowest = {-87.0f, -87.0f, -87.0f, -87.0f};
  const I4 zero = x < lowest;
  x = zero ? lowest : x;
  // Adding 1.5 * 2^23 rounds to an integer, which lands in the low mantissa
  // bits; subtracting it again gives that integer as a float.
  const float magic = 12582912.0f;
  V4 shifted = x * 1.44269504088896341f + magic;
  V4 n = shifted - magic;
  I4 ni = reinterpret_cast<I4>(shifted) - 0x4B400000; // the bits of `magic`
  V4 r = x - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  V4 y = r * 1.9875691500e-4f + 1.3981999507e-3f;
  y = y * r + 8.3334519073e-3f;
  y = y * r + 4.1665795894e-2f;
  y = y * r + 1.6666665459e-1f;
  y = y * r + 5.0000001201e-1f;
  y = y * r * r + r + 1.0f;
  // Shifted as unsigned: lanes of a NaN or huge x give a meaningless ni.
  V4 scale = reinterpret_cast<V4>((reinterpret_cast<U4>(ni) + 127u) << 23);
  const V4 none = {};
  return zero ? none : y * scale;
}

/// The sum of the x[i] >= t.
double sumAtLeast(const float *x, int64_t n, float t) {
  double z = 0;
  for (int64_t b = 0; b < n; b += kBlock) {
    int64_t end = std::min(n, b + kBlock);
    V4 lane = {};
    const V4 none = {};
    int64_t i = b;
    for (; i + 4 <= end; i += 4) {
      V4 v = load4(x + i);
      lane += v >= t ? v : none;
    }
    for (; i < end; ++i)
      z += x[i] >= t ? x[i] : 0.0f;
    z += static_cast<double>(lane[0]) + lane[1] + lane[2] + lane[3];
  }
  return z;
}

/// The max of x. If it is +inf, the +inf tokens share all the probability:
/// they become 0 and the rest -inf. Throws when every value is -inf.
float maxAndFixInfinities(std::vector<float> &x) {
  float m = maxOf(x.data(), static_cast<int64_t>(x.size()));
  if (m == kInf) {
    for (float &v : x)
      v = v == kInf ? 0.0f : -kInf;
    m = 0;
  }
  if (m == -kInf)
    throw Error(KILN_ERROR_INVALID_ARGUMENT,
                "sample: every logit is -inf or NaN; there is no token to "
                "choose");
  return m;
}

/// log(sum(exp(x))) for x whose max is m; `tmp` is scratch.
float logSumExp(const std::vector<float> &x, float m, std::vector<float> &tmp) {
  const int64_t n = static_cast<int64_t>(x.size());
  tmp.resize(n);
  map4(x.data(), tmp.data(), n, -kInf,
       [m](V4 v) { return expNonPositive(v - m); });
  return m + static_cast<float>(std::log(sumOf(tmp.data(), n)));
}

/// Steps 4-5 but top_p, in one pass: w[i] becomes (w[i] - m) / t and e[i]
/// its exp, or -inf and 0 for a token that top_k (w[i] < kth) or min_p
/// drops. min_p keeps p >= min_p * p_max, i.e. exp((w - max) / T) >= min_p.
void scaleAndFilter(float *w, float *e, int64_t n, float m, float t, float kth,
                    float minP) {
  auto pass = [&](V4 v, V4 &x, V4 &p) {
    const V4 none = {}, minusInf = none - kInf;
    x = (v - m) / t;
    p = expNonPositive(x);
    I4 keep = (v >= kth) & (p >= minP) & (p > 0);
    x = keep ? x : minusInf;
    p = keep ? p : none;
  };
  int64_t i = 0;
  for (V4 x, p; i + 4 <= n; i += 4) {
    pass(load4(w + i), x, p);
    store4(w + i, x);
    store4(e + i, p);
  }
  if (i < n) {
    float tail[4] = {-kInf, -kInf, -kInf, -kInf};
    std::memcpy(tail, w + i, (n - i) * sizeof(float));
    V4 x, p;
    pass(load4(tail), x, p);
    std::memcpy(w + i, &x, (n - i) * sizeof(float));
    std::memcpy(e + i, &p, (n - i) * sizeof(float));
  }
}

/// The k-th largest of w (counting repeats), 1 < k < w.size().
float kthLargest(const std::vector<float> &w, int32_t k,
                 std::vector<float> &heap) {
  const int64_t n = static_cast<int64_t>(w.size());
  if (k > n / 8) {
    heap.assign(w.begin(), w.end());
    std::nth_element(heap.begin(), heap.begin() + (k - 1), heap.end(),
                     std::greater<float>());
    return heap[k - 1];
  }
  // A min-heap of the k largest so far: most values fail the one comparison
  // against its smallest.
  heap.assign(w.begin(), w.begin() + k);
  std::make_heap(heap.begin(), heap.end(), std::greater<float>());
  for (int64_t i = k; i < n; ++i)
    if (w[i] > heap.front()) {
      std::pop_heap(heap.begin(), heap.end(), std::greater<float>());
      heap.back() = w[i];
      std::push_heap(heap.begin(), heap.end(), std::greater<float>());
    }
  return heap.front();
}

/// The `count` largest values of x above -inf, largest first, ties to the
/// lower id; each reported as x - lse. One pass: most values fail the first
/// comparison against the current worst.
std::vector<TokenLogprob> topLogprobs(const std::vector<float> &x,
                                      int32_t count, float lse) {
  std::vector<int32_t> best;
  if (count <= 0)
    return {};
  best.reserve(count + 1);
  for (int32_t i = 0; i < static_cast<int32_t>(x.size()); ++i) {
    float v = x[i];
    if (v == -kInf)
      continue;
    if (static_cast<int32_t>(best.size()) == count && !(v > x[best.back()]))
      continue;
    // After every kept value >= v: equal values keep id order.
    auto at = std::upper_bound(best.begin(), best.end(), v,
                               [&](float a, int32_t b) { return a > x[b]; });
    best.insert(at, i);
    if (static_cast<int32_t>(best.size()) > count)
      best.pop_back();
  }
  std::vector<TokenLogprob> out;
  out.reserve(best.size());
  for (int32_t i : best)
    out.push_back({i, x[i] - lse});
  return out;
}

uint64_t randomSeed() {
  std::random_device rd;
  return (static_cast<uint64_t>(rd()) << 32) ^ rd();
}

} // namespace

//===----------------------------------------------------------------------===//
// Validation
//===----------------------------------------------------------------------===//

std::string kiln::validate(const SamplingParams &p, int64_t vocab) {
  if (vocab < 1)
    return "the vocabulary has " + std::to_string(vocab) +
           " tokens; it must have at least 1";
  // Written as !(in range) so that NaN fails every check.
  if (!(p.temperature >= 0) || !std::isfinite(p.temperature))
    return "temperature is " + num(p.temperature) +
           "; it must be a finite number >= 0 (0 is greedy)";
  if (p.topK < 0)
    return "top_k is " + std::to_string(p.topK) +
           "; it must be >= 0 (0 is off)";
  if (!(p.topP > 0 && p.topP <= 1))
    return "top_p is " + num(p.topP) + "; it must be in (0, 1] (1 is off)";
  if (!(p.minP >= 0 && p.minP <= 1))
    return "min_p is " + num(p.minP) + "; it must be in [0, 1] (0 is off)";
  if (!(p.repetitionPenalty > 0) || !std::isfinite(p.repetitionPenalty))
    return "repetition_penalty is " + num(p.repetitionPenalty) +
           "; it must be a finite number > 0 (1 is off)";
  if (!(p.presencePenalty >= -2 && p.presencePenalty <= 2))
    return "presence_penalty is " + num(p.presencePenalty) +
           "; it must be in [-2, 2] (0 is off)";
  if (!(p.frequencyPenalty >= -2 && p.frequencyPenalty <= 2))
    return "frequency_penalty is " + num(p.frequencyPenalty) +
           "; it must be in [-2, 2] (0 is off)";
  std::string vocabRange = "[0, " + std::to_string(vocab) + ")";
  for (const auto &[id, bias] : p.logitBias) {
    if (id < 0 || id >= vocab)
      return "logit_bias: token id " + std::to_string(id) +
             " is outside the vocabulary " + vocabRange;
    if (!(bias >= -100 && bias <= 100))
      return "logit_bias for token " + std::to_string(id) + " is " + num(bias) +
             "; it must be in [-100, 100]";
  }
  if (p.maxTokens && *p.maxTokens < 1)
    return "max_tokens is " + std::to_string(*p.maxTokens) +
           "; it must be >= 1";
  for (int32_t id : p.stopTokenIds)
    if (id < 0 || id >= vocab)
      return "stop_token_ids: token id " + std::to_string(id) +
             " is outside the vocabulary " + vocabRange;
  for (size_t i = 0; i < p.stop.size(); ++i)
    if (p.stop[i].empty())
      return "stop[" + std::to_string(i) +
             "] is empty; stop strings must be non-empty";
  if (p.logprobs && (*p.logprobs < 0 || *p.logprobs > kMaxLogprobs))
    return "logprobs is " + std::to_string(*p.logprobs) +
           "; it must be in [0, " + std::to_string(kMaxLogprobs) + "]";
  return "";
}

//===----------------------------------------------------------------------===//
// Sampler
//===----------------------------------------------------------------------===//

Sampler::Sampler(SamplingParams params, int64_t vocab,
                 const std::vector<int32_t> &prompt,
                 const std::vector<int32_t> &output)
    : params_(std::move(params)), vocab_(vocab) {
  std::string bad = validate(params_, vocab);
  if (!bad.empty())
    throw Error(KILN_ERROR_INVALID_ARGUMENT, bad);
  rng_.seed(params_.seed ? *params_.seed : randomSeed());
  bool repetition = params_.repetitionPenalty != 1.0f;
  penalized_ = repetition || params_.presencePenalty != 0.0f ||
               params_.frequencyPenalty != 0.0f;
  for (size_t i = 0; i < prompt.size(); ++i) {
    if (prompt[i] < 0 || prompt[i] >= vocab)
      throw Error(KILN_ERROR_INVALID_ARGUMENT,
                  "prompt token " + std::to_string(i) + " is " +
                      std::to_string(prompt[i]) +
                      ", outside the vocabulary [0, " + std::to_string(vocab) +
                      ")");
    // Prompt tokens only matter to the repetition penalty.
    if (repetition)
      seen(prompt[i]).inPrompt = true;
  }
  for (int32_t t : output)
    appendOutput(t);
}

void Sampler::appendOutput(int32_t token) {
  if (token < 0 || token >= vocab_)
    throw Error(KILN_ERROR_INVALID_ARGUMENT,
                "output token " + std::to_string(token) +
                    " is outside the vocabulary [0, " + std::to_string(vocab_) +
                    ")");
  ++numOutput_;
  if (penalized_)
    ++seen(token).outputCount;
}

Sampler::Seen &Sampler::seen(int32_t token) {
  auto [it, added] =
      slot_.try_emplace(token, static_cast<uint32_t>(seen_.size()));
  if (added)
    seen_.push_back({token});
  return seen_[it->second];
}

void Sampler::applyPenalties(float *w) const {
  const float rep = params_.repetitionPenalty;
  const float freq = params_.frequencyPenalty;
  const float presence = params_.presencePenalty;
  for (const Seen &seen : seen_) {
    float &x = w[seen.token];
    if (rep != 1.0f)
      x = x > 0 ? x / rep : x * rep;
    if (seen.outputCount > 0) {
      x -= freq * static_cast<float>(seen.outputCount);
      x -= presence;
    }
  }
}

SampleResult Sampler::sample(const float *logits, int64_t vocab) {
  if (!logits)
    throw Error(KILN_ERROR_INVALID_ARGUMENT, "sample: logits is NULL");
  if (vocab != vocab_)
    throw Error(KILN_ERROR_INVALID_ARGUMENT,
                "sample: " + std::to_string(vocab) +
                    " logits given; the request's vocabulary has " +
                    std::to_string(vocab_) + " tokens");
  Scratch &s = scratch();
  std::vector<float> &w = s.w;
  std::vector<float> &e = s.e;
  const bool wantLogprobs = params_.logprobs.has_value();
  const int32_t topCount = params_.logprobs.value_or(0);
  const bool raw = wantLogprobs && params_.logprobsMode == LogprobsMode::Raw;

  SampleResult result;
  result.logprob = std::numeric_limits<float>::quiet_NaN();
  // Raw logprobs: from the logits as given, before anything changes them.
  float rawLse = 0;
  if (raw) {
    copyLogits(logits, vocab, s.raw);
    float m = maxAndFixInfinities(s.raw);
    rawLse = logSumExp(s.raw, m, e);
    result.top = topLogprobs(s.raw, topCount, rawLse);
  }

  // 1-2. Logit bias, then penalties.
  copyLogits(logits, vocab, w);
  for (const auto &[id, bias] : params_.logitBias)
    w[id] += bias;
  if (penalized_)
    applyPenalties(w.data());
  const float m = maxAndFixInfinities(w);

  // 3. Greedy: the first maximum. No draw, so the generator is untouched.
  if (params_.temperature == 0.0f) {
    int32_t token =
        static_cast<int32_t>(std::find(w.begin(), w.end(), m) - w.begin());
    result.token = token;
    if (wantLogprobs && !raw) {
      // vLLM's processed logprobs for greedy requests: log-softmax after bias
      // and penalties, no temperature and no filtering.
      float lse = logSumExp(w, m, e);
      result.logprob = w[token] - lse;
      result.top = topLogprobs(w, topCount, lse);
    }
    if (raw)
      result.logprob = s.raw[token] - rawLse;
    appendOutput(token);
    return result;
  }

  // 4-5. Temperature, top_k's threshold and min_p, in one pass. Afterwards
  // w[i] = (logit - max) / T for kept tokens and -inf for the rest, and
  // e[i] = exp(w[i]) (so the largest e is 1) or 0.
  const int32_t topK = params_.topK;
  // Every token tied with the k-th largest logit stays (vLLM, HF).
  const float kth = topK > 1 && topK < vocab ? kthLargest(w, topK, s.heap)
                    : topK == 1              ? m
                                             : -kInf;
  e.resize(vocab);
  float *wp = w.data(), *ep = e.data();
  scaleAndFilter(wp, ep, vocab, m, params_.temperature, kth, params_.minP);

  // 5. top_p, on what min_p and top_k left. The tokens with e >= t for a
  // threshold t holding at least top_p of the mass are the candidates (no
  // token below t can be in the nucleus: those above already reach top_p);
  // they are sorted (by probability, then lower id) in growing chunks until
  // the tokens ranked above the next one hold at least top_p of the mass.
  const bool nucleus = params_.topP < 1.0f;
  std::vector<double> &block = s.block;
  const int64_t numBlocks = (vocab + kBlock - 1) / kBlock;
  block.resize(numBlocks);
  double z = 0;
  for (int64_t b = 0; b < numBlocks; ++b) {
    block[b] = sumOf(ep + b * kBlock, std::min(kBlock, vocab - b * kBlock));
    z += block[b];
  }
  size_t keep = 0;
  double zKept = z;
  std::vector<int32_t> &idx = s.idx;
  if (nucleus) {
    const double limit = static_cast<double>(params_.topP) * z;
    float t = 1e-3f;
    while (t > 0 && sumAtLeast(ep, vocab, t) < limit)
      t = t > 1e-12f ? t * 1e-3f : 0.0f;
    idx.clear();
    for (int32_t i = 0; i < static_cast<int32_t>(vocab); ++i)
      if (ep[i] > 0 && ep[i] >= t)
        idx.push_back(i);
    auto before = [wp](int32_t a, int32_t b) {
      return wp[a] > wp[b] || (wp[a] == wp[b] && a < b);
    };
    const size_t n = idx.size();
    double acc = 0;
    keep = n;
    size_t sorted = 0, chunk = 64;
    bool cut = false;
    while (sorted < n && !cut) {
      size_t end = std::min(n, sorted + chunk);
      if (end < n)
        std::nth_element(idx.begin() + sorted, idx.begin() + end, idx.end(),
                         before);
      std::sort(idx.begin() + sorted, idx.begin() + end, before);
      for (size_t j = sorted; j < end; ++j) {
        if (acc >= limit) {
          keep = j;
          cut = true;
          break;
        }
        acc += ep[idx[j]];
      }
      sorted = end;
      chunk *= 4;
    }
    zKept = acc;
  }

  // 6. One draw: u uniform in [0, 1) from the top 53 bits, then the first
  // token whose running sum of weights passes u * total (in id order, a
  // block at a time, or in the top_p order).
  const double u = static_cast<double>(rng_() >> 11) * 0x1.0p-53;
  const double target = u * zKept;
  int32_t token = -1;
  if (nucleus) {
    double acc = 0;
    for (size_t j = 0; j < keep && token < 0; ++j) {
      acc += ep[idx[j]];
      if (acc > target)
        token = idx[j];
    }
    if (token < 0) // rounding: the sum fell short of the total
      token = idx[keep - 1];
  } else {
    double acc = 0;
    int64_t b = 0;
    while (b < numBlocks - 1 && acc + block[b] <= target)
      acc += block[b++];
    // Within block b; if rounding makes its sum fall short, its last kept
    // token (the last block with one, if b has none).
    int64_t last = -1;
    for (int64_t i = b * kBlock, end = std::min(vocab, i + kBlock);
         i < end && token < 0; ++i) {
      if (ep[i] == 0)
        continue;
      last = i;
      acc += ep[i];
      if (acc > target)
        token = static_cast<int32_t>(i);
    }
    for (int64_t i = b * kBlock - 1; last < 0 && i >= 0; --i)
      if (ep[i] > 0)
        last = i;
    if (token < 0)
      token = static_cast<int32_t>(last);
  }
  result.token = token;

  if (wantLogprobs && !raw) {
    // The distribution drawn from: the kept tokens' softmax.
    const float lse = static_cast<float>(std::log(zKept));
    result.logprob = w[token] - lse;
    if (nucleus) {
      size_t n = std::min<size_t>(keep, topCount);
      for (size_t j = 0; j < n; ++j)
        result.top.push_back({idx[j], w[idx[j]] - lse});
    } else {
      result.top = topLogprobs(w, topCount, lse);
    }
  }
  if (raw)
    result.logprob = s.raw[token] - rawLse;
  appendOutput(token);
  return result;
}

FinishReason Sampler::finishAfter(int32_t token,
                                  const std::vector<int32_t> &eosIds) const {
  const auto &stops = params_.stopTokenIds;
  if (std::find(stops.begin(), stops.end(), token) != stops.end())
    return FinishReason::Stop;
  if (!params_.ignoreEos &&
      std::find(eosIds.begin(), eosIds.end(), token) != eosIds.end())
    return FinishReason::Stop;
  if (params_.maxTokens && numOutput_ >= *params_.maxTokens)
    return FinishReason::Length;
  return FinishReason::None;
}

//===----------------------------------------------------------------------===//
// StopMatcher
//===----------------------------------------------------------------------===//

StopMatcher::StopMatcher(std::vector<std::string> stops)
    : stops_(std::move(stops)) {}

StopMatcher::Result StopMatcher::feed(std::string_view text) {
  Result r;
  if (stopped_)
    return r;
  pending_.append(text);

  // pending_ is the held-back tail (which held no stop string) plus `text`,
  // and released text can be part of no stop string, so every match not yet
  // seen lies in pending_. The first one completed wins: the earliest end,
  // then the earliest start. A string's first occurrence is its earliest end.
  size_t bestEnd = std::string::npos, bestStart = 0, bestIndex = 0;
  for (size_t i = 0; i < stops_.size(); ++i) {
    const std::string &stop = stops_[i];
    if (stop.empty())
      continue;
    size_t at = pending_.find(stop);
    if (at == std::string::npos)
      continue;
    size_t end = at + stop.size();
    if (end < bestEnd || (end == bestEnd && at < bestStart)) {
      bestEnd = end;
      bestStart = at;
      bestIndex = i;
    }
  }
  if (bestEnd != std::string::npos) {
    r.text = pending_.substr(0, bestStart);
    r.stopped = true;
    r.stopIndex = bestIndex;
    r.stopOffset = released_ + bestStart;
    released_ += bestStart;
    pending_.clear();
    stopped_ = true;
    return r;
  }

  // Hold back the longest tail of pending_ that begins some stop string: a
  // later match has to start there or later.
  size_t hold = 0;
  for (const std::string &stop : stops_) {
    if (stop.empty())
      continue;
    size_t most = std::min(stop.size() - 1, pending_.size());
    for (size_t len = most; len > hold; --len)
      if (pending_.compare(pending_.size() - len, len, stop, 0, len) == 0) {
        hold = len;
        break;
      }
  }
  size_t out = pending_.size() - hold;
  r.text = pending_.substr(0, out);
  pending_.erase(0, out);
  released_ += out;
  return r;
}

std::string StopMatcher::finish() {
  std::string rest;
  rest.swap(pending_);
  released_ += rest.size();
  return rest;
}
