#pragma once
// "Did you mean ...?" for unknown keys and type names in configs and registries.

#include <optional>
#include <string>
#include <vector>

namespace sparsity {

/// The candidate nearest to `word` by edit distance (case-insensitive), if it
/// is close enough to be a plausible typo: at most a third of the longer
/// word's length (and at least 1) edits away. Ties go to the first candidate.
///
/// Example: `closest_match("sparsty_level", {"sparsity_level", "norm"})` is
/// "sparsity_level"; `closest_match("xyz", {"sparsity_level"})` is nullopt.
std::optional<std::string> closest_match(const std::string& word, const std::vector<std::string>& candidates);

/// " (did you mean 'x'?)" when `closest_match` finds one, else "": to append
/// to an error message.
std::string did_you_mean(const std::string& word, const std::vector<std::string>& candidates);

}  // namespace sparsity
