//===- tokenizer_json.cpp - reading tokenizer.json ------------------------===//
//
// Turns a tokenizer.json into a Tokenizer, rejecting what kiln would not
// encode exactly like `tokenizers` (KILN_ERROR_UNSUPPORTED) and what is
// malformed (KILN_ERROR_FORMAT). Messages name the file and the JSON path of
// the offending field.
//
//===----------------------------------------------------------------------===//

#include "error.h"
#include "tokenizer.h"
#include "utf8.h"

#include <nlohmann/json.hpp>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <limits>
#include <sstream>
#include <sys/stat.h>

using json = nlohmann::json;
using namespace kiln;
using namespace kiln::tok;

namespace kiln::tok {

/// GPT-2's pre-tokenization regex, which ByteLevel's use_regex applies.
static const char kByteLevelPattern[] =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|"
    "\\s+(?!\\S)|\\s+";

class Loader {
public:
  Loader(std::string file, Tokenizer &t) : file_(std::move(file)), t_(t) {}
  void load(const json &root);

private:
  /// Throws "FILE: WHERE: WHAT", or "FILE: WHERE is ..." when `what`
  /// starts with "is " (a field's value that kiln does not support).
  [[noreturn]] void fail(kiln_status_t status, const std::string &where,
                         const std::string &what) const {
    bool value = what.rfind("is ", 0) == 0;
    throw Error(status, file_ + ": " + where + (value ? " " : ": ") + what);
  }
  [[noreturn]] void format(const std::string &where,
                           const std::string &what) const {
    fail(KILN_ERROR_FORMAT, where, what);
  }
  const json &required(const json &obj, const char *key,
                       const std::string &where) const;
  bool flag(const json &obj, const char *key, bool dflt,
            const std::string &where) const;
  std::string text(const json &v, const std::string &where) const;
  /// A string field that may be absent or null ("" then).
  std::string optionalText(const json &obj, const char *key,
                           const std::string &where) const;
  int32_t id(const json &v, const std::string &where) const;
  std::string typeOf(const json &obj, const std::string &where) const;

  /// A one-character string field (a Rust `char` in `tokenizers`).
  std::string character(const json &obj, const char *key,
                        const std::string &where) const;
  /// {"String": ...} or {"Regex": ...}.
  Pattern pattern(const json &obj, const std::string &where) const;
  /// Metaspace's prepend_scheme, read as `tokenizers` does with the older
  /// add_prefix_space.
  PrependScheme prependScheme(const json &obj, const std::string &where) const;

  void loadModel(const json &model);
  void loadBpe(const json &model, const std::string &where);
  void loadUnigram(const json &model, const std::string &where);
  void loadAddedTokens(const json &tokens);
  void loadNormalizer(const json &normalizer, const std::string &where);
  void loadPreTokenizer(const json &pre, const std::string &where);
  void loadPostProcessor(const json &post, const std::string &where);
  void loadDecoder(const json &decoder, const std::string &where);
  void finish();

  std::string file_;
  Tokenizer &t_;
  std::vector<std::string> modelTokens_; ///< by id; "" where none
  std::vector<bool> hasModelId_;
  size_t modelSize_ = 0;  ///< the model's get_vocab_size()
  bool textMode_ = false; ///< a decoder step fused the tokens already
};

} // namespace kiln::tok

static std::string describe(const json &v) {
  switch (v.type()) {
  case json::value_t::null:
    return "null";
  case json::value_t::boolean:
    return "a boolean";
  case json::value_t::string:
    return "a string";
  case json::value_t::array:
    return "an array";
  case json::value_t::object:
    return "an object";
  default:
    return "a number";
  }
}

const json &Loader::required(const json &obj, const char *key,
                             const std::string &where) const {
  if (!obj.is_object())
    format(where, "expected an object, found " + describe(obj));
  auto it = obj.find(key);
  if (it == obj.end())
    format(where, std::string("missing field \"") + key + "\"");
  return *it;
}

bool Loader::flag(const json &obj, const char *key, bool dflt,
                  const std::string &where) const {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null())
    return dflt;
  if (!it->is_boolean())
    format(where + "." + key, "expected a boolean, found " + describe(*it));
  return it->get<bool>();
}

std::string Loader::text(const json &v, const std::string &where) const {
  if (!v.is_string())
    format(where, "expected a string, found " + describe(v));
  return v.get<std::string>();
}

std::string Loader::optionalText(const json &obj, const char *key,
                                 const std::string &where) const {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null())
    return "";
  return text(*it, where + "." + key);
}

int32_t Loader::id(const json &v, const std::string &where) const {
  if (!v.is_number_integer() || v.get<int64_t>() < 0 ||
      v.get<int64_t>() > INT32_MAX)
    format(where, "expected a token id (an integer 0..2147483647), found " +
                      (v.is_number() ? v.dump() : describe(v)));
  return static_cast<int32_t>(v.get<int64_t>());
}

std::string Loader::typeOf(const json &obj, const std::string &where) const {
  return text(required(obj, "type", where), where + ".type");
}

std::string Loader::character(const json &obj, const char *key,
                              const std::string &where) const {
  std::string at = where + "." + key;
  std::string c = text(required(obj, key, where), at);
  if (c.empty() || utf8::firstInvalid(c) != std::string::npos ||
      utf8::charLen(c, 0) != c.size())
    format(at, "expected one character, found \"" + c + "\"");
  return c;
}

Pattern Loader::pattern(const json &obj, const std::string &where) const {
  const json &p = required(obj, "pattern", where);
  Pattern out;
  if (p.is_object() && p.contains("Regex")) {
    out.regex =
        std::make_unique<Regex>(text(p["Regex"], where + ".pattern.Regex"),
                                file_ + ": " + where + ".pattern.Regex");
  } else if (p.is_object() && p.contains("String")) {
    out.literal = text(p["String"], where + ".pattern.String");
  } else {
    format(where + ".pattern",
           "expected {\"Regex\": ...} or {\"String\": ...}");
  }
  return out;
}

PrependScheme Loader::prependScheme(const json &obj,
                                    const std::string &where) const {
  // The Metaspace deserializer: prepend_scheme defaults to "always"; the
  // older add_prefix_space may only confirm it (false needs "never").
  PrependScheme scheme = PrependScheme::Always;
  std::string name = optionalText(obj, "prepend_scheme", where);
  if (name == "first")
    scheme = PrependScheme::First;
  else if (name == "never")
    scheme = PrependScheme::Never;
  else if (!name.empty() && name != "always")
    format(where + ".prepend_scheme",
           "is \"" + name + "\"; expected \"always\", \"first\" or \"never\"");
  if (!flag(obj, "add_prefix_space", true, where) &&
      scheme != PrependScheme::Never)
    format(where + ".add_prefix_space",
           "is false but prepend_scheme is not \"never\"");
  return scheme;
}

void Loader::load(const json &root) {
  if (!root.is_object())
    format("top level", "expected an object, found " + describe(root));
  // The model first: added tokens take their ids from its vocabulary.
  loadModel(required(root, "model", "top level"));
  auto added = root.find("added_tokens");
  if (added != root.end() && !added->is_null())
    loadAddedTokens(*added);
  auto get = [&](const char *key) -> const json & {
    static const json null;
    auto it = root.find(key);
    return it == root.end() ? null : *it;
  };
  loadNormalizer(get("normalizer"), "normalizer");
  loadPreTokenizer(get("pre_tokenizer"), "pre_tokenizer");
  using Kind = PreTokenizerStep::Kind;
  for (size_t i = 0; i + 1 < t_.steps_.size(); ++i) {
    Kind k = t_.steps_[i].kind;
    if (k == Kind::ByteLevel || k == Kind::Metaspace)
      fail(KILN_ERROR_UNSUPPORTED, "pre_tokenizer",
           std::string(k == Kind::ByteLevel ? "ByteLevel" : "Metaspace") +
               " is followed by other pre-tokenizers; kiln supports "
               "ByteLevel and Metaspace only as the last one");
  }
  if (!t_.steps_.empty()) {
    t_.byteLevel_ = t_.steps_.back().kind == Kind::ByteLevel;
    t_.metaspace_ = t_.steps_.back().kind == Kind::Metaspace;
  }
  if (t_.byteLevel_ && t_.unigram_)
    fail(KILN_ERROR_UNSUPPORTED, "pre_tokenizer",
         "ByteLevel with a Unigram model; kiln supports ByteLevel only with "
         "BPE");
  loadPostProcessor(get("post_processor"), "post_processor");
  const json &decoder = get("decoder");
  t_.hasDecoder_ = !decoder.is_null();
  loadDecoder(decoder, "decoder");
  finish();
}

void Loader::loadModel(const json &model) {
  const std::string where = "model";
  if (!model.is_object())
    format(where, "expected an object, found " + describe(model));
  // Old files leave the type out; `tokenizers` then recognises BPE by its
  // merges.
  std::string type = model.contains("type")     ? typeOf(model, where)
                     : model.contains("merges") ? "BPE"
                                                : "";
  if (type == "Unigram")
    loadUnigram(model, where);
  else if (type == "BPE")
    loadBpe(model, where);
  else
    fail(KILN_ERROR_UNSUPPORTED, where + ".type",
         "is \"" + type + "\"; kiln supports \"BPE\" and \"Unigram\"");
  for (unsigned b = 0; b < 256; ++b) {
    char fallback[8];
    std::snprintf(fallback, sizeof(fallback), "<0x%02X>", b);
    auto it = t_.vocab_.find(fallback);
    t_.byteFallbackIds_[b] = it == t_.vocab_.end() ? -1 : it->second;
  }
}

void Loader::loadUnigram(const json &model, const std::string &where) {
  // Unigram::from: vocab is [[piece, score], ...], ids are positions; a
  // repeated piece maps to its last id.
  t_.unigram_ = true;
  const json &vocab = required(model, "vocab", where);
  if (!vocab.is_array())
    format(where + ".vocab",
           "expected an array of [token, score], found " + describe(vocab));
  modelSize_ = vocab.size();
  modelTokens_.resize(vocab.size());
  hasModelId_.assign(vocab.size(), true);
  t_.scores_.resize(vocab.size());
  t_.vocab_.reserve(vocab.size());
  double minScore = std::numeric_limits<double>::infinity();
  std::vector<std::pair<std::string, int32_t>> tokens;
  tokens.reserve(vocab.size());
  for (size_t i = 0; i < vocab.size(); ++i) {
    std::string at = where + ".vocab[" + std::to_string(i) + "]";
    const json &entry = vocab[i];
    if (!entry.is_array() || entry.size() != 2 || !entry[1].is_number())
      format(at, "expected [token, score], found " + entry.dump());
    std::string piece = text(entry[0], at + "[0]");
    double score = entry[1].get<double>();
    int32_t id = static_cast<int32_t>(i);
    t_.vocab_[piece] = id;
    t_.scores_[i] = score;
    minScore = std::min(minScore, score);
    tokens.push_back({piece, id});
    modelTokens_[i] = std::move(piece);
  }
  // K_UNK_PENALTY: an unknown character scores 10 below the rarest token.
  t_.unkScore_ = minScore - 10.0;
  t_.trie_.build(std::move(tokens));
  auto unk = model.find("unk_id");
  if (unk != model.end() && !unk->is_null()) {
    t_.unkId_ = id(*unk, where + ".unk_id");
    if (static_cast<size_t>(t_.unkId_) >= vocab.size())
      format(where + ".unk_id", "is " + std::to_string(t_.unkId_) +
                                    "; the vocabulary has " +
                                    std::to_string(vocab.size()) + " tokens");
  }
  t_.byteFallback_ = flag(model, "byte_fallback", false, where);
  t_.fuseUnk_ = true;
}

void Loader::loadBpe(const json &model, const std::string &where) {
  auto dropout = model.find("dropout");
  if (dropout != model.end() && !dropout->is_null() &&
      !(dropout->is_number() && dropout->get<double>() == 0.0))
    fail(KILN_ERROR_UNSUPPORTED, where + ".dropout",
         "is " + dropout->dump() +
             "; kiln supports only null or 0 (dropout makes encoding random)");

  const json &vocab = required(model, "vocab", where);
  if (!vocab.is_object())
    format(where + ".vocab",
           "expected an object of token: id, found " + describe(vocab));
  t_.vocab_.reserve(vocab.size());
  for (auto it = vocab.begin(); it != vocab.end(); ++it) {
    int32_t i = id(it.value(), where + ".vocab[\"" + it.key() + "\"]");
    t_.vocab_[it.key()] = i;
    if (static_cast<size_t>(i) >= modelTokens_.size()) {
      modelTokens_.resize(static_cast<size_t>(i) + 1);
      hasModelId_.resize(static_cast<size_t>(i) + 1);
    }
    modelTokens_[i] = it.key();
    hasModelId_[i] = true;
  }

  t_.continuingSubwordPrefix_ =
      optionalText(model, "continuing_subword_prefix", where);
  t_.endOfWordSuffix_ = optionalText(model, "end_of_word_suffix", where);
  t_.fuseUnk_ = flag(model, "fuse_unk", false, where);
  t_.byteFallback_ = flag(model, "byte_fallback", false, where);
  t_.ignoreMerges_ = flag(model, "ignore_merges", false, where);
  std::string unk = optionalText(model, "unk_token", where);
  if (!unk.empty()) {
    auto it = t_.vocab_.find(unk);
    if (it == t_.vocab_.end())
      format(where + ".unk_token", "\"" + unk + "\" is not in the vocabulary");
    t_.unkId_ = it->second;
  }
  modelSize_ = t_.vocab_.size();
  for (unsigned b = 0; b < 256; ++b) {
    std::string s;
    utf8::append(s, byteToCodePoint(static_cast<uint8_t>(b)));
    auto it = t_.vocab_.find(s);
    t_.byteIds_[b] = it == t_.vocab_.end() ? -1 : it->second;
  }

  const json &merges = required(model, "merges", where);
  if (!merges.is_array())
    format(where + ".merges", "expected an array, found " + describe(merges));
  t_.merges_.reserve(merges.size());
  size_t prefixLen = t_.continuingSubwordPrefix_.size();
  for (size_t rank = 0; rank < merges.size(); ++rank) {
    const json &m = merges[rank];
    std::string at = where + ".merges[" + std::to_string(rank) + "]";
    std::string a, b;
    if (m.is_string()) {
      // The older "a b" form: exactly one space, as `tokenizers` requires.
      std::string s = m.get<std::string>();
      size_t space = s.find(' ');
      if (space == std::string::npos || s.find(' ', space + 1) != s.npos)
        format(at, "\"" + s + "\" is not two tokens separated by one space");
      a = s.substr(0, space);
      b = s.substr(space + 1);
    } else if (m.is_array() && m.size() == 2) {
      a = text(m[0], at + "[0]");
      b = text(m[1], at + "[1]");
    } else {
      format(at, "expected [\"left\", \"right\"] or \"left right\", found " +
                     describe(m));
    }
    auto ia = t_.vocab_.find(a), ib = t_.vocab_.find(b);
    if (ia == t_.vocab_.end())
      format(at, "token \"" + a + "\" is not in the vocabulary");
    if (ib == t_.vocab_.end())
      format(at, "token \"" + b + "\" is not in the vocabulary");
    if (b.size() < prefixLen)
      format(at, "token \"" + b +
                     "\" is shorter than continuing_subword_"
                     "prefix \"" +
                     t_.continuingSubwordPrefix_ + "\"");
    std::string merged = a + b.substr(prefixLen);
    auto im = t_.vocab_.find(merged);
    if (im == t_.vocab_.end())
      format(at, "merged token \"" + merged + "\" is not in the vocabulary");
    t_.merges_.set(ia->second, ib->second,
                   {static_cast<uint32_t>(rank), im->second});
  }
}

void Loader::loadAddedTokens(const json &tokens) {
  if (!tokens.is_array())
    format("added_tokens", "expected an array, found " + describe(tokens));
  // AddedVocabulary::add_tokens: a token already in the vocabulary keeps that
  // id; any other gets the next free id after the model's. The "id" written
  // in the file is not used (`tokenizers` only warns when it differs).
  int32_t modelSize = static_cast<int32_t>(modelSize_);
  int32_t maxAdded = -1;
  for (size_t i = 0; i < tokens.size(); ++i) {
    std::string where = "added_tokens[" + std::to_string(i) + "]";
    const json &tj = tokens[i];
    AddedToken tok;
    tok.content = text(required(tj, "content", where), where + ".content");
    if (tj.contains("id"))
      id(tj["id"], where + ".id"); // checked, not used: see above
    tok.special = flag(tj, "special", false, where);
    tok.singleWord = flag(tj, "single_word", false, where);
    tok.lstrip = flag(tj, "lstrip", false, where);
    tok.rstrip = flag(tj, "rstrip", false, where);
    tok.normalized = flag(tj, "normalized", !tok.special, where);
    if (utf8::firstInvalid(tok.content) != std::string::npos)
      format(where + ".content", "is not valid UTF-8");
    if (tok.content.empty() || t_.addedIds_.count(tok.content))
      continue; // `tokenizers` ignores empty and repeated tokens
    auto inVocab = t_.vocab_.find(tok.content);
    if (inVocab != t_.vocab_.end())
      tok.id = inVocab->second;
    else if (maxAdded < 0)
      tok.id = modelSize;
    else
      tok.id =
          (maxAdded >= modelSize || modelSize == 0) ? maxAdded + 1 : modelSize;
    maxAdded = std::max(maxAdded, tok.id);
    t_.addedIds_[tok.content] = tok.id;
    t_.added_.push_back(std::move(tok));
  }
}

void Loader::loadNormalizer(const json &normalizer, const std::string &where) {
  if (normalizer.is_null())
    return;
  std::string type = typeOf(normalizer, where);
  NormalizerStep step;
  if (type == "Sequence") {
    const json &list = required(normalizer, "normalizers", where);
    if (!list.is_array())
      format(where + ".normalizers",
             "expected an array, found " + describe(list));
    for (size_t i = 0; i < list.size(); ++i)
      loadNormalizer(list[i],
                     where + ".normalizers[" + std::to_string(i) + "]");
    return;
  }
  if (type == "Prepend") {
    step.kind = NormalizerStep::Kind::Prepend;
    step.content =
        text(required(normalizer, "prepend", where), where + ".prepend");
  } else if (type == "Replace") {
    step.kind = NormalizerStep::Kind::Replace;
    step.pattern = pattern(normalizer, where);
    step.content =
        text(required(normalizer, "content", where), where + ".content");
  } else if (type == "Strip") {
    step.kind = NormalizerStep::Kind::Strip;
    step.left = flag(normalizer, "strip_left", true, where);
    step.right = flag(normalizer, "strip_right", true, where);
  } else {
    fail(KILN_ERROR_UNSUPPORTED, where + ".type",
         "is \"" + type +
             "\"; kiln supports the normalizers Prepend, Replace, Strip and "
             "Sequence (no Unicode normalization such as NFKC, Precompiled "
             "or Lowercase)");
  }
  t_.normalizers_.push_back(std::move(step));
}

static SplitBehavior parseBehavior(const std::string &s, bool &ok) {
  ok = true;
  if (s == "Removed")
    return SplitBehavior::Removed;
  if (s == "Isolated")
    return SplitBehavior::Isolated;
  if (s == "MergedWithPrevious")
    return SplitBehavior::MergedWithPrevious;
  if (s == "MergedWithNext")
    return SplitBehavior::MergedWithNext;
  if (s == "Contiguous")
    return SplitBehavior::Contiguous;
  ok = false;
  return SplitBehavior::Isolated;
}

void Loader::loadPreTokenizer(const json &pre, const std::string &where) {
  if (pre.is_null())
    return;
  std::string type = typeOf(pre, where);
  PreTokenizerStep step;
  if (type == "Sequence") {
    const json &list = required(pre, "pretokenizers", where);
    if (!list.is_array())
      format(where + ".pretokenizers",
             "expected an array, found " + describe(list));
    for (size_t i = 0; i < list.size(); ++i)
      loadPreTokenizer(list[i],
                       where + ".pretokenizers[" + std::to_string(i) + "]");
    return;
  }
  if (type == "ByteLevel") {
    // ByteLevel::default(): add_prefix_space and use_regex are on.
    step.kind = PreTokenizerStep::Kind::ByteLevel;
    step.addPrefixSpace = flag(pre, "add_prefix_space", true, where);
    step.useRegex = flag(pre, "use_regex", true, where);
    if (step.useRegex)
      step.regex =
          std::make_unique<Regex>(kByteLevelPattern, file_ + ": " + where);
  } else if (type == "Digits") {
    // Digits splits off each char::is_numeric character (categories Nd, Nl,
    // No = \p{N}), or each run of them.
    bool individual = flag(pre, "individual_digits", false, where);
    step.regex = std::make_unique<Regex>(individual ? "\\p{N}" : "\\p{N}+",
                                         file_ + ": " + where);
  } else if (type == "Metaspace") {
    step.kind = PreTokenizerStep::Kind::Metaspace;
    step.replacement = character(pre, "replacement", where);
    step.prependScheme = prependScheme(pre, where);
    step.split = flag(pre, "split", true, where);
  } else if (type == "WhitespaceSplit") {
    step.kind = PreTokenizerStep::Kind::WhitespaceSplit;
  } else if (type == "Split") {
    Pattern p = pattern(pre, where);
    step.regex = std::move(p.regex);
    step.isLiteral = !step.regex;
    step.literal = std::move(p.literal);
    std::string behavior =
        text(required(pre, "behavior", where), where + ".behavior");
    bool ok;
    step.behavior = parseBehavior(behavior, ok);
    if (!ok)
      format(where + ".behavior",
             "is \"" + behavior +
                 "\"; expected Removed, Isolated, MergedWithPrevious, "
                 "MergedWithNext or Contiguous");
    step.invert = flag(pre, "invert", false, where);
  } else {
    fail(KILN_ERROR_UNSUPPORTED, where + ".type",
         "is \"" + type +
             "\"; kiln supports ByteLevel, Metaspace, Digits, Split, "
             "WhitespaceSplit and Sequence");
  }
  t_.steps_.push_back(std::move(step));
}

void Loader::loadPostProcessor(const json &post, const std::string &where) {
  if (post.is_null())
    return;
  std::string type = typeOf(post, where);
  // Each processor wraps what the previous ones produced.
  auto wrap = [&](const std::vector<int32_t> &before,
                  const std::vector<int32_t> &after) {
    t_.prefix_.insert(t_.prefix_.begin(), before.begin(), before.end());
    t_.suffix_.insert(t_.suffix_.end(), after.begin(), after.end());
  };
  if (type == "ByteLevel")
    return; // adjusts offsets only
  if (type == "Sequence") {
    const json &list = required(post, "processors", where);
    if (!list.is_array())
      format(where + ".processors",
             "expected an array, found " + describe(list));
    for (size_t i = 0; i < list.size(); ++i)
      loadPostProcessor(list[i],
                        where + ".processors[" + std::to_string(i) + "]");
    return;
  }
  if (type == "RobertaProcessing" || type == "BertProcessing") {
    // Single sequence: cls A sep, each given as [token, id].
    auto pairId = [&](const char *key) {
      const json &p = required(post, key, where);
      if (!p.is_array() || p.size() != 2)
        format(where + "." + key, "expected [token, id]");
      return id(p[1], where + "." + key + "[1]");
    };
    wrap({pairId("cls")}, {pairId("sep")});
    return;
  }
  if (type == "TemplateProcessing") {
    const json &single = required(post, "single", where);
    const json &specials = required(post, "special_tokens", where);
    if (!single.is_array())
      format(where + ".single", "expected an array, found " + describe(single));
    std::vector<int32_t> before, after;
    bool seenSequence = false;
    for (size_t i = 0; i < single.size(); ++i) {
      std::string at = where + ".single[" + std::to_string(i) + "]";
      const json &item = single[i];
      if (item.is_object() && item.contains("Sequence")) {
        if (seenSequence)
          fail(KILN_ERROR_UNSUPPORTED, at,
               "the single-sequence template repeats the sequence");
        seenSequence = true;
      } else if (item.is_object() && item.contains("SpecialToken")) {
        std::string name = text(required(item["SpecialToken"], "id", at),
                                at + ".SpecialToken.id");
        std::string sat = where + ".special_tokens[\"" + name + "\"]";
        if (!specials.is_object() || !specials.contains(name))
          format(at, "special token \"" + name + "\" is not in special_tokens");
        const json &ids = required(specials[name], "ids", sat);
        if (!ids.is_array())
          format(sat + ".ids", "expected an array, found " + describe(ids));
        for (size_t k = 0; k < ids.size(); ++k)
          (seenSequence ? after : before)
              .push_back(id(ids[k], sat + ".ids[" + std::to_string(k) + "]"));
      } else {
        format(at, "expected {\"Sequence\": ...} or {\"SpecialToken\": ...}");
      }
    }
    if (!seenSequence)
      fail(KILN_ERROR_UNSUPPORTED, where + ".single",
           "the single-sequence template has no $A");
    wrap(before, after);
    return;
  }
  fail(KILN_ERROR_UNSUPPORTED, where + ".type",
       "is \"" + type +
           "\"; kiln supports ByteLevel, TemplateProcessing, "
           "RobertaProcessing, BertProcessing and Sequence");
}

void Loader::loadDecoder(const json &decoder, const std::string &where) {
  if (decoder.is_null())
    return;
  std::string type = typeOf(decoder, where);
  using Kind = DecoderStep::Kind;
  DecoderStep step;
  if (type == "Sequence") {
    const json &list = required(decoder, "decoders", where);
    if (!list.is_array())
      format(where + ".decoders", "expected an array, found " + describe(list));
    for (size_t i = 0; i < list.size(); ++i)
      loadDecoder(list[i], where + ".decoders[" + std::to_string(i) + "]");
    return;
  }
  if (type == "ByteLevel") {
    step.kind = Kind::ByteLevel;
  } else if (type == "Replace") {
    step.kind = Kind::Replace;
    step.pattern = pattern(decoder, where);
    step.content =
        text(required(decoder, "content", where), where + ".content");
  } else if (type == "ByteFallback") {
    step.kind = Kind::ByteFallback;
  } else if (type == "Fuse") {
    step.kind = Kind::Fuse;
  } else if (type == "Strip") {
    step.kind = Kind::Strip;
    step.content = character(decoder, "content", where);
    auto count = [&](const char *key) -> size_t {
      const json &v = required(decoder, key, where);
      if (!v.is_number_unsigned())
        format(where + "." + key,
               "expected a non-negative integer, found " + describe(v));
      return v.get<size_t>();
    };
    step.start = count("start");
    step.stop = count("stop");
  } else if (type == "Metaspace") {
    step.kind = Kind::Metaspace;
    step.replacement = character(decoder, "replacement", where);
    step.dropFirst = prependScheme(decoder, where) != PrependScheme::Never;
  } else {
    fail(KILN_ERROR_UNSUPPORTED, where + ".type",
         "is \"" + type +
             "\"; kiln supports the decoders ByteLevel, Replace, "
             "ByteFallback, Fuse, Strip, Metaspace and Sequence");
  }
  // After Fuse or ByteLevel, `tokenizers` has one string left; kiln streams
  // it in chunks, which only steps acting on single characters or on its
  // start cannot tell apart.
  if (textMode_) {
    bool ok =
        step.kind == Kind::Fuse || step.kind == Kind::Metaspace ||
        (step.kind == Kind::Strip && step.stop == 0) ||
        (step.kind == Kind::Replace && !step.pattern.regex &&
         !step.pattern.literal.empty() &&
         utf8::charLen(step.pattern.literal, 0) == step.pattern.literal.size());
    if (!ok)
      fail(KILN_ERROR_UNSUPPORTED, where,
           type + " after a Fuse or ByteLevel decoder; kiln supports there "
                  "only Fuse, Metaspace, Strip with stop 0 and Replace of "
                  "one character");
  }
  if (step.kind == Kind::Fuse || step.kind == Kind::ByteLevel)
    textMode_ = true;
  t_.decoders_.push_back(std::move(step));
}

void Loader::finish() {
  // Per id: spelling (added tokens first, as AddedVocabulary's
  // simple_id_to_token comes before the model's), kind and decoded bytes.
  size_t size = modelTokens_.size();
  for (const AddedToken &a : t_.added_)
    size = std::max(size, static_cast<size_t>(a.id) + 1);
  t_.tokenOf_.assign(size, "");
  t_.kind_.assign(size, Tokenizer::Kind::None);
  for (size_t i = 0; i < modelTokens_.size(); ++i)
    if (hasModelId_[i]) {
      t_.tokenOf_[i] = modelTokens_[i];
      t_.kind_[i] = Tokenizer::Kind::Regular;
    }
  std::unordered_map<std::string, bool> specialContent;
  for (const AddedToken &a : t_.added_) {
    t_.tokenOf_[a.id] = a.content;
    t_.kind_[a.id] = Tokenizer::Kind::Regular;
    if (a.special)
      specialContent[a.content] = true;
  }
  // is_special_token tests the spelling, so an id is special when the token
  // it decodes as is a special added token.
  for (size_t i = 0; i < size; ++i)
    if (t_.kind_[i] != Tokenizer::Kind::None &&
        specialContent.count(t_.tokenOf_[i]))
      t_.kind_[i] = Tokenizer::Kind::Special;

  // Both passes of added-token matching; see Tokenizer::encode. A
  // normalized token is looked for as the normalizer spells it (with Llama
  // 2's, "<x>" only where the text has "▁<x>"); one that normalizes to
  // nothing can never match.
  std::vector<const AddedToken *> raw, normalized;
  for (AddedToken &a : t_.added_) {
    a.match = a.normalized ? t_.normalized(a.content) : a.content;
    if (!a.match.empty())
      (a.normalized ? normalized : raw).push_back(&a);
  }
  t_.nonNormalized_.build(std::move(raw));
  t_.normalized_.build(std::move(normalized));
}

std::unique_ptr<Tokenizer> Tokenizer::load(const std::string &path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0)
    throw Error(KILN_ERROR_NOT_FOUND,
                path + ": cannot open tokenizer file: " + std::strerror(errno));
  if (S_ISDIR(st.st_mode))
    throw Error(KILN_ERROR_NOT_FOUND,
                path + ": is a directory; expected a tokenizer.json file");
  std::ifstream in(path, std::ios::binary);
  if (!in)
    throw Error(KILN_ERROR_NOT_FOUND,
                path + ": cannot open tokenizer file: " + std::strerror(errno));
  std::ostringstream buffer;
  buffer << in.rdbuf();
  std::string content = buffer.str();

  json root;
  try {
    root = json::parse(content);
  } catch (const json::parse_error &e) {
    // Drop nlohmann's "[json.exception.parse_error.101] " prefix.
    std::string what = e.what();
    size_t bracket = what.find("] ");
    if (what.rfind("[json.exception", 0) == 0 && bracket != std::string::npos)
      what = what.substr(bracket + 2);
    throw Error(KILN_ERROR_FORMAT, path + ": not valid JSON: " + what);
  }
  auto t = std::make_unique<Tokenizer>();
  try {
    Loader(path, *t).load(root);
  } catch (const json::exception &e) {
    // A type mismatch the checks above did not foresee.
    throw Error(KILN_ERROR_FORMAT,
                path + ": unexpected tokenizer.json content: " + e.what());
  }
  return t;
}
