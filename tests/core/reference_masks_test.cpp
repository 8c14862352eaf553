// Bit-for-bit comparison of DataNormSparsifier's masks with those of PyTorch's
// own DataNormSparsifier (torch.ao.sparsity, Debian's python3-torch 1.13).
//
// The cases are written by tests/reference/make_reference_cases.py (a CTest
// fixture, see tests/CMakeLists.txt); this file reads them from the file named
// by the environment variable SPARSITY_REFERENCE_CASES. Run by hand:
//
//   /usr/bin/python3 tests/reference/make_reference_cases.py --output /tmp/cases.pt
//   SPARSITY_REFERENCE_CASES=/tmp/cases.pt build/tests/sparsity_tests --gtest_filter='ReferenceMasks.*'

#include <gtest/gtest.h>
#include <torch/csrc/jit/serialization/pickle.h>
#include <torch/torch.h>

#include <cstdlib>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "sparsity/data_sparsifier/data_norm_sparsifier.h"

namespace {

constexpr const char* kCasesEnv = "SPARSITY_REFERENCE_CASES";
// A broken generator must not pass silently with a handful of cases.
constexpr size_t kMinCases = 1000;

struct ReferenceCase {
  int64_t id = -1;
  std::string kind;
  torch::Tensor data;
  torch::Tensor mask;  // uint8, data's shape
  double level = 0.0;
  int64_t block_height = 0;
  int64_t block_width = 0;
  int64_t zeros = 0;
  std::string norm;

  std::string describe() const {
    std::ostringstream out;
    out << "case " << id << " (" << kind << "): data shape " << data.sizes() << ", level " << level
        << ", block [" << block_height << ", " << block_width << "], zeros_per_block " << zeros
        << ", norm " << norm;
    return out.str();
  }
};

struct LoadedCases {
  bool env_set = false;
  std::string path;
  std::string error;  // non-empty: the file could not be read
  std::vector<ReferenceCase> cases;
};

const c10::IValue& field(const c10::Dict<c10::IValue, c10::IValue>& dict, const char* key) {
  const auto it = dict.find(c10::IValue(std::string(key)));
  if (it == dict.end()) throw std::runtime_error(std::string("case without key '") + key + "'");
  return it->value();
}

ReferenceCase parse_case(const c10::IValue& value) {
  if (!value.isGenericDict()) throw std::runtime_error("a case is not a dict: " + value.tagKind());
  const auto dict = value.toGenericDict();
  ReferenceCase c;
  c.id = field(dict, "id").toInt();
  c.kind = field(dict, "kind").toStringRef();
  c.data = field(dict, "data").toTensor();
  c.mask = field(dict, "mask").toTensor();
  c.level = field(dict, "level").toDouble();
  const auto block = field(dict, "block").toList();
  if (block.size() != 2) throw std::runtime_error("block is not [h, w]");
  c.block_height = block.get(0).toInt();
  c.block_width = block.get(1).toInt();
  c.zeros = field(dict, "zeros").toInt();
  c.norm = field(dict, "norm").toStringRef();
  if (c.mask.scalar_type() != torch::kByte || !c.mask.sizes().equals(c.data.sizes())) {
    throw std::runtime_error("case " + std::to_string(c.id) + ": mask is not uint8 of data's shape");
  }
  return c;
}

LoadedCases load_cases_uncached() {
  LoadedCases loaded;
  const char* path = std::getenv(kCasesEnv);
  if (path == nullptr || *path == '\0') return loaded;
  loaded.env_set = true;
  loaded.path = path;
  try {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw std::runtime_error("cannot open the file");
    const std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (bytes.empty()) throw std::runtime_error("the file is empty");
    const c10::IValue root = torch::jit::pickle_load(bytes);
    if (!root.isList()) throw std::runtime_error("the top-level value is not a list: " + root.tagKind());
    for (const c10::IValue& value : root.toListRef()) loaded.cases.push_back(parse_case(value));
  } catch (const std::exception& e) {
    loaded.error = e.what();
    loaded.cases.clear();
  }
  return loaded;
}

// Loaded once for all the tests of the suite.
const LoadedCases& load_cases() {
  static const LoadedCases loaded = load_cases_uncached();
  return loaded;
}

// Skips the calling test when the env var is unset; fails it when the file is
// unreadable.
#define SPARSITY_REQUIRE_CASES(loaded)                                                          \
  do {                                                                                          \
    if (!(loaded).env_set) {                                                                    \
      GTEST_SKIP() << kCasesEnv                                                                 \
                   << " is not set: run through ctest (reference.compare_masks), or generate "  \
                      "the cases with tests/reference/make_reference_cases.py and point "       \
                   << kCasesEnv << " at them";                                                  \
    }                                                                                           \
    ASSERT_TRUE((loaded).error.empty())                                                         \
        << "cannot read the reference cases from " << kCasesEnv << "=" << (loaded).path << ": " \
        << (loaded).error;                                                                      \
  } while (0)

torch::Tensor sparsifier_mask(const ReferenceCase& c) {
  sparsity::DataNormSparsifier sparsifier(sparsity::DataNormSparsifierOptions()
                                              .sparsity_level(c.level)
                                              .sparse_block_shape({c.block_height, c.block_width})
                                              .zeros_per_block(c.zeros)
                                              .norm(sparsity::norm_from_string(c.norm)));
  // The sparsifier holds the caller's tensor: give it a copy so the cases'
  // shared data tensors stay untouched whatever happens.
  sparsifier.add_data("d", c.data.clone());
  sparsifier.step();
  return sparsifier.get_mask("d");
}

// Compares every case of `kind` (all when empty); reports the number of
// mismatching cases and the first one in full.
void compare_kind(const std::string& kind) {
  const LoadedCases& loaded = load_cases();
  SPARSITY_REQUIRE_CASES(loaded);
  size_t compared = 0;
  size_t mismatched = 0;
  std::string first;
  for (const ReferenceCase& c : loaded.cases) {
    if (!kind.empty() && c.kind != kind) continue;
    ++compared;
    torch::Tensor got;
    try {
      got = sparsifier_mask(c);
    } catch (const std::exception& e) {
      ++mismatched;
      if (first.empty()) first = c.describe() + ": step() threw: " + e.what();
      continue;
    }
    if (got.scalar_type() == torch::kByte && got.sizes().equals(c.mask.sizes()) && torch::equal(got, c.mask)) {
      continue;
    }
    ++mismatched;
    if (first.empty()) {
      std::ostringstream out;
      out << c.describe() << ": mask ";
      if (!got.sizes().equals(c.mask.sizes()) || got.scalar_type() != torch::kByte) {
        out << "of shape " << got.sizes() << " and dtype " << got.scalar_type() << ", expected "
            << c.mask.sizes() << " uint8";
      } else {
        const torch::Tensor differ = got.ne(c.mask);
        const int64_t count = differ.sum().item<int64_t>();
        out << "differs at " << count << " of " << got.numel() << " elements (first at flat index "
            << differ.reshape(-1).nonzero()[0].item<int64_t>() << ")";
        if (got.numel() <= 256) {
          out << "\ndata:\n" << c.data << "\nexpected (reference):\n" << c.mask << "\ngot:\n" << got;
        }
      }
      first = out.str();
    }
  }
  EXPECT_GT(compared, 0u) << "no reference case of kind '" << kind << "' in " << loaded.path;
  EXPECT_EQ(mismatched, 0u) << mismatched << " of " << compared << " cases"
                            << (kind.empty() ? std::string() : " of kind '" + kind + "'")
                            << " differ from the reference; the first: " << first;
}

TEST(ReferenceMasks, EnoughCases) {
  const LoadedCases& loaded = load_cases();
  SPARSITY_REQUIRE_CASES(loaded);
  EXPECT_GT(loaded.cases.size(), kMinCases) << "too few reference cases in " << loaded.path;
  std::map<std::string, size_t> per_kind;
  for (const ReferenceCase& c : loaded.cases) ++per_kind[c.kind];
  for (const char* kind : {"random", "nan", "ties"}) {
    EXPECT_GT(per_kind[kind], 0u) << "no reference case of kind '" << kind << "'";
  }
  // Every case is compared by one of the tests below.
  EXPECT_EQ(per_kind.size(), 3u) << "reference cases of an unknown kind in " << loaded.path;
}

// Random float data over 1-D and 2-D shapes, most not divisible by the blocks.
TEST(ReferenceMasks, RandomData) { compare_kind("random"); }

// Data with NaN entries (NaN norms sort last).
TEST(ReferenceMasks, NaNData) { compare_kind("nan"); }

// Exact ties between elements and between block norms (at most 16 blocks,
// where the reference's sort is stable).
TEST(ReferenceMasks, Ties) { compare_kind("ties"); }

}  // namespace
