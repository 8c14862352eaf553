#include "sparsity/plugin/callback.h"

#include <ATen/core/Dict.h>
#include <ATen/core/ivalue.h>
#include <cxxabi.h>

#include <cstdlib>
#include <memory>
#include <string>
#include <typeinfo>

#include "sparsity/state_file.h"

namespace sparsity {

namespace {

// "ns::inner::Foo<ns::Bar>" -> "Foo<ns::Bar>": the namespaces qualify the
// class, the template arguments are part of its name.
std::string without_namespaces(const std::string& name) {
  int depth = 0;
  size_t start = 0;
  for (size_t i = 0; i + 1 < name.size(); ++i) {
    const char c = name[i];
    if (c == '<' || c == '(') ++depth;
    else if ((c == '>' || c == ')') && depth > 0) --depth;
    else if (c == ':' && name[i + 1] == ':' && depth == 0) start = i + 2, ++i;
  }
  return name.substr(start);
}

}  // namespace

std::string Callback::name() const {
  const char* mangled = typeid(*this).name();
  int status = 0;
  std::unique_ptr<char, void (*)(void*)> demangled(abi::__cxa_demangle(mangled, nullptr, nullptr, &status),
                                                   std::free);
  return without_namespaces(status == 0 && demangled ? demangled.get() : mangled);
}

c10::IValue Callback::state_dict() const {
  return new_state_dict();
}

void Callback::load_state_dict(const c10::IValue& /*state*/) {}

void Callback::check_state_dict(const c10::IValue& /*state*/) const {}

}  // namespace sparsity
