#include <catch2/catch.hpp>

#include "agent/language.h"

using namespace ponder::agent;

TEST_CASE("languages are detected by extension", "[language]") {
  CHECK(detect_language("a/b/main.c") == Language::c);
  CHECK(detect_language("x.h") == Language::cpp);
  CHECK(detect_language("x.hpp") == Language::cpp);
  CHECK(detect_language("X.CPP") == Language::cpp);
  CHECK(detect_language("legacy.C") == Language::cpp);
  CHECK(detect_language("kernel.cu") == Language::cpp);
  CHECK(detect_language("m.py") == Language::python);
  CHECK(detect_language("stub.pyi") == Language::python);
  CHECK(detect_language("a.mjs") == Language::javascript);
  CHECK(detect_language("a.jsx") == Language::javascript);
  CHECK(detect_language("a.ts") == Language::typescript);
  CHECK(detect_language("a.tsx") == Language::tsx);
  CHECK(detect_language("lib.rs") == Language::rust);
  CHECK(detect_language("main.go") == Language::go);
  CHECK(detect_language("Main.java") == Language::java);
  CHECK(detect_language("README.md") == Language::unknown);
  CHECK(detect_language(".bashrc") == Language::unknown);
  CHECK(detect_language("Makefile") == Language::unknown);
}

TEST_CASE("languages are detected by shebang", "[language]") {
  CHECK(detect_language("tool", "#!/usr/bin/env python3\nprint(1)\n") == Language::python);
  CHECK(detect_language("tool", "#!/usr/bin/python\n") == Language::python);
  CHECK(detect_language("tool", "#!/usr/bin/env node\n") == Language::javascript);
  CHECK(detect_language("tool", "#!/bin/sh\n") == Language::unknown);
  CHECK(detect_language("tool", "no shebang") == Language::unknown);
  CHECK(detect_language("tool", "#!") == Language::unknown);
}

TEST_CASE("every language has a grammar and a tag query that compiles", "[language]") {
  for (int i = 1; i < kLanguageCount; ++i) {
    auto lang = static_cast<Language>(i);
    INFO(language_name(lang));
    CHECK(grammar(lang) != nullptr);
    CHECK(tag_query(lang) != nullptr);
    CHECK(language_from_name(language_name(lang)) == lang);
  }
  CHECK(grammar(Language::unknown) == nullptr);
  CHECK(tag_query(Language::unknown) == nullptr);
}
