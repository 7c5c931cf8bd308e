//===- tokenizer_api.cpp - the tokenizer's C API --------------------------===//
//
// Argument checks, buffer-size protocol and error conversion around
// kiln::tok::Tokenizer. Nothing here throws: kiln::guard turns exceptions
// into a status plus kiln_last_error_message().
//
//===----------------------------------------------------------------------===//

#include "error.h"
#include "tokenizer.h"

#include <cstdint>
#include <cstring>

using namespace kiln;

struct kiln_tokenizer_t {
  std::unique_ptr<tok::Tokenizer> impl;
};

struct kiln_detokenizer_t {
  const tok::Tokenizer *tok = nullptr;
  bool skipSpecial = false;
  tok::DecodeState state; ///< what the decoder holds back
};

namespace {

kiln_status_t invalid(const char *what) {
  return fail(KILN_ERROR_INVALID_ARGUMENT, what);
}

} // namespace

extern "C" {

kiln_status_t kiln_tokenizer_load(const char *path, kiln_tokenizer_t **out) {
  if (out)
    *out = nullptr;
  if (!path || !out)
    return invalid("kiln_tokenizer_load: path and out must not be NULL");
  return guard("kiln_tokenizer_load", [&] {
    auto t = std::make_unique<kiln_tokenizer_t>();
    t->impl = tok::Tokenizer::load(path);
    *out = t.release();
    return KILN_OK;
  });
}

void kiln_tokenizer_free(kiln_tokenizer_t *tok) { delete tok; }

kiln_status_t kiln_tokenizer_encode(const kiln_tokenizer_t *tok,
                                    const char *text, size_t len,
                                    int add_special_tokens, int32_t *ids,
                                    size_t capacity, size_t *n_ids) {
  if (n_ids)
    *n_ids = 0;
  if (!tok || !n_ids)
    return invalid("kiln_tokenizer_encode: tok and n_ids must not be NULL");
  if (!text && len > 0)
    return invalid("kiln_tokenizer_encode: text is NULL but len is not 0");
  if (!ids && capacity > 0)
    return invalid("kiln_tokenizer_encode: ids is NULL but capacity is not 0");
  return guard("kiln_tokenizer_encode", [&] {
    std::vector<int32_t> result;
    result.reserve(len / 3 + 8);
    tok->impl->encode(std::string_view(text ? text : "", len),
                      add_special_tokens != 0, result);
    *n_ids = result.size();
    if (result.size() > capacity)
      return fail(KILN_ERROR_BUFFER_TOO_SMALL,
                  "kiln_tokenizer_encode: the text has " +
                      std::to_string(result.size()) + " tokens; capacity is " +
                      std::to_string(capacity));
    if (!result.empty())
      std::memcpy(ids, result.data(), result.size() * sizeof(int32_t));
    return KILN_OK;
  });
}

kiln_status_t kiln_tokenizer_decode(const kiln_tokenizer_t *tok,
                                    const int32_t *ids, size_t n,
                                    int skip_special_tokens, char *out,
                                    size_t capacity, size_t *n_bytes) {
  if (n_bytes)
    *n_bytes = 0;
  if (!tok || !n_bytes)
    return invalid("kiln_tokenizer_decode: tok and n_bytes must not be NULL");
  if (!ids && n > 0)
    return invalid("kiln_tokenizer_decode: ids is NULL but n is not 0");
  if (!out && capacity > 0)
    return invalid("kiln_tokenizer_decode: out is NULL but capacity is not 0");
  return guard("kiln_tokenizer_decode", [&] {
    std::string text;
    tok->impl->decode(ids, n, skip_special_tokens != 0, text);
    return deliverText(text, out, capacity, n_bytes, "kiln_tokenizer_decode");
  });
}

size_t kiln_tokenizer_vocab_size(const kiln_tokenizer_t *tok) {
  return tok ? tok->impl->vocabSize() : 0;
}

kiln_status_t kiln_tokenizer_token_to_id(const kiln_tokenizer_t *tok,
                                         const char *token, int32_t *id) {
  if (id)
    *id = -1;
  if (!tok || !token || !id)
    return invalid(
        "kiln_tokenizer_token_to_id: tok, token and id must not be NULL");
  return guard("kiln_tokenizer_token_to_id", [&] {
    *id = tok->impl->idOf(token);
    if (*id < 0)
      return fail(KILN_ERROR_NOT_FOUND,
                  std::string("kiln_tokenizer_token_to_id: no token \"") +
                      token + "\" in the vocabulary or added tokens");
    return KILN_OK;
  });
}

kiln_status_t kiln_tokenizer_id_to_token(const kiln_tokenizer_t *tok,
                                         int32_t id, const char **token) {
  if (token)
    *token = nullptr;
  if (!tok || !token)
    return invalid("kiln_tokenizer_id_to_token: tok and token must not be "
                   "NULL");
  if (!tok->impl->isToken(id))
    return fail(KILN_ERROR_NOT_FOUND,
                "kiln_tokenizer_id_to_token: no token has id " +
                    std::to_string(id) + " (the tokenizer has " +
                    std::to_string(tok->impl->vocabSize()) + " ids)");
  *token = tok->impl->tokenOf(id).c_str();
  return KILN_OK;
}

int kiln_tokenizer_is_special(const kiln_tokenizer_t *tok, int32_t id) {
  return tok && tok->impl->isSpecial(id) ? 1 : 0;
}

kiln_status_t kiln_detokenizer_init(const kiln_tokenizer_t *tok,
                                    int skip_special_tokens,
                                    kiln_detokenizer_t **out) {
  if (out)
    *out = nullptr;
  if (!tok || !out)
    return invalid("kiln_detokenizer_init: tok and out must not be NULL");
  return guard("kiln_detokenizer_init", [&] {
    auto *det = new kiln_detokenizer_t;
    det->tok = tok->impl.get();
    det->skipSpecial = skip_special_tokens != 0;
    det->state = det->tok->decodeStart();
    *out = det;
    return KILN_OK;
  });
}

kiln_status_t kiln_detokenizer_push(kiln_detokenizer_t *det, int32_t id,
                                    char *out, size_t capacity,
                                    size_t *n_bytes) {
  if (n_bytes)
    *n_bytes = 0;
  if (!det || !n_bytes)
    return invalid("kiln_detokenizer_push: det and n_bytes must not be NULL");
  if (!out && capacity > 0)
    return invalid("kiln_detokenizer_push: out is NULL but capacity is not 0");
  return guard("kiln_detokenizer_push", [&] {
    det->tok->checkId(id, "id", SIZE_MAX);
    std::string text;
    if (det->skipSpecial && det->tok->isSpecial(id))
      return deliverText(text, out, capacity, n_bytes, "kiln_detokenizer_push");
    // The decoder runs on a copy of the state, kept only once the text is
    // delivered, so a too-small buffer changes nothing.
    tok::DecodeState next = det->state;
    det->tok->decodePush(next, id, text);
    kiln_status_t s =
        deliverText(text, out, capacity, n_bytes, "kiln_detokenizer_push");
    if (s == KILN_OK)
      det->state = std::move(next);
    return s;
  });
}

kiln_status_t kiln_detokenizer_finish(kiln_detokenizer_t *det, char *out,
                                      size_t capacity, size_t *n_bytes) {
  if (n_bytes)
    *n_bytes = 0;
  if (!det || !n_bytes)
    return invalid("kiln_detokenizer_finish: det and n_bytes must not be "
                   "NULL");
  if (!out && capacity > 0)
    return invalid("kiln_detokenizer_finish: out is NULL but capacity is not "
                   "0");
  return guard("kiln_detokenizer_finish", [&] {
    std::string text;
    tok::DecodeState next = det->state;
    det->tok->decodeFinish(next, text);
    kiln_status_t s =
        deliverText(text, out, capacity, n_bytes, "kiln_detokenizer_finish");
    if (s == KILN_OK)
      det->state = std::move(next);
    return s;
  });
}

void kiln_detokenizer_free(kiln_detokenizer_t *det) { delete det; }

} // extern "C"
