#include "dialects/kiln/IR/DimExpr.h"

#include <gtest/gtest.h>

using mlir::kiln::DimExpr;

TEST(DimExpr, ArithmeticIsCanonical) {
  DimExpr a = DimExpr::symbol("past"), b = DimExpr::symbol("seq");
  EXPECT_EQ(a + b, b + a);
  EXPECT_EQ((a + b).str(), "past + seq");
  EXPECT_EQ((a + b - a).str(), "seq");
  EXPECT_EQ((a * DimExpr::constant(2) + DimExpr::constant(3)).str(),
            "2 * past + 3");
  EXPECT_EQ((a * b).str(), "past * seq");
  EXPECT_EQ(DimExpr::constant(4) * DimExpr::constant(5), DimExpr::constant(20));
  EXPECT_TRUE((a + DimExpr()).isUnknown());
}

TEST(DimExpr, ExactDivision) {
  DimExpr b = DimExpr::symbol("b"), s = DimExpr::symbol("s");
  DimExpr total = b * s * DimExpr::constant(576);
  EXPECT_EQ(total.exactDiv(b * s), DimExpr::constant(576));
  EXPECT_EQ(total.exactDiv(DimExpr::constant(9)),
            b * s * DimExpr::constant(64));
  EXPECT_TRUE(total.exactDiv(DimExpr::constant(7)).isUnknown());
  EXPECT_TRUE((b + s).exactDiv(b).isUnknown());
  // Division by a sum when the quotient is one term.
  DimExpr p = DimExpr::symbol("past");
  DimExpr n = b * DimExpr::constant(4) * (p + s) * DimExpr::constant(16);
  EXPECT_EQ(n.exactDiv((p + s) * DimExpr::constant(16)),
            b * DimExpr::constant(4));
  EXPECT_TRUE(n.exactDiv(p + s + DimExpr::constant(1)).isUnknown());
  EXPECT_TRUE(b.exactDiv(s).isUnknown());
}

TEST(DimExpr, ParseRoundTrips) {
  for (const char *text :
       {"?", "7", "batch", "past + seq", "2 * b * s + 1", "seq - 1", "-3"}) {
    std::optional<DimExpr> e = DimExpr::parse(text);
    ASSERT_TRUE(e.has_value()) << text;
    EXPECT_EQ(e->str(), text);
  }
  EXPECT_EQ(DimExpr::parse("past_sequence_length + 1")->str(),
            "past_sequence_length + 1");
  for (const char *bad : {"", "+", "a +", "a ** b", "3x", "a b", "(a)"})
    EXPECT_FALSE(DimExpr::parse(bad).has_value()) << bad;
}

TEST(DimExpr, OverflowGivesUnknown) {
  DimExpr big = DimExpr::constant(INT64_MAX), a = DimExpr::symbol("a");
  EXPECT_TRUE((big + DimExpr::constant(1)).isUnknown());
  EXPECT_TRUE((big * DimExpr::constant(2)).isUnknown());
  EXPECT_TRUE((big * a * DimExpr::constant(4)).isUnknown());
  DimExpr min = DimExpr::constant(INT64_MIN);
  EXPECT_TRUE(min.exactDiv(DimExpr::constant(-1)).isUnknown());
  EXPECT_TRUE(DimExpr::constant(8).exactDiv(min).isUnknown());
}
