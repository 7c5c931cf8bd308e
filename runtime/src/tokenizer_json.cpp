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

  void loadModel(const json &model);
  void loadAddedTokens(const json &tokens);
  void loadNormalizer(const json &normalizer);
  void loadPreTokenizer(const json &pre, const std::string &where);
  void loadPostProcessor(const json &post, const std::string &where);
  void loadDecoder(const json &decoder);
  void finish();

  std::string file_;
  Tokenizer &t_;
  std::vector<std::string> modelTokens_; ///< by id; "" where none
  std::vector<bool> hasModelId_;
  bool byteLevelDecoder_ = false;
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
  loadNormalizer(get("normalizer"));
  loadPreTokenizer(get("pre_tokenizer"), "pre_tokenizer");
  if (!t_.steps_.empty()) {
    for (size_t i = 0; i + 1 < t_.steps_.size(); ++i)
      if (t_.steps_[i].kind == PreTokenizerStep::Kind::ByteLevel)
        fail(KILN_ERROR_UNSUPPORTED, "pre_tokenizer",
             "ByteLevel is followed by other pre-tokenizers; kiln supports "
             "ByteLevel only as the last one");
    t_.byteLevel_ = t_.steps_.back().kind == PreTokenizerStep::Kind::ByteLevel;
  }
  loadPostProcessor(get("post_processor"), "post_processor");
  loadDecoder(get("decoder"));
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
  if (type != "BPE")
    fail(KILN_ERROR_UNSUPPORTED, where + ".type",
         "is \"" + type + "\"; kiln supports only \"BPE\"");
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
  for (unsigned b = 0; b < 256; ++b) {
    std::string s;
    utf8::append(s, byteToCodePoint(static_cast<uint8_t>(b)));
    auto it = t_.vocab_.find(s);
    t_.byteIds_[b] = it == t_.vocab_.end() ? -1 : it->second;
    char fallback[8];
    std::snprintf(fallback, sizeof(fallback), "<0x%02X>", b);
    it = t_.vocab_.find(fallback);
    t_.byteFallbackIds_[b] = it == t_.vocab_.end() ? -1 : it->second;
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
  int32_t modelSize = static_cast<int32_t>(t_.vocab_.size());
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

void Loader::loadNormalizer(const json &normalizer) {
  if (normalizer.is_null())
    return;
  std::string type = typeOf(normalizer, "normalizer");
  if (type == "Sequence") {
    const json &list = required(normalizer, "normalizers", "normalizer");
    if (list.is_array() && list.empty())
      return;
  }
  fail(KILN_ERROR_UNSUPPORTED, "normalizer.type",
       "is \"" + type +
           "\"; kiln supports only tokenizers without a normalizer");
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
  } else if (type == "Split") {
    const json &pattern = required(pre, "pattern", where);
    if (pattern.is_object() && pattern.contains("Regex")) {
      step.regex = std::make_unique<Regex>(
          text(pattern["Regex"], where + ".pattern.Regex"),
          file_ + ": " + where + ".pattern.Regex");
    } else if (pattern.is_object() && pattern.contains("String")) {
      step.isLiteral = true;
      step.literal = text(pattern["String"], where + ".pattern.String");
    } else {
      format(where + ".pattern",
             "expected {\"Regex\": ...} or {\"String\": ...}");
    }
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
             "\"; kiln supports ByteLevel, Digits, Split and Sequence");
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

void Loader::loadDecoder(const json &decoder) {
  if (decoder.is_null())
    return;
  std::string type = typeOf(decoder, "decoder");
  if (type == "ByteLevel") {
    byteLevelDecoder_ = true;
    return;
  }
  fail(KILN_ERROR_UNSUPPORTED, "decoder.type",
       "is \"" + type + "\"; kiln supports ByteLevel or no decoder");
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

  t_.separator_ = byteLevelDecoder_ ? "" : " ";
  t_.decoded_.assign(size, "");
  for (size_t i = 0; i < size; ++i) {
    const std::string &spelling = t_.tokenOf_[i];
    if (!byteLevelDecoder_) {
      t_.decoded_[i] = spelling;
      continue;
    }
    // The ByteLevel decoder maps every character back to its byte; a token
    // with a character outside the byte alphabet is kept as it is.
    std::string bytes;
    bool all = true;
    for (size_t k = 0; k < spelling.size() && all;
         k += utf8::charLen(spelling, k)) {
      int b = codePointToByte(utf8::decode(spelling, k));
      if (b < 0)
        all = false;
      else
        bytes += static_cast<char>(b);
    }
    t_.decoded_[i] = all ? bytes : spelling;
  }

  // Both passes of added-token matching; see Tokenizer::encode.
  std::vector<const AddedToken *> raw, normalized;
  for (const AddedToken &a : t_.added_)
    (a.normalized ? normalized : raw).push_back(&a);
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
