//===- tokenizer.h - Hugging Face tokenizer.json ----------------*- C++ -*-===//
//
// The C++ side of kiln_tokenizer_t. It reimplements the part of the
// `tokenizers` library that byte-level BPE (GPT-2, Llama 3, SmolLM2) and
// SentencePiece-style models (Llama 2, Mistral, Gemma: BPE with byte
// fallback; T5-style Unigram) use, step for step, so that ids agree exactly:
//
//   text ─▶ added tokens split out (non-normalized ones first)
//        ─▶ normalizer (Prepend / Replace / Strip) on each remaining piece
//        ─▶ added tokens matched in the normalized text
//        ─▶ pre-tokenizer steps (Split / Digits / WhitespaceSplit, then
//           ByteLevel or Metaspace)
//        ─▶ model on each piece: BPE (cached) or Unigram (Viterbi)
//        ─▶ post-processor's special tokens
//
// and back: ids ─▶ token strings ─▶ the decoder's steps (ByteLevel, Replace,
// ByteFallback, Fuse, Strip, Metaspace), run as a stream so that the
// detokenizer and decode share one implementation.
// Where behaviour is subtle the comment names the `tokenizers` function it
// follows; test/runtime/check_tokenizer_agreement.py checks the result.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_RUNTIME_TOKENIZER_H
#define KILN_RUNTIME_TOKENIZER_H

#include "regex.h"

#include <algorithm>
#include <array>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace kiln::tok {

/// A token from tokenizer.json's "added_tokens", matched in the raw text
/// before pre-tokenization.
struct AddedToken {
  std::string content;
  /// What is searched for: the content, or for a normalized token the
  /// content run through the normalizer (AddedVocabulary matches those in
  /// normalized text).
  std::string match;
  int32_t id = -1;
  bool special = false;
  bool singleWord = false; ///< only where not inside a word
  bool lstrip = false;     ///< also swallows whitespace on its left
  bool rstrip = false;     ///< also swallows whitespace on its right
  bool normalized = true;  ///< matched after normalization (second pass)
};

/// Finds added tokens in text the way `tokenizers`' AddedVocabulary does
/// (find_matches over an Aho-Corasick automaton with leftmost-longest
/// semantics): the leftmost match wins, the longest among those starting
/// there; the scan resumes after it even when its single_word condition
/// rejects it.
class AddedTokenMatcher {
public:
  void build(std::vector<const AddedToken *> tokens);
  /// Calls `emit(segment, id)` for each piece of `s` in order: id >= 0 for
  /// an added token (its segment includes stripped whitespace), -1 for the
  /// text between tokens (never empty).
  template <typename Emit> void split(std::string_view s, Emit &&emit) const;

private:
  bool findAt(std::string_view s, size_t i, const AddedToken *&hit) const;
  std::vector<const AddedToken *> tokens_;
  /// Candidate tokens by first byte, longest first, so the first hit at a
  /// position is the longest.
  std::array<std::vector<const AddedToken *>, 256> byFirstByte_;
};

/// How a Split pre-tokenizer treats the matches of its pattern
/// (`tokenizers`' SplitDelimiterBehavior).
enum class SplitBehavior {
  Removed,
  Isolated,
  MergedWithPrevious,
  MergedWithNext,
  Contiguous
};

/// Where Metaspace puts its replacement character in front of a piece
/// (`tokenizers`' PrependScheme).
enum class PrependScheme {
  Always, ///< every piece that does not already start with it
  First,  ///< only the piece at offset 0 of the original text
  Never
};

/// One pre-tokenizer: Split (Digits is a Split on \p{N} or \p{N}+),
/// WhitespaceSplit, or, always as the last one, ByteLevel or Metaspace.
struct PreTokenizerStep {
  enum class Kind { Split, WhitespaceSplit, ByteLevel, Metaspace };
  Kind kind = Kind::Split;
  std::unique_ptr<Regex> regex; ///< Split by regex; ByteLevel's GPT-2 regex
  std::string literal;          ///< Split by a plain string
  bool isLiteral = false;
  SplitBehavior behavior = SplitBehavior::Isolated;
  bool invert = false;
  bool addPrefixSpace = false; ///< ByteLevel: prepend " " to each piece
  bool useRegex = true;        ///< ByteLevel: split with the GPT-2 regex
  std::string replacement;     ///< Metaspace: the character for ' ' (UTF-8)
  PrependScheme prependScheme = PrependScheme::Always; ///< Metaspace
  bool split = true; ///< Metaspace: cut before each replacement character
};

/// A pattern as tokenizer.json spells one ({"String": ...} or
/// {"Regex": ...}), with `tokenizers`' find_matches semantics: leftmost,
/// non-overlapping, empty regex matches included.
struct Pattern {
  std::string literal;
  std::unique_ptr<Regex> regex; ///< null for a literal
  /// Appends the matches in `s` to `out`.
  void findAll(std::string_view s, std::vector<Span> &out) const;
};

/// One normalizer of a flattened Sequence. Only those that keep the text's
/// characters are implemented; Unicode normalization (NFC, NFKC,
/// Precompiled, Lowercase, ...) is refused at load.
struct NormalizerStep {
  enum class Kind { Prepend, Replace, Strip } kind = Kind::Prepend;
  std::string content; ///< Prepend: the prefix; Replace: the replacement
  Pattern pattern;     ///< Replace
  bool left = false, right = false; ///< Strip: which ends
};

/// Normalized text with, for each byte, the offset in the original text of
/// the character it came from (`tokenizers`' alignments, start only): what
/// Metaspace's prepend_scheme "first" tests.
struct NormalizedText {
  std::string text;
  std::vector<uint32_t> orig;
};

/// One decoder of a flattened Sequence (`tokenizers`' decoders/). Each
/// turns a list of token strings into another; Fuse and ByteLevel join
/// them into one string, after which only steps that act on single
/// characters or on the text's start may follow (see Loader::loadDecoder).
struct DecoderStep {
  enum class Kind { ByteLevel, Replace, ByteFallback, Fuse, Strip, Metaspace };
  Kind kind = Kind::Fuse;
  Pattern pattern;         ///< Replace
  std::string content;     ///< Replace: the replacement; Strip: its char
  size_t start = 0;        ///< Strip: at most this many leading chars
  size_t stop = 0;         ///< Strip: at most this many trailing chars
  std::string replacement; ///< Metaspace: the character that means ' '
  bool dropFirst = true;   ///< Metaspace: the first token loses replacements
};

/// A decode in progress: what each decoder step holds back. Copyable, so
/// that a detokenizer can try a push and keep the old state on failure.
struct DecodeState {
  struct Step {
    std::string bytes;  ///< ByteFallback run / ByteLevel incomplete char
    uint64_t count = 0; ///< Metaspace: tokens seen; Strip: chars stripped
    bool done = false;  ///< text-mode Strip: past the text's start
  };
  std::vector<Step> steps;
  bool first = true; ///< no token yet (no decoder: no " " before it)
};

/// A byte trie over a vocabulary, for Unigram's common-prefix search. Each
/// node's children are contiguous and sorted by label, so a lookup is a
/// short search and the whole trie is a few flat arrays.
class PrefixTrie {
public:
  /// Builds the trie of `tokens` (token, id); a repeated token keeps the
  /// last id. Empty tokens are left out (they never match).
  void build(std::vector<std::pair<std::string, int32_t>> tokens);
  /// Calls `f(length, id)` for each token that is a prefix of `s`,
  /// shortest first.
  template <typename F> void forEachPrefix(std::string_view s, F &&f) const;

private:
  struct Node {
    uint32_t firstChild = 0, numChildren = 0;
    int32_t id = -1;
  };
  std::vector<Node> nodes_;
  std::vector<uint8_t> labels_; ///< label of node i (the byte leading to it)
};

/// Pair of symbol ids -> (rank, merged id): an open-addressing hash table,
/// since the lookup is the inner loop of BPE and std::unordered_map's
/// node chasing costs about twice as much.
class MergeMap {
public:
  struct Value {
    uint32_t rank;
    int32_t id;
  };
  void reserve(size_t n);
  /// Inserts or overwrites: a later duplicate merge replaces the earlier,
  /// as collecting into a Rust HashMap does in `tokenizers`.
  void set(int32_t a, int32_t b, Value v);
  const Value *find(int32_t a, int32_t b) const;

private:
  static uint64_t key(int32_t a, int32_t b) {
    return static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32 |
           static_cast<uint32_t>(b);
  }
  size_t slot(uint64_t k) const;
  std::vector<uint64_t> keys_;
  std::vector<Value> values_;
  size_t mask_ = 0, size_ = 0;
};

/// A bounded, thread-safe memo of piece -> ids, like `tokenizers`' BPE
/// cache. Sharded so that threads encoding at once rarely meet on a lock.
class PieceCache {
public:
  bool lookup(std::string_view piece, std::vector<int32_t> &out) const;
  void insert(std::string_view piece, const int32_t *ids, size_t n);
  static constexpr size_t kMaxPieceBytes = 256;

private:
  static constexpr size_t kShards = 16, kMaxEntriesPerShard = 4096;
  struct Shard {
    mutable std::mutex mutex;
    std::unordered_map<std::string, std::vector<int32_t>> map;
  };
  std::array<Shard, kShards> shards_;
};

/// The loaded tokenizer. Immutable after load() except for the cache.
class Tokenizer {
public:
  /// Reads and checks `path`; throws kiln::Error with the status and message
  /// kiln_tokenizer_load documents.
  static std::unique_ptr<Tokenizer> load(const std::string &path);

  /// Appends the ids of `text` to `ids`. Throws kiln::Error for invalid
  /// UTF-8 (KILN_ERROR_INVALID_ARGUMENT) and regex failures.
  void encode(std::string_view text, bool addSpecialTokens,
              std::vector<int32_t> &ids) const;

  /// Checks that `id` is a token; throws KILN_ERROR_INVALID_ARGUMENT naming
  /// it as `label` (e.g. "ids[3]") if not.
  void checkId(int32_t id, const char *label, size_t index) const {
    if (!isToken(id))
      badId(id, label, index);
  }
  /// Appends the text of `ids` to `out` (kiln_tokenizer_decode).
  void decode(const int32_t *ids, size_t n, bool skipSpecialTokens,
              std::string &out) const;
  /// A fresh state for decodePush / decodeFinish.
  DecodeState decodeStart() const;
  /// Streams token `id` (a checked token id) through the decoder, appending
  /// to `out` what can no longer change: decode(ids) is exactly what the
  /// pushes of ids and a final decodeFinish append. What is held back: a
  /// ByteLevel character missing bytes, and a run of byte-fallback tokens
  /// until a token of another kind ends it (`tokenizers` decodes the run as
  /// a whole, and if any of it is not UTF-8 every byte becomes U+FFFD).
  void decodePush(DecodeState &state, int32_t id, std::string &out) const;
  /// Appends what `state` still holds and resets it for a new sequence.
  void decodeFinish(DecodeState &state, std::string &out) const;

  size_t vocabSize() const { return tokenOf_.size(); }
  bool isToken(int32_t id) const {
    return id >= 0 && static_cast<size_t>(id) < kind_.size() &&
           kind_[id] != Kind::None;
  }
  bool isSpecial(int32_t id) const {
    return isToken(id) && kind_[id] == Kind::Special;
  }
  const std::string &tokenOf(int32_t id) const { return tokenOf_[id]; }
  /// -1 when `token` is neither an added token nor in the vocabulary.
  int32_t idOf(std::string_view token) const;
  /// `text` after the normalizer (the text itself without one).
  std::string normalized(std::string_view text) const;

private:
  friend class Loader;
  enum class Kind : uint8_t { None, Regular, Special };

  [[noreturn]] void badId(int32_t id, const char *label, size_t index) const;
  struct EncodeState; // per-call scratch, defined in tokenizer.cpp
  void encodeSegment(std::string_view text, std::string_view segment,
                     EncodeState &st, std::vector<int32_t> &ids) const;
  void normalize(std::string_view segment, uint32_t offset, NormalizedText &out,
                 EncodeState &st) const;
  void preTokenizeAndEncode(std::string_view segment, EncodeState &st,
                            std::vector<int32_t> &ids) const;
  void splitStep(const PreTokenizerStep &step, std::string_view piece,
                 EncodeState &st, std::vector<std::string_view> &out) const;
  void metaspace(const PreTokenizerStep &step, std::string_view piece,
                 EncodeState &st, std::vector<int32_t> &ids) const;
  /// Runs the model on one pre-tokenized piece.
  void model(std::string_view piece, EncodeState &st,
             std::vector<int32_t> &ids) const;
  void bpeUncached(std::string_view piece, EncodeState &st,
                   std::vector<int32_t> &ids) const;
  void unigramUncached(std::string_view piece, EncodeState &st,
                       std::vector<int32_t> &ids) const;
  int32_t vocabId(std::string_view token) const;
  /// The decoder from step `k` on, for one token string / text chunk.
  void decodeToken(DecodeState &state, size_t k, std::string token,
                   std::string &out) const;
  void decodeText(DecodeState &state, size_t k, std::string_view text,
                  std::string &out) const;

  // Added tokens.
  std::vector<AddedToken> added_;
  std::unordered_map<std::string, int32_t> addedIds_;
  AddedTokenMatcher nonNormalized_, normalized_;

  // Normalizer, flattened.
  std::vector<NormalizerStep> normalizers_;

  // Pre-tokenizer. byteLevel_: the last step is ByteLevel, so the model sees
  // raw bytes and maps each through the GPT-2 byte alphabet. metaspace_: the
  // last step is Metaspace.
  std::vector<PreTokenizerStep> steps_;
  bool byteLevel_ = false, metaspace_ = false;

  // Model: BPE or Unigram. vocab_ is `tokenizers`' token_to_id for both.
  bool unigram_ = false;
  std::unordered_map<std::string, int32_t> vocab_;
  MergeMap merges_;
  std::array<int32_t, 256> byteIds_;         ///< id of each byte's symbol
  std::array<int32_t, 256> byteFallbackIds_; ///< id of "<0xXX>", or -1
  std::string continuingSubwordPrefix_, endOfWordSuffix_;
  int32_t unkId_ = -1;
  bool fuseUnk_ = false, byteFallback_ = false, ignoreMerges_ = false;
  std::vector<double> scores_; ///< Unigram: each id's log probability
  double unkScore_ = 0;        ///< Unigram: the lowest score minus 10
  PrefixTrie trie_;            ///< Unigram: the vocabulary
  mutable PieceCache cache_;

  // Post-processor (add_special_tokens): ids around the sequence.
  std::vector<int32_t> prefix_, suffix_;

  // Decoder, flattened; hasDecoder_ false: tokens are joined with " ".
  std::vector<DecoderStep> decoders_;
  bool hasDecoder_ = false;

  // Per id, over model and added tokens.
  std::vector<std::string> tokenOf_;
  std::vector<Kind> kind_;
};

/// GPT-2's reversible byte -> printable character map (bytes_to_unicode):
/// printable Latin-1 bytes map to themselves, the other 68 to U+0100..U+0143.
uint32_t byteToCodePoint(uint8_t b);
/// The inverse; -1 for characters outside the alphabet.
int codePointToByte(uint32_t cp);

/// Unicode White_Space (Rust's char::is_whitespace; lstrip/rstrip use it).
bool isWhiteSpace(uint32_t cp);
/// Bytes of White_Space characters ending at s[end] / starting at s[begin].
size_t whiteSpaceBefore(std::string_view s, size_t end);
size_t whiteSpaceAfter(std::string_view s, size_t begin);
/// Whether the character ending at s[end] / starting at s[i] is a word
/// character (single_word's test; `tokenizers` uses the regex `\w`).
bool isWordCharBefore(std::string_view s, size_t end);
bool isWordCharAt(std::string_view s, size_t i);

template <typename Emit>
void AddedTokenMatcher::split(std::string_view s, Emit &&emit) const {
  if (tokens_.empty()) {
    if (!s.empty())
      emit(s, -1);
    return;
  }
  size_t startOffset = 0, pos = 0;
  while (pos < s.size()) {
    const AddedToken *hit = nullptr;
    size_t i = pos;
    while (i < s.size() && !findAt(s, i, hit))
      ++i;
    if (!hit)
      break;
    size_t start = i, stop = i + hit->match.size();
    pos = stop; // the automaton resumes here whatever we decide below
    if (hit->singleWord && ((start > 0 && isWordCharBefore(s, start)) ||
                            (stop < s.size() && isWordCharAt(s, stop))))
      continue;
    if (hit->lstrip) {
      // Whitespace an earlier token already took stays with that token.
      size_t newStart = start - whiteSpaceBefore(s, start);
      start = newStart > startOffset ? newStart : startOffset;
    }
    if (hit->rstrip)
      stop += whiteSpaceAfter(s, stop);
    if (startOffset < start)
      emit(s.substr(startOffset, start - startOffset), -1);
    emit(s.substr(start, stop - start), hit->id);
    startOffset = stop;
  }
  if (startOffset < s.size())
    emit(s.substr(startOffset), -1);
}

template <typename F>
void PrefixTrie::forEachPrefix(std::string_view s, F &&f) const {
  if (nodes_.empty())
    return;
  uint32_t node = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    const Node &n = nodes_[node];
    auto label = static_cast<uint8_t>(s[i]);
    const uint8_t *first = labels_.data() + n.firstChild;
    const uint8_t *last = first + n.numChildren;
    const uint8_t *hit = std::lower_bound(first, last, label);
    if (hit == last || *hit != label)
      return;
    node = static_cast<uint32_t>(hit - labels_.data());
    if (nodes_[node].id >= 0)
      f(i + 1, nodes_[node].id);
  }
}

} // namespace kiln::tok

#endif // KILN_RUNTIME_TOKENIZER_H
