#include "kiln/kiln.h"

#include <gtest/gtest.h>

#include <cstring>
#include <string>

TEST(Status, EveryCodeHasItsOwnMessage) {
  const kiln_status_t codes[] = {KILN_OK,
                                 KILN_ERROR_INVALID_ARGUMENT,
                                 KILN_ERROR_NOT_FOUND,
                                 KILN_ERROR_FORMAT,
                                 KILN_ERROR_UNSUPPORTED,
                                 KILN_ERROR_OUT_OF_MEMORY,
                                 KILN_ERROR_INTERNAL,
                                 KILN_ERROR_BUFFER_TOO_SMALL,
                                 KILN_ERROR_BUSY,
                                 KILN_ERROR_TIMEOUT};
  for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); ++i) {
    std::string a = kiln_status_string(codes[i]);
    EXPECT_NE(a, "unknown status") << i;
    for (size_t j = 0; j < i; ++j)
      EXPECT_NE(a, kiln_status_string(codes[j]));
  }
  EXPECT_STREQ(kiln_status_string(static_cast<kiln_status_t>(1234)),
               "unknown status");
}

TEST(Status, VersionMatchesMacros) {
  std::string expected = std::to_string(KILN_VERSION_MAJOR) + "." +
                         std::to_string(KILN_VERSION_MINOR) + "." +
                         std::to_string(KILN_VERSION_PATCH);
  EXPECT_EQ(expected, kiln_version_string());
}

TEST(Status, FinishReasonsHaveTheirNames) {
  EXPECT_STREQ(kiln_finish_reason_string(KILN_FINISH_NONE), "none");
  EXPECT_STREQ(kiln_finish_reason_string(KILN_FINISH_STOP), "stop");
  EXPECT_STREQ(kiln_finish_reason_string(KILN_FINISH_LENGTH), "length");
  EXPECT_STREQ(kiln_finish_reason_string(KILN_FINISH_CANCELLED), "cancelled");
  EXPECT_STREQ(kiln_finish_reason_string(KILN_FINISH_ERROR), "error");
  EXPECT_STREQ(kiln_finish_reason_string(static_cast<kiln_finish_reason>(99)),
               "unknown");
}
