//===- error.cpp - the per-thread last-error message ----------------------===//

#include "error.h"

#include <cstring>

namespace {
// Thread-local so that concurrent callers never see each other's messages
// and reading it needs no lock.
thread_local std::string lastError;
} // namespace

kiln_status_t kiln::fail(kiln_status_t status, const std::string &message) {
  try {
    lastError = message;
  } catch (...) {
    // Keep the status even when the message cannot be stored.
    lastError.clear();
  }
  return status;
}

kiln_status_t kiln::deliverText(const std::string &text, char *out,
                                size_t capacity, size_t *n_bytes,
                                const char *call) {
  *n_bytes = text.size();
  if (capacity < text.size() + 1)
    return fail(KILN_ERROR_BUFFER_TOO_SMALL,
                std::string(call) + ": the text needs " +
                    std::to_string(text.size() + 1) +
                    " bytes with its NUL; capacity is " +
                    std::to_string(capacity));
  std::memcpy(out, text.data(), text.size());
  out[text.size()] = '\0';
  return KILN_OK;
}

extern "C" const char *kiln_last_error_message(void) {
  return lastError.c_str();
}
