//===- CppApiTest.cpp - kiln.hpp, the C++ wrapper -------------------------===//
//
// The wrapper adds no behaviour, so these check what it does add: errors as
// kiln::api::Error with the C status and message, buffers grown on
// KILN_ERROR_BUFFER_TOO_SMALL, and results equal to the C calls'. Running a
// model through it is covered by the `kiln` tool, which is written on it
// (test/tools/kiln, scripts/models/check_default_model.sh).
//
//===----------------------------------------------------------------------===//

#include "kiln/kiln.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

namespace {

std::string fixtureTokenizer() {
  return std::string(KILN_SOURCE_DIR) +
         "/test/fixtures/models/llama-genai-int4/tokenizer.json";
}

TEST(CppApi, MissingArtifactThrowsWithStatusAndMessage) {
  try {
    kiln::api::Model model("/nonexistent/model.kiln");
    FAIL() << "opening a missing artifact did not throw";
  } catch (const kiln::api::Error &e) {
    EXPECT_EQ(e.status(), KILN_ERROR_NOT_FOUND);
    EXPECT_EQ(e.call(), "kiln_model_open");
    EXPECT_NE(e.message().find("/nonexistent/model.kiln"), std::string::npos)
        << e.message();
    EXPECT_EQ(std::string(e.what()), "kiln_model_open: " + e.message());
  }
}

TEST(CppApi, MissingTokenizerThrows) {
  EXPECT_THROW(kiln::api::Tokenizer("/nonexistent/tokenizer.json"),
               kiln::api::Error);
}

TEST(CppApi, TokenizerMatchesTheCApi) {
  kiln::api::Tokenizer tok(fixtureTokenizer());
  // Long enough that a first guess at the buffer size would not do for
  // decoding; with emoji and a whitespace run.
  std::string text = "hello world  \xF0\x9F\x98\x80 ";
  for (int i = 0; i < 50; ++i)
    text += "abc def ";
  std::vector<int32_t> ids = tok.encode(text);
  ASSERT_FALSE(ids.empty());

  std::vector<int32_t> cIds(text.size() + 16);
  size_t n = 0;
  ASSERT_EQ(kiln_tokenizer_encode(tok.get(), text.data(), text.size(), 1,
                                  cIds.data(), cIds.size(), &n),
            KILN_OK);
  cIds.resize(n);
  EXPECT_EQ(ids, cIds);
  EXPECT_EQ(tok.decode(ids), text);
  EXPECT_EQ(tok.vocabSize(), kiln_tokenizer_vocab_size(tok.get()));
  std::string first = tok.idToToken(ids[0]);
  EXPECT_EQ(tok.tokenToId(first), ids[0]);
  EXPECT_THROW(tok.idToToken(-1), kiln::api::Error);
}

TEST(CppApi, DetokenizerStreamsWhatDecodeReturns) {
  kiln::api::Tokenizer tok(fixtureTokenizer());
  // A 4-byte emoji split over byte tokens: nothing half-way.
  std::string text = "a\xF0\x9F\x98\x80 b \xE4\xB8\xAD";
  std::vector<int32_t> ids = tok.encode(text);
  kiln::api::Detokenizer det(tok);
  std::string streamed;
  for (int32_t id : ids) {
    std::string piece = det.push(id);
    // Every piece is whole UTF-8: no lead byte without its continuation.
    if (!piece.empty()) {
      unsigned char last = static_cast<unsigned char>(piece.back());
      EXPECT_TRUE(last < 0x80 || (last & 0xC0) == 0x80) << piece;
    }
    streamed += piece;
  }
  streamed += det.finish();
  EXPECT_EQ(streamed, tok.decode(ids));
  EXPECT_EQ(streamed, text);
}

/// A model directory holding only a tokenizer_config.json with `template`.
std::string chatDir(const std::string &name, const std::string &config) {
  std::filesystem::path dir =
      std::filesystem::temp_directory_path() /
      ("kiln-chat-" + name + "-" +
       std::to_string(::testing::UnitTest::GetInstance()->random_seed()));
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "tokenizer_config.json") << config;
  return dir.string();
}

TEST(CppApi, ChatTemplateRendersWithSpecialTokens) {
  std::string dir = chatDir(
      "render",
      R"({"eos_token": "</s>", "chat_template": "{% for m in messages %}<|{{ m.role }}|>{{ m.content }}\n{% endfor %}{% if add_generation_prompt %}<|assistant|>{% endif %}{{ eos_token }}{{ extra | default('') }}"})");
  kiln::api::ChatTemplate tmpl(dir);
  EXPECT_EQ(tmpl.name(), "default");
  std::string messages =
      R"([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi \u00e9"}])";
  EXPECT_EQ(tmpl.render(messages, true),
            "<|system|>Be brief.\n<|user|>Hi \xC3\xA9\n<|assistant|></s>");
  EXPECT_EQ(tmpl.render(messages, false, R"({"extra": "!"})"),
            "<|system|>Be brief.\n<|user|>Hi \xC3\xA9\n</s>!");

  // The C call's size protocol: too small reports the size needed.
  char small[4];
  size_t n = 0;
  EXPECT_EQ(kiln_chat_template_render(tmpl.get(), messages.c_str(), 1, nullptr,
                                      small, sizeof small, &n),
            KILN_ERROR_BUFFER_TOO_SMALL);
  EXPECT_EQ(n, tmpl.render(messages, true).size());

  // A template file replaces the directory's; special tokens stay.
  std::string file = dir + "/other.jinja";
  std::ofstream(file) << "[{{ messages[0].content }}]{{ eos_token }}";
  kiln::api::ChatTemplate other(dir, "", file);
  EXPECT_EQ(other.render(messages), "[Be brief.]</s>");
  std::filesystem::remove_all(dir);
}

TEST(CppApi, ChatTemplateErrorsNameTheProblem) {
  auto statusOf = [](auto fn) {
    try {
      fn();
    } catch (const kiln::api::Error &e) {
      return std::make_pair(e.status(), e.message());
    }
    return std::make_pair(KILN_OK, std::string());
  };
  std::string none = chatDir("none", R"({"eos_token": "</s>"})");
  auto [s1, m1] = statusOf([&] { kiln::api::ChatTemplate t(none); });
  EXPECT_EQ(s1, KILN_ERROR_NOT_FOUND);
  EXPECT_NE(m1.find("no chat template"), std::string::npos) << m1;

  std::string syntax =
      chatDir("syntax", R"({"chat_template": "{% for m in messages %}"})");
  auto [s2, m2] = statusOf([&] { kiln::api::ChatTemplate t(syntax); });
  EXPECT_EQ(s2, KILN_ERROR_FORMAT) << m2;

  std::string raises = chatDir(
      "raises",
      R"({"chat_template": "{% if messages[0].role != 'user' %}{{ raise_exception('first must be user') }}{% endif %}ok"})");
  kiln::api::ChatTemplate t(raises);
  EXPECT_EQ(t.render(R"([{"role": "user", "content": "x"}])"), "ok");
  auto [s3, m3] =
      statusOf([&] { t.render(R"([{"role": "assistant", "content": "x"}])"); });
  EXPECT_EQ(s3, KILN_ERROR_INVALID_ARGUMENT);
  EXPECT_NE(m3.find("first must be user"), std::string::npos) << m3;
  auto [s4, m4] = statusOf([&] { t.render("[{not json"); });
  EXPECT_EQ(s4, KILN_ERROR_INVALID_ARGUMENT);
  EXPECT_NE(m4.find("messages: not valid JSON"), std::string::npos) << m4;
  auto [s5, m5] = statusOf([&] { t.render("[]"); });
  EXPECT_EQ(s5, KILN_ERROR_INVALID_ARGUMENT) << m5;

  kiln_chat_template_t *out = reinterpret_cast<kiln_chat_template_t *>(1);
  EXPECT_EQ(kiln_chat_template_load(nullptr, nullptr, nullptr, &out),
            KILN_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(out, nullptr);
  for (const std::string &d : {none, syntax, raises})
    std::filesystem::remove_all(d);
}

} // namespace
