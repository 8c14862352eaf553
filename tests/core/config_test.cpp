#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <cmath>
#include <limits>

#include "sparsity/closest_match.h"
#include "sparsity/config.h"
#include "sparsity/config_error.h"
#include "sparsity/float_text.h"
#include "sparsity/message_text.h"

namespace sparsity {
namespace {

// The message of the std::invalid_argument `fn` throws, or a failure.
template <class Fn>
std::string error_of(Fn&& fn) {
  try {
    fn();
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected std::invalid_argument";
  return "";
}

TEST(Config, StoresEachTypeAndKeepsInsertionOrder) {
  Config config;
  config.set("flag", true)
      .set("count", 3)
      .set("level", 0.25)
      .set("norm", "L2")
      .set("shape", {2, 3})
      .set("big", int64_t{1} << 40);
  EXPECT_EQ(config.get<bool>("flag"), true);
  EXPECT_EQ(config.get<int64_t>("count"), 3);
  EXPECT_EQ(config.get<int>("count"), 3);
  EXPECT_EQ(config.get<double>("level"), 0.25);
  EXPECT_EQ(config.get<std::string>("norm"), "L2");
  EXPECT_EQ(config.get<std::vector<int64_t>>("shape"), (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(config.get<int64_t>("big"), int64_t{1} << 40);
  EXPECT_EQ(config.keys(), (std::vector<std::string>{"flag", "count", "level", "norm", "shape", "big"}));
  EXPECT_STREQ(config.at("norm").type_name(), "string");
  EXPECT_STREQ(config.at("shape").type_name(), "int list");
}

TEST(Config, SetReplacesInPlaceAndEraseRemoves) {
  Config config{{"a", 1}, {"b", 2}};
  config.set("a", 10);
  EXPECT_EQ(config.keys(), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(config.get<int64_t>("a"), 10);
  EXPECT_TRUE(config.erase("a"));
  EXPECT_FALSE(config.erase("a"));
  EXPECT_FALSE(config.contains("a"));
  EXPECT_EQ(config.size(), 1u);
}

TEST(Config, IntegerReadsAsDoubleButNotTheOtherWayRound) {
  Config config{{"level", 1}, {"ratio", 0.5}};
  EXPECT_EQ(config.get<double>("level"), 1.0);
  const std::string message = error_of([&] { config.get<int64_t>("ratio"); });
  EXPECT_NE(message.find("'ratio'"), std::string::npos) << message;
  EXPECT_NE(message.find("expected int"), std::string::npos) << message;
  EXPECT_NE(message.find("got double"), std::string::npos) << message;
}

TEST(Config, WrongTypeAndMissingKeyErrorsNameTheKey) {
  Config config{{"norm", "L1"}};
  std::string message = error_of([&] { config.get<double>("norm"); });
  EXPECT_NE(message.find("'norm'"), std::string::npos) << message;
  EXPECT_NE(message.find("expected double, got string (L1)"), std::string::npos) << message;
  message = error_of([&] { config.get<bool>("missing"); });
  EXPECT_NE(message.find("no key 'missing'"), std::string::npos) << message;
  EXPECT_NE(message.find("norm"), std::string::npos) << message;  // lists what exists
  EXPECT_EQ(config.get_or<double>("missing", 0.75), 0.75);
}

TEST(Config, IntOverflowIsAnError) {
  Config config{{"n", int64_t{1} << 40}};
  EXPECT_NE(error_of([&] { config.get<int>("n"); }).find("does not fit"), std::string::npos);
}

TEST(Config, EqualityIgnoresOrderAndComparesNumbersByValue) {
  Config a{{"x", 3}, {"y", "L1"}};
  Config b{{"y", "L1"}, {"x", 3.0}};
  EXPECT_EQ(a, b);
  b.set("x", 3.5);
  EXPECT_NE(a, b);
  EXPECT_NE(a, Config({{"x", 3}}));
  EXPECT_NE(Config({{"x", "3"}}), Config({{"x", 3}}));
  EXPECT_NE(Config({{"x", true}}), Config({{"x", 1}}));
}

TEST(Config, MergedWithOverridesKeyByKey) {
  Config defaults{{"sparsity_level", 0.5}, {"zeros_per_block", 4}};
  Config merged = defaults.merged_with(Config{{"sparsity_level", 0.9}, {"extra", "x"}});
  EXPECT_EQ(merged, (Config{{"sparsity_level", 0.9}, {"zeros_per_block", 4}, {"extra", "x"}}));
  EXPECT_EQ(merged.keys(), (std::vector<std::string>{"sparsity_level", "zeros_per_block", "extra"}));
  EXPECT_EQ(defaults.get<double>("sparsity_level"), 0.5);  // untouched
}

TEST(Config, ToStringShowsEveryEntry) {
  Config config{{"a", true}, {"b", {1, 4}}, {"c", 0.5}};
  EXPECT_EQ(config.to_string(), "{a: true, b: [1, 4], c: 0.5}");
}

TEST(ConfigYaml, ReadsScalarsAndIntegerLists) {
  const YAML::Node node = YAML::Load(
      "sparsity_level: 0.7\n"
      "zeros_per_block: 2\n"
      "sparse_block_shape: [1, 4]\n"
      "norm: L2\n"
      "enabled: true\n"
      "quoted: \"12\"\n"
      "negative: -3\n"
      "exponent: 1e-3\n"
      "infinite: .inf\n");
  const Config config = Config::from_yaml(node);
  EXPECT_EQ(config.get<double>("sparsity_level"), 0.7);
  EXPECT_EQ(config.get<int64_t>("zeros_per_block"), 2);
  EXPECT_EQ(config.get<std::vector<int64_t>>("sparse_block_shape"), (std::vector<int64_t>{1, 4}));
  EXPECT_EQ(config.get<std::string>("norm"), "L2");
  EXPECT_TRUE(config.get<bool>("enabled"));
  EXPECT_EQ(config.get<std::string>("quoted"), "12");
  EXPECT_EQ(config.get<int64_t>("negative"), -3);
  EXPECT_DOUBLE_EQ(config.get<double>("exponent"), 1e-3);
  EXPECT_TRUE(std::isinf(config.get<double>("infinite")));
  EXPECT_EQ(config.keys().front(), "sparsity_level");
}

TEST(ConfigYaml, ErrorsGiveLineColumnAndKey) {
  std::string message = error_of([] {
    Config::from_yaml(YAML::Load("a: 1\nshape: [1, x]\n"));
  });
  EXPECT_NE(message.find("line 2, column 12"), std::string::npos) << message;
  EXPECT_NE(message.find("'shape'"), std::string::npos) << message;
  message = error_of([] { Config::from_yaml(YAML::Load("a: 1\nnested:\n  b: [1, {c: 2}]\n")); });
  EXPECT_NE(message.find("line 3, column 10"), std::string::npos) << message;
  EXPECT_NE(message.find("'b'"), std::string::npos) << message;
  message = error_of([] { Config::from_yaml(YAML::Load("a: 1\nempty:\n")); });
  EXPECT_NE(message.find("'empty' has no value"), std::string::npos) << message;
  message = error_of([] { Config::from_yaml(YAML::Load("- 1\n- 2\n")); });
  EXPECT_NE(message.find("expected a mapping"), std::string::npos) << message;
}

TEST(ConfigYaml, RoundTripKeepsTypesAndValues) {
  Config config;
  config.set("level", 1.0)
      .set("third", 1.0 / 3.0)
      .set("count", 7)
      .set("flag", false)
      .set("norm", "L1")
      .set("number_like", "42")
      .set("bool_like", "true")
      .set("shape", {4, 1})
      .set("empty", ConfigValue::IntList{})
      .set("nan", std::numeric_limits<double>::quiet_NaN());
  YAML::Emitter out;
  out << config.to_yaml();
  Config back = Config::from_yaml(YAML::Load(out.c_str()));
  ASSERT_EQ(back.keys(), config.keys()) << out.c_str();
  EXPECT_STREQ(back.at("level").type_name(), "double") << out.c_str();
  EXPECT_EQ(back.get<double>("third"), 1.0 / 3.0);
  EXPECT_STREQ(back.at("count").type_name(), "int");
  EXPECT_STREQ(back.at("number_like").type_name(), "string") << out.c_str();
  EXPECT_STREQ(back.at("bool_like").type_name(), "string") << out.c_str();
  EXPECT_TRUE(std::isnan(back.get<double>("nan")));
  back.erase("nan");
  config.erase("nan");
  EXPECT_EQ(back, config);
}


TEST(ClosestMatch, FindsTheNearestCandidateForATypo) {
  EXPECT_EQ(closest_match("sparsty_level", {"sparsity_level", "norm"}), "sparsity_level");
  EXPECT_EQ(closest_match("epoch", {"progress", "epochs", "resume"}), "epochs");
  EXPECT_EQ(closest_match("sparse_block_shap", {"sparsity_level", "sparse_block_shape", "zeros_per_block"}),
            "sparse_block_shape");
  // The nearest wins over an earlier, farther one.
  EXPECT_EQ(closest_match("CubicSLSchedulerr", {"CubicSLSchedular", "CubicSLScheduler"}), "CubicSLScheduler");
}

TEST(ClosestMatch, ExactMatchAndCaseAreDistanceZero) {
  EXPECT_EQ(closest_match("norm", {"sparsity_level", "norm"}), "norm");
  EXPECT_EQ(closest_match("datanormsparsifier", {"DataNormSparsifier"}), "DataNormSparsifier");
  EXPECT_EQ(closest_match("ADAM", {"sgd", "adam"}), "adam");
}

TEST(ClosestMatch, NothingWhenNoCandidateIsClose) {
  EXPECT_EQ(closest_match("xyz", {"sparsity_level"}), std::nullopt);
  EXPECT_EQ(closest_match("learning_rate", {"type", "lr", "momentum", "weight_decay"}), std::nullopt);
  EXPECT_EQ(closest_match("anything", {}), std::nullopt);
}

TEST(ClosestMatch, LimitIsAThirdOfTheLongerWordAndAtLeastOne) {
  // Six letters: up to two edits.
  EXPECT_EQ(closest_match("abcdxy", {"abcdef"}), "abcdef");
  EXPECT_EQ(closest_match("abcxyz", {"abcdef"}), std::nullopt);
  // Short words still allow one edit...
  EXPECT_EQ(closest_match("sgdd", {"sgd"}), "sgd");
  EXPECT_EQ(closest_match("L3", {"L0", "L1"}), "L0");
  // ...but not two: a transposition counts as two edits.
  EXPECT_EQ(closest_match("sdg", {"sgd"}), std::nullopt);
  // The longer word sets the limit: "a" is 1 edit from "ab" but 5 from "abcdef" (limit 2).
  EXPECT_EQ(closest_match("a", {"abcdef"}), std::nullopt);
  EXPECT_EQ(closest_match("a", {"ab"}), "ab");
}

TEST(ClosestMatch, TiesGoToTheFirstCandidate) {
  EXPECT_EQ(closest_match("L3", {"L2", "L1"}), "L2");
  EXPECT_EQ(closest_match("L3", {"L1", "L2"}), "L1");
  EXPECT_EQ(closest_match("cat", {"bat", "hat", "cat"}), "cat");
}

TEST(ClosestMatch, DidYouMeanFormatsTheSuggestion) {
  EXPECT_EQ(did_you_mean("epoch", {"epochs", "progress"}), " (did you mean 'epochs'?)");
  EXPECT_EQ(did_you_mean("fashon-mnist", {"fashion-mnist", "idx", "synthetic"}), " (did you mean 'fashion-mnist'?)");
  EXPECT_EQ(did_you_mean("xyz", {"epochs", "progress"}), "");
  EXPECT_EQ(did_you_mean("xyz", {}), "");
}

TEST(FloatText, ShortestRoundTripWithAFloatsSpelling) {
  EXPECT_EQ(float_repr(2.0), "2.0");
  EXPECT_EQ(float_repr(0.1), "0.1");
  EXPECT_EQ(float_repr(1e-7), "1e-07");
  EXPECT_EQ(float_repr(1e20), "1e+20");
  EXPECT_EQ(float_repr(-INFINITY), "-inf");
  EXPECT_EQ(std::stod(float_repr(0.41234567890123456)), 0.41234567890123456);
  EXPECT_EQ(yaml_float(3.0), "3.0");
  EXPECT_EQ(yaml_float(std::nan("")), ".nan");
  EXPECT_EQ(yaml_float(INFINITY), ".inf");
  EXPECT_EQ(yaml_float(-INFINITY), "-.inf");
}

TEST(MessageText, EscapesControlBytesAndInvalidUtf8KeepsValidUtf8) {
  EXPECT_EQ(message_text("plain"), "plain");
  EXPECT_EQ(message_text("a\x1b[31mb\n\tc\r"), "a\\x1b[31mb\\n\\tc\\r");
  EXPECT_EQ(message_text(std::string("nul\0end", 7)), "nul\\x00end");
  EXPECT_EQ(message_text("\x7f"), "\\x7f");
  EXPECT_EQ(message_text("\xc3\xa9poque \xe2\x9c\x93"), "\xc3\xa9poque \xe2\x9c\x93");  // é, ✓ kept
  EXPECT_EQ(message_text("\xff\xc3"), "\\xff\\xc3");             // invalid, and a cut sequence
  EXPECT_EQ(message_text("\xc0\xaf\xed\xa0\x80"), "\\xc0\\xaf\\xed\\xa0\\x80");  // overlong, surrogate
}

TEST(MessageText, CutsLongTextAtTheLimitWithItsLength) {
  EXPECT_EQ(message_text(std::string(120, 'x')), std::string(120, 'x'));
  EXPECT_EQ(message_text(std::string(1000, 'x')), std::string(120, 'x') + "... (1000 bytes)");
  // Never inside an escape or a character.
  EXPECT_EQ(message_text("abcd\n", 5), "abcd... (5 bytes)");
  EXPECT_EQ(message_text("abcd\xc3\xa9", 5), "abcd... (6 bytes)");
}

TEST(MessageText, ConfigErrorsQuoteHugeAndHostileValuesSafely) {
  const std::string blob(50 << 20, 'y');
  Config config{{"name", blob}, {"esc\x1b[2J", 1}};
  const std::string wrong_type = error_of([&] { config.get<int64_t>("name"); });
  EXPECT_LT(wrong_type.size(), 400u);
  EXPECT_NE(wrong_type.find("bytes)"), std::string::npos) << wrong_type;
  const std::string unknown = error_of([&] { config.check_keys("Owner", {"name"}); });
  EXPECT_NE(unknown.find("esc\\x1b[2J"), std::string::npos) << unknown;
  EXPECT_EQ(unknown.find('\x1b'), std::string::npos);
  Config huge_key{{blob, 1}};
  const std::string huge = error_of([&] { huge_key.check_keys("Owner", {"name"}); });
  EXPECT_LT(huge.size(), 400u);
}

}  // namespace
}  // namespace sparsity

namespace sparsity {
namespace {

TEST(ConfigYaml, StringListsAndNestedMappingsAreRead) {
  const Config config = Config::from_yaml(YAML::Load(
      "include: ['*weight', fc1.bias]\n"
      "empty: []\n"
      "quoted_numbers: ['1', '2']\n"
      "sparsifier: {type: DataNormSparsifier, args: {sparsity_level: 0.5, sparse_block_shape: [1, 4]}}\n"));
  EXPECT_EQ(config.get<ConfigValue::StringList>("include"), (std::vector<std::string>{"*weight", "fc1.bias"}));
  EXPECT_STREQ(config.at("empty").type_name(), "int list");
  EXPECT_EQ(config.get<ConfigValue::StringList>("quoted_numbers"), (std::vector<std::string>{"1", "2"}));
  const Config sparsifier = config.get<Config>("sparsifier");
  EXPECT_EQ(sparsifier.get<std::string>("type"), "DataNormSparsifier");
  EXPECT_EQ(sparsifier.get<Config>("args"), (Config{{"sparsity_level", 0.5}, {"sparse_block_shape", {1, 4}}}));
  EXPECT_STREQ(config.at("sparsifier").type_name(), "mapping");
  EXPECT_EQ(config.at("include").to_string(), "[*weight, fc1.bias]");
  // Written and read back, every type survives.
  YAML::Emitter out;
  out << config.to_yaml();
  EXPECT_EQ(Config::from_yaml(YAML::Load(out.c_str())), config);
  EXPECT_EQ(Config::from_yaml(YAML::Load(out.c_str())).get<ConfigValue::StringList>("quoted_numbers"),
            (std::vector<std::string>{"1", "2"}));
}

TEST(ConfigYaml, ListsOfMixedKindsAreAnErrorAtTheItem) {
  try {
    Config::from_yaml(YAML::Load("patterns: [a, 2]\n"));
    FAIL() << "expected a ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_EQ(e.key(), "patterns.1");
    EXPECT_EQ(e.line(), 1);
    EXPECT_EQ(e.column(), 15);
    EXPECT_EQ(e.message(), "key 'patterns': list items must be strings, as the first one is, got the integer 2 (quote "
                           "it for a string)");
    EXPECT_EQ(std::string(e.what()), "line 1, column 15: " + e.message());
  }
}

TEST(ConfigError, GettersAndCheckKeysSayWhichKey) {
  const Config config{{"level", "high"}, {"nested", Config{{"x", 1}}}};
  try {
    config.get<double>("level");
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_EQ(e.key_path(), (std::vector<std::string>{"level"}));
    EXPECT_EQ(e.at(), ConfigError::At::kValue);
    EXPECT_EQ(e.line(), 0);
  }
  try {
    config.check_keys("Owner", {"level", "nestd"});
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_EQ(e.key(), "nested");
    EXPECT_EQ(e.at(), ConfigError::At::kKey);
    EXPECT_EQ(e.nested_in("args").nested_in("sparsifier").key(), "sparsifier.args.nested");
    EXPECT_EQ(std::string(e.nested_in("args").what()), e.what());
  }
  // A mapping compares by content, and is no other type.
  EXPECT_EQ(config, (Config{{"nested", Config{{"x", 1.0}}}, {"level", "high"}}));
  EXPECT_NE(config, (Config{{"nested", Config{{"x", 2}}}, {"level", "high"}}));
  EXPECT_THROW(config.get<std::string>("nested"), ConfigError);
}

}  // namespace
}  // namespace sparsity
