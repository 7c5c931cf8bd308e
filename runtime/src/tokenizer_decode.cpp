//===- tokenizer_decode.cpp - ids back to text ----------------------------===//
//
// `tokenizers` decodes by passing the list of token strings through each
// decoder in turn (Decoder::decode_chain) and joining what comes out. kiln
// runs the same steps as a stream, one token at a time, each step holding
// back only what a later token could still change; decode() is that stream
// run to its end, so decode and the detokenizer agree by construction.
//
//===----------------------------------------------------------------------===//

#include "error.h"
#include "tokenizer.h"
#include "utf8.h"

using namespace kiln;
using namespace kiln::tok;

namespace {

const char kReplacement[] = "\xEF\xBF\xBD";

/// The byte a ByteFallback token stands for, or -1. ByteFallback::
/// decode_chain takes a 6-byte "<0x..>" token and parses its middle with
/// u8::from_str_radix(.., 16), which also accepts a leading '+'.
int byteOfToken(const std::string &t) {
  if (t.size() != 6 || t.compare(0, 3, "<0x") != 0 || t[5] != '>')
    return -1;
  auto hex = [](char c) {
    if (c >= '0' && c <= '9')
      return c - '0';
    if (c >= 'a' && c <= 'f')
      return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
      return c - 'A' + 10;
    return -1;
  };
  int hi = hex(t[3]), lo = hex(t[4]);
  if (t[3] == '+' && lo >= 0)
    return lo;
  return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
}

/// A finished run of byte tokens: its text if the bytes are UTF-8 as a
/// whole, else one U+FFFD per byte (not per invalid sequence).
std::string runText(const std::string &bytes) {
  if (utf8::firstInvalid(bytes) == std::string::npos)
    return bytes;
  std::string out;
  for (size_t i = 0; i < bytes.size(); ++i)
    out += kReplacement;
  return out;
}

std::string replaceAll(const std::string &s, const Pattern &pattern,
                       const std::string &content) {
  std::vector<Span> spans;
  pattern.findAll(s, spans);
  if (spans.empty())
    return s;
  std::string out;
  size_t prev = 0;
  for (const Span &m : spans) {
    out.append(s, prev, m.begin - prev);
    out += content;
    prev = m.end;
  }
  out.append(s, prev, std::string::npos);
  return out;
}

/// Strip::decode_chain on one token: at most `start` leading and `stop`
/// trailing copies of the character.
std::string stripToken(const std::string &t, const DecoderStep &d) {
  std::vector<size_t> at; // start of each character, then the end
  for (size_t i = 0; i < t.size(); i += utf8::charLen(t, i))
    at.push_back(i);
  size_t n = at.size();
  at.push_back(t.size());
  auto is = [&](size_t k) {
    return at[k + 1] - at[k] == d.content.size() &&
           t.compare(at[k], d.content.size(), d.content) == 0;
  };
  size_t begin = 0, end = n;
  while (begin < n && begin < d.start && is(begin))
    ++begin;
  for (size_t k = 0; k < d.stop && k < n && is(n - 1 - k); ++k)
    end = n - 1 - k;
  if (begin >= end)
    return "";
  return t.substr(at[begin], at[end] - at[begin]);
}

/// Metaspace::decode_chain: the replacement becomes ' ', and is dropped in
/// the first token unless the prepend scheme is "never".
std::string unMetaspace(const std::string &t, const DecoderStep &d,
                        bool first) {
  std::string out;
  size_t prev = 0;
  for (size_t at = t.find(d.replacement); at != std::string::npos;
       at = t.find(d.replacement, prev)) {
    out.append(t, prev, at - prev);
    if (!(first && d.dropFirst))
      out += ' ';
    prev = at + d.replacement.size();
  }
  out.append(t, prev, std::string::npos);
  return out;
}

} // namespace

DecodeState Tokenizer::decodeStart() const {
  DecodeState state;
  state.steps.resize(decoders_.size());
  return state;
}

void Tokenizer::decodeToken(DecodeState &state, size_t k, std::string token,
                            std::string &out) const {
  for (; k < decoders_.size(); ++k) {
    const DecoderStep &d = decoders_[k];
    DecodeState::Step &s = state.steps[k];
    switch (d.kind) {
    case DecoderStep::Kind::Replace:
      token = replaceAll(token, d.pattern, d.content);
      break;
    case DecoderStep::Kind::Strip:
      token = stripToken(token, d);
      break;
    case DecoderStep::Kind::Metaspace:
      token = unMetaspace(token, d, s.count++ == 0);
      break;
    case DecoderStep::Kind::ByteFallback: {
      int b = byteOfToken(token);
      if (b >= 0) {
        s.bytes += static_cast<char>(b);
        return;
      }
      if (!s.bytes.empty()) {
        std::string run = runText(s.bytes);
        s.bytes.clear();
        decodeToken(state, k + 1, std::move(run), out);
      }
      break;
    }
    case DecoderStep::Kind::Fuse:
      decodeText(state, k + 1, token, out);
      return;
    case DecoderStep::Kind::ByteLevel: {
      // Each character back to its byte; a token with a character outside
      // the byte alphabet is kept as it is. Then from_utf8_lossy over the
      // whole, so an incomplete character waits for its next bytes.
      std::string bytes;
      bool all = true;
      for (size_t i = 0; i < token.size() && all;
           i += utf8::charLen(token, i)) {
        int b = codePointToByte(utf8::decode(token, i));
        if (b < 0)
          all = false;
        else
          bytes += static_cast<char>(b);
      }
      s.bytes += all ? bytes : token;
      std::string text;
      size_t used = utf8::appendLossy(text, s.bytes, /*final=*/false);
      s.bytes.erase(0, used);
      decodeText(state, k + 1, text, out);
      return;
    }
    }
  }
  out += token;
}

void Tokenizer::decodeText(DecodeState &state, size_t k, std::string_view text,
                           std::string &out) const {
  // After Fuse or ByteLevel the steps see one growing string; the loader
  // lets through only steps for which cutting it into chunks is harmless.
  std::string buf(text);
  for (; k < decoders_.size(); ++k) {
    const DecoderStep &d = decoders_[k];
    DecodeState::Step &s = state.steps[k];
    switch (d.kind) {
    case DecoderStep::Kind::Strip: {
      size_t i = 0;
      while (!s.done && i < buf.size()) {
        if (s.count < d.start &&
            buf.compare(i, d.content.size(), d.content) == 0) {
          i += d.content.size();
          ++s.count;
        } else {
          s.done = true;
        }
      }
      buf.erase(0, i);
      break;
    }
    case DecoderStep::Kind::Replace:
      buf = replaceAll(buf, d.pattern, d.content);
      break;
    case DecoderStep::Kind::Metaspace:
      buf = unMetaspace(buf, d, /*first=*/true);
      break;
    default: // Fuse: already one string
      break;
    }
  }
  out += buf;
}

void Tokenizer::decodePush(DecodeState &state, int32_t id,
                           std::string &out) const {
  bool first = state.first;
  state.first = false;
  if (!hasDecoder_) { // TokenizerImpl::decode joins the tokens with spaces
    if (!first)
      out += ' ';
    out += tokenOf_[id];
    return;
  }
  decodeToken(state, 0, tokenOf_[id], out);
}

void Tokenizer::decodeFinish(DecodeState &state, std::string &out) const {
  // In step order: what an earlier step lets go passes through the later
  // ones, which are flushed after it.
  for (size_t k = 0; k < decoders_.size(); ++k) {
    DecodeState::Step &s = state.steps[k];
    if (s.bytes.empty())
      continue;
    std::string bytes = std::move(s.bytes);
    s.bytes.clear();
    if (decoders_[k].kind == DecoderStep::Kind::ByteFallback) {
      decodeToken(state, k + 1, runText(bytes), out);
    } else {
      std::string text;
      utf8::appendLossy(text, bytes, /*final=*/true);
      decodeText(state, k + 1, text, out);
    }
  }
  state = decodeStart();
}

void Tokenizer::decode(const int32_t *ids, size_t n, bool skipSpecialTokens,
                       std::string &out) const {
  // TokenizerImpl::decode: the tokens, minus special ones when asked,
  // through the decoder.
  DecodeState state = decodeStart();
  for (size_t i = 0; i < n; ++i) {
    checkId(ids[i], "ids", i);
    if (skipSpecialTokens && isSpecial(ids[i]))
      continue;
    decodePush(state, ids[i], out);
  }
  decodeFinish(state, out);
}
