#include <tdx/json.hpp>

#include <gtest/gtest.h>

#include <string>

namespace {

TEST(JsonWriter, EmptyContainers) {
  tdx::JsonWriter obj;
  obj.begin_object().end_object();
  EXPECT_EQ(obj.str(), "{}\n");

  tdx::JsonWriter arr;
  arr.begin_array().end_array();
  EXPECT_EQ(arr.str(), "[]\n");
}

TEST(JsonWriter, NestingIsIndentedByTwo) {
  tdx::JsonWriter w;
  w.begin_object();
  w.key("name").value("x");
  w.key("list").begin_array().value(1).value(true).null().end_array();
  w.key("obj").begin_object().key("k").value("v").key("empty").begin_object().end_object().end_object();
  w.key("arr").begin_array().end_array();
  w.key("nested").begin_array().begin_array().value(std::int64_t{-7}).end_array().end_array();
  w.end_object();
  EXPECT_EQ(w.str(),
            "{\n"
            "  \"name\": \"x\",\n"
            "  \"list\": [\n"
            "    1,\n"
            "    true,\n"
            "    null\n"
            "  ],\n"
            "  \"obj\": {\n"
            "    \"k\": \"v\",\n"
            "    \"empty\": {}\n"
            "  },\n"
            "  \"arr\": [],\n"
            "  \"nested\": [\n"
            "    [\n"
            "      -7\n"
            "    ]\n"
            "  ]\n"
            "}\n");
}

TEST(JsonWriter, KeysKeepCallOrder) {
  tdx::JsonWriter w;
  w.begin_object().key("z").value(false).key("a").value(0).end_object();
  EXPECT_EQ(w.str(), "{\n  \"z\": false,\n  \"a\": 0\n}\n");
}

TEST(JsonWriter, StringLiteralIsAStringNotABool) {
  // A const char* must not decay to the bool overload.
  tdx::JsonWriter w;
  w.begin_array().value("yes").value(std::string("no")).end_array();
  EXPECT_EQ(w.str(), "[\n  \"yes\",\n  \"no\"\n]\n");
}

TEST(JsonQuote, EscapesQuotesBackslashesAndControlCharacters) {
  EXPECT_EQ(tdx::json_quote("plain"), "\"plain\"");
  EXPECT_EQ(tdx::json_quote("say \"hi\""), R"("say \"hi\"")");
  EXPECT_EQ(tdx::json_quote("C:\\dir"), R"("C:\\dir")");
  EXPECT_EQ(tdx::json_quote("a\nb\rc\td"), R"("a\nb\rc\td")");
  EXPECT_EQ(tdx::json_quote(std::string("\x01\x1f\x00", 3)), R"("\u0001\u001f\u0000")");
  EXPECT_EQ(tdx::json_quote("\b\f"), R"("\u0008\u000c")");
  // Bytes from 0x20 up, UTF-8 included, pass as they are; DEL is escaped (TOML, which shares this, needs it).
  EXPECT_EQ(tdx::json_quote("caf\xc3\xa9 ~"), "\"caf\xc3\xa9 ~\"");
  EXPECT_EQ(tdx::json_quote("\x7f"), R"("\u007f")");
}

TEST(JsonWriter, KeysAndValuesAreEscaped) {
  tdx::JsonWriter w;
  w.begin_object().key("a\"b").value("line1\nline2").end_object();
  EXPECT_EQ(w.str(), "{\n  \"a\\\"b\": \"line1\\nline2\"\n}\n");
}

TEST(JsonWriter, StringsWritesAnArray) {
  tdx::JsonWriter w;
  w.begin_object().key("s").strings({"a", "b"}).key("e").strings({}).end_object();
  EXPECT_EQ(w.str(), "{\n  \"s\": [\n    \"a\",\n    \"b\"\n  ],\n  \"e\": []\n}\n");
}

TEST(WriteOption, EveryAlternative) {
  tdx::JsonWriter w;
  w.begin_object();
  tdx::write_option(w.key("b"), tdx::OptionValue{true});
  tdx::write_option(w.key("i"), tdx::OptionValue{std::int64_t{42}});
  tdx::write_option(w.key("s"), tdx::OptionValue{std::string("x")});
  tdx::write_option(w.key("l"), tdx::OptionValue{tdx::StringList{"p"}});
  tdx::write_option(w.key("m"), tdx::OptionValue{tdx::StringMap{{"k2", "v2"}, {"k1", "v1"}}});
  w.end_object();
  EXPECT_EQ(w.str(),
            "{\n"
            "  \"b\": true,\n"
            "  \"i\": 42,\n"
            "  \"s\": \"x\",\n"
            "  \"l\": [\n"
            "    \"p\"\n"
            "  ],\n"
            "  \"m\": {\n"
            "    \"k1\": \"v1\",\n"
            "    \"k2\": \"v2\"\n"
            "  }\n"
            "}\n");
}

}  // namespace
