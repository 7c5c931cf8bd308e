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

} // namespace
