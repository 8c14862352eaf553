#include "mask_agreement.h"

#include <fmt/format.h>

#include <vector>

#include "sparsity/data_sparsifier/base_data_sparsifier.h"
#include "sparsity/plugin/distributed.h"
#include "sparsity/plugin/trainer.h"

namespace sparsity::detail {

void check_masks_agree(Trainer& trainer, const BaseDataSparsifier& sparsifier, const std::string& callback) {
  DistributedGroup* group = trainer.distributed();
  if (group == nullptr) return;
  const std::vector<std::string> names = sparsifier.names();
  std::vector<at::Tensor> masks;
  masks.reserve(names.size());
  for (const auto& name : names) masks.push_back(sparsifier.get_mask(name));
  group->check_identical(fmt::format("{}: the mask", callback), names, masks);
}

}  // namespace sparsity::detail
