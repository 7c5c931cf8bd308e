/*===- kiln/kiln.h - the kiln runtime C API ----------------------*- C -*-===*
 *
 * The runtime loads compiled `.kiln` artifacts and runs them. This header is
 * the whole public surface; every handle is opaque. Conventions:
 *
 *  - Every call that can fail returns a kiln_status_t. KILN_OK is 0.
 *  - Strings returned by the library are owned by it and live for the whole
 *    process unless a call says otherwise.
 *  - Unless a call says otherwise it is safe to call from any thread.
 *
 * This version holds the parts the compiler already needs (versioning and
 * status reporting); engine, step and sampling calls arrive with the CPU
 * backend.
 *
 *===----------------------------------------------------------------------===*/

#ifndef KILN_KILN_H
#define KILN_KILN_H

#ifdef __cplusplus
extern "C" {
#endif

/** Version of this runtime, also written into every artifact manifest. */
#define KILN_VERSION_MAJOR 0
#define KILN_VERSION_MINOR 1
#define KILN_VERSION_PATCH 0

/** Status codes. Values are stable across versions. */
typedef enum kiln_status_t {
  KILN_OK = 0,
  KILN_ERROR_INVALID_ARGUMENT = 1, /**< a parameter is out of its range */
  KILN_ERROR_NOT_FOUND = 2,        /**< a file or name does not exist */
  KILN_ERROR_FORMAT = 3, /**< an artifact is malformed or of another version */
  KILN_ERROR_UNSUPPORTED = 4, /**< the artifact needs what this machine lacks */
  KILN_ERROR_OUT_OF_MEMORY =
      5,                  /**< an allocation or the KV cache is exhausted */
  KILN_ERROR_INTERNAL = 6 /**< a bug in kiln; please report it */
} kiln_status_t;

/** The runtime version as "MAJOR.MINOR.PATCH". Never NULL. */
const char *kiln_version_string(void);

/** A short English description of `status`, e.g. "invalid argument".
 *  Unknown values give "unknown status". Never NULL. */
const char *kiln_status_string(kiln_status_t status);

#ifdef __cplusplus
}
#endif

#endif /* KILN_KILN_H */
