#include <tdx/error.hpp>

#include <gtest/gtest.h>

#include <stdexcept>

namespace {

TEST(DidYouMean, ClosestCandidate) {
  EXPECT_EQ(tdx::did_you_mean("goo", {"go", "rust"}), "go");
  EXPECT_EQ(tdx::did_you_mean("rsut", {"go", "rust"}), "rust");
  EXPECT_EQ(tdx::did_you_mean("scirpt", {"c", "dotnet", "go", "rust", "script"}), "script");
}

TEST(DidYouMean, NothingCloseGivesEmpty) {
  EXPECT_EQ(tdx::did_you_mean("haskell", {"go", "rust"}), "");
  EXPECT_EQ(tdx::did_you_mean("anything", {}), "");
}

TEST(DidYouMean, PrefersTheSmallestDistance) {
  EXPECT_EQ(tdx::did_you_mean("debian/bookwrm", {"debian/trixie", "debian/bookworm"}), "debian/bookworm");
  EXPECT_EQ(tdx::did_you_mean("dotnet8", {"dotnet", "dotnet-sdk"}), "dotnet");
}

TEST(DidYouMean, ExactNameIsItsOwnSuggestion) {
  EXPECT_EQ(tdx::did_you_mean("go", {"rust", "go"}), "go");
}

TEST(ErrorKinds, UsageErrorIsAnError) {
  // The CLI maps Error to exit 1 and UsageError to exit 2, so the hierarchy matters.
  try {
    throw tdx::UsageError("bad flag");
  } catch (const tdx::Error& e) {
    EXPECT_STREQ(e.what(), "bad flag");
    EXPECT_NE(dynamic_cast<const tdx::UsageError*>(&e), nullptr);
  }
  EXPECT_THROW(throw tdx::Error("x"), std::runtime_error);
}

}  // namespace
