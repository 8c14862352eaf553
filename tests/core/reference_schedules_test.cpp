// CubicSLScheduler's values against PyTorch's own CubicSL (see
// tests/reference/make_scheduler_cases.py, run as a CTest fixture).
#include <torch/csrc/jit/serialization/pickle.h>

#include <cstdlib>

#include "test_support.h"

namespace sparsity {
namespace {

c10::IValue at_key(const c10::IValue& dict, const std::string& key) {
  return dict.toGenericDict().at(c10::IValue(key));
}

TEST(ReferenceSchedules, CubicSLMatchesPyTorch) {
  const char* path = std::getenv("SPARSITY_REFERENCE_SCHEDULES");
  if (path == nullptr) GTEST_SKIP() << "SPARSITY_REFERENCE_SCHEDULES is not set (ctest sets it)";
  const c10::IValue cases = torch::jit::pickle_load(read_file(path));
  ASSERT_TRUE(cases.isList());
  ASSERT_GE(cases.toListRef().size(), 50u);
  size_t compared = 0;
  for (const auto& c : cases.toListRef()) {
    const double s_0 = at_key(c, "s_0").toDouble(), s_f = at_key(c, "s_f").toDouble();
    const int64_t t_0 = at_key(c, "t_0").toInt(), dt = at_key(c, "dt").toInt(), n = at_key(c, "n").toInt();
    const bool initially_zero = at_key(c, "initially_zero").toBool();
    const auto values = at_key(c, "values").toListRef();
    for (size_t t = 0; t < values.size(); ++t) {
      const double expected = values[t].toDouble();
      EXPECT_NEAR(CubicSLScheduler::sparsity_compute_fn(s_0, s_f, static_cast<int64_t>(t), t_0, dt, n, initially_zero),
                  expected, 1e-12)
          << "s_0 " << s_0 << " s_f " << s_f << " t " << t << " t_0 " << t_0 << " dt " << dt << " n " << n;
      ++compared;
    }
    // The scheduler itself walks the same values on a sparsifier whose base level is s_f.
    DataNormSparsifier sparsifier(DataNormSparsifierOptions().sparsity_level(s_f));
    sparsifier.add_data("w", torch::randn({4, 8}));
    CubicSLScheduler scheduler(
        sparsifier, CubicSLSchedulerOptions().init_sl(s_0).init_t(t_0).delta_t(dt).total_t(n).initially_zero(initially_zero));
    testing::LogCapture quiet;
    for (size_t t = 0; t < values.size(); ++t) {
      if (t > 0) {
        sparsifier.step();
        scheduler.step();
      }
      EXPECT_NEAR(sparsifier.data_group("w").get<double>("sparsity_level"), values[t].toDouble(), 1e-12) << t;
    }
  }
  EXPECT_GT(compared, 1000u);
}

}  // namespace
}  // namespace sparsity
