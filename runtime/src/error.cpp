//===- error.cpp - the per-thread last-error message ----------------------===//

#include "error.h"

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

extern "C" const char *kiln_last_error_message(void) {
  return lastError.c_str();
}
