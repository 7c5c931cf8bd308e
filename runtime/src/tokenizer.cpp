//===- tokenizer.cpp - encoding -------------------------------------------===//

#include "tokenizer.h"

#include "error.h"
#include "utf8.h"

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <functional>

using namespace kiln;
using namespace kiln::tok;

//===----------------------------------------------------------------------===//
// Character classes
//===----------------------------------------------------------------------===//

uint32_t tok::byteToCodePoint(uint8_t b) {
  // bytes_to_unicode: '!'..'~', '¡'..'¬', '®'..'ÿ' are themselves; the rest,
  // in byte order, become U+0100, U+0101, ...
  auto printable = [](unsigned c) {
    return (c >= 0x21 && c <= 0x7E) || (c >= 0xA1 && c <= 0xAC) ||
           (c >= 0xAE && c <= 0xFF);
  };
  if (printable(b))
    return b;
  uint32_t n = 0;
  for (unsigned c = 0; c < b; ++c)
    n += !printable(c);
  return 0x100 + n;
}

int tok::codePointToByte(uint32_t cp) {
  static const std::array<int, 0x144> inverse = [] {
    std::array<int, 0x144> a;
    a.fill(-1);
    for (unsigned b = 0; b < 256; ++b)
      a[byteToCodePoint(static_cast<uint8_t>(b))] = static_cast<int>(b);
    return a;
  }();
  return cp < inverse.size() ? inverse[cp] : -1;
}

bool tok::isWhiteSpace(uint32_t cp) {
  return (cp >= 0x09 && cp <= 0x0D) || cp == 0x20 || cp == 0x85 || cp == 0xA0 ||
         cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 ||
         cp == 0x2029 || cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

namespace {
/// Start of the character that ends at s[end] (valid UTF-8, end > 0).
size_t previousCharStart(std::string_view s, size_t end) {
  size_t i = end - 1;
  while (i > 0 && (static_cast<unsigned char>(s[i]) & 0xC0) == 0x80)
    --i;
  return i;
}

/// Rust regex's Unicode `\w`: Alphabetic, marks, decimal digits, connector
/// punctuation, joiners. PCRE2 has no Alphabetic property; letters plus
/// letter numbers cover it but for rare Other_Alphabetic symbols.
const Regex &wordChar() {
  static const Regex re("[\\p{L}\\p{Nl}\\p{M}\\p{Nd}\\p{Pc}\\x{200C}\\x{200D}]",
                        "word character class");
  return re;
}
} // namespace

size_t tok::whiteSpaceBefore(std::string_view s, size_t end) {
  size_t i = end;
  while (i > 0) {
    size_t start = previousCharStart(s, i);
    if (!isWhiteSpace(utf8::decode(s, start)))
      break;
    i = start;
  }
  return end - i;
}

size_t tok::whiteSpaceAfter(std::string_view s, size_t begin) {
  size_t i = begin;
  while (i < s.size() && isWhiteSpace(utf8::decode(s, i)))
    i += utf8::charLen(s, i);
  return i - begin;
}

bool tok::isWordCharBefore(std::string_view s, size_t end) {
  size_t start = previousCharStart(s, end);
  return wordChar().matchesAll(s.substr(start, end - start));
}

bool tok::isWordCharAt(std::string_view s, size_t i) {
  return wordChar().matchesAll(s.substr(i, utf8::charLen(s, i)));
}

//===----------------------------------------------------------------------===//
// Added tokens
//===----------------------------------------------------------------------===//

void AddedTokenMatcher::build(std::vector<const AddedToken *> tokens) {
  tokens_ = std::move(tokens);
  for (auto &bucket : byFirstByte_)
    bucket.clear();
  for (const AddedToken *t : tokens_)
    byFirstByte_[static_cast<unsigned char>(t->match[0])].push_back(t);
  // Tokens of equal length cannot both match at one position, so their
  // relative order does not matter.
  for (auto &bucket : byFirstByte_)
    std::sort(bucket.begin(), bucket.end(),
              [](const AddedToken *a, const AddedToken *b) {
                return a->match.size() > b->match.size();
              });
}

bool AddedTokenMatcher::findAt(std::string_view s, size_t i,
                               const AddedToken *&hit) const {
  for (const AddedToken *t : byFirstByte_[static_cast<unsigned char>(s[i])]) {
    if (s.size() - i >= t->match.size() &&
        s.compare(i, t->match.size(), t->match) == 0) {
      hit = t;
      return true;
    }
  }
  return false;
}

//===----------------------------------------------------------------------===//
// Merge map and cache
//===----------------------------------------------------------------------===//

void MergeMap::reserve(size_t n) {
  size_t capacity = 16;
  while (capacity < n * 2)
    capacity *= 2;
  keys_.assign(capacity, ~uint64_t(0));
  values_.assign(capacity, Value{0, -1});
  mask_ = capacity - 1;
  size_ = 0;
}

size_t MergeMap::slot(uint64_t k) const {
  // Fibonacci hashing spreads the structured (id, id) keys well.
  size_t i = static_cast<size_t>((k * 0x9E3779B97F4A7C15ull) >> 20) & mask_;
  while (keys_[i] != k && keys_[i] != ~uint64_t(0))
    i = (i + 1) & mask_;
  return i;
}

void MergeMap::set(int32_t a, int32_t b, Value v) {
  if ((size_ + 1) * 2 > keys_.size()) {
    std::vector<uint64_t> keys = std::move(keys_);
    std::vector<Value> values = std::move(values_);
    reserve(std::max<size_t>(16, keys.size()));
    for (size_t i = 0; i < keys.size(); ++i)
      if (keys[i] != ~uint64_t(0)) {
        size_t j = slot(keys[i]);
        keys_[j] = keys[i];
        values_[j] = values[i];
        ++size_;
      }
  }
  uint64_t k = key(a, b);
  size_t i = slot(k);
  if (keys_[i] != k) {
    keys_[i] = k;
    ++size_;
  }
  values_[i] = v;
}

const MergeMap::Value *MergeMap::find(int32_t a, int32_t b) const {
  if (keys_.empty())
    return nullptr;
  uint64_t k = key(a, b);
  size_t i = slot(k);
  return keys_[i] == k ? &values_[i] : nullptr;
}

bool PieceCache::lookup(std::string_view piece,
                        std::vector<int32_t> &out) const {
  const Shard &shard = shards_[std::hash<std::string_view>()(piece) % kShards];
  std::lock_guard<std::mutex> lock(shard.mutex);
  // C++17's unordered_map has no heterogeneous lookup; the key copy is
  // cheap next to BPE on the same piece.
  auto it = shard.map.find(std::string(piece));
  if (it == shard.map.end())
    return false;
  out.insert(out.end(), it->second.begin(), it->second.end());
  return true;
}

void PieceCache::insert(std::string_view piece, const int32_t *ids, size_t n) {
  Shard &shard = shards_[std::hash<std::string_view>()(piece) % kShards];
  std::lock_guard<std::mutex> lock(shard.mutex);
  // A full shard starts over: simpler than LRU, and text that overflows it
  // is varied enough that recency would not help much either.
  if (shard.map.size() >= kMaxEntriesPerShard)
    shard.map.clear();
  shard.map.emplace(std::string(piece), std::vector<int32_t>(ids, ids + n));
}

//===----------------------------------------------------------------------===//
// Encoding
//===----------------------------------------------------------------------===//

/// Scratch space for one encode call, reused across its pieces.
struct Tokenizer::EncodeState {
  std::vector<Span> spans;
  std::vector<std::pair<Span, bool>> matches;
  std::vector<std::string_view> pieces, next;
  std::string prefixed, mapped, meta;
  NormalizedText norm, scratch;
  /// Where the pieces being pre-tokenized point into: the input text
  /// (baseOrig null: offsets are the original ones) or `norm`.
  const char *base = nullptr;
  const uint32_t *baseOrig = nullptr;
  struct Symbol {
    int32_t id;
    int32_t prev, next;
    uint32_t len; ///< 0 once merged into its left neighbour
  };
  std::vector<Symbol> symbols;
  struct Merge {
    uint32_t rank, pos;
    int32_t id;
  };
  std::vector<Merge> heap;
  /// Unigram's lattice: the best segmentation of each prefix.
  struct Node {
    double score;
    int32_t id;
    size_t start; ///< SIZE_MAX while no path reaches the node
  };
  std::vector<Node> lattice;
  std::vector<std::pair<Span, int32_t>> path;

  /// Offset in the original text of the byte at `p` of a piece.
  size_t origOf(const char *p) const {
    size_t i = static_cast<size_t>(p - base);
    return baseOrig ? baseOrig[i] : i;
  }
};

void Tokenizer::encode(std::string_view text, bool addSpecialTokens,
                       std::vector<int32_t> &ids) const {
  size_t bad = utf8::firstInvalid(text);
  if (bad != std::string_view::npos) {
    char byte[8];
    std::snprintf(byte, sizeof(byte), "0x%02X",
                  static_cast<unsigned char>(text[bad]));
    throw Error(KILN_ERROR_INVALID_ARGUMENT,
                "text is not valid UTF-8: byte " + std::to_string(bad) + " (" +
                    byte + ") does not start or continue a character");
  }
  if (addSpecialTokens)
    ids.insert(ids.end(), prefix_.begin(), prefix_.end());
  EncodeState st;
  // AddedVocabulary::extract_and_normalize: first the tokens matched on raw
  // text, then, in each normalized piece of what is left, those matched
  // after normalization.
  nonNormalized_.split(text, [&](std::string_view segment, int32_t id) {
    if (id >= 0)
      ids.push_back(id);
    else
      encodeSegment(text, segment, st, ids);
  });
  if (addSpecialTokens)
    ids.insert(ids.end(), suffix_.begin(), suffix_.end());
}

void Tokenizer::encodeSegment(std::string_view text, std::string_view segment,
                              EncodeState &st,
                              std::vector<int32_t> &ids) const {
  std::string_view normalized = segment;
  st.base = text.data();
  st.baseOrig = nullptr;
  if (!normalizers_.empty()) {
    normalize(segment, static_cast<uint32_t>(segment.data() - text.data()),
              st.norm, st);
    normalized = st.norm.text;
    st.base = st.norm.text.data();
    st.baseOrig = st.norm.orig.data();
  }
  normalized_.split(normalized, [&](std::string_view rest, int32_t id) {
    if (id >= 0)
      ids.push_back(id);
    else
      preTokenizeAndEncode(rest, st, ids);
  });
}

void Pattern::findAll(std::string_view s, std::vector<Span> &out) const {
  if (regex) {
    regex->findAll(s, out);
    return;
  }
  if (literal.empty())
    return;
  for (size_t at = s.find(literal); at != std::string_view::npos;
       at = s.find(literal, at + literal.size()))
    out.push_back({at, at + literal.size()});
}

void Tokenizer::normalize(std::string_view segment, uint32_t offset,
                          NormalizedText &out, EncodeState &st) const {
  // NormalizedString keeps, for every byte, the original range of the
  // character it came from; only the starts matter here (Metaspace's
  // prepend_scheme "first" asks whether a piece starts at offset 0).
  out.text.assign(segment.data(), segment.size());
  out.orig.resize(segment.size());
  for (size_t i = 0; i < segment.size();) {
    unsigned len = utf8::charLen(segment, i);
    for (unsigned k = 0; k < len; ++k)
      out.orig[i + k] = offset + static_cast<uint32_t>(i);
    i += len;
  }
  for (const NormalizerStep &n : normalizers_) {
    switch (n.kind) {
    case NormalizerStep::Kind::Prepend:
      // Prepend::normalize: only non-empty text; the prefix is aligned with
      // the first character.
      if (!out.text.empty()) {
        out.text.insert(0, n.content);
        out.orig.insert(out.orig.begin(), n.content.size(), out.orig[0]);
      }
      break;
    case NormalizerStep::Kind::Replace: {
      st.spans.clear();
      n.pattern.findAll(out.text, st.spans);
      if (st.spans.empty())
        break;
      // NormalizedString::replace: the replacement is aligned with the last
      // byte of the match (with what precedes an empty match).
      NormalizedText &r = st.scratch;
      r.text.clear();
      r.orig.clear();
      size_t prev = 0;
      for (const Span &m : st.spans) {
        r.text.append(out.text, prev, m.begin - prev);
        r.orig.insert(r.orig.end(), out.orig.begin() + prev,
                      out.orig.begin() + m.begin);
        uint32_t at = m.end > 0 ? out.orig[m.end - 1] : offset;
        r.text += n.content;
        r.orig.insert(r.orig.end(), n.content.size(), at);
        prev = m.end;
      }
      r.text.append(out.text, prev, std::string::npos);
      r.orig.insert(r.orig.end(), out.orig.begin() + prev, out.orig.end());
      std::swap(out.text, r.text);
      std::swap(out.orig, r.orig);
      break;
    }
    case NormalizerStep::Kind::Strip: {
      // Strip::normalize: char::is_whitespace at either end.
      if (n.left) {
        size_t k = whiteSpaceAfter(out.text, 0);
        out.text.erase(0, k);
        out.orig.erase(out.orig.begin(), out.orig.begin() + k);
      }
      if (n.right) {
        size_t k = whiteSpaceBefore(out.text, out.text.size());
        out.text.resize(out.text.size() - k);
        out.orig.resize(out.orig.size() - k);
      }
      break;
    }
    }
  }
}

std::string Tokenizer::normalized(std::string_view text) const {
  if (normalizers_.empty())
    return std::string(text);
  EncodeState st;
  NormalizedText out;
  normalize(text, 0, out, st);
  return out.text;
}

void Tokenizer::preTokenizeAndEncode(std::string_view segment, EncodeState &st,
                                     std::vector<int32_t> &ids) const {
  // Splitting steps refine a list of views into `segment`. The last step may
  // be ByteLevel, whose pieces (with an optional prefix space) go straight to
  // the model so that the prefixed copy need not outlive them, or Metaspace.
  // model() uses none of the scratch vectors this loop iterates over.
  std::vector<std::string_view> &pieces = st.pieces, &next = st.next;
  pieces.assign(1, segment);
  size_t nSplit = steps_.size() - (byteLevel_ || metaspace_ ? 1 : 0);
  for (size_t s = 0; s < nSplit; ++s) {
    next.clear();
    for (std::string_view piece : pieces)
      splitStep(steps_[s], piece, st, next);
    pieces.swap(next);
  }
  if (metaspace_) {
    for (std::string_view piece : pieces)
      metaspace(steps_.back(), piece, st, ids);
    return;
  }
  if (!byteLevel_) {
    for (std::string_view piece : pieces)
      model(piece, st, ids);
    return;
  }
  const PreTokenizerStep &bl = steps_.back();
  for (std::string_view piece : pieces) {
    std::string_view text = piece;
    if (bl.addPrefixSpace && piece[0] != ' ') {
      st.prefixed.assign(1, ' ');
      st.prefixed += piece;
      text = st.prefixed;
    }
    if (!bl.useRegex) {
      model(text, st, ids);
      continue;
    }
    // Isolated split: every match and every gap between matches is a piece.
    st.spans.clear();
    bl.regex->findAll(text, st.spans);
    size_t prev = 0;
    for (const Span &m : st.spans) {
      if (m.begin > prev)
        model(text.substr(prev, m.begin - prev), st, ids);
      if (m.end > m.begin)
        model(text.substr(m.begin, m.end - m.begin), st, ids);
      prev = m.end;
    }
    if (prev < text.size())
      model(text.substr(prev), st, ids);
  }
}

void Tokenizer::metaspace(const PreTokenizerStep &step, std::string_view piece,
                          EncodeState &st, std::vector<int32_t> &ids) const {
  // Metaspace::pre_tokenize: ' ' becomes the replacement, which is put in
  // front per the prepend scheme ("first": only where the piece starts at
  // offset 0 of the original text), then the piece is cut before each
  // replacement (MergedWithNext).
  std::string &m = st.meta;
  m.clear();
  for (char c : piece) {
    if (c == ' ')
      m += step.replacement;
    else
      m += c;
  }
  if (m.compare(0, step.replacement.size(), step.replacement) != 0 &&
      (step.prependScheme == PrependScheme::Always ||
       (step.prependScheme == PrependScheme::First &&
        st.origOf(piece.data()) == 0)))
    m.insert(0, step.replacement);
  std::string_view text = m;
  if (!step.split) {
    model(text, st, ids);
    return;
  }
  size_t begin = 0;
  for (size_t at = text.find(step.replacement, 1); at != std::string::npos;
       at = text.find(step.replacement, at + step.replacement.size())) {
    model(text.substr(begin, at - begin), st, ids);
    begin = at;
  }
  model(text.substr(begin), st, ids);
}

void Tokenizer::splitStep(const PreTokenizerStep &step, std::string_view piece,
                          EncodeState &st,
                          std::vector<std::string_view> &out) const {
  if (piece.empty())
    return;
  if (step.kind == PreTokenizerStep::Kind::WhitespaceSplit) {
    // WhitespaceSplit: split on char::is_whitespace, removing it.
    for (size_t i = 0; i < piece.size();) {
      i += whiteSpaceAfter(piece, i);
      size_t start = i;
      while (i < piece.size() && !isWhiteSpace(utf8::decode(piece, i)))
        i += utf8::charLen(piece, i);
      if (i > start)
        out.push_back(piece.substr(start, i - start));
    }
    return;
  }
  // Pattern::find_matches: matches and the gaps between them, in order.
  std::vector<std::pair<Span, bool>> &matches = st.matches;
  matches.clear();
  size_t prev = 0;
  auto addMatch = [&](size_t b, size_t e) {
    if (prev != b)
      matches.push_back({{prev, b}, false});
    matches.push_back({{b, e}, true});
    prev = e;
  };
  if (step.isLiteral) {
    if (!step.literal.empty())
      for (size_t at = piece.find(step.literal); at != std::string_view::npos;
           at = piece.find(step.literal, at + step.literal.size()))
        addMatch(at, at + step.literal.size());
  } else {
    st.spans.clear();
    step.regex->findAll(piece, st.spans);
    for (const Span &m : st.spans)
      addMatch(m.begin, m.end);
  }
  if (prev != piece.size())
    matches.push_back({{prev, piece.size()}, false});
  if (step.invert)
    for (auto &m : matches)
      m.second = !m.second;

  // NormalizedString::split's SplitDelimiterBehavior handling.
  std::vector<Span> pieces;
  switch (step.behavior) {
  case SplitBehavior::Removed:
    for (auto &m : matches)
      if (!m.second)
        pieces.push_back(m.first);
    break;
  case SplitBehavior::Isolated:
    for (auto &m : matches)
      pieces.push_back(m.first);
    break;
  case SplitBehavior::MergedWithPrevious: {
    bool previousMatch = false;
    for (auto &m : matches) {
      if (m.second && !previousMatch && !pieces.empty())
        pieces.back().end = m.first.end;
      else
        pieces.push_back(m.first);
      previousMatch = m.second;
    }
    break;
  }
  case SplitBehavior::MergedWithNext: {
    bool previousMatch = false;
    for (size_t k = matches.size(); k-- > 0;) {
      auto &m = matches[k];
      if (m.second && !previousMatch && !pieces.empty())
        pieces.back().begin = m.first.begin;
      else
        pieces.push_back(m.first);
      previousMatch = m.second;
    }
    std::reverse(pieces.begin(), pieces.end());
    break;
  }
  case SplitBehavior::Contiguous: {
    bool previousMatch = false;
    for (size_t k = 0; k < matches.size(); ++k) {
      auto &m = matches[k];
      if (k > 0 && m.second == previousMatch)
        pieces.back().end = m.first.end;
      else
        pieces.push_back(m.first);
      previousMatch = m.second;
    }
    break;
  }
  }
  for (const Span &p : pieces)
    if (p.end > p.begin)
      out.push_back(piece.substr(p.begin, p.end - p.begin));
}

int32_t Tokenizer::vocabId(std::string_view token) const {
  auto it = vocab_.find(std::string(token));
  return it == vocab_.end() ? -1 : it->second;
}

void Tokenizer::model(std::string_view piece, EncodeState &st,
                      std::vector<int32_t> &ids) const {
  if (piece.empty())
    return;
  if (ignoreMerges_ && !unigram_) {
    // BPE::tokenize_with_cache: a piece that is itself a token is taken
    // whole, without merging (Llama 3).
    std::string_view spelled = piece;
    if (byteLevel_) {
      st.mapped.clear();
      for (unsigned char b : piece)
        utf8::append(st.mapped, byteToCodePoint(b));
      spelled = st.mapped;
    }
    int32_t id = vocabId(spelled);
    if (id >= 0) {
      ids.push_back(id);
      return;
    }
  }
  bool cacheable = piece.size() <= PieceCache::kMaxPieceBytes;
  if (cacheable && cache_.lookup(piece, ids))
    return;
  size_t first = ids.size();
  if (unigram_)
    unigramUncached(piece, st, ids);
  else
    bpeUncached(piece, st, ids);
  if (cacheable)
    cache_.insert(piece, ids.data() + first, ids.size() - first);
}

void Tokenizer::bpeUncached(std::string_view piece, EncodeState &st,
                            std::vector<int32_t> &ids) const {
  // BPE::merge_word: one symbol per character (per byte for byte-level),
  // spelled with the subword prefix/suffix where configured.
  auto &symbols = st.symbols;
  symbols.clear();
  auto add = [&](int32_t id, uint32_t len) {
    int32_t index = static_cast<int32_t>(symbols.size());
    symbols.push_back({id, index - 1, index + 1, len});
  };
  bool affixes = !continuingSubwordPrefix_.empty() || !endOfWordSuffix_.empty();
  int32_t unkId = -1;
  uint32_t unkLen = 0;
  std::string unit;
  for (size_t i = 0; i < piece.size();) {
    size_t len = byteLevel_ ? 1 : utf8::charLen(piece, i);
    bool isFirst = i == 0, isLast = i + len == piece.size();
    int32_t id;
    if (byteLevel_ && !affixes) {
      id = byteIds_[static_cast<unsigned char>(piece[i])];
      if (id < 0) { // spell it out for the fallbacks below
        unit.clear();
        utf8::append(unit, byteToCodePoint(static_cast<uint8_t>(piece[i])));
      }
    } else {
      unit.clear();
      if (!isFirst)
        unit += continuingSubwordPrefix_;
      if (byteLevel_)
        utf8::append(unit, byteToCodePoint(static_cast<uint8_t>(piece[i])));
      else
        unit.append(piece.data() + i, len);
      if (isLast)
        unit += endOfWordSuffix_;
      id = vocabId(unit);
    }
    i += len;
    if (id >= 0) {
      if (unkId >= 0) {
        add(unkId, unkLen);
        unkId = -1;
      }
      add(id, static_cast<uint32_t>(len));
      continue;
    }
    // Not in the vocabulary: the same chain of fallbacks as merge_word.
    if (byteFallback_) {
      bool all = true;
      for (unsigned char b : unit)
        all = all && byteFallbackIds_[b] >= 0;
      if (all) {
        for (unsigned char b : unit)
          add(byteFallbackIds_[b], 1);
        continue;
      }
    }
    if (unkId_ >= 0) {
      if (unkId >= 0 && fuseUnk_) {
        unkLen += static_cast<uint32_t>(len);
      } else {
        if (unkId >= 0)
          add(unkId, unkLen);
        unkId = unkId_;
        unkLen = static_cast<uint32_t>(len);
      }
    }
    // With no unk_token the character is dropped, as in `tokenizers`.
  }
  if (unkId >= 0)
    add(unkId, unkLen);
  if (symbols.empty())
    return;
  symbols.back().next = -1;

  // Word::merge_all: repeatedly apply the lowest-ranked merge present,
  // leftmost first among equals. A heap of candidate merges, where entries
  // made stale by an earlier merge are recognised and skipped, makes this
  // O(n log n) instead of rescanning the word after every merge.
  auto &heap = st.heap;
  heap.clear();
  auto later = [](const EncodeState::Merge &a, const EncodeState::Merge &b) {
    return a.rank != b.rank ? a.rank > b.rank : a.pos > b.pos;
  };
  for (size_t k = 0; k + 1 < symbols.size(); ++k)
    if (const MergeMap::Value *m =
            merges_.find(symbols[k].id, symbols[k + 1].id))
      heap.push_back({m->rank, static_cast<uint32_t>(k), m->id});
  std::make_heap(heap.begin(), heap.end(), later);
  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end(), later);
    EncodeState::Merge top = heap.back();
    heap.pop_back();
    auto &left = symbols[top.pos];
    if (left.len == 0 || left.next < 0)
      continue;
    auto right = symbols[left.next];
    const MergeMap::Value *m = merges_.find(left.id, right.id);
    if (!m || m->id != top.id)
      continue; // stale: a neighbour changed since this entry was made
    symbols[left.next].len = 0;
    left.id = top.id;
    left.len += right.len;
    left.next = right.next;
    if (right.next >= 0)
      symbols[right.next].prev = static_cast<int32_t>(top.pos);
    if (left.prev >= 0)
      if (const MergeMap::Value *p =
              merges_.find(symbols[left.prev].id, left.id)) {
        heap.push_back({p->rank, static_cast<uint32_t>(left.prev), p->id});
        std::push_heap(heap.begin(), heap.end(), later);
      }
    if (left.next >= 0)
      if (const MergeMap::Value *n =
              merges_.find(left.id, symbols[left.next].id)) {
        heap.push_back({n->rank, top.pos, n->id});
        std::push_heap(heap.begin(), heap.end(), later);
      }
  }
  for (const auto &s : symbols)
    if (s.len != 0)
      ids.push_back(s.id);
}

//===----------------------------------------------------------------------===//
// Unigram
//===----------------------------------------------------------------------===//

void PrefixTrie::build(std::vector<std::pair<std::string, int32_t>> tokens) {
  // Sorted (bytes compare as unsigned), a repeated token keeping its last
  // id as token_to_ids does; then breadth first, so that each node's
  // children are allocated together.
  std::stable_sort(
      tokens.begin(), tokens.end(),
      [](const auto &a, const auto &b) { return a.first < b.first; });
  size_t kept = 0;
  for (size_t i = 0; i < tokens.size(); ++i) {
    if (tokens[i].first.empty())
      continue;
    if (kept > 0 && tokens[kept - 1].first == tokens[i].first)
      tokens[kept - 1].second = tokens[i].second;
    else if (kept++ != i)
      tokens[kept - 1] = std::move(tokens[i]);
  }
  tokens.resize(kept);
  nodes_.assign(1, Node());
  labels_.assign(1, 0);
  struct Range {
    uint32_t node;
    size_t lo, hi, depth;
  };
  std::vector<Range> queue{{0, 0, tokens.size(), 0}};
  for (size_t q = 0; q < queue.size(); ++q) {
    Range r = queue[q];
    size_t lo = r.lo;
    if (lo < r.hi && tokens[lo].first.size() == r.depth)
      nodes_[r.node].id = tokens[lo++].second;
    uint32_t firstChild = static_cast<uint32_t>(nodes_.size());
    while (lo < r.hi) {
      char label = tokens[lo].first[r.depth];
      size_t hi = lo;
      while (hi < r.hi && tokens[hi].first[r.depth] == label)
        ++hi;
      queue.push_back(
          {static_cast<uint32_t>(nodes_.size()), lo, hi, r.depth + 1});
      nodes_.push_back(Node());
      labels_.push_back(static_cast<uint8_t>(label));
      lo = hi;
    }
    nodes_[r.node].firstChild = firstChild;
    nodes_[r.node].numChildren =
        static_cast<uint32_t>(nodes_.size()) - firstChild;
  }
}

void Tokenizer::unigramUncached(std::string_view piece, EncodeState &st,
                                std::vector<int32_t> &ids) const {
  // Unigram::encode_optimized, SentencePiece's Viterbi: the best-scoring
  // segmentation into vocabulary tokens, where a character no
  // single-character token covers may be an unknown token (scored 10 below
  // the lowest score). Ties keep the path found first.
  size_t n = piece.size();
  auto &lattice = st.lattice;
  lattice.assign(n + 1, {0.0, -1, SIZE_MAX});
  for (size_t start = 0; start < n;) {
    double base = lattice[start].score;
    size_t charLen = utf8::charLen(piece, start);
    bool single = false;
    trie_.forEachPrefix(piece.substr(start), [&](size_t len, int32_t id) {
      double score = scores_[id] + base;
      auto &node = lattice[start + len];
      if (node.start == SIZE_MAX || score > node.score)
        node = {score, id, start};
      single = single || len == charLen;
    });
    if (!single) {
      double score = unkScore_ + base;
      auto &node = lattice[start + charLen];
      if (node.start == SIZE_MAX || score > node.score) {
        if (unkId_ < 0) {
          char cp[16];
          std::snprintf(cp, sizeof(cp), "U+%04X",
                        static_cast<unsigned>(utf8::decode(piece, start)));
          throw Error(KILN_ERROR_INVALID_ARGUMENT,
                      std::string("the text has a character (") + cp +
                          ") that no token covers, and the Unigram model "
                          "has no unk_id");
        }
        node = {score, unkId_, start};
      }
    }
    start += charLen;
  }
  // Back from the end; adjacent unknown tokens fuse into one (fuse_unk is
  // always on for Unigram).
  auto &path = st.path;
  path.clear();
  for (size_t end = n; end > 0;) {
    const auto &node = lattice[end];
    bool unk = unkId_ >= 0 && node.id == unkId_;
    if (unk && !path.empty() && path.back().second == -1)
      path.back().first.begin = node.start;
    else
      path.push_back({{node.start, end}, unk ? -1 : node.id});
    end = node.start;
  }
  // Unigram::tokenize: an unknown piece is its bytes' <0xXX> tokens when
  // byte_fallback has them all, else the unknown token.
  for (size_t k = path.size(); k-- > 0;) {
    if (path[k].second >= 0) {
      ids.push_back(path[k].second);
      continue;
    }
    std::string_view text = piece.substr(
        path[k].first.begin, path[k].first.end - path[k].first.begin);
    int32_t id = vocabId(text);
    if (id >= 0) {
      ids.push_back(id);
      continue;
    }
    bool all = byteFallback_;
    for (size_t i = 0; all && i < text.size(); ++i)
      all = byteFallbackIds_[static_cast<unsigned char>(text[i])] >= 0;
    if (all) {
      for (unsigned char b : text)
        ids.push_back(byteFallbackIds_[b]);
      continue;
    }
    ids.push_back(unkId_);
  }
}

//===----------------------------------------------------------------------===//
// Lookups
//===----------------------------------------------------------------------===//

void Tokenizer::badId(int32_t id, const char *label, size_t index) const {
  std::string name = label;
  if (index != SIZE_MAX)
    name += "[" + std::to_string(index) + "]";
  throw Error(KILN_ERROR_INVALID_ARGUMENT,
              name + " = " + std::to_string(id) +
                  " is not a token id of this tokenizer (expected one of its " +
                  std::to_string(vocabSize()) + " ids, 0.." +
                  std::to_string(static_cast<long long>(vocabSize()) - 1) +
                  ")");
}

int32_t Tokenizer::idOf(std::string_view token) const {
  auto it = addedIds_.find(std::string(token));
  if (it != addedIds_.end())
    return it->second;
  return vocabId(token);
}
