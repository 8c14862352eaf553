// shape_text and error_text: the pieces of error messages that quote tensors
// and other exceptions. (message_text is tested with the configs it serves.)
#include <stdexcept>

#include "test_support.h"

namespace sparsity {
namespace {

TEST(ShapeText, WritesTheSizesInBrackets) {
  EXPECT_EQ(shape_text(torch::zeros({3, 4})), "[3, 4]");
  EXPECT_EQ(shape_text(torch::zeros({7})), "[7]");
  EXPECT_EQ(shape_text(torch::zeros({2, 0, 5})), "[2, 0, 5]");
  EXPECT_EQ(shape_text(torch::tensor(1.5)), "[]");
  EXPECT_EQ(shape_text(at::Tensor()), "(undefined)");
}

TEST(ErrorText, DropsTheBacktraceOfALibTorchError) {
  try {
    TORCH_CHECK(false, "tensor trouble");
    FAIL() << "TORCH_CHECK(false) did not throw";
  } catch (const std::exception& e) {
    ASSERT_NE(std::string(e.what()).find("Exception raised from"), std::string::npos)
        << "the premise: LibTorch's what() carries a backtrace\n" << e.what();
    EXPECT_EQ(error_text(e), "tensor trouble");
  }
}

TEST(ErrorText, CutsABacktraceCopiedIntoAnotherException) {
  const std::runtime_error copied("cannot load: bad archive\nException raised from read at x.cpp:1 (most recent call "
                                  "first):\nframe #0: f()");
  EXPECT_EQ(error_text(copied), "cannot load: bad archive");
}

TEST(ErrorText, KeepsOtherMessagesWhole) {
  EXPECT_EQ(error_text(std::invalid_argument("line one\nline two")), "line one\nline two");
  EXPECT_EQ(error_text(std::runtime_error("")), "");
  EXPECT_EQ(error_text(std::bad_alloc()), std::bad_alloc().what());
}

}  // namespace
}  // namespace sparsity
