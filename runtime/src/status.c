/*===- status.c - versions and status strings ----------------------------===*/

#include "kiln/kiln.h"

#define KILN_STR2(x) #x
#define KILN_STR(x) KILN_STR2(x)

const char *kiln_version_string(void) {
  return KILN_STR(KILN_VERSION_MAJOR) "." KILN_STR(
      KILN_VERSION_MINOR) "." KILN_STR(KILN_VERSION_PATCH);
}

const char *kiln_status_string(kiln_status_t status) {
  switch (status) {
  case KILN_OK:
    return "ok";
  case KILN_ERROR_INVALID_ARGUMENT:
    return "invalid argument";
  case KILN_ERROR_NOT_FOUND:
    return "not found";
  case KILN_ERROR_FORMAT:
    return "malformed or incompatible file";
  case KILN_ERROR_UNSUPPORTED:
    return "unsupported by this machine or kiln version";
  case KILN_ERROR_OUT_OF_MEMORY:
    return "out of memory";
  case KILN_ERROR_INTERNAL:
    return "internal error";
  case KILN_ERROR_BUFFER_TOO_SMALL:
    return "output buffer too small";
  case KILN_ERROR_BUSY:
    return "busy: queue full or shutting down";
  case KILN_ERROR_TIMEOUT:
    return "timed out";
  }
  return "unknown status";
}

const char *kiln_finish_reason_string(kiln_finish_reason reason) {
  switch (reason) {
  case KILN_FINISH_NONE:
    return "none";
  case KILN_FINISH_STOP:
    return "stop";
  case KILN_FINISH_LENGTH:
    return "length";
  case KILN_FINISH_CANCELLED:
    return "cancelled";
  case KILN_FINISH_ERROR:
    return "error";
  }
  return "unknown";
}
