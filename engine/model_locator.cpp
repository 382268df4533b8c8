#include "engine/model_locator.h"

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

namespace fs = std::filesystem;

namespace ponder {
namespace {

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v ? std::string(v) : std::string();
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string expand_home(std::string_view path) {
  if (path == "~" || path.substr(0, 2) == "~/") {
    std::string home = env("HOME");
    if (!home.empty()) return home + std::string(path.substr(1));
  }
  return std::string(path);
}

void add_unique(std::vector<std::string>* v, const std::string& p) {
  if (!p.empty() && std::find(v->begin(), v->end(), p) == v->end()) v->push_back(p);
}

bool read_json(const fs::path& path, nlohmann::json* out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  *out = nlohmann::json::parse(in, nullptr, false);
  return !out->is_discarded() && out->is_object();
}

std::string read_line(const fs::path& path) {
  std::ifstream in(path);
  std::string s;
  std::getline(in, s);
  while (!s.empty() && (s.back() == '\r' || s.back() == ' ')) s.pop_back();
  return s;
}

// --- Ollama --------------------------------------------------------------------------------

// NAME[:TAG] -> the manifest's path below manifests/ ("registry.ollama.ai/library/NAME/TAG").
bool ollama_manifest_path(std::string_view spec, std::string* rel, std::string* error) {
  std::string name(spec), tag = "latest";
  std::size_t colon = name.rfind(':'), slash = name.rfind('/');
  if (colon != std::string::npos && (slash == std::string::npos || colon > slash)) {
    tag = name.substr(colon + 1);
    name = name.substr(0, colon);
  }
  std::vector<std::string> parts;
  for (std::size_t at = 0; at <= name.size();) {
    std::size_t next = name.find('/', at);
    if (next == std::string::npos) next = name.size();
    parts.push_back(name.substr(at, next - at));
    at = next + 1;
  }
  for (const auto& p : parts)
    if (p.empty() || p == "." || p == "..") {
      *error = "ollama:" + std::string(spec) + ": not a model name (NAME[:TAG], e.g. ollama:deepseek-r1:7b)";
      return false;
    }
  if (tag.empty() || tag.find('/') != std::string::npos || tag == "." || tag == "..") {
    *error = "ollama:" + std::string(spec) + ": not a tag";
    return false;
  }
  if (parts.size() == 1) parts.insert(parts.begin(), "library");
  if (parts.size() == 2) parts.insert(parts.begin(), "registry.ollama.ai");
  if (parts.size() != 3) {
    *error = "ollama:" + std::string(spec) + ": a name has at most a host, a namespace and a model";
    return false;
  }
  *rel = parts[0] + "/" + parts[1] + "/" + parts[2] + "/" + tag;
  return true;
}

// The GGUF blob a manifest names, or empty with `error`.
std::string ollama_blob(const fs::path& root, const fs::path& manifest, std::string* error) {
  nlohmann::json m;
  if (!read_json(manifest, &m)) {
    *error = manifest.string() + ": not a valid Ollama manifest (JSON)";
    return {};
  }
  auto layers = m.find("layers");
  if (layers == m.end() || !layers->is_array()) {
    *error = manifest.string() + ": the manifest has no layers";
    return {};
  }
  for (const auto& l : *layers) {
    if (!l.is_object() || l.value("mediaType", "") != "application/vnd.ollama.image.model") continue;
    std::string digest = l.value("digest", "");
    if (digest.rfind("sha256:", 0) != 0 || digest.size() != 7 + 64 ||
        digest.find_first_not_of("0123456789abcdef", 7) != std::string::npos) {
      *error = manifest.string() + ": the model layer's digest '" + digest + "' is not sha256:<hex>";
      return {};
    }
    fs::path blob = root / "blobs" / ("sha256-" + digest.substr(7));
    std::error_code ec;
    if (!fs::is_regular_file(blob, ec)) {
      *error = manifest.string() + ": its model blob " + blob.string() + " is missing (an interrupted pull?)";
      return {};
    }
    return blob.string();
  }
  *error = manifest.string() + ": the manifest has no model layer";
  return {};
}

// --- Hugging Face cache ----------------------------------------------------------------------

// models--ORG--NAME -> the snapshot folder for `revision` (a ref or a commit), else refs/main,
// else the most recently written snapshot.
std::string hf_snapshot(const fs::path& repo, const std::string& revision) {
  std::error_code ec;
  const fs::path snaps = repo / "snapshots";
  if (!fs::is_directory(snaps, ec)) return {};
  std::string rev = revision.empty() ? "main" : revision;
  std::string commit = read_line(repo / "refs" / rev);
  if (!commit.empty() && fs::is_directory(snaps / commit, ec)) return (snaps / commit).string();
  if (!revision.empty()) return fs::is_directory(snaps / revision, ec) ? (snaps / revision).string() : std::string();
  fs::path best;
  fs::file_time_type best_time{};
  for (const auto& e : fs::directory_iterator(snaps, ec)) {
    if (!e.is_directory(ec)) continue;
    auto t = e.last_write_time(ec);
    if (best.empty() || t > best_time) best = e.path(), best_time = t;
  }
  return best.string();
}

bool is_r1_name(std::string_view name) {
  std::string n = lower(name);
  return n.find("deepseek-r1") != std::string::npos || n.find("r1-distill") != std::string::npos;
}

bool describe(const ModelRef& ref, const std::string& name, FoundModel* out, std::string* error) {
  auto model = Model::open(ref.path, error);
  if (!model) return false;
  out->ref = ref;
  out->name = name;
  out->arch = std::string(arch_name(model->config().arch));
  out->type = model->file_type();
  out->bytes = model->weight_bytes();
  out->parameters = model->parameters();
  out->config = model->config();
  return true;
}

}  // namespace

ModelSearchPaths ModelSearchPaths::from_environment() {
  ModelSearchPaths p;
  const std::string home = env("HOME");
  add_unique(&p.ollama, env("OLLAMA_MODELS"));
  if (!home.empty()) add_unique(&p.ollama, home + "/.ollama/models");
  add_unique(&p.ollama, "/usr/share/ollama/.ollama/models");  // the Linux service's home
  add_unique(&p.ollama, "/var/lib/ollama/.ollama/models");
  add_unique(&p.hf, env("HF_HUB_CACHE"));
  if (!env("HF_HOME").empty()) add_unique(&p.hf, env("HF_HOME") + "/hub");
  if (!env("XDG_CACHE_HOME").empty()) add_unique(&p.hf, env("XDG_CACHE_HOME") + "/huggingface/hub");
  if (!home.empty()) add_unique(&p.hf, home + "/.cache/huggingface/hub");
  return p;
}

bool resolve_model(std::string_view spec_in, const ModelSearchPaths& paths, ModelRef* out, std::string* error) {
  const std::string spec(spec_in);
  std::error_code ec;
  out->spec = spec;
  if (spec.rfind("ollama:", 0) == 0) {
    std::string rel;
    if (!ollama_manifest_path(spec.substr(7), &rel, error)) return false;
    std::string looked;
    for (const auto& root : paths.ollama) {
      fs::path manifest = fs::path(root) / "manifests" / rel;
      if (!fs::is_regular_file(manifest, ec)) {
        looked += (looked.empty() ? "" : ", ") + manifest.string();
        continue;
      }
      std::string blob = ollama_blob(root, manifest, error);
      if (blob.empty()) return false;
      out->path = blob;
      out->format = ModelFormat::gguf;
      return true;
    }
    *error = spec + ": not in Ollama's store (looked for " + (looked.empty() ? "a store: none configured" : looked) +
             "); `ollama pull " + spec.substr(7) + "` fetches it, or set $OLLAMA_MODELS";
    return false;
  }
  if (spec.rfind("hf:", 0) == 0) {
    std::string repo = spec.substr(3), revision;
    if (auto at = repo.find('@'); at != std::string::npos) revision = repo.substr(at + 1), repo = repo.substr(0, at);
    auto slash = repo.find('/');
    if (slash == std::string::npos || slash == 0 || slash + 1 == repo.size() || repo.find('/', slash + 1) != std::string::npos ||
        repo.find("..") != std::string::npos || revision.find('/') != std::string::npos) {
      *error = spec + ": not a Hugging Face model name (hf:ORG/NAME[@REVISION])";
      return false;
    }
    const std::string dir = "models--" + repo.substr(0, slash) + "--" + repo.substr(slash + 1);
    std::string looked;
    for (const auto& root : paths.hf) {
      fs::path r = fs::path(root) / dir;
      looked += (looked.empty() ? "" : ", ") + r.string();
      if (!fs::is_directory(r, ec)) continue;
      std::string snap = hf_snapshot(r, revision);
      if (snap.empty()) {
        *error = spec + ": " + r.string() + " has no snapshot" + (revision.empty() ? "" : " for revision " + revision);
        return false;
      }
      out->path = snap;
      out->format = ModelFormat::snapshot;
      return true;
    }
    *error = spec + ": not in the Hugging Face cache (looked in " + (looked.empty() ? "no cache folder" : looked) + ")";
    return false;
  }
  const std::string path = expand_home(spec);
  if (fs::is_directory(path, ec)) {
    if (!fs::exists(fs::path(path) / "config.json", ec)) {
      *error = path + ": a folder, but not a model snapshot (no config.json)";
      return false;
    }
    out->path = path;
    out->format = ModelFormat::snapshot;
    return true;
  }
  if (fs::is_regular_file(path, ec)) {
    out->path = path;
    out->format = ModelFormat::gguf;
    return true;
  }
  *error = spec + ": no such file or folder (a model is a GGUF file, a snapshot folder, ollama:NAME[:TAG] "
                  "or hf:ORG/NAME)";
  return false;
}

std::vector<FoundModel> find_models(const ModelSearchPaths& paths, std::vector<std::string>* problems) {
  std::vector<FoundModel> found;
  std::error_code ec;
  auto problem = [&](const std::string& p) {
    if (problems) problems->push_back(p);
  };
  for (const auto& root : paths.ollama) {
    const fs::path manifests = fs::path(root) / "manifests";
    if (!fs::is_directory(manifests, ec)) continue;
    // manifests/<host>/<namespace>/<model>/<tag>
    std::vector<fs::path> files;
    for (auto it = fs::recursive_directory_iterator(manifests, ec); !ec && it != fs::recursive_directory_iterator();
         it.increment(ec)) {
      if (it.depth() > 3) it.disable_recursion_pending();
      if (it.depth() == 3 && it->is_regular_file(ec)) files.push_back(it->path());
    }
    std::sort(files.begin(), files.end());
    for (const auto& m : files) {
      const fs::path rel = m.lexically_relative(manifests);
      auto part = rel.begin();
      const std::string host = (part++)->string(), ns = (part++)->string(), model = (part++)->string(),
                        tag = part->string();
      if (!is_r1_name(model)) continue;
      std::string name = (host == "registry.ollama.ai" ? (ns == "library" ? "" : ns + "/") : host + "/" + ns + "/") +
                         model + ":" + tag;
      std::string why;
      std::string blob = ollama_blob(root, m, &why);
      if (blob.empty()) {
        problem(why);
        continue;
      }
      // Tags of the same blob (latest and 8b) are one model.
      auto same = std::find_if(found.begin(), found.end(), [&](const FoundModel& f) { return f.ref.path == blob; });
      if (same != found.end()) {
        same->name += ", " + name;
        continue;
      }
      FoundModel f;
      if (!describe({"ollama:" + name, blob, ModelFormat::gguf}, name, &f, &why)) {
        problem(why);
        continue;
      }
      found.push_back(std::move(f));
    }
  }
  for (const auto& root : paths.hf) {
    if (!fs::is_directory(root, ec)) continue;
    std::vector<fs::path> repos;
    for (const auto& e : fs::directory_iterator(root, ec))
      if (e.is_directory(ec) && e.path().filename().string().rfind("models--", 0) == 0) repos.push_back(e.path());
    std::sort(repos.begin(), repos.end());
    for (const auto& r : repos) {
      std::string repo = r.filename().string().substr(8);
      if (!is_r1_name(repo)) continue;
      if (auto sep = repo.find("--"); sep != std::string::npos) repo.replace(sep, 2, "/");
      std::string snap = hf_snapshot(r, "");
      if (snap.empty() || !fs::exists(fs::path(snap) / "config.json", ec)) continue;
      FoundModel f;
      std::string why;
      if (!describe({"hf:" + repo, snap, ModelFormat::snapshot}, repo, &f, &why)) {
        problem(why);
        continue;
      }
      found.push_back(std::move(f));
    }
  }
  std::stable_sort(found.begin(), found.end(),
                   [](const FoundModel& a, const FoundModel& b) { return a.parameters > b.parameters; });
  return found;
}

bool choose_model(const ModelChoice& choice, const ModelSearchPaths& paths, std::uint32_t context,
                  std::uint64_t available, ModelRef* out, std::string* error) {
  const std::pair<const std::string*, const char*> given[] = {
      {&choice.command_line, "--model"},
      {&choice.lsp, "the editor's settings"},
      {&choice.config_file, ".ponder.json"},
      {&choice.environment, "$PONDER_MODEL"},
  };
  for (const auto& [spec, where] : given) {
    if (spec->empty()) continue;
    if (resolve_model(*spec, paths, out, error)) return true;
    *error += std::string(" (the model named by ") + where + ")";
    return false;
  }
  std::vector<std::string> problems;
  auto found = find_models(paths, &problems);
  std::string smallest;
  for (const auto& f : found) {
    MemoryEstimate e = estimate_memory(f.config, f.bytes, std::min(context, f.config.max_context));
    if (e.total() <= available) {
      *out = f.ref;
      return true;
    }
    smallest = f.name + " needs " + format_bytes(e.total());
  }
  if (!found.empty()) {
    *error = "none of the " + std::to_string(found.size()) + " R1 distills found fits in " + format_bytes(available) +
             " with a context of " + std::to_string(context) + " tokens (" + smallest +
             "); choose a smaller context or a more quantized model";
    return false;
  }
  std::string where;
  for (const auto& p : paths.ollama) where += (where.empty() ? "" : ", ") + p;
  for (const auto& p : paths.hf) where += (where.empty() ? "" : ", ") + p;
  *error = "no model found (looked in " + (where.empty() ? std::string("no model folders") : where) +
           "). Name one with --model PATH.gguf | SNAPSHOT_DIR | ollama:NAME[:TAG] | hf:ORG/NAME, "
           "\"model\" in .ponder.json or $PONDER_MODEL, or fetch one: `ollama pull deepseek-r1:7b`";
  for (const auto& p : problems) *error += "\n  skipped: " + p;
  return false;
}

bool read_config_model(const std::string& dir, std::string* model, std::string* error) {
  model->clear();
  const fs::path path = fs::path(dir) / ".ponder.json";
  std::error_code ec;
  if (!fs::exists(path, ec)) return true;
  std::ifstream in(path, std::ios::binary);
  nlohmann::json j = nlohmann::json::parse(in, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    *error = path.string() + ": not a valid JSON object";
    return false;
  }
  auto m = j.find("model");
  if (m == j.end() || m->is_null()) return true;
  if (!m->is_string()) {
    *error = path.string() + ": \"model\" must be a string (a path, ollama:NAME[:TAG] or hf:ORG/NAME)";
    return false;
  }
  *model = m->get<std::string>();
  // A relative path is relative to the folder of the .ponder.json.
  if (!model->empty() && model->rfind("ollama:", 0) != 0 && model->rfind("hf:", 0) != 0 && (*model)[0] != '~' &&
      fs::path(*model).is_relative())
    *model = (fs::path(dir) / *model).lexically_normal().string();
  return true;
}

}  // namespace ponder
