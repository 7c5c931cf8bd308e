//===- error.h - failures inside the runtime's C++ code ---------*- C++ -*-===//
//
// The C API reports a status code plus a per-thread message
// (kiln_last_error_message). Inside the C++ implementation a failure is a
// kiln::Error exception carrying both; every extern "C" entry point catches
// it (and std::bad_alloc) and turns it into the pair, so no exception ever
// crosses the C boundary.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_RUNTIME_ERROR_H
#define KILN_RUNTIME_ERROR_H

#include "kiln/kiln.h"

#include <stdexcept>
#include <string>

namespace kiln {

/// A user-facing failure: a status code and a message naming the thing at
/// fault and what was expected (lowercase, no trailing period).
class Error : public std::runtime_error {
public:
  Error(kiln_status_t status, const std::string &message)
      : std::runtime_error(message), status_(status) {}
  kiln_status_t status() const { return status_; }

private:
  kiln_status_t status_;
};

/// Records `message` as the calling thread's last error and returns
/// `status`, so an entry point can `return kiln::fail(...)`.
kiln_status_t fail(kiln_status_t status, const std::string &message);

/// Copies `text` plus a NUL to `out` when it fits, its length to `*n_bytes`
/// either way: the size protocol of every text-returning call, whose name
/// `call` the KILN_ERROR_BUFFER_TOO_SMALL message gives.
kiln_status_t deliverText(const std::string &text, char *out, size_t capacity,
                          size_t *n_bytes, const char *call);

/// Runs `body` (returning kiln_status_t) and converts what it throws:
/// kiln::Error to its status and message, std::bad_alloc to
/// KILN_ERROR_OUT_OF_MEMORY, anything else to KILN_ERROR_INTERNAL.
template <typename Body> kiln_status_t guard(const char *what, Body &&body) {
  try {
    return body();
  } catch (const Error &e) {
    return fail(e.status(), e.what());
  } catch (const std::bad_alloc &) {
    return fail(KILN_ERROR_OUT_OF_MEMORY,
                std::string(what) + ": out of memory");
  } catch (const std::exception &e) {
    return fail(KILN_ERROR_INTERNAL, std::string(what) + ": " + e.what());
  } catch (...) {
    return fail(KILN_ERROR_INTERNAL,
                std::string(what) + ": unknown C++ exception");
  }
}

} // namespace kiln

#endif // KILN_RUNTIME_ERROR_H
