//===- TokenizerTest.cpp - the tokenizer C API on hand-made tokenizers ----===//
//
// Expected ids here are worked out by hand from the fixture below, so they
// check the algorithm itself; agreement with the `tokenizers` package on
// real files is test/runtime/check_tokenizer_agreement.py's job.
//
//===----------------------------------------------------------------------===//

#include "kiln/kiln.h"
#include "runtime/src/regex.h"
#include "runtime/src/utf8.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdio>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace {

using Ids = std::vector<int32_t>;

/// GPT-2's bytes_to_unicode, written out independently of the runtime's.
unsigned byteChar(unsigned b) {
  if ((b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) ||
      (b >= 0xAE && b <= 0xFF))
    return b;
  unsigned n = 0;
  for (unsigned c = 0; c < b; ++c)
    n += !((c >= 0x21 && c <= 0x7E) || (c >= 0xA1 && c <= 0xAC) ||
           (c >= 0xAE && c <= 0xFF));
  return 0x100 + n;
}

/// A small byte-level BPE tokenizer.json. Byte b has id b; then
///   256 he  257 ll  258 hell  259 hello  260 Ġw  261 or  262 Ġwor  263 ld
///   264 Ġworld  265 el  266 12  267 xyz  268 <|im_start|>
/// with merges in rank order h+e, l+l, he+ll, hell+o, Ġ+w, o+r, Ġw+or, l+d,
/// Ġwor+ld, e+l, 1+2 (none makes xyz). Added: <|im_start|> (in the
/// vocabulary: 268) and <|im_end|> (not: gets 269, whatever "id" says).
struct Fixture {
  std::string normalizer = "null";
  std::string preTokenizer = R"({"type": "ByteLevel", "add_prefix_space": false,
      "trim_offsets": true, "use_regex": true})";
  std::string postProcessor = "null";
  std::string decoder = R"({"type": "ByteLevel", "add_prefix_space": true,
      "trim_offsets": true, "use_regex": true})";
  std::string modelType = "BPE";
  std::string modelOptions = R"("dropout": null, "unk_token": null,
      "continuing_subword_prefix": null, "end_of_word_suffix": null,
      "fuse_unk": false, "byte_fallback": false, "ignore_merges": false)";
  std::string addedTokens = R"([
      {"id": 268, "content": "<|im_start|>", "single_word": false,
       "lstrip": false, "rstrip": false, "normalized": false, "special": true},
      {"id": 999, "content": "<|im_end|>", "single_word": false,
       "lstrip": false, "rstrip": false, "normalized": false, "special": true}])";
  std::string merges = R"([["h", "e"], ["l", "l"], ["he", "ll"],
      ["hell", "o"], ["\u0120", "w"], ["o", "r"], ["\u0120w", "or"],
      ["l", "d"], ["\u0120wor", "ld"], ["e", "l"], ["1", "2"]])";

  std::string json() const {
    std::string vocab = "{";
    char buf[32];
    for (unsigned b = 0; b < 256; ++b) {
      std::snprintf(buf, sizeof(buf), "\"\\u%04X\": %u, ", byteChar(b), b);
      vocab += buf;
    }
    vocab += R"("he": 256, "ll": 257, "hell": 258, "hello": 259,
        "\u0120w": 260, "or": 261, "\u0120wor": 262, "ld": 263,
        "\u0120world": 264, "el": 265, "12": 266, "xyz": 267,
        "<|im_start|>": 268})";
    return R"({"version": "1.0", "truncation": null, "padding": null,
      "added_tokens": )" +
           addedTokens + R"(, "normalizer": )" + normalizer +
           R"(, "pre_tokenizer": )" + preTokenizer + R"(, "post_processor": )" +
           postProcessor + R"(, "decoder": )" + decoder +
           R"(, "model": {"type": ")" + modelType + "\", " + modelOptions +
           R"(, "vocab": )" + vocab + R"(, "merges": )" + merges + "}}";
  }
};

struct TokenizerDeleter {
  void operator()(kiln_tokenizer_t *t) const { kiln_tokenizer_free(t); }
};
using TokenizerPtr = std::unique_ptr<kiln_tokenizer_t, TokenizerDeleter>;

std::string writeTemp(const std::string &content) {
  static std::atomic<int> counter{0};
  std::string path = ::testing::TempDir() + "kiln-tokenizer-" +
                     std::to_string(counter++) + ".json";
  std::ofstream(path, std::ios::binary) << content;
  return path;
}

/// Loads `json`; on failure records the status and message.
struct Loaded {
  TokenizerPtr tok;
  kiln_status_t status;
  std::string message;
};
Loaded loadJson(const std::string &json) {
  std::string path = writeTemp(json);
  kiln_tokenizer_t *raw = reinterpret_cast<kiln_tokenizer_t *>(1);
  kiln_status_t s = kiln_tokenizer_load(path.c_str(), &raw);
  Loaded l{TokenizerPtr(raw), s, s == KILN_OK ? "" : kiln_last_error_message()};
  std::remove(path.c_str());
  return l;
}

TokenizerPtr load(const Fixture &f) {
  Loaded l = loadJson(f.json());
  EXPECT_EQ(l.status, KILN_OK) << l.message;
  return std::move(l.tok);
}

Ids encode(const kiln_tokenizer_t *tok, const std::string &text,
           bool special = false) {
  Ids ids(text.size() + 8);
  size_t n = 0;
  kiln_status_t s = kiln_tokenizer_encode(tok, text.data(), text.size(),
                                          special, ids.data(), ids.size(), &n);
  EXPECT_EQ(s, KILN_OK) << kiln_last_error_message();
  ids.resize(n);
  return ids;
}

std::string decode(const kiln_tokenizer_t *tok, const Ids &ids,
                   bool skip = false) {
  std::vector<char> out(ids.size() * 16 + 16);
  size_t n = 0;
  kiln_status_t s = kiln_tokenizer_decode(tok, ids.data(), ids.size(), skip,
                                          out.data(), out.size(), &n);
  EXPECT_EQ(s, KILN_OK) << kiln_last_error_message();
  return std::string(out.data(), n);
}

const char kReplacement[] = "\xEF\xBF\xBD";

//===----------------------------------------------------------------------===//
// Loading
//===----------------------------------------------------------------------===//

TEST(TokenizerLoad, MissingFileIsNotFoundAndNamesThePath) {
  kiln_tokenizer_t *tok = reinterpret_cast<kiln_tokenizer_t *>(1);
  std::string path = ::testing::TempDir() + "no-such-tokenizer.json";
  EXPECT_EQ(kiln_tokenizer_load(path.c_str(), &tok), KILN_ERROR_NOT_FOUND);
  EXPECT_EQ(tok, nullptr);
  EXPECT_NE(std::string(kiln_last_error_message()).find(path),
            std::string::npos)
      << kiln_last_error_message();
}

TEST(TokenizerLoad, DirectoryIsNotFound) {
  kiln_tokenizer_t *tok = nullptr;
  EXPECT_EQ(kiln_tokenizer_load(::testing::TempDir().c_str(), &tok),
            KILN_ERROR_NOT_FOUND);
  EXPECT_NE(std::string(kiln_last_error_message()).find("directory"),
            std::string::npos);
}

TEST(TokenizerLoad, NullArgumentsAreRejected) {
  kiln_tokenizer_t *tok = nullptr;
  EXPECT_EQ(kiln_tokenizer_load(nullptr, &tok), KILN_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(kiln_tokenizer_load("x.json", nullptr),
            KILN_ERROR_INVALID_ARGUMENT);
}

TEST(TokenizerLoad, MalformedJsonIsFormatError) {
  Loaded l = loadJson(R"({"model": {"type": "BPE", )");
  EXPECT_EQ(l.status, KILN_ERROR_FORMAT);
  EXPECT_EQ(l.tok, nullptr);
  EXPECT_NE(l.message.find("not valid JSON"), std::string::npos) << l.message;
}

TEST(TokenizerLoad, WrongShapesAreFormatErrorsNamingTheField) {
  struct Case {
    const char *json, *mentions;
  } cases[] = {
      {"[]", "expected an object"},
      {R"({"added_tokens": []})", "missing field \"model\""},
      {R"({"model": {"type": "BPE", "merges": []}})",
       "missing field \"vocab\""},
      {R"({"model": {"type": "BPE", "vocab": [], "merges": []}})",
       "model.vocab"},
      {R"({"model": {"type": "BPE", "vocab": {"a": -1}, "merges": []}})",
       "model.vocab[\"a\"]"},
      {R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": [["a", "b"]]}})",
       "model.merges[0]: token \"b\" is not in the vocabulary"},
      {R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": ["a  a"]}})",
       "model.merges[0]"},
      {R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": [],
           "unk_token": "<unk>"}})",
       "model.unk_token"},
      {R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []},
           "pre_tokenizer": {"type": "Split", "pattern": {"Regex": "(a"},
                             "behavior": "Isolated", "invert": false}})",
       "regex does not compile"},
      {R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []},
           "added_tokens": [{"id": 1}]})",
       "added_tokens[0]: missing field \"content\""},
  };
  for (const Case &c : cases) {
    Loaded l = loadJson(c.json);
    EXPECT_EQ(l.status, KILN_ERROR_FORMAT) << c.json;
    EXPECT_NE(l.message.find(c.mentions), std::string::npos)
        << "message: " << l.message << "\nexpected to mention: " << c.mentions;
  }
}

TEST(TokenizerLoad, UnsupportedComponentsAreNamed) {
  auto unsupported = [](const Fixture &f, const char *mentions) {
    Loaded l = loadJson(f.json());
    EXPECT_EQ(l.status, KILN_ERROR_UNSUPPORTED);
    EXPECT_NE(l.message.find(mentions), std::string::npos) << l.message;
  };
  Fixture f;
  f.modelType = "WordPiece";
  unsupported(
      f, "model.type is \"WordPiece\"; kiln supports \"BPE\" and \"Unigram\"");
  f = Fixture();
  f.normalizer = R"({"type": "NFC"})";
  unsupported(f, "normalizer.type is \"NFC\"");
  f = Fixture();
  f.preTokenizer = R"({"type": "BertPreTokenizer"})";
  unsupported(f, "pre_tokenizer.type is \"BertPreTokenizer\"");
  f = Fixture();
  f.preTokenizer = R"({"type": "Sequence", "pretokenizers": [
      {"type": "ByteLevel"}, {"type": "Digits", "individual_digits": true}]})";
  unsupported(f, "ByteLevel is followed by other pre-tokenizers");
  f = Fixture();
  f.decoder = R"({"type": "WordPiece", "prefix": "##"})";
  unsupported(f, "decoder.type is \"WordPiece\"");
  f = Fixture();
  f.postProcessor = R"({"type": "Custom"})";
  unsupported(f, "post_processor.type is \"Custom\"");
  f = Fixture();
  f.modelOptions = R"("dropout": 0.1)";
  unsupported(f, "model.dropout");
}

//===----------------------------------------------------------------------===//
// Encoding
//===----------------------------------------------------------------------===//

TEST(TokenizerEncode, MergesApplyLowestRankFirstThenLeftmost) {
  TokenizerPtr tok = load(Fixture());
  EXPECT_EQ(encode(tok.get(), "hello"), (Ids{259}));
  EXPECT_EQ(encode(tok.get(), " world"), (Ids{264}));
  EXPECT_EQ(encode(tok.get(), "hello world"), (Ids{259, 264}));
  // e+l (rank 9) is leftmost, but l+l (rank 1) goes first and leaves no e+l.
  EXPECT_EQ(encode(tok.get(), "ell"), (Ids{'e', 257}));
  // Equal ranks: the leftmost pair merges.
  EXPECT_EQ(encode(tok.get(), "lll"), (Ids{257, 'l'}));
  // No merge chain makes xyz, although it is in the vocabulary.
  EXPECT_EQ(encode(tok.get(), "xyz"), (Ids{'x', 'y', 'z'}));
  EXPECT_EQ(encode(tok.get(), ""), Ids{});
}

TEST(TokenizerEncode, EveryByteHasItsByteLevelToken) {
  TokenizerPtr tok = load(Fixture());
  EXPECT_EQ(encode(tok.get(), "\xC3\xA9"), (Ids{0xC3, 0xA9})); // é
  EXPECT_EQ(encode(tok.get(), std::string("\0", 1)), (Ids{0}));
  EXPECT_EQ(encode(tok.get(), "\xF0\x9F\x98\x80"), // 😀
            (Ids{0xF0, 0x9F, 0x98, 0x80}));
  EXPECT_EQ(encode(tok.get(), "\t\r\n"), (Ids{'\t', '\r', '\n'}));
  // Every ASCII byte alone is its own token.
  for (int b = 0; b < 128; ++b)
    EXPECT_EQ(encode(tok.get(), std::string(1, static_cast<char>(b))), (Ids{b}))
        << b;
}

TEST(TokenizerEncode, PreTokenizerSplitsBeforeMerging) {
  Fixture f;
  // One ByteLevel piece "123": 1+2 merges.
  EXPECT_EQ(encode(load(f).get(), "123"), (Ids{266, '3'}));
  // Digits (individual) first, as SmolLM2: no merge across digits.
  f.preTokenizer = R"({"type": "Sequence", "pretokenizers": [
      {"type": "Digits", "individual_digits": true},
      {"type": "ByteLevel", "add_prefix_space": false, "use_regex": true}]})";
  EXPECT_EQ(encode(load(f).get(), "123"), (Ids{'1', '2', '3'}));
  // The GPT-2 regex keeps a space with the word after it, not before.
  EXPECT_EQ(encode(load(f).get(), "hello  world"), (Ids{259, 32, 264}));
}

TEST(TokenizerEncode, IgnoreMergesTakesWholeVocabularyWords) {
  Fixture f;
  f.modelOptions = R"("ignore_merges": true)";
  EXPECT_EQ(encode(load(f).get(), "xyz"), (Ids{267}));
  EXPECT_EQ(encode(load(f).get(), "xyzx"), (Ids{'x', 'y', 'z', 'x'}));
}

TEST(TokenizerEncode, AddedTokensAreFoundBeforePreTokenization) {
  TokenizerPtr tok = load(Fixture());
  EXPECT_EQ(encode(tok.get(), "a<|im_start|>b"), (Ids{'a', 268, 'b'}));
  // Not in the vocabulary: the next id after the model's, not the file's 999.
  EXPECT_EQ(encode(tok.get(), "<|im_end|>"), (Ids{269}));
  EXPECT_EQ(encode(tok.get(), "hello<|im_end|> world"), (Ids{259, 269, 264}));
  EXPECT_EQ(encode(tok.get(), "<|im_end|><|im_start|>"), (Ids{269, 268}));
  // A prefix of a token is ordinary text.
  for (int32_t id : encode(tok.get(), "<|im_start|"))
    EXPECT_LT(id, 256);
}

TEST(TokenizerEncode, AddedTokenFlags) {
  auto withToken = [](const char *flags) {
    Fixture f;
    f.addedTokens =
        std::string(R"([{"id": 0, "content": "<m>", "special": false,
        "normalized": false, )") +
        flags + "}]";
    return load(f);
  };
  // lstrip: the token takes the spaces on its left.
  TokenizerPtr t =
      withToken(R"("lstrip": true, "rstrip": false, "single_word": false)");
  EXPECT_EQ(encode(t.get(), "a <m> b"), (Ids{'a', 269, ' ', 'b'}));
  // rstrip: the spaces on its right.
  t = withToken(R"("lstrip": false, "rstrip": true, "single_word": false)");
  EXPECT_EQ(encode(t.get(), "a <m> b"), (Ids{'a', ' ', 269, 'b'}));
  // single_word: not inside a word.
  t = withToken(R"("lstrip": false, "rstrip": false, "single_word": true)");
  EXPECT_EQ(encode(t.get(), "a <m> b"), (Ids{'a', ' ', 269, ' ', 'b'}));
  EXPECT_EQ(encode(t.get(), "a<m>b"), (Ids{'a', '<', 'm', '>', 'b'}));
}

TEST(TokenizerEncode, RawTokensAreMatchedBeforeNormalizedOnes) {
  // "ab" (normalized: false) is split out first, so "xa" (normalized: true)
  // never sees the "a" of "xab", although it starts further left.
  Fixture f;
  f.addedTokens = R"([
      {"id": 0, "content": "ab", "special": false, "normalized": false},
      {"id": 0, "content": "xa", "special": false, "normalized": true}])";
  TokenizerPtr tok = load(f);
  EXPECT_EQ(encode(tok.get(), "xab"), (Ids{'x', 269}));
  EXPECT_EQ(encode(tok.get(), "xa"), (Ids{270}));
}

TEST(TokenizerEncode, TemplatePostProcessorAddsSpecialTokensOnRequest) {
  Fixture f;
  f.postProcessor = R"({"type": "TemplateProcessing",
      "single": [{"SpecialToken": {"id": "<|im_start|>", "type_id": 0}},
                 {"Sequence": {"id": "A", "type_id": 0}},
                 {"SpecialToken": {"id": "<|im_end|>", "type_id": 0}}],
      "pair": [],
      "special_tokens": {
        "<|im_start|>": {"id": "<|im_start|>", "ids": [268], "tokens": ["<|im_start|>"]},
        "<|im_end|>": {"id": "<|im_end|>", "ids": [269], "tokens": ["<|im_end|>"]}}})";
  TokenizerPtr tok = load(f);
  EXPECT_EQ(encode(tok.get(), "hello", true), (Ids{268, 259, 269}));
  EXPECT_EQ(encode(tok.get(), "hello", false), (Ids{259}));
  EXPECT_EQ(encode(tok.get(), "", true), (Ids{268, 269}));
}

TEST(TokenizerEncode, CapacityProtocol) {
  TokenizerPtr tok = load(Fixture());
  const std::string text = "hello world";
  size_t n = 99;
  // Counting only.
  EXPECT_EQ(kiln_tokenizer_encode(tok.get(), text.data(), text.size(), 0,
                                  nullptr, 0, &n),
            KILN_ERROR_BUFFER_TOO_SMALL);
  EXPECT_EQ(n, 2u);
  int32_t ids[2] = {-1, -1};
  EXPECT_EQ(
      kiln_tokenizer_encode(tok.get(), text.data(), text.size(), 0, ids, 1, &n),
      KILN_ERROR_BUFFER_TOO_SMALL);
  EXPECT_EQ(n, 2u);
  EXPECT_NE(std::string(kiln_last_error_message()).find("capacity is 1"),
            std::string::npos);
  EXPECT_EQ(
      kiln_tokenizer_encode(tok.get(), text.data(), text.size(), 0, ids, 2, &n),
      KILN_OK);
  EXPECT_EQ(n, 2u);
  EXPECT_EQ(ids[0], 259);
  EXPECT_EQ(ids[1], 264);
  // Empty text may be NULL.
  EXPECT_EQ(kiln_tokenizer_encode(tok.get(), nullptr, 0, 0, nullptr, 0, &n),
            KILN_OK);
  EXPECT_EQ(n, 0u);
  EXPECT_EQ(kiln_tokenizer_encode(tok.get(), nullptr, 3, 0, ids, 2, &n),
            KILN_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(kiln_tokenizer_encode(tok.get(), "a", 1, 0, nullptr, 2, &n),
            KILN_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(kiln_tokenizer_encode(nullptr, "a", 1, 0, ids, 2, &n),
            KILN_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(kiln_tokenizer_encode(tok.get(), "a", 1, 0, ids, 2, nullptr),
            KILN_ERROR_INVALID_ARGUMENT);
}

TEST(TokenizerEncode, InvalidUtf8IsRejectedWithItsOffset) {
  TokenizerPtr tok = load(Fixture());
  struct Case {
    std::string text;
    size_t offset;
  } cases[] = {
      {"\xFF", 0},
      {"ab\x80", 2},              // a lone continuation byte
      {"a\xC3", 1},               // truncated
      {"a\xC0\xAF", 1},           // overlong '/'
      {"hi \xED\xA0\x80", 3},     // a surrogate
      {"\xF4\x90\x80\x80", 0},    // above U+10FFFF
      {"\xE2\x82x", 0},           // bad continuation
      {"ok<|im_start|>\xFE", 14}, // after an added token
  };
  for (const Case &c : cases) {
    int32_t ids[16];
    size_t n = 7;
    EXPECT_EQ(kiln_tokenizer_encode(tok.get(), c.text.data(), c.text.size(), 0,
                                    ids, 16, &n),
              KILN_ERROR_INVALID_ARGUMENT);
    EXPECT_EQ(n, 0u);
    std::string message = kiln_last_error_message();
    EXPECT_NE(message.find("not valid UTF-8: byte " + std::to_string(c.offset)),
              std::string::npos)
        << message;
  }
  // The largest code point is fine.
  EXPECT_EQ(encode(tok.get(), "\xF4\x8F\xBF\xBF"),
            (Ids{0xF4, 0x8F, 0xBF, 0xBF}));
}

TEST(TokenizerEncode, ManyThreadsShareOneTokenizer) {
  TokenizerPtr tok = load(Fixture());
  std::vector<std::string> texts;
  for (int i = 0; i < 64; ++i)
    texts.push_back("hello world " + std::to_string(i * 7919) +
                    " <|im_start|>ell lll\xC3\xA9 " + std::string(i, 'l'));
  std::vector<Ids> expected;
  for (const auto &t : texts)
    expected.push_back(encode(tok.get(), t));
  std::atomic<int> mismatches{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t)
    threads.emplace_back([&, t] {
      for (int round = 0; round < 50; ++round)
        for (size_t i = 0; i < texts.size(); ++i) {
          size_t k = (i + t * 13) % texts.size();
          Ids ids(texts[k].size() + 8);
          size_t n = 0;
          if (kiln_tokenizer_encode(tok.get(), texts[k].data(), texts[k].size(),
                                    0, ids.data(), ids.size(), &n) != KILN_OK)
            ++mismatches;
          ids.resize(n);
          if (ids != expected[k])
            ++mismatches;
        }
    });
  for (auto &th : threads)
    th.join();
  EXPECT_EQ(mismatches.load(), 0);
}

//===----------------------------------------------------------------------===//
// Decoding and lookups
//===----------------------------------------------------------------------===//

TEST(TokenizerDecode, BytesBackToText) {
  TokenizerPtr tok = load(Fixture());
  EXPECT_EQ(decode(tok.get(), {259, 264}), "hello world");
  EXPECT_EQ(decode(tok.get(), {0xC3, 0xA9}), "\xC3\xA9");
  EXPECT_EQ(decode(tok.get(), {0}), std::string("\0", 1));
  EXPECT_EQ(decode(tok.get(), {}), "");
  // Special tokens: kept, or skipped on request.
  EXPECT_EQ(decode(tok.get(), {'a', 268, 'b', 269}),
            "a<|im_start|>b<|im_end|>");
  EXPECT_EQ(decode(tok.get(), {'a', 268, 'b', 269}, true), "ab");
}

TEST(TokenizerDecode, InvalidUtf8BecomesReplacementCharacters) {
  TokenizerPtr tok = load(Fixture());
  EXPECT_EQ(decode(tok.get(), {0xC3}), kReplacement);
  EXPECT_EQ(decode(tok.get(), {0xF0, 0x9F, 'a'}),
            std::string(kReplacement) + "a");
  EXPECT_EQ(decode(tok.get(), {0xFF, 0xFE}),
            std::string(kReplacement) + kReplacement);
}

TEST(TokenizerDecode, WithoutDecoderTokensAreJoinedBySpaces) {
  Fixture f;
  f.decoder = "null"; // what `tokenizers` does then, odd as it is
  EXPECT_EQ(decode(load(f).get(), {259, 264}), "hello \xC4\xA0world");
}

TEST(TokenizerDecode, UnknownIdsAndSmallBuffersAreReported) {
  TokenizerPtr tok = load(Fixture());
  for (int32_t bad : {-1, 270, 1 << 30}) {
    int32_t ids[] = {259, bad};
    char out[64];
    size_t n = 5;
    EXPECT_EQ(kiln_tokenizer_decode(tok.get(), ids, 2, 0, out, sizeof(out), &n),
              KILN_ERROR_INVALID_ARGUMENT);
    EXPECT_EQ(n, 0u);
    EXPECT_NE(std::string(kiln_last_error_message())
                  .find("ids[1] = " + std::to_string(bad)),
              std::string::npos)
        << kiln_last_error_message();
  }
  int32_t ids[] = {259, 264}; // "hello world": 11 bytes and a NUL
  char out[12];
  size_t n = 0;
  EXPECT_EQ(kiln_tokenizer_decode(tok.get(), ids, 2, 0, nullptr, 0, &n),
            KILN_ERROR_BUFFER_TOO_SMALL);
  EXPECT_EQ(n, 11u);
  EXPECT_EQ(kiln_tokenizer_decode(tok.get(), ids, 2, 0, out, 11, &n),
            KILN_ERROR_BUFFER_TOO_SMALL);
  EXPECT_EQ(kiln_tokenizer_decode(tok.get(), ids, 2, 0, out, 12, &n), KILN_OK);
  EXPECT_STREQ(out, "hello world");
}

TEST(TokenizerLookup, TokensIdsAndSpecials) {
  TokenizerPtr tok = load(Fixture());
  EXPECT_EQ(kiln_tokenizer_vocab_size(tok.get()), 270u);
  EXPECT_EQ(kiln_tokenizer_vocab_size(nullptr), 0u);
  int32_t id = 0;
  EXPECT_EQ(kiln_tokenizer_token_to_id(tok.get(), "<|im_end|>", &id), KILN_OK);
  EXPECT_EQ(id, 269);
  EXPECT_EQ(kiln_tokenizer_token_to_id(tok.get(), "\xC4\xA0world", &id),
            KILN_OK);
  EXPECT_EQ(id, 264);
  EXPECT_EQ(kiln_tokenizer_token_to_id(tok.get(), "nope", &id),
            KILN_ERROR_NOT_FOUND);
  EXPECT_EQ(id, -1);
  const char *token = nullptr;
  EXPECT_EQ(kiln_tokenizer_id_to_token(tok.get(), 258, &token), KILN_OK);
  EXPECT_STREQ(token, "hell");
  EXPECT_EQ(kiln_tokenizer_id_to_token(tok.get(), 268, &token), KILN_OK);
  EXPECT_STREQ(token, "<|im_start|>");
  EXPECT_EQ(kiln_tokenizer_id_to_token(tok.get(), 270, &token),
            KILN_ERROR_NOT_FOUND);
  EXPECT_EQ(token, nullptr);
  EXPECT_EQ(kiln_tokenizer_is_special(tok.get(), 268), 1);
  EXPECT_EQ(kiln_tokenizer_is_special(tok.get(), 269), 1);
  EXPECT_EQ(kiln_tokenizer_is_special(tok.get(), 259), 0);
  EXPECT_EQ(kiln_tokenizer_is_special(tok.get(), -5), 0);
}

//===----------------------------------------------------------------------===//
// Streaming detokenizer
//===----------------------------------------------------------------------===//

struct DetokenizerDeleter {
  void operator()(kiln_detokenizer_t *d) const { kiln_detokenizer_free(d); }
};

TEST(Detokenizer, EmitsOnlyCompleteCharacters) {
  TokenizerPtr tok = load(Fixture());
  kiln_detokenizer_t *raw = nullptr;
  ASSERT_EQ(kiln_detokenizer_init(tok.get(), 1, &raw), KILN_OK);
  std::unique_ptr<kiln_detokenizer_t, DetokenizerDeleter> det(raw);
  auto push = [&](int32_t id) {
    char out[32];
    size_t n = 0;
    EXPECT_EQ(kiln_detokenizer_push(det.get(), id, out, sizeof(out), &n),
              KILN_OK)
        << kiln_last_error_message();
    return std::string(out, n);
  };
  auto finish = [&] {
    char out[32];
    size_t n = 0;
    EXPECT_EQ(kiln_detokenizer_finish(det.get(), out, sizeof(out), &n),
              KILN_OK);
    return std::string(out, n);
  };
  EXPECT_EQ(push(259), "hello");
  EXPECT_EQ(push(0xC3), "");
  EXPECT_EQ(push(0xA9), "\xC3\xA9");
  EXPECT_EQ(push(0xF0), "");
  EXPECT_EQ(push(0x9F), "");
  EXPECT_EQ(push(268), ""); // special, skipped: the emoji stays open
  EXPECT_EQ(push(0x98), "");
  EXPECT_EQ(push(0x80), "\xF0\x9F\x98\x80");
  // A character that cannot be completed is replaced once it is clear.
  EXPECT_EQ(push(0xC3), "");
  EXPECT_EQ(push('a'), std::string(kReplacement) + "a");
  // And at the end, what is held back.
  EXPECT_EQ(push(0xE2), "");
  EXPECT_EQ(finish(), kReplacement);
  EXPECT_EQ(finish(), "");
}

TEST(Detokenizer, SmallBufferLeavesStateUnchanged) {
  TokenizerPtr tok = load(Fixture());
  kiln_detokenizer_t *raw = nullptr;
  ASSERT_EQ(kiln_detokenizer_init(tok.get(), 0, &raw), KILN_OK);
  std::unique_ptr<kiln_detokenizer_t, DetokenizerDeleter> det(raw);
  char out[8];
  size_t n = 0;
  EXPECT_EQ(kiln_detokenizer_push(det.get(), 259, out, 5, &n),
            KILN_ERROR_BUFFER_TOO_SMALL);
  EXPECT_EQ(n, 5u);
  EXPECT_EQ(kiln_detokenizer_push(det.get(), 259, out, 6, &n), KILN_OK);
  EXPECT_STREQ(out, "hello");
  EXPECT_EQ(kiln_detokenizer_push(det.get(), 9999, out, 8, &n),
            KILN_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(kiln_detokenizer_push(det.get(), 264, out, 8, &n), KILN_OK);
  EXPECT_STREQ(out, " world");
  EXPECT_EQ(kiln_detokenizer_init(nullptr, 0, &raw),
            KILN_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(raw, nullptr);
}

//===----------------------------------------------------------------------===//
// SentencePiece-style tokenizers: byte fallback, Metaspace, Unigram
//===----------------------------------------------------------------------===//

/// A tiny Llama-2-style BPE. Ids: 0 <unk>, 1 <s>, 2 </s>, 3 + b for
/// "<0xbb>", then 259 ▁, 260 a, 261 b, 262 c, 263 ▁a, 264 ab, 265 ▁ab,
/// 266 b▁, 267 c▁; merges in rank order b+▁, ▁+a, a+b, ▁a+b. "<s>" is a
/// special added token.
struct SpFixture {
  std::string normalizer = "null";
  std::string preTokenizer = R"({"type": "Metaspace", "replacement": "▁",
      "prepend_scheme": "first", "split": false})";
  std::string decoder = R"({"type": "Sequence", "decoders": [
      {"type": "Replace", "pattern": {"String": "▁"}, "content": " "},
      {"type": "ByteFallback"}, {"type": "Fuse"},
      {"type": "Strip", "content": " ", "start": 1, "stop": 0}]})";
  std::string postProcessor = "null";
  std::string modelOptions = R"("unk_token": "<unk>", "fuse_unk": true,
      "byte_fallback": true)";
  std::string addedTokens = R"([
      {"id": 1, "content": "<s>", "single_word": false, "lstrip": false,
       "rstrip": false, "normalized": false, "special": true}])";
  std::vector<int> droppedBytes; ///< bytes left without a <0x..> token

  std::string json() const {
    std::string vocab = R"({"<unk>": 0, "<s>": 1, "</s>": 2, )";
    char buf[32];
    for (unsigned b = 0; b < 256; ++b) {
      bool dropped = false;
      for (int d : droppedBytes)
        dropped = dropped || d == static_cast<int>(b);
      if (dropped)
        continue;
      std::snprintf(buf, sizeof(buf), "\"<0x%02X>\": %u, ", b, 3 + b);
      vocab += buf;
    }
    vocab += R"("▁": 259, "a": 260, "b": 261, "c": 262, "▁a": 263, "ab": 264,
        "▁ab": 265, "b▁": 266, "c▁": 267})";
    return R"({"version": "1.0", "added_tokens": )" + addedTokens +
           R"(, "normalizer": )" + normalizer + R"(, "pre_tokenizer": )" +
           preTokenizer + R"(, "post_processor": )" + postProcessor +
           R"(, "decoder": )" + decoder +
           R"(, "model": {"type": "BPE", "dropout": null, )" + modelOptions +
           R"(, "vocab": )" + vocab +
           R"(, "merges": ["b ▁", "▁ a", "a b", "▁a b"]}})";
  }
};

TokenizerPtr load(const SpFixture &f) {
  Loaded l = loadJson(f.json());
  EXPECT_EQ(l.status, KILN_OK) << l.message;
  return std::move(l.tok);
}

/// Byte-fallback token id of byte `b` in SpFixture.
int32_t byteId(unsigned b) { return static_cast<int32_t>(3 + b); }

TEST(TokenizerSentencePiece, UnknownCharactersFallBackToByteTokens) {
  TokenizerPtr tok = load(SpFixture());
  EXPECT_EQ(encode(tok.get(), "ab"), (Ids{265}));
  // x has no token: its byte's; é (C3 A9): one token per byte.
  EXPECT_EQ(encode(tok.get(), "xab"), (Ids{259, byteId('x'), 264}));
  EXPECT_EQ(encode(tok.get(), "\xC3\xA9"),
            (Ids{259, byteId(0xC3), byteId(0xA9)}));
  EXPECT_EQ(encode(tok.get(), "\xF0\x9F\x98\x80"), // 😀
            (Ids{259, byteId(0xF0), byteId(0x9F), byteId(0x98), byteId(0x80)}));
  // A byte without its token makes the whole character unknown; fuse_unk
  // joins neighbouring unknowns. As in BPE::merge_word, byte tokens do not
  // end a pending <unk>: it is placed after them, and unknowns on both
  // sides of them fuse.
  SpFixture f;
  f.droppedBytes = {0xA9};
  tok = load(f);
  EXPECT_EQ(encode(tok.get(), "\xC3\xA9\xC3\xA9"
                              "a"),
            (Ids{259, 0, 260}));
  EXPECT_EQ(encode(tok.get(), "\xC3\xA9x\xC3\xA9"), (Ids{259, byteId('x'), 0}));
  f.modelOptions = R"("unk_token": "<unk>", "fuse_unk": false,
      "byte_fallback": true)";
  EXPECT_EQ(encode(load(f).get(), "\xC3\xA9\xC3\xA9"), (Ids{259, 0, 0}));
}

TEST(TokenizerSentencePiece, MetaspacePrependSchemes) {
  auto withScheme = [](const char *scheme, bool split) {
    SpFixture f;
    f.preTokenizer = std::string(R"({"type": "Metaspace",
        "replacement": "▁", "prepend_scheme": ")") +
                     scheme + "\", \"split\": " + (split ? "true" : "false") +
                     "}";
    return load(f);
  };
  // "first": only the text's start, not the text after an added token.
  TokenizerPtr tok = withScheme("first", false);
  EXPECT_EQ(encode(tok.get(), "a<s>a"), (Ids{263, 1, 260}));
  EXPECT_EQ(encode(tok.get(), " a"), (Ids{263})); // already starts with ▁
  EXPECT_EQ(encode(tok.get(), "<s>a"), (Ids{1, 260}));
  EXPECT_EQ(encode(withScheme("always", false).get(), "a<s>a"),
            (Ids{263, 1, 263}));
  EXPECT_EQ(encode(withScheme("never", false).get(), "a<s>a"),
            (Ids{260, 1, 260}));
  // Without split, b+▁ merges across the word boundary; with split the
  // pieces are "▁ab" and "▁a".
  EXPECT_EQ(encode(withScheme("first", false).get(), "ab a"),
            (Ids{263, 266, 260}));
  EXPECT_EQ(encode(withScheme("first", true).get(), "ab a"), (Ids{265, 263}));
  // The older spelling: add_prefix_space true is "always"; false must come
  // with "never".
  SpFixture f;
  f.preTokenizer = R"({"type": "Metaspace", "replacement": "▁",
      "add_prefix_space": true, "str_rep": "▁"})";
  EXPECT_EQ(encode(load(f).get(), "a<s>a"), (Ids{263, 1, 263}));
  f.preTokenizer = R"({"type": "Metaspace", "replacement": "▁",
      "add_prefix_space": false})";
  Loaded l = loadJson(f.json());
  EXPECT_EQ(l.status, KILN_ERROR_FORMAT);
  EXPECT_NE(l.message.find("pre_tokenizer.add_prefix_space"), std::string::npos)
      << l.message;
}

TEST(TokenizerSentencePiece, Llama2NormalizerAndNormalizedAddedTokens) {
  // Llama 2's first files: Prepend("▁") + Replace(" ", "▁"), no
  // pre-tokenizer; the whole text is one word.
  SpFixture f;
  f.normalizer = R"({"type": "Sequence", "normalizers": [
      {"type": "Prepend", "prepend": "▁"},
      {"type": "Replace", "pattern": {"String": " "}, "content": "▁"}]})";
  f.preTokenizer = "null";
  // A normalized added token is matched as the normalizer spells it.
  f.addedTokens = R"([
      {"id": 1, "content": "<s>", "normalized": false, "special": true},
      {"id": 0, "content": "zz", "normalized": true, "special": false}])";
  TokenizerPtr tok = load(f);
  EXPECT_EQ(encode(tok.get(), "ab a"), (Ids{263, 266, 260}));
  EXPECT_EQ(encode(tok.get(), "a<s>a"), (Ids{263, 1, 263}));
  EXPECT_EQ(encode(tok.get(), ""), Ids{}); // Prepend leaves "" alone
  EXPECT_EQ(encode(tok.get(), "zz"), (Ids{268}));
  EXPECT_EQ(encode(tok.get(), "a zz"), (Ids{263, 268}));
  EXPECT_EQ(encode(tok.get(), "azz"), (Ids{263, byteId('z'), byteId('z')}));
  EXPECT_EQ(decode(tok.get(), {268}), "zz");
  // "first" asks where the piece starts in the original text: after a
  // stripped leading space it is not at 0.
  f = SpFixture();
  f.normalizer = R"({"type": "Strip", "strip_left": true,
      "strip_right": false})";
  tok = load(f);
  EXPECT_EQ(encode(tok.get(), "a"), (Ids{263}));
  EXPECT_EQ(encode(tok.get(), "  a"), (Ids{260}));
}

TEST(TokenizerSentencePiece, DecoderJoinsByteRunsAndStripsOneSpace) {
  TokenizerPtr tok = load(SpFixture());
  EXPECT_EQ(decode(tok.get(), {263, 266, 260}), "ab a");
  EXPECT_EQ(decode(tok.get(), {259, byteId(0xC3), byteId(0xA9)}), "\xC3\xA9");
  // A run of byte tokens that is not UTF-8 as a whole becomes one U+FFFD
  // per byte, even where part of it is a valid character.
  EXPECT_EQ(decode(tok.get(), {byteId(0xC3)}), kReplacement);
  EXPECT_EQ(decode(tok.get(), {byteId(0xC3), byteId(0xA9), byteId(0xC3)}),
            std::string(kReplacement) + kReplacement + kReplacement);
  EXPECT_EQ(decode(tok.get(), {byteId(0xC3), 260, byteId(0xC3), byteId(0xA9)}),
            std::string(kReplacement) + "a\xC3\xA9");
  // Only the text's first space goes, special tokens or not.
  EXPECT_EQ(decode(tok.get(), {1, 263}, /*skip=*/false), "<s> a");
  EXPECT_EQ(decode(tok.get(), {1, 263}, /*skip=*/true), "a");
  EXPECT_EQ(decode(tok.get(), {259, 259, 263}), "  a");
  // The Metaspace decoder drops every ▁ of the first token unless the
  // prepend scheme is "never".
  SpFixture f;
  f.decoder = R"({"type": "Metaspace", "replacement": "▁",
      "prepend_scheme": "always", "split": true})";
  EXPECT_EQ(decode(load(f).get(), {259, 259, 263}), "  a");
  EXPECT_EQ(decode(load(f).get(), {266, 263}), "b a");
  f.decoder = R"({"type": "Metaspace", "replacement": "▁",
      "prepend_scheme": "never", "split": true})";
  EXPECT_EQ(decode(load(f).get(), {266, 263}), "b  a");
}

TEST(TokenizerSentencePiece, DetokenizerHoldsByteRunsUntilTheyEnd) {
  TokenizerPtr tok = load(SpFixture());
  kiln_detokenizer_t *raw = nullptr;
  ASSERT_EQ(kiln_detokenizer_init(tok.get(), 1, &raw), KILN_OK);
  std::unique_ptr<kiln_detokenizer_t, DetokenizerDeleter> det(raw);
  auto push = [&](int32_t id) {
    char out[64];
    size_t n = 0;
    EXPECT_EQ(kiln_detokenizer_push(det.get(), id, out, sizeof(out), &n),
              KILN_OK)
        << kiln_last_error_message();
    return std::string(out, n);
  };
  auto finish = [&] {
    char out[64];
    size_t n = 0;
    EXPECT_EQ(kiln_detokenizer_finish(det.get(), out, sizeof(out), &n),
              KILN_OK);
    return std::string(out, n);
  };
  EXPECT_EQ(push(259), ""); // the leading space Strip removes
  EXPECT_EQ(push(byteId(0xC3)), "");
  // Complete, but a later byte token could still turn the run into U+FFFDs.
  EXPECT_EQ(push(byteId(0xA9)), "");
  EXPECT_EQ(push(263), "\xC3\xA9 a");
  EXPECT_EQ(push(1), ""); // special, skipped
  EXPECT_EQ(push(byteId(0xF0)), "");
  EXPECT_EQ(push(byteId(0x9F)), "");
  EXPECT_EQ(finish(), std::string(kReplacement) + kReplacement);
  // finish resets: the next text's first space is stripped again.
  EXPECT_EQ(push(263), "a");
  EXPECT_EQ(push(263), " a");
  EXPECT_EQ(finish(), "");
}

/// A hand-made Unigram: 0 <unk>, 1 a (-1), 2 b (-2), 3 c (-3), 4 ab (-2.5),
/// 5 bc (-1), 6 abc (-10), 7 <0x78> (0; the byte of "x").
std::string unigramJson(const char *options, const char *abScore = "-2.5") {
  return std::string(R"({"model": {"type": "Unigram", )") + options +
         R"(, "vocab": [["<unk>", 0.0], ["a", -1.0], ["b", -2.0], ["c", -3.0],
         ["ab", )" +
         abScore + R"(], ["bc", -1.0], ["abc", -10.0], ["<0x78>", 0.0]]}})";
}

TEST(TokenizerUnigram, ViterbiFindsTheBestScoringSegmentation) {
  Loaded l = loadJson(unigramJson(R"("unk_id": 0)"));
  ASSERT_EQ(l.status, KILN_OK) << l.message;
  const kiln_tokenizer_t *tok = l.tok.get();
  // abc: a+bc -2 beats ab+c -5.5, a+b+c -6 and abc -10.
  EXPECT_EQ(encode(tok, "abc"), (Ids{1, 5}));
  EXPECT_EQ(encode(tok, "ab"), (Ids{4})); // -2.5 beats a+b -3
  EXPECT_EQ(encode(tok, "bcab"), (Ids{5, 4}));
  // Unknown characters (scored 10 below the lowest score) fuse into one
  // <unk>; "x" is unknown too, since byte_fallback is off.
  EXPECT_EQ(encode(tok, "d"), (Ids{0}));
  EXPECT_EQ(encode(tok, "adda"), (Ids{1, 0, 1}));
  EXPECT_EQ(encode(tok, "x"), (Ids{0}));
  EXPECT_EQ(kiln_tokenizer_vocab_size(tok), 8u);
  // Without a decoder the tokens are joined with spaces.
  EXPECT_EQ(decode(tok, {1, 5}), "a bc");
  // A tie keeps the segmentation found first: ab, reached from 0.
  l = loadJson(unigramJson(R"("unk_id": 0)", "-3.0"));
  EXPECT_EQ(encode(l.tok.get(), "ab"), (Ids{4}));
}

TEST(TokenizerUnigram, ByteFallbackAndMissingUnknown) {
  Loaded l = loadJson(unigramJson(R"("unk_id": 0, "byte_fallback": true)"));
  ASSERT_EQ(l.status, KILN_OK) << l.message;
  // An unknown piece whose bytes all have tokens becomes them; "xd" has no
  // token for d, so the fused piece stays <unk>.
  EXPECT_EQ(encode(l.tok.get(), "x"), (Ids{7}));
  EXPECT_EQ(encode(l.tok.get(), "axa"), (Ids{1, 7, 1}));
  EXPECT_EQ(encode(l.tok.get(), "xd"), (Ids{0}));
  // No unk_id: text that needs it cannot be encoded.
  l = loadJson(unigramJson(R"("unk_id": null)"));
  ASSERT_EQ(l.status, KILN_OK) << l.message;
  EXPECT_EQ(encode(l.tok.get(), "abc"), (Ids{1, 5}));
  int32_t ids[8];
  size_t n = 0;
  EXPECT_EQ(kiln_tokenizer_encode(l.tok.get(), "ad", 2, 0, ids, 8, &n),
            KILN_ERROR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(kiln_last_error_message()).find("U+0064"),
            std::string::npos)
      << kiln_last_error_message();
}

TEST(TokenizerUnigram, MalformedModelsAreFormatErrors) {
  Loaded l = loadJson(unigramJson(R"("unk_id": 8)"));
  EXPECT_EQ(l.status, KILN_ERROR_FORMAT);
  EXPECT_NE(l.message.find("model.unk_id is 8; the vocabulary has 8 tokens"),
            std::string::npos)
      << l.message;
  l = loadJson(R"({"model": {"type": "Unigram", "unk_id": 0,
      "vocab": [["<unk>", 0.0], ["a"]]}})");
  EXPECT_EQ(l.status, KILN_ERROR_FORMAT);
  EXPECT_NE(l.message.find("model.vocab[1]: expected [token, score]"),
            std::string::npos)
      << l.message;
}

TEST(TokenizerSentencePiece, UnsupportedNormalizersAndDecodersAreNamed) {
  auto unsupported = [](const SpFixture &f, const char *mentions) {
    Loaded l = loadJson(f.json());
    EXPECT_EQ(l.status, KILN_ERROR_UNSUPPORTED);
    EXPECT_EQ(l.tok, nullptr);
    EXPECT_NE(l.message.find(mentions), std::string::npos) << l.message;
  };
  // T5's and ALBERT's charsmap normalization is not implemented: refused,
  // never silently skipped.
  SpFixture f;
  f.normalizer = R"({"type": "Precompiled", "precompiled_charsmap": "AAAA"})";
  unsupported(f, "normalizer.type is \"Precompiled\"; kiln supports the "
                 "normalizers Prepend, Replace, Strip and Sequence");
  f.normalizer = R"({"type": "Sequence", "normalizers": [
      {"type": "Replace", "pattern": {"String": " "}, "content": "▁"},
      {"type": "NFKC"}]})";
  unsupported(f, "normalizer.normalizers[1].type is \"NFKC\"");
  f = SpFixture();
  f.decoder = R"({"type": "Sequence", "decoders": [
      {"type": "Fuse"}, {"type": "ByteFallback"}]})";
  unsupported(f, "decoder.decoders[1]: ByteFallback after a Fuse or "
                 "ByteLevel decoder");
  f.decoder = R"({"type": "Sequence", "decoders": [
      {"type": "Fuse"}, {"type": "Strip", "content": " ", "start": 0,
       "stop": 1}]})";
  unsupported(f, "decoder.decoders[1]: Strip after a Fuse");
  f = SpFixture();
  f.preTokenizer = R"({"type": "Sequence", "pretokenizers": [
      {"type": "Metaspace", "replacement": "▁"}, {"type": "WhitespaceSplit"}]})";
  unsupported(f, "Metaspace is followed by other pre-tokenizers");
}

//===----------------------------------------------------------------------===//
// A real file and the building blocks
//===----------------------------------------------------------------------===//

TEST(TokenizerFixture, Gpt2StyleFixtureRoundTrips) {
  // test/fixtures/models/llama-genai-int4: byte-level BPE without merges.
  std::string path = std::string(KILN_SOURCE_DIR) +
                     "/test/fixtures/models/llama-genai-int4/tokenizer.json";
  kiln_tokenizer_t *raw = nullptr;
  ASSERT_EQ(kiln_tokenizer_load(path.c_str(), &raw), KILN_OK)
      << kiln_last_error_message();
  TokenizerPtr tok(raw);
  EXPECT_EQ(kiln_tokenizer_vocab_size(tok.get()), 259u);
  int32_t bos = -1;
  EXPECT_EQ(kiln_tokenizer_token_to_id(tok.get(), "<|begin_of_text|>", &bos),
            KILN_OK);
  EXPECT_EQ(bos, 1);
  const std::string text = "<|begin_of_text|>Hi \xE4\xB8\xAD 42!\n";
  Ids ids = encode(tok.get(), text);
  EXPECT_EQ(ids.front(), 1);
  EXPECT_EQ(ids.size(), 1 + text.size() - 17); // one id per other byte
  EXPECT_EQ(decode(tok.get(), ids), text);
  // Its post-processor (ByteLevel) adds nothing.
  EXPECT_EQ(encode(tok.get(), text, true), ids);
}

TEST(TokenizerRegex, WhiteSpaceMeansUnicodeWhiteSpaceAsInOniguruma) {
  kiln::Regex ws("\\s", "test");
  auto matches = [&](const std::string &s) {
    std::vector<kiln::Span> spans;
    ws.findAll(s, spans);
    return spans.size();
  };
  EXPECT_EQ(matches("\xE3\x80\x80"), 1u); // U+3000 ideographic space
  EXPECT_EQ(matches("\xC2\x85"), 1u);     // U+0085 next line
  EXPECT_EQ(matches("\xE1\xA0\x8E"), 0u); // U+180E: PCRE2's \s takes it
  EXPECT_EQ(matches("\x1C"), 0u);         // not White_Space
  kiln::Regex hex("\\h+", "test");        // Oniguruma: a hex digit
  std::vector<kiln::Span> spans;
  hex.findAll("x 0aF9 g", spans);
  ASSERT_EQ(spans.size(), 1u);
  EXPECT_EQ(spans[0].begin, 2u);
  EXPECT_EQ(spans[0].end, 6u);
  EXPECT_EQ(kiln::translateOnigPattern("[^\\s\\p{L}]"),
            "[^\\t\\n\\x0B\\f\\r\\x20\\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{"
            "200A}\\x{2028}\\x{2029}\\x{202F}\\x{205F}\\x{3000}\\p{L}]");
}

TEST(TokenizerUtf8, LossyDecodingReplacesMaximalSubparts) {
  auto lossy = [](const std::string &in) {
    std::string out;
    kiln::utf8::appendLossy(out, in, true);
    return out;
  };
  const std::string R = kReplacement;
  // Unicode 15, table 3-8.
  EXPECT_EQ(lossy("\x61\xF1\x80\x80\xE1\x80\xC2\x62\x80\x63\x80\xBF\x64"),
            "a" + R + R + R + "b" + R + "c" + R + R + "d");
  EXPECT_EQ(lossy("\xE0\x80\xED\xA0\x80\xF4\x90\xC3"),
            R + R + R + R + R + R + R + R);
  std::string out;
  EXPECT_EQ(kiln::utf8::appendLossy(out, "ab\xF0\x9F\x98", false), 2u);
  EXPECT_EQ(out, "ab");
}

} // namespace
