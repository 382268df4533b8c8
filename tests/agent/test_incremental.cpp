// Incremental reparsing must give exactly what a fresh parse of the final text gives.
#include <catch2/catch.hpp>
#include <random>
#include <string>
#include <vector>

#include "agent/document.h"
#include "agent/parser.h"

using namespace ponder::agent;

namespace {

struct Sample {
  Language lang;
  const char* text;
};

const Sample kSamples[] = {
    {Language::cpp, R"(#include <vector>
namespace geo {
template <typename T>
class Shape {
 public:
  explicit Shape(T scale) : scale_(scale) {}
  virtual ~Shape() = default;
  T area() const { return compute(scale_) * 2; }
  struct Cache { int hits = 0; void reset() { hits = 0; } };
 private:
  T compute(T x) const;
  T scale_;
};
template <typename T> T Shape<T>::compute(T x) const { return x * x; }
int total(const std::vector<Shape<int>>& v) {
  int s = 0;
  for (const auto& x : v) s += x.area();  // “unicode” comment ✓
  return s;
}
}  // namespace geo
)"},
    {Language::python, R"(import os

class Store:
    """A store."""
    class Entry:
        def __init__(self, key):
            self.key = key

    @property
    def size(self):
        return len(self.items)

    def add(self, key):
        self.items.append(Store.Entry(key))
        return os.path.join("a", key)

def main():
    s = Store()
    s.add("ключ")
    print(s.size)
)"},
    {Language::typescript, R"(interface Repo<T> { get(id: string): T | undefined; }
type Id = string;
export class Memory<T> implements Repo<T> {
  private items = new Map<Id, T>();
  get(id: Id): T | undefined { return this.items.get(id); }
  put(id: Id, v: T) { this.items.set(id, v); }
}
export function make(): Memory<number> { return new Memory<number>(); }
const f = (x: number) => make().get(String(x));
)"},
    {Language::rust, R"(use std::collections::HashMap;
pub trait Store { fn get(&self, k: &str) -> Option<&String>; }
pub struct Mem { items: HashMap<String, String> }
impl Store for Mem {
    fn get(&self, k: &str) -> Option<&String> { self.items.get(k) }
}
impl Mem {
    pub fn new() -> Self { Mem { items: HashMap::new() } }
}
macro_rules! square { ($x:expr) => { $x * $x }; }
fn main() { let m = Mem::new(); println!("{:?}", m.get("a")); let _ = square!(2); }
)"},
    {Language::go, R"(package store

type Store interface { Get(k string) (string, bool) }
type Mem struct { items map[string]string }
func (m *Mem) Get(k string) (string, bool) { v, ok := m.items[k]; return v, ok }
func New() *Mem { return &Mem{items: map[string]string{}} }
func Use() { m := New(); m.Get("a") }
)"},
    {Language::java, R"(package a;
import java.util.*;
public class Box<T> {
  private final List<T> items = new ArrayList<>();
  public Box() {}
  public void add(T t) { items.add(t); }
  static class Inner { int size() { return 0; } }
  interface Visitor<R> { R visit(Box<?> b); }
}
)"},
};

const char* kSnippets[] = {
    "x", "foo", "(", ")", "{", "}", "\n", " ", ";", "class Q {", "def g(self):\n        ",
    "fn h() {}", "int k(int a) { return a; }", "/*", "*/", "\"", "'", "<T>", "::", "->", "é",
    "// note\n", "return 1;", "func F() {}", "interface I {}", "#define M(x) x\n",
};

std::string describe(const Tag& t) {
  return std::string(tag_kind_name(t.kind)) + " " + t.scope + "/" + t.name + " @" +
         std::to_string(t.name_range.start.line) + ":" + std::to_string(t.name_range.start.column) +
         " [" + std::to_string(t.range.start_byte) + "," + std::to_string(t.range.end_byte) + ")";
}

}  // namespace

TEST_CASE("random incremental edits give the tags of a fresh parse", "[incremental]") {
  std::mt19937 rng(20261128);
  Parser fresh;
  for (const Sample& sample : kSamples) {
    INFO("language " << language_name(sample.lang));
    Document doc("sample", sample.lang, sample.text);
    REQUIRE(doc.ok());
    for (int iter = 0; iter < 250; ++iter) {
      const std::string& text = doc.text();
      std::uniform_int_distribution<std::size_t> pos(0, text.size());
      std::size_t start = pos(rng);
      std::size_t len = std::min<std::size_t>(text.size() - start, rng() % 12);
      std::string insert;
      switch (rng() % 3) {
        case 0: insert = kSnippets[rng() % std::size(kSnippets)]; break;
        case 1: {  // copy a piece of the text elsewhere (moves real code around)
          std::size_t from = pos(rng);
          insert = text.substr(from, rng() % 40);
          break;
        }
        default: break;  // pure deletion
      }
      std::string error;
      REQUIRE(doc.edit(static_cast<uint32_t>(start), static_cast<uint32_t>(start + len), insert,
                       &error));
      FileTags expected;
      REQUIRE(fresh.index(sample.lang, doc.text(), &expected, &error));
      const auto& got = doc.tags();
      INFO("iteration " << iter << ", text:\n" << doc.text());
      REQUIRE(got.size() == expected.tags.size());
      for (std::size_t i = 0; i < got.size(); ++i) {
        INFO("tag " << i << ": " << describe(got[i]) << " vs " << describe(expected.tags[i]));
        REQUIRE(got[i] == expected.tags[i]);
      }
      CHECK(doc.file_tags().has_syntax_errors == expected.has_syntax_errors);
      CHECK(doc.file_tags().content_hash == expected.content_hash);
    }
  }
}

TEST_CASE("document edits outside the text are refused", "[incremental]") {
  Document doc("a.py", Language::python, "x = 1\n");
  std::string error;
  CHECK_FALSE(doc.edit(3, 100, "y", &error));
  CHECK(error.find("outside the document") != std::string::npos);
  CHECK_FALSE(doc.edit(4, 3, "y", &error));
  CHECK(doc.text() == "x = 1\n");
  REQUIRE(doc.edit(6, 6, "def f():\n    pass\n", &error));
  REQUIRE(doc.tags().size() >= 1);
  CHECK(doc.tags().back().name == "f");
}

TEST_CASE("point_at counts lines and byte columns", "[incremental]") {
  CHECK(point_at("ab\ncd\n", 0) == Point{0, 0});
  CHECK(point_at("ab\ncd\n", 2) == Point{0, 2});
  CHECK(point_at("ab\ncd\n", 3) == Point{1, 0});
  CHECK(point_at("ab\ncd\n", 6) == Point{2, 0});
  CHECK(point_at("é\nx", 2) == Point{0, 2});  // bytes, not characters
  CHECK(point_at("ab", 99) == Point{0, 2});
}
