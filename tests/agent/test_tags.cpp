// Tag extraction per language: the definitions and references that come out of the fixtures in
// tests/fixtures/tags/ (name, kind, line, scope), checked against what a reader of the source
// expects. Lines are 1-based here (Tag::name_range.start.line + 1).
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdint>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "agent/parser.h"
#include "agent/tags.h"

using ponder::agent::FileTags;
using ponder::agent::Language;
using ponder::agent::Parser;
using ponder::agent::Tag;
using ponder::agent::TagKind;
using K = ponder::agent::TagKind;

namespace {

std::string read_fixture(const std::string& name) {
  std::string path = std::string(PONDER_FIXTURES) + "/tags/" + name;
  std::ifstream in(path, std::ios::binary);
  INFO("fixture " << path);
  REQUIRE(in.good());
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

FileTags index_fixture(Language lang, const std::string& name) {
  std::string text = read_fixture(name);
  Parser parser;
  FileTags tags;
  std::string error;
  INFO("fixture " << name);
  REQUIRE(parser.index(lang, text, &tags, &error));
  CHECK(error.empty());
  CHECK_FALSE(tags.has_syntax_errors);  // the fixtures are valid code
  REQUIRE_FALSE(tags.tags.empty());
  // FileTags::tags is sorted by (range.start_byte, -range.end_byte).
  CHECK(std::is_sorted(tags.tags.begin(), tags.tags.end(), [](const Tag& a, const Tag& b) {
    if (a.range.start_byte != b.range.start_byte) return a.range.start_byte < b.range.start_byte;
    return a.range.end_byte > b.range.end_byte;
  }));
  return tags;
}

std::uint32_t line_of(const Tag& t) { return t.name_range.start.line + 1; }

std::string describe(const Tag& t) {
  std::string s = std::to_string(line_of(t)) + " " + std::string(tag_kind_name(t.kind)) + " ";
  if (!t.scope.empty()) s += t.scope + "|";
  return s + t.name;
}

// Every tag on a line, for the failure messages.
std::string tags_on_line(const FileTags& f, std::uint32_t line) {
  std::string s;
  for (const Tag& t : f.tags)
    if (line_of(t) == line) s += (s.empty() ? "" : "; ") + describe(t);
  return s.empty() ? "(none)" : s;
}

const Tag* find(const FileTags& f, std::string_view name, TagKind kind, std::uint32_t line) {
  for (const Tag& t : f.tags)
    if (t.name == name && t.kind == kind && line_of(t) == line) return &t;
  return nullptr;
}

bool has(const FileTags& f, std::string_view name, TagKind kind, std::uint32_t line,
         std::string_view scope) {
  const Tag* t = find(f, name, kind, line);
  return t && t->scope == scope;
}

// No tag named `name` of kind `kind` anywhere in the file.
bool lacks(const FileTags& f, std::string_view name, TagKind kind) {
  return std::none_of(f.tags.begin(), f.tags.end(),
                      [&](const Tag& t) { return t.name == name && t.kind == kind; });
}

// Any reference (call, type-ref, class-ref, implementation-ref) named `name` on `line`.
bool has_reference(const FileTags& f, std::string_view name, std::uint32_t line) {
  return std::any_of(f.tags.begin(), f.tags.end(), [&](const Tag& t) {
    return t.name == name && !is_definition(t.kind) && line_of(t) == line;
  });
}

// The definitions in document order, as "line kind scope|name".
std::vector<std::string> outline(const FileTags& f) {
  std::vector<std::string> out;
  for (const Tag& t : f.tags)
    if (is_definition(t.kind)) out.push_back(describe(t));
  return out;
}

}  // namespace

#define CHECK_TAG(f, name, kind, line, scope)                                                  \
  do {                                                                                         \
    INFO("expected line " << (line) << ": " << tag_kind_name(kind) << " "                      \
                          << std::string_view(scope) << "|" << (name));                        \
    INFO("found on that line: " << tags_on_line(f, line));                                     \
    CHECK(has(f, name, kind, line, scope));                                                    \
  } while (false)

#define CHECK_NO_TAG(f, name, kind)                                                            \
  do {                                                                                         \
    INFO("unexpected " << tag_kind_name(kind) << " " << (name));                               \
    CHECK(lacks(f, name, kind));                                                               \
  } while (false)

// ---------------------------------------------------------------------------------------------

TEST_CASE("tags: C structs, typedefs, macros, prototypes and calls", "[tags]") {
  FileTags f = index_fixture(Language::c, "buffer.c");

  // Prototypes (lines 25-26) are listed as functions too, as tree-sitter's own C tags do: in a
  // header they are the only place a function is named.
  CHECK(outline(f) == std::vector<std::string>{
                          "5 macro BUFFER_MIN",
                          "6 macro MAX",
                          "8 class buffer",
                          "14 type Buffer",
                          "16 type BufStatus",
                          "18 class word",
                          "23 type grow_fn",
                          "25 function buffer_reserve",
                          "26 function buffer_append",
                          "28 function buffer_init",
                          "34 function buffer_reserve",
                          "44 function buffer_append",
                          "51 function buffer_free",
                      });

  // References: calls (macros called like functions count) and type uses.
  CHECK_TAG(f, "buffer", K::type_ref, 14, "Buffer");
  CHECK_TAG(f, "Buffer", K::type_ref, 23, "grow_fn");
  CHECK_TAG(f, "BufStatus", K::type_ref, 25, "buffer_reserve");
  CHECK_TAG(f, "Buffer", K::type_ref, 28, "buffer_init");
  CHECK_TAG(f, "MAX", K::call, 36, "buffer_reserve");
  CHECK_TAG(f, "realloc", K::call, 37, "buffer_reserve");
  CHECK_TAG(f, "buffer_reserve", K::call, 45, "buffer_append");
  CHECK_TAG(f, "memcpy", K::call, 46, "buffer_append");
  CHECK_TAG(f, "buffer", K::type_ref, 51, "buffer_free");
  CHECK_TAG(f, "free", K::call, 52, "buffer_free");
  CHECK_TAG(f, "buffer_init", K::call, 53, "buffer_free");

  CHECK_NO_TAG(f, "grow_fn", K::type_ref);  // a function-pointer typedef defines grow_fn

  // A function's range is the whole definition; its signature is the line naming it.
  const Tag* init = find(f, "buffer_init", K::function, 28);
  REQUIRE(init);
  CHECK(init->range.start.line + 1 == 28);
  CHECK(init->range.end.line + 1 == 32);
  CHECK(init->signature == "void buffer_init(Buffer *b) {");
  const Tag* proto = find(f, "buffer_reserve", K::function, 25);
  REQUIRE(proto);
  CHECK(proto->range.end.line + 1 == 25);
  CHECK(proto->signature == "static BufStatus buffer_reserve(Buffer *b, size_t need);");
}

TEST_CASE("tags: C++ namespaces, templates, nested classes, out-of-class methods", "[tags]") {
  FileTags f = index_fixture(Language::cpp, "shapes.cpp");

  // Definitions.
  CHECK_TAG(f, "SQUARE", K::macro, 4, "");
  CHECK_TAG(f, "geo", K::module, 6, "");
  CHECK_TAG(f, "Point", K::class_, 9, "geo");
  CHECK_TAG(f, "PointF", K::type, 14, "geo");
  CHECK_TAG(f, "Shape", K::class_, 16, "geo");
  CHECK_TAG(f, "~Shape", K::method, 18, "geo::Shape");
  CHECK_TAG(f, "area", K::method, 19, "geo::Shape");
  CHECK_TAG(f, "Canvas", K::class_, 22, "geo");
  CHECK_TAG(f, "Layer", K::class_, 24, "geo::Canvas");
  CHECK_TAG(f, "draw", K::method, 26, "geo::Canvas::Layer");
  CHECK_TAG(f, "depth", K::method, 27, "geo::Canvas::Layer");
  CHECK_TAG(f, "area", K::method, 32, "geo::Canvas");
  CHECK_TAG(f, "scaled", K::method, 34, "geo::Canvas");  // a member template
  CHECK_TAG(f, "Box", K::class_, 42, "geo");
  CHECK_TAG(f, "set", K::method, 44, "geo::Box");
  CHECK_TAG(f, "Color", K::type, 49, "geo");
  CHECK_TAG(f, "clamp", K::function, 52, "geo");
  CHECK_TAG(f, "~Shape", K::method, 61, "geo::Shape");   // `Shape::~Shape() {}`
  CHECK_TAG(f, "area", K::method, 63, "geo::Canvas");    // `double Canvas::area() const {`
  CHECK_TAG(f, "render", K::function, 74, "");
  // `void Box<T>::set` (57) and `void Canvas::Layer::draw` (68): see the qualified-scope case.
  CHECK(find(f, "set", K::method, 57));
  CHECK(find(f, "draw", K::method, 68));

  // References.
  CHECK_TAG(f, "Point", K::type_ref, 14, "geo::PointF");
  CHECK_TAG(f, "Shape", K::class_ref, 22, "geo::Canvas");  // base class
  CHECK_TAG(f, "PointF", K::type_ref, 26, "geo::Canvas::Layer::draw");
  CHECK_TAG(f, "Layer", K::type_ref, 37, "geo::Canvas");  // std::vector<Layer>
  CHECK_TAG(f, "clamp", K::call, 64, "geo::Canvas::area");  // clamp<double>(...)
  CHECK_TAG(f, "SQUARE", K::call, 65, "geo::Canvas::area");
  CHECK_TAG(f, "Canvas", K::type_ref, 74, "render");
  CHECK_TAG(f, "Layer", K::type_ref, 75, "render");      // geo::Canvas::Layer layer;
  CHECK_TAG(f, "draw", K::call, 76, "render");
  CHECK_TAG(f, "PointF", K::type_ref, 76, "render");
  CHECK_TAG(f, "Canvas", K::class_ref, 77, "render");    // new geo::Canvas()
  CHECK_TAG(f, "area", K::call, 78, "render");
  CHECK_TAG(f, "scaled", K::call, 78, "render");         // extra->scaled<double>(2.0)

  // Not tags: casts are not calls; members are methods, not functions.
  CHECK_NO_TAG(f, "static_cast", K::call);
  CHECK_NO_TAG(f, "draw", K::function);
  CHECK_NO_TAG(f, "area", K::function);
  CHECK_NO_TAG(f, "Canvas", K::function);

  // Ranges: a function template's range starts at `template <...>` and ends at the closing
  // brace; the signature is the line with the name.
  const Tag* clamp = find(f, "clamp", K::function, 52);
  REQUIRE(clamp);
  CHECK(clamp->range.start.line + 1 == 51);
  CHECK(clamp->range.end.line + 1 == 54);
  CHECK(clamp->signature == "T clamp(T value, T lo, T hi) {");
  const Tag* area = find(f, "area", K::method, 63);
  REQUIRE(area);
  CHECK(area->range.start.line + 1 == 63);
  CHECK(area->range.end.line + 1 == 66);
  CHECK(area->signature == "double Canvas::area() const {");
  const Tag* canvas = find(f, "Canvas", K::class_, 22);
  REQUIRE(canvas);
  CHECK(canvas->range.end.line + 1 == 39);
  CHECK(canvas->signature == "class Canvas : public Shape {");
  const Tag* point = find(f, "Point", K::class_, 9);
  REQUIRE(point);
  CHECK(point->range.start.line + 1 == 8);  // template <typename T>
  CHECK(point->range.end.line + 1 == 12);
  const Tag* depth = find(f, "depth", K::method, 27);
  REQUIRE(depth);
  CHECK(depth->range.start.line == depth->range.end.line);
}

TEST_CASE("tags: C++ multi-level qualified scopes, JSX component references", "[tags]") {
  FileTags cpp = index_fixture(Language::cpp, "shapes.cpp");
  // Every qualifier of `Canvas::Layer::draw`, outermost first.
  CHECK_TAG(cpp, "draw", K::method, 68, "geo::Canvas::Layer");
  // A class template's member: `Box<T>::set` belongs to Box.
  CHECK_TAG(cpp, "set", K::method, 57, "geo::Box");

  // Capitalised JSX elements are uses of components (plugins/queries/jsx.scm).
  FileTags tsx = index_fixture(Language::tsx, "counter.tsx");
  CHECK(has_reference(tsx, "Counter", 28));      // <Counter label={label} ... />
  CHECK(has_reference(tsx, "CounterList", 37));  // <CounterList labels={...} />
}

TEST_CASE("tags: Python nested classes, decorated methods, calls", "[tags]") {
  FileTags f = index_fixture(Language::python, "inventory.py");

  CHECK(outline(f) == std::vector<std::string>{
                          "5 constant DEFAULT_LIMIT",
                          "8 function normalize",
                          "12 class Item",
                          "13 method Item|__init__",
                          "18 class Inventory",
                          "21 class Inventory|Entry",
                          "22 class Inventory.Entry|Meta",
                          "23 method Inventory.Entry.Meta|describe",
                          "26 method Inventory.Entry|__init__",
                          "29 method Inventory|add",
                          "33 method Inventory|size",        // @property
                          "37 method Inventory|from_names",  // @staticmethod
                          "43 method Inventory|find",
                          "44 function Inventory.find|matches",  // a function inside a method
                          "54 class Report",                     // @dataclasses.dataclass
                          "57 method Report|render",
                          "61 function main",
                      });

  CHECK_TAG(f, "strip", K::call, 9, "normalize");
  CHECK_TAG(f, "lower", K::call, 9, "normalize");
  CHECK_TAG(f, "normalize", K::call, 14, "Item.__init__");
  CHECK_TAG(f, "dict", K::class_ref, 18, "Inventory");  // superclass
  CHECK_TAG(f, "Item", K::type_ref, 26, "Inventory.Entry.__init__");
  CHECK_TAG(f, "Entry", K::call, 30, "Inventory.add");  // Inventory.Entry(item)
  CHECK_TAG(f, "len", K::call, 34, "Inventory.size");
  CHECK_TAG(f, "Inventory", K::call, 38, "Inventory.from_names");
  CHECK_TAG(f, "add", K::call, 40, "Inventory.from_names");
  CHECK_TAG(f, "Item", K::call, 40, "Inventory.from_names");
  CHECK_TAG(f, "Optional", K::type_ref, 43, "Inventory.find");  // Optional[Item]
  CHECK_TAG(f, "Item", K::type_ref, 43, "Inventory.find");
  CHECK_TAG(f, "normalize", K::call, 45, "Inventory.find.matches");
  CHECK_TAG(f, "matches", K::call, 48, "Inventory.find");
  CHECK_TAG(f, "from_names", K::call, 62, "main");
  CHECK_TAG(f, "Report", K::call, 63, "main");
  CHECK_TAG(f, "render", K::call, 64, "main");

  // Methods are methods, not functions (decorated or not).
  for (const char* m : {"__init__", "describe", "add", "size", "from_names", "find", "render"})
    CHECK_NO_TAG(f, m, K::function);
  CHECK_NO_TAG(f, "matches", K::method);
  const Tag* size = find(f, "size", K::method, 33);
  REQUIRE(size);
  CHECK(size->signature == "def size(self) -> int:");
  CHECK(size->range.end.line + 1 == 34);
}

TEST_CASE("tags: JavaScript classes, methods, arrow functions", "[tags]") {
  FileTags f = index_fixture(Language::javascript, "events.js");

  CHECK(outline(f) == std::vector<std::string>{
                          "4 function createEmitter",
                          "8 function delay",  // const delay = (ms) => ...
                          "10 function log",   // const log = function (...) {...}
                          "14 class EventEmitter",
                          "20 method EventEmitter|on",
                          "27 method EventEmitter|emit",
                          "33 method EventEmitter|create",  // static
                          "38 class TimedEmitter",
                          "39 method TimedEmitter|emitLater",  // async
                          "45 method TimedEmitter|timeout",    // getter
                          "51 function format",                // format: (value) => ...
                          "52 method parse",                   // object literal method
                          "57 function start",                 // module.exports.start = function
                      });

  CHECK_TAG(f, "EventEmitter", K::class_ref, 5, "createEmitter");
  CHECK_TAG(f, "Promise", K::class_ref, 8, "delay");
  CHECK_TAG(f, "setTimeout", K::call, 8, "delay");
  CHECK_TAG(f, "Map", K::class_ref, 17, "EventEmitter");
  CHECK_TAG(f, "get", K::call, 21, "EventEmitter.on");
  CHECK_TAG(f, "push", K::call, 22, "EventEmitter.on");
  CHECK_TAG(f, "handler", K::call, 29, "EventEmitter.emit");
  CHECK_TAG(f, "createEmitter", K::call, 34, "EventEmitter.create");
  CHECK_TAG(f, "EventEmitter", K::class_ref, 38, "TimedEmitter");  // extends
  CHECK_TAG(f, "delay", K::call, 40, "TimedEmitter.emitLater");
  CHECK_TAG(f, "emit", K::call, 41, "TimedEmitter.emitLater");
  CHECK_TAG(f, "log", K::call, 42, "TimedEmitter.emitLater");
  CHECK_TAG(f, "create", K::call, 58, "start");
  CHECK_TAG(f, "on", K::call, 59, "start");
  CHECK_TAG(f, "format", K::call, 59, "start");

  CHECK_NO_TAG(f, "constructor", K::function);
  CHECK_NO_TAG(f, "on", K::function);
  const Tag* on = find(f, "on", K::method, 20);
  REQUIRE(on);
  CHECK(on->range.end.line + 1 == 25);
  // A method call's reference covers the callee's name, not only its arguments.
  const Tag* push = find(f, "push", K::call, 22);
  REQUIRE(push);
  CHECK(push->range.contains(push->name_range));
}

TEST_CASE("tags: TypeScript generics, interfaces, type aliases, enums, abstract classes",
          "[tags]") {
  FileTags f = index_fixture(Language::typescript, "repository.ts");

  CHECK(outline(f) == std::vector<std::string>{
                          "2 interface Entity",
                          "4 method Entity|validate",
                          "7 type Id",
                          "9 type Status",
                          "14 interface Repository",
                          "15 method Repository|find",
                          "16 method Repository|save",
                          "19 class BaseRepository",
                          "22 method BaseRepository|describe",  // abstract
                          "24 method BaseRepository|find",
                          "28 method BaseRepository|save",
                          "34 class User",
                          "37 method User|validate",
                          "42 class UserRepository",
                          "43 method UserRepository|describe",
                          "48 module Registry",
                          "49 function Registry|lookup",
                          "54 function makeUser",
                          "56 function seed",
                      });

  CHECK_TAG(f, "Entity", K::type_ref, 7, "Id");  // T extends Entity
  CHECK_TAG(f, "Id", K::type_ref, 15, "Repository.find");
  CHECK_TAG(f, "Entity", K::type_ref, 19, "BaseRepository");
  CHECK_TAG(f, "Repository", K::implementation_ref, 19, "BaseRepository");  // implements Repository<T>
  CHECK_TAG(f, "Map", K::class_ref, 20, "BaseRepository");
  CHECK_TAG(f, "get", K::call, 25, "BaseRepository.find");
  CHECK_TAG(f, "validate", K::call, 29, "BaseRepository.save");
  CHECK_TAG(f, "Error", K::class_ref, 29, "BaseRepository.save");
  CHECK_TAG(f, "Entity", K::implementation_ref, 34, "User");
  CHECK_TAG(f, "Status", K::type_ref, 35, "User");
  CHECK_TAG(f, "BaseRepository", K::class_ref, 42, "UserRepository");  // extends
  CHECK_TAG(f, "User", K::type_ref, 42, "UserRepository");              // <User>
  CHECK_TAG(f, "Map", K::type_ref, 49, "Registry.lookup");
  CHECK_TAG(f, "User", K::type_ref, 54, "makeUser");
  CHECK_TAG(f, "User", K::class_ref, 54, "makeUser");
  CHECK_TAG(f, "UserRepository", K::type_ref, 56, "seed");
  CHECK_TAG(f, "save", K::call, 57, "seed");
  CHECK_TAG(f, "makeUser", K::call, 57, "seed");
  CHECK_TAG(f, "lookup", K::call, 58, "seed");

  CHECK_FALSE(find(f, "Repository", K::type_ref, 19));
  CHECK_NO_TAG(f, "find", K::function);
}

TEST_CASE("tags: TSX components with JSX", "[tags]") {
  FileTags f = index_fixture(Language::tsx, "counter.tsx");

  CHECK(outline(f) == std::vector<std::string>{
                          "4 interface CounterProps",
                          "9 type Step",
                          "11 function clampValue",
                          "15 function Counter",
                          "26 class CounterList",
                          "27 method CounterList|renderItem",
                          "31 method CounterList|render",
                          "36 function App",
                      });

  CHECK_TAG(f, "CounterProps", K::type_ref, 15, "Counter");
  CHECK_TAG(f, "useState", K::call, 16, "Counter");
  CHECK_TAG(f, "Step", K::type_ref, 17, "Counter");
  CHECK_TAG(f, "setCount", K::call, 21, "Counter");  // inside a JSX attribute
  CHECK_TAG(f, "clampValue", K::call, 21, "Counter");
  CHECK_TAG(f, "Component", K::class_ref, 26, "CounterList");  // extends React.Component<...>
  CHECK_TAG(f, "map", K::call, 32, "CounterList.render");
  CHECK_TAG(f, "renderItem", K::call, 32, "CounterList.render");

  const Tag* counter = find(f, "Counter", K::function, 15);
  REQUIRE(counter);
  CHECK(counter->range.end.line + 1 == 24);
}

TEST_CASE("tags: Rust generics, impl blocks, traits, modules, macros", "[tags]") {
  FileTags f = index_fixture(Language::rust, "cache.rs");

  CHECK(outline(f) == std::vector<std::string>{
                          "5 constant DEFAULT_CAPACITY",
                          "7 macro ensure",
                          "11 interface Store",
                          "12 method Store|get",  // trait methods without a body
                          "13 method Store|put",
                          "16 type Policy",
                          "18 type Key",
                          "20 class Cache",
                          "25 implementation Cache",
                          "26 method Cache|new",
                          "30 method Cache|get_or_insert",
                          "37 implementation Cache",  // impl<V> Store<Key, V> for Cache<V>
                          "38 method Cache|get",
                          "42 method Cache|put",
                          "47 implementation Policy",  // impl fmt::Display for Policy
                          "48 method Policy|fmt",
                          "53 implementation Policy",  // impl Default for Policy
                          "54 method Policy|default",
                          "59 module stats",
                          "60 class stats|Counter",
                          "64 implementation stats|Counter",
                          "65 method stats::Counter|record",
                          "70 function stats|total",  // a module's function is no method
                          "75 function warm",
                      });

  CHECK_TAG(f, "Option", K::type_ref, 12, "Store::get");
  CHECK_TAG(f, "String", K::type_ref, 18, "Key");
  CHECK_TAG(f, "HashMap", K::type_ref, 21, "Cache");
  CHECK_TAG(f, "Policy", K::type_ref, 22, "Cache");
  CHECK_TAG(f, "Cache", K::class_ref, 27, "Cache::new");  // Cache { ... }
  CHECK_TAG(f, "with_capacity", K::call, 27, "Cache::new");
  CHECK_TAG(f, "ensure", K::call, 31, "Cache::get_or_insert");  // ensure!(...)
  CHECK_TAG(f, "entry", K::call, 32, "Cache::get_or_insert");
  CHECK_TAG(f, "or_insert_with", K::call, 32, "Cache::get_or_insert");
  CHECK_TAG(f, "Store", K::implementation_ref, 37, "Cache");
  CHECK_TAG(f, "insert", K::call, 43, "Cache::put");
  CHECK_TAG(f, "Display", K::implementation_ref, 47, "Policy");
  CHECK_TAG(f, "Formatter", K::type_ref, 48, "Policy::fmt");
  CHECK_TAG(f, "write", K::call, 49, "Policy::fmt");
  CHECK_TAG(f, "Default", K::implementation_ref, 53, "Policy");
  CHECK_TAG(f, "Counter", K::type_ref, 70, "stats::total");
  CHECK_TAG(f, "Cache", K::type_ref, 75, "warm");
  CHECK_TAG(f, "Counter", K::class_ref, 76, "warm");  // stats::Counter { hits: 0 }
  CHECK_TAG(f, "get_or_insert", K::call, 77, "warm");
  CHECK_TAG(f, "from", K::call, 77, "warm");  // Key::from
  CHECK_TAG(f, "record", K::call, 78, "warm");
  CHECK_TAG(f, "total", K::call, 79, "warm");  // stats::total

  CHECK_NO_TAG(f, "total", K::method);
  CHECK_NO_TAG(f, "warm", K::method);
  CHECK_FALSE(find(f, "Store", K::type_ref, 37));
  const Tag* imp = find(f, "Cache", K::implementation, 25);
  REQUIRE(imp);
  CHECK(imp->range.end.line + 1 == 35);
  // The trait reference is the trait's name, not the whole impl block (whose range it would
  // share, ending the block's scope early).
  const Tag* dflt = find(f, "Default", K::implementation_ref, 53);
  REQUIRE(dflt);
  CHECK(dflt->range.start.line == dflt->range.end.line);
}

TEST_CASE("tags: Go structs, interfaces, methods with receivers, generics", "[tags]") {
  FileTags f = index_fixture(Language::go, "server.go");

  CHECK(outline(f) == std::vector<std::string>{
                          "9 constant DefaultPort",
                          "11 interface Handler",
                          "12 method Handler|Serve",
                          "13 method Handler|Name",
                          "16 class Request",
                          "20 class Response",
                          "25 type Status",
                          "27 class Server",
                          "32 function NewServer",
                          "36 method Server|Register",  // pointer receiver
                          "40 method Server|Port",      // value receiver
                          "44 method Server|Dispatch",
                          "52 class Pair",  // generic struct
                          "57 function Map",  // generic function
                          "65 method Pair|String",  // receiver Pair[K, V]
                      });

  CHECK_TAG(f, "Request", K::type_ref, 12, "Handler.Serve");
  CHECK_TAG(f, "Response", K::type_ref, 12, "Handler.Serve");
  CHECK_TAG(f, "Handler", K::type_ref, 28, "Server");
  CHECK_TAG(f, "Server", K::type_ref, 32, "NewServer");
  CHECK_TAG(f, "Server", K::class_ref, 33, "NewServer");  // &Server{...}
  CHECK_TAG(f, "Handler", K::type_ref, 36, "Server.Register");
  CHECK_TAG(f, "Name", K::call, 37, "Server.Register");
  CHECK_TAG(f, "Response", K::class_ref, 47, "Server.Dispatch");
  CHECK_TAG(f, "Serve", K::call, 49, "Server.Dispatch");
  CHECK_TAG(f, "Request", K::class_ref, 49, "Server.Dispatch");
  CHECK_TAG(f, "make", K::call, 58, "Map");
  CHECK_TAG(f, "append", K::call, 60, "Map");
  CHECK_TAG(f, "f", K::call, 60, "Map");
  CHECK_TAG(f, "Pair", K::type_ref, 65, "Pair.String");
  CHECK_TAG(f, "Sprintf", K::call, 66, "Pair.String");

  CHECK_NO_TAG(f, "Register", K::function);
  const Tag* dispatch = find(f, "Dispatch", K::method, 44);
  REQUIRE(dispatch);
  CHECK(dispatch->range.end.line + 1 == 50);
  CHECK(dispatch->signature == "func (s *Server) Dispatch(path string) Response {");
}

TEST_CASE("tags: Java generics, nested and inner classes, interfaces, enums, constructors",
          "[tags]") {
  FileTags f = index_fixture(Language::java, "Library.java");

  CHECK(outline(f) == std::vector<std::string>{
                          "7 class Library",
                          "8 interface Library|Item",
                          "9 method Library.Item|title",
                          "12 class Library|Genre",  // enum
                          "16 method Library.Genre|isFiction",
                          "21 class Library|Book",  // static nested class
                          "24 method Library.Book|Book",  // constructor
                          "29 method Library.Book|title",
                          "33 class Library.Book|Page",
                          "34 method Library.Book.Page|number",
                          "40 class Library|Shelf",  // inner class
                          "43 method Library.Shelf|add",
                          "50 method Library|Library",  // constructor
                          "54 method Library|titles",   // generic method
                          "63 method Library|iterator",
                          "67 method Library|main",
                      });

  CHECK_TAG(f, "Iterable", K::implementation_ref, 7, "Library");
  CHECK_TAG(f, "Item", K::type_ref, 7, "Library");  // T extends Library.Item
  CHECK_TAG(f, "String", K::type_ref, 9, "Library.Item.title");
  CHECK_TAG(f, "Item", K::implementation_ref, 21, "Library.Book");
  CHECK_TAG(f, "List", K::type_ref, 41, "Library.Shelf");
  CHECK_TAG(f, "ArrayList", K::class_ref, 41, "Library.Shelf");  // new ArrayList<>()
  CHECK_TAG(f, "add", K::call, 44, "Library.Shelf.add");
  CHECK_TAG(f, "Shelf", K::type_ref, 48, "Library");
  CHECK_TAG(f, "Shelf", K::class_ref, 51, "Library.Library");  // new Shelf()
  CHECK_TAG(f, "Function", K::type_ref, 54, "Library.titles");
  CHECK_TAG(f, "apply", K::call, 57, "Library.titles");
  CHECK_TAG(f, "Iterator", K::type_ref, 63, "Library.iterator");
  CHECK_TAG(f, "Library", K::type_ref, 68, "Library.main");
  CHECK_TAG(f, "Library", K::class_ref, 68, "Library.main");  // new Library<>()
  CHECK_TAG(f, "Book", K::class_ref, 69, "Library.main");
  CHECK_TAG(f, "println", K::call, 70, "Library.main");
  CHECK_TAG(f, "titles", K::call, 70, "Library.main");

  // Package segments of qualified names are not types.
  for (const char* segment : {"java", "util", "function"}) CHECK_NO_TAG(f, segment, K::type_ref);
  CHECK_FALSE(find(f, "Iterable", K::type_ref, 7));
  // An annotated method's range starts at its annotation; its signature is the named line.
  const Tag* title = find(f, "title", K::method, 29);
  REQUIRE(title);
  CHECK(title->range.start.line + 1 == 28);
  CHECK(title->range.end.line + 1 == 31);
  CHECK(title->signature == "public String title() {");
}
