//===- kiln-tokenize-tool.cpp - drive the tokenizer C API from scripts ----===//
//
// Test helper, not an installed tool. Three modes:
//
//   kiln-tokenize-tool TOKENIZER.json < LINES
//       Each input line is "<add_special_tokens 0|1> <text as hex UTF-8>"
//       (encode, then decode the ids) or "D <ids, comma-separated>" (decode
//       only). Each output line is "<ids, comma-separated>\t<decode(ids)
//       hex>\t<decode(ids, skip_special_tokens) hex>\t<streamed>\t<streamed
//       with skip_special_tokens>", or "ERR <status> <message>". A streamed
//       column is what each kiln_detokenizer_push and the final
//       kiln_detokenizer_finish returned, one hex chunk each, joined by ".".
//       Hex keeps newlines, CR, tabs and NULs in the strings intact;
//       test/runtime/check_tokenizer_agreement.py compares the result with
//       the `tokenizers` package.
//   kiln-tokenize-tool --encode TOKENIZER.json TEXT
//       Prints the ids of TEXT, one line.
//   kiln-tokenize-tool --bench TOKENIZER.json FILE [REPEATS]
//       Encodes FILE REPEATS times (default 5) and prints tokens/s, first
//       with an empty piece cache, then warm.
//
//===----------------------------------------------------------------------===//

#include "kiln/kiln.h"

#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

namespace {

int usage() {
  std::fprintf(stderr,
               "usage: kiln-tokenize-tool TOKENIZER.json < LINES\n"
               "       kiln-tokenize-tool --encode TOKENIZER.json TEXT\n"
               "       kiln-tokenize-tool --bench TOKENIZER.json FILE "
               "[REPEATS]\n");
  return 2;
}

std::string toHex(const std::string &s) {
  static const char digits[] = "0123456789abcdef";
  std::string out;
  out.reserve(s.size() * 2);
  for (unsigned char c : s) {
    out += digits[c >> 4];
    out += digits[c & 15];
  }
  return out;
}

bool fromHex(const std::string &hex, std::string &out) {
  auto nibble = [](char c) {
    if (c >= '0' && c <= '9')
      return c - '0';
    if (c >= 'a' && c <= 'f')
      return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
      return c - 'A' + 10;
    return -1;
  };
  if (hex.size() % 2)
    return false;
  out.clear();
  for (size_t i = 0; i < hex.size(); i += 2) {
    int hi = nibble(hex[i]), lo = nibble(hex[i + 1]);
    if (hi < 0 || lo < 0)
      return false;
    out += static_cast<char>(hi << 4 | lo);
  }
  return true;
}

/// Encodes with the two-call size protocol: ask for the count, then fill.
kiln_status_t encode(const kiln_tokenizer_t *tok, const std::string &text,
                     bool special, std::vector<int32_t> &ids) {
  size_t n = 0;
  ids.assign(16, 0);
  kiln_status_t s = kiln_tokenizer_encode(tok, text.data(), text.size(),
                                          special, ids.data(), ids.size(), &n);
  if (s == KILN_ERROR_BUFFER_TOO_SMALL) {
    ids.resize(n);
    s = kiln_tokenizer_encode(tok, text.data(), text.size(), special,
                              ids.data(), ids.size(), &n);
  }
  ids.resize(s == KILN_OK ? n : 0);
  return s;
}

kiln_status_t decode(const kiln_tokenizer_t *tok,
                     const std::vector<int32_t> &ids, bool skip,
                     std::string &text) {
  size_t n = 0;
  kiln_status_t s =
      kiln_tokenizer_decode(tok, ids.data(), ids.size(), skip, nullptr, 0, &n);
  if (s != KILN_ERROR_BUFFER_TOO_SMALL && s != KILN_OK)
    return s;
  std::vector<char> buffer(n + 1);
  s = kiln_tokenizer_decode(tok, ids.data(), ids.size(), skip, buffer.data(),
                            buffer.size(), &n);
  text.assign(buffer.data(), s == KILN_OK ? n : 0);
  return s;
}

/// Streams ids through a detokenizer with a deliberately small buffer, so
/// the grow-and-retry path is exercised too. `chunks` gets what each push,
/// then the finish, returned.
kiln_status_t streamDecode(const kiln_tokenizer_t *tok,
                           const std::vector<int32_t> &ids, bool skip,
                           std::vector<std::string> &chunks) {
  kiln_detokenizer_t *det = nullptr;
  kiln_status_t s = kiln_detokenizer_init(tok, skip, &det);
  if (s != KILN_OK)
    return s;
  std::vector<char> buffer(4);
  size_t n = 0;
  chunks.clear();
  for (size_t i = 0; i <= ids.size() && s == KILN_OK; ++i) {
    for (;;) {
      s = i < ids.size()
              ? kiln_detokenizer_push(det, ids[i], buffer.data(), buffer.size(),
                                      &n)
              : kiln_detokenizer_finish(det, buffer.data(), buffer.size(), &n);
      if (s != KILN_ERROR_BUFFER_TOO_SMALL)
        break;
      buffer.resize(n + 1);
    }
    if (s == KILN_OK)
      chunks.emplace_back(buffer.data(), n);
  }
  kiln_detokenizer_free(det);
  return s;
}

std::string joinHex(const std::vector<std::string> &chunks) {
  std::string out;
  for (size_t i = 0; i < chunks.size(); ++i)
    out += (i ? "." : "") + toHex(chunks[i]);
  return out;
}

int fail(kiln_status_t s) {
  std::fprintf(stderr, "kiln-tokenize-tool: %s: %s\n", kiln_status_string(s),
               kiln_last_error_message());
  return 1;
}

int agreementMode(const kiln_tokenizer_t *tok) {
  std::string line, text, plain, skipped;
  std::vector<std::string> streamed, streamedSkip;
  std::vector<int32_t> ids;
  std::ios::sync_with_stdio(false);
  while (std::getline(std::cin, line)) {
    size_t space = line.find(' ');
    bool decodeOnly = line.compare(0, 2, "D ") == 0;
    if (space == std::string::npos ||
        (!decodeOnly && !fromHex(line.substr(space + 1), text))) {
      std::cout << "ERR bad input line\n";
      continue;
    }
    kiln_status_t s = KILN_OK;
    if (decodeOnly) {
      ids.clear();
      std::istringstream list(line.substr(2));
      for (std::string item; std::getline(list, item, ',');)
        ids.push_back(static_cast<int32_t>(std::stol(item)));
    } else {
      s = encode(tok, text, line.compare(0, space, "1") == 0, ids);
    }
    if (s == KILN_OK)
      s = decode(tok, ids, false, plain);
    if (s == KILN_OK)
      s = decode(tok, ids, true, skipped);
    if (s == KILN_OK)
      s = streamDecode(tok, ids, false, streamed);
    if (s == KILN_OK)
      s = streamDecode(tok, ids, true, streamedSkip);
    if (s != KILN_OK) {
      std::cout << "ERR " << kiln_status_string(s) << " "
                << kiln_last_error_message() << "\n";
      continue;
    }
    for (size_t i = 0; i < ids.size(); ++i)
      std::cout << (i ? "," : "") << ids[i];
    std::cout << "\t" << toHex(plain) << "\t" << toHex(skipped) << "\t"
              << joinHex(streamed) << "\t" << joinHex(streamedSkip) << "\n";
  }
  return 0;
}

int benchMode(const kiln_tokenizer_t *tok, const char *file, int repeats) {
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    std::fprintf(stderr, "kiln-tokenize-tool: cannot read %s\n", file);
    return 1;
  }
  std::ostringstream buffer;
  buffer << in.rdbuf();
  std::string text = buffer.str();
  std::vector<int32_t> ids(text.size() + 16);
  for (int r = 0; r < repeats; ++r) {
    size_t n = 0;
    auto t0 = std::chrono::steady_clock::now();
    kiln_status_t s = kiln_tokenizer_encode(tok, text.data(), text.size(), 0,
                                            ids.data(), ids.size(), &n);
    double secs =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0)
            .count();
    if (s != KILN_OK)
      return fail(s);
    std::printf("%s: %zu bytes -> %zu tokens in %.3f s: %.2f M tokens/s, "
                "%.1f MB/s\n",
                r == 0 ? "cold" : "warm", text.size(), n, secs, n / secs / 1e6,
                text.size() / secs / 1e6);
  }
  return 0;
}

} // namespace

int main(int argc, char **argv) {
  if (argc < 2)
    return usage();
  std::string mode = argv[1];
  bool encodeOnly = mode == "--encode", bench = mode == "--bench";
  if ((encodeOnly || bench) && argc < 4)
    return usage();
  const char *path = (encodeOnly || bench) ? argv[2] : argv[1];
  kiln_tokenizer_t *tok = nullptr;
  auto t0 = std::chrono::steady_clock::now();
  kiln_status_t s = kiln_tokenizer_load(path, &tok);
  if (s != KILN_OK)
    return fail(s);
  double loadSecs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0)
          .count();
  int rc = 0;
  if (encodeOnly) {
    std::vector<int32_t> ids;
    s = encode(tok, argv[3], false, ids);
    if (s != KILN_OK)
      rc = fail(s);
    for (size_t i = 0; i < ids.size(); ++i)
      std::printf("%s%d", i ? " " : "", ids[i]);
    std::printf("\n");
  } else if (bench) {
    std::printf("load: %.3f s\n", loadSecs);
    rc = benchMode(tok, argv[3], argc > 4 ? std::atoi(argv[4]) : 5);
  } else {
    rc = agreementMode(tok);
  }
  kiln_tokenizer_free(tok);
  return rc;
}
