# Extracts every C++ code block of the Markdown documentation into one
# translation unit, so that the test-suite compiles each snippet against the
# real API (tests/docs/CMakeLists.txt). Run as a script:
#
#   cmake -DSOURCE_DIR=<repo> -DOUTPUT=<file.cpp> -DINPUTS=<a.md;b.md;...> -P ExtractDocSnippets.cmake
#
# The convention (documented in docs/README.md, "Code blocks"):
#
#   ```cpp                 the block is the body of its own function
#                          `void snippet_<file>_<line>()`; it may define local
#                          classes and structs.
#   ```cpp file-scope      the block is emitted at namespace scope (one
#                          namespace per Markdown file): for blocks that define
#                          functions (`int main()`) or types later blocks use.
#   ```cpp continued       the block goes on in the function of the file's
#                          previous function block (it uses that block's
#                          variables).
#   ```cpp run             (with a function block) the generated main() also
#                          runs the function, in a scratch directory: for
#                          quick blocks that write no file outside it.
#
#   `#include` lines of any block move to the top of the translation unit.
#   Blocks tagged cpp, c++, cc or cxx are compiled; every other language
#   (sh, yaml, text, python, json, cmake, untagged) is not.
#
# `#line` directives name the Markdown file and line, so a compile error points
# at the documentation.

cmake_minimum_required(VERSION 3.21)  # the policies of the project (quoted if() arguments)

foreach(var SOURCE_DIR OUTPUT INPUTS)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "ExtractDocSnippets: -D${var}=... is required")
  endif()
endforeach()

set(includes "")
set(body "")
set(count 0)
set(runs "")

foreach(md IN LISTS INPUTS)
  file(RELATIVE_PATH rel "${SOURCE_DIR}" "${md}")
  string(REGEX REPLACE "\\.md$" "" ident "${rel}")
  string(MAKE_C_IDENTIFIER "${ident}" ident)

  file(READ "${md}" text)
  # A CMake list of the lines: `;`, `[` and `]` would split or join them.
  string(REPLACE ";" "@SEMI@" text "${text}")
  string(REPLACE "[" "@LSQB@" text "${text}")
  string(REPLACE "]" "@RSQB@" text "${text}")
  string(REPLACE "\n" ";" lines "${text}")

  string(APPEND body "\nnamespace doc_snippets::${ident} {\n")
  set(line_no 0)
  set(in_block FALSE)      # inside any fenced block
  set(compiled FALSE)      # inside a compiled (C++) block
  set(open_function FALSE) # a snippet function of this file is still open
  foreach(line IN LISTS lines)
    math(EXPR line_no "${line_no} + 1")
    if(NOT in_block)
      if(line MATCHES "^ *(```+|~~~+)[ ]*([^ ]*)(.*)$")
        set(in_block TRUE)
        set(fence "${CMAKE_MATCH_1}")
        string(TOLOWER "${CMAKE_MATCH_2}" lang)
        string(STRIP "${CMAKE_MATCH_3}" attributes)
        if(lang MATCHES "^(cpp|c\\+\\+|cc|cxx)$")
          set(compiled TRUE)
          math(EXPR count "${count} + 1")
          math(EXPR first "${line_no} + 1")
          set(scope function)
          set(run FALSE)
          if(attributes)
            string(REPLACE " " ";" attributes "${attributes}")
            foreach(attribute IN LISTS attributes)
              if(attribute STREQUAL "file-scope")
                set(scope file)
              elseif(attribute STREQUAL "continued")
                set(scope continued)
              elseif(attribute STREQUAL "run")
                set(run TRUE)
              elseif(NOT attribute STREQUAL "")
                message(FATAL_ERROR "${md}:${line_no}: unknown code block attribute '${attribute}' "
                                    "(known: file-scope, continued, run; see docs/README.md)")
              endif()
            endforeach()
          endif()
          if(run AND NOT scope STREQUAL "function")
            message(FATAL_ERROR "${md}:${line_no}: 'run' goes with a function block (a 'continued' "
                                "block runs with the block it continues)")
          endif()
          if(scope STREQUAL "continued")
            if(NOT open_function)
              message(FATAL_ERROR "${md}:${line_no}: a 'continued' block needs a function block "
                                  "(no attribute) before it in the same file")
            endif()
          else()
            if(open_function)
              string(APPEND body "}\n")
              set(open_function FALSE)
            endif()
            if(scope STREQUAL "function")
              string(APPEND body "void snippet_${ident}_${line_no}() {\n")
              set(open_function TRUE)
              if(run)
                string(APPEND runs "    {\"${rel}:${line_no}\", &doc_snippets::${ident}::snippet_${ident}_${line_no}},\n")
              endif()
            endif()
          endif()
          string(APPEND body "#line ${first} \"${md}\"\n")
        endif()
      endif()
    elseif(line MATCHES "^ *${fence}[`~]*[ ]*$")
      set(in_block FALSE)
      set(compiled FALSE)
    elseif(compiled)
      if(line MATCHES "^[ ]*#[ ]*include")
        string(APPEND includes "#line ${line_no} \"${md}\"\n${line}\n")
        string(APPEND body "\n")   # keeps the lines of the block in step with #line
      else()
        string(APPEND body "${line}\n")
      endif()
    endif()
  endforeach()
  if(in_block)
    message(FATAL_ERROR "${md}: a code block is not closed")
  endif()
  if(open_function)
    string(APPEND body "}\n")
  endif()
  string(APPEND body "}  // namespace doc_snippets::${ident}\n")
endforeach()

if(count EQUAL 0)
  message(FATAL_ERROR "ExtractDocSnippets: no C++ code block in ${INPUTS}")
endif()

set(out "// Generated by cmake/ExtractDocSnippets.cmake from the Markdown documentation: do not edit.
// ${count} C++ code blocks, each compiled against the real API.
#include <torch/torch.h>

#include <sparsity/plugin.h>
#include <sparsity/sparsity.h>

#include <algorithm>
#include <cstdint>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

${includes}
${body}
#line 1 \"generated main() of doc_snippets.cpp\"
// Runs the blocks tagged `run`, each in turn: a block that throws fails the run.
int main() {
  const std::pair<const char*, void (*)()> snippets[] = {
${runs}    {nullptr, nullptr}};
  int failures = 0;
  for (const auto& [where, snippet] : snippets) {
    if (snippet == nullptr) continue;
    std::cout << \"--- \" << where << std::endl;
    try {
      snippet();
    } catch (const std::exception& e) {
      std::cerr << where << \": \" << e.what() << std::endl;
      ++failures;
    }
  }
  std::cout << failures << \" of the blocks run failed\" << std::endl;
  return failures == 0 ? 0 : 1;
}
")
string(REPLACE "@SEMI@" ";" out "${out}")
string(REPLACE "@LSQB@" "[" out "${out}")
string(REPLACE "@RSQB@" "]" out "${out}")

# Rewritten only when it changes, so an edit of prose alone recompiles nothing.
file(WRITE "${OUTPUT}.tmp" "${out}")
file(COPY_FILE "${OUTPUT}.tmp" "${OUTPUT}" ONLY_IF_DIFFERENT)
file(REMOVE "${OUTPUT}.tmp")
message(STATUS "doc snippets: ${count} C++ code blocks -> ${OUTPUT}")
