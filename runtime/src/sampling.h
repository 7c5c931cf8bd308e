//===- sampling.h - choosing the next token, and stop strings ---*- C++ -*-===//
//
// What the scheduler calls once per request per step, after the engine has
// produced the logits of the request's last token:
//
//   Sampler::sample(logits) ─▶ token (+ logprobs)
//   Sampler::finishAfter(token) ─▶ EOS / stop token id / max_tokens?
//   detokenizer ─▶ text ─▶ StopMatcher::feed ─▶ text safe to stream, stop?
//
// The parameters mean what they mean in the OpenAI API and in vLLM, and the
// processing order is vLLM's (v1 sampler), so a request gives the same
// distribution it would there:
//
//   1. logit_bias is added;
//   2. penalties: repetition (prompt and output tokens), then frequency and
//      presence (output tokens only);
//   3. temperature 0: argmax, stop here (no randomness is used);
//   4. logits / temperature;
//   5. min_p, top_k, top_p filtering (see SamplingParams for each);
//   6. one draw from the remaining tokens' softmax.
//
// Hugging Face applies min_p after top_p instead; the two orders differ only
// when min_p and top_p are both set (min_p and top_k commute).
//
//===----------------------------------------------------------------------===//

#ifndef KILN_RUNTIME_SAMPLING_H
#define KILN_RUNTIME_SAMPLING_H

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace kiln {

/// Which distribution SampleResult's logprobs describe.
enum class LogprobsMode {
  /// The distribution the token was drawn from: after logit bias,
  /// penalties, temperature and min_p/top_k/top_p (filtered-out tokens have
  /// logprob -inf). With temperature 0, after logit bias and penalties only.
  /// vLLM's logprobs_mode="processed_logprobs". The default: the logprob
  /// then says how likely the draw actually was.
  Processed,
  /// The model's own distribution: log-softmax of the logits as given,
  /// before anything here touched them. vLLM's default ("raw_logprobs").
  Raw,
};

/// One request's sampling settings. Field names are camelCase; messages
/// from validate() use the OpenAI/vLLM request names (top_p, logit_bias...)
/// since they are meant for the client that sent them.
struct SamplingParams {
  /// Divides the logits. 0 = greedy (argmax, ties to the lowest id); must
  /// be finite and >= 0.
  float temperature = 1.0f;
  /// Keeps the top_k highest logits, and every token tied with the k-th
  /// (as vLLM and Hugging Face do). 0 or >= vocab = off.
  int32_t topK = 0;
  /// Keeps the smallest set of most likely tokens whose probability sums to
  /// at least top_p: a token is kept when the tokens ranked above it (by
  /// probability, then lower id) sum to less than top_p. In (0, 1]; 1 = off.
  float topP = 1.0f;
  /// Keeps tokens whose probability is at least min_p times the largest
  /// one's (after temperature). In [0, 1]; 0 = off. Tokens whose weight
  /// exp((logit - max) / T) is below e^-87 (float's normal range) are
  /// dropped in any case.
  float minP = 0.0f;
  /// For every token in the prompt or the output so far: a positive logit
  /// is divided by it, a negative one multiplied (HF/vLLM). > 0; 1 = off.
  float repetitionPenalty = 1.0f;
  /// Subtracted from the logit of every token that occurs in the output so
  /// far (OpenAI). In [-2, 2]; 0 = off.
  float presencePenalty = 0.0f;
  /// Subtracted once per occurrence in the output so far (OpenAI). In
  /// [-2, 2]; 0 = off.
  float frequencyPenalty = 0.0f;
  /// Token id -> value added to its logit before anything else. Ids must be
  /// in the vocabulary, values in [-100, 100] (OpenAI): +100 in practice
  /// forces a token, -100 bans it.
  std::map<int32_t, float> logitBias;
  /// Seeds the request's generator: the same seed and the same logits give
  /// the same tokens. The generator (std::mt19937_64) and the draw (the top
  /// 53 bits of one output per step, no std:: distribution, whose algorithms
  /// differ between libraries) are fully specified, and the exp is kiln's
  /// own, so only last-bit float differences between builds (e.g. FMA
  /// contraction) could change a token. Unset: std::random_device.
  std::optional<uint64_t> seed;
  /// The most tokens to generate; unset = until the context is full. >= 1.
  std::optional<int64_t> maxTokens;
  /// Tokens that end the request (even with ignore_eos); ids in the vocab.
  std::vector<int32_t> stopTokenIds;
  /// Strings that end the request; not part of the output (OpenAI). Each
  /// must be non-empty. See StopMatcher.
  std::vector<std::string> stop;
  /// Keep generating past the model's EOS tokens.
  bool ignoreEos = false;
  /// Unset: no logprobs. n in [0, 20]: the chosen token's logprob and the n
  /// most likely tokens' (vLLM's `logprobs`; OpenAI chat's logprobs=true
  /// with top_logprobs=n, completions' logprobs=n).
  std::optional<int32_t> logprobs;
  /// Which distribution the logprobs describe.
  LogprobsMode logprobsMode = LogprobsMode::Processed;
};

/// Checks `params` for a vocabulary of `vocab` tokens. Returns "" when they
/// are valid, else a message naming the first bad parameter, its value and
/// the allowed range, e.g. "top_p is 1.5; it must be in (0, 1]" (lowercase,
/// no trailing period: the scheduler passes it on to the client).
std::string validate(const SamplingParams &params, int64_t vocab);

/// A token and its log-probability.
struct TokenLogprob {
  int32_t token;
  float logprob;
};

/// What Sampler::sample chose.
struct SampleResult {
  int32_t token = -1;
  /// log P(token) under params.logprobsMode's distribution; NaN when
  /// params.logprobs is unset (it is not computed then).
  float logprob = 0;
  /// The params.logprobs most likely tokens, most likely first (ties: lower
  /// id first). Only tokens whose logprob is above -inf are listed (in
  /// Processed mode: those that could have been drawn), so there are fewer
  /// when the filters left fewer. vLLM lists n tokens even then, some at
  /// -inf, which its OpenAI server writes as -9999.
  std::vector<TokenLogprob> top;
};

/// Why a request ends.
enum class FinishReason {
  None,   ///< it goes on
  Stop,   ///< EOS, a stop token id or a stop string (OpenAI "stop")
  Length, ///< max_tokens reached (OpenAI "length")
};

/// One request's sampling state: its parameters, its random generator and
/// the token counts the penalties need. Used by one thread at a time.
class Sampler {
public:
  /// Checks `params` with validate() and `prompt`'s ids against `vocab`;
  /// throws kiln::Error (KILN_ERROR_INVALID_ARGUMENT) with the message.
  /// `output` is what the request generated so far (non-empty when a
  /// preempted request is resumed): it counts for the penalties.
  Sampler(SamplingParams params, int64_t vocab,
          const std::vector<int32_t> &prompt,
          const std::vector<int32_t> &output = {});

  /// Picks the next token from `logits` (`vocab` values, the model's output
  /// after the last token), records it as an output token, and returns it
  /// with the logprobs params.logprobs asks for. A few vectorized passes
  /// over the vocabulary; top_p < 1 adds a sort of the tokens above a mass
  /// threshold (a few dozen for a peaked distribution). A step with
  /// temperature > 0 takes exactly one 64-bit value from the generator;
  /// temperature 0 takes none. NaN logits count as -inf. Throws kiln::Error
  /// (KILN_ERROR_INVALID_ARGUMENT) when `vocab` differs from the
  /// constructor's or no logit is above -inf.
  SampleResult sample(const float *logits, int64_t vocab);

  /// Records `token` as generated without drawing it (a token forced by the
  /// scheduler). sample() records its own tokens; do not add them again.
  void appendOutput(int32_t token);

  /// Whether the request ends with `token`, the last one sample() returned:
  /// Stop for a stop token id, or for one of `eosIds` unless ignore_eos;
  /// otherwise Length once max_tokens tokens are out. Stop strings are
  /// StopMatcher's job. The token that ends a request by id is not part of
  /// its text (feed it to no StopMatcher).
  FinishReason finishAfter(int32_t token,
                           const std::vector<int32_t> &eosIds) const;

  const SamplingParams &params() const { return params_; }
  /// Tokens generated so far (sampled or appended).
  int64_t numOutputTokens() const { return numOutput_; }
  /// The generator, to check that greedy steps leave it alone.
  const std::mt19937_64 &generator() const { return rng_; }

private:
  struct Seen {
    int32_t token;
    int32_t outputCount = 0;
    bool inPrompt = false;
  };
  void applyPenalties(float *w) const;
  /// The entry of `token` in seen_, made if new.
  Seen &seen(int32_t token);

  SamplingParams params_;
  int64_t vocab_;
  std::mt19937_64 rng_;
  /// Whether a penalty is on; seen_ is kept only then.
  bool penalized_ = false;
  /// The distinct tokens of the prompt and output so far, in a flat array
  /// so that applying the penalties is a walk over O(distinct tokens), not
  /// O(vocab); slot_ finds a token's entry.
  std::vector<Seen> seen_;
  std::unordered_map<int32_t, uint32_t> slot_;
  int64_t numOutput_ = 0;
};

/// Finds stop strings in generated text fed piece by piece, holding back
/// whatever could still turn out to be the start of one, so that no part of
/// a stop string is ever streamed.
///
/// The stop string that ends the text is the one completed first: the
/// earliest end in the text, and of those ending there the longest. That
/// is what feeding one byte at a time would find, so the result does not
/// depend on how the text is cut into pieces. The stop string and all
/// text after it are dropped (OpenAI).
class StopMatcher {
public:
  /// `stops` empty: every fed byte is released at once. Empty strings in
  /// it are ignored (validate() rejects them in a request).
  explicit StopMatcher(std::vector<std::string> stops);

  struct Result {
    /// The text that can be streamed now (possibly empty): everything fed
    /// so far that precedes the stop string, or that cannot start one.
    std::string text;
    /// A stop string was found; the request ends, later feeds are ignored.
    bool stopped = false;
    /// When stopped: the index of the stop string in `stops`, and the byte
    /// offset where it begins in the whole text fed so far (= the length of
    /// the request's output text).
    size_t stopIndex = 0;
    size_t stopOffset = 0;
  };

  /// Appends `text` and reports what can be released.
  Result feed(std::string_view text);

  /// Ends the text without a stop string (EOS, max_tokens): returns the
  /// held-back text, which can no longer become a stop string.
  std::string finish();

  /// Bytes fed but not yet released.
  size_t held() const { return pending_.size(); }
  bool stopped() const { return stopped_; }

private:
  std::vector<std::string> stops_;
  std::string pending_;
  /// Bytes released before pending_ begins.
  size_t released_ = 0;
  bool stopped_ = false;
};

} // namespace kiln

#endif // KILN_RUNTIME_SAMPLING_H
