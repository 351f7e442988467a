#include <tdx/mkosi.hpp>

#include <fstream>
#include <regex>
#include <sstream>

#include <tdx/error.hpp>

namespace fs = std::filesystem;

namespace tdx {

namespace {

struct SourceEntry {
  std::string uri;
  StringList suites;
};

StringList split_ws(const std::string& s) {
  std::istringstream in(s);
  StringList out;
  std::string w;
  while (in >> w) out.push_back(w);
  return out;
}

void parse_deb822(const fs::path& file, std::vector<SourceEntry>& out) {
  std::ifstream in(file);
  std::string line;
  std::map<std::string, std::string> stanza;
  auto flush = [&] {
    bool is_deb = split_ws(stanza["types"]).empty();
    for (const auto& t : split_ws(stanza["types"])) is_deb = is_deb || t == "deb";
    if (is_deb && stanza.count("uris") && stanza.count("suites") && stanza["enabled"] != "no")
      for (const auto& uri : split_ws(stanza["uris"])) out.push_back({uri, split_ws(stanza["suites"])});
    stanza.clear();
  };
  while (std::getline(in, line)) {
    if (line.empty() || line.find_first_not_of(" \t") == std::string::npos) {
      flush();
      continue;
    }
    if (line[0] == '#') continue;
    auto colon = line.find(':');
    if (colon == std::string::npos || line[0] == ' ' || line[0] == '\t') continue;
    std::string key = line.substr(0, colon);
    for (auto& c : key) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    stanza[key] = line.substr(colon + 1);
  }
  flush();
}

void parse_one_line(const fs::path& file, std::vector<SourceEntry>& out) {
  std::ifstream in(file);
  std::string line;
  static const std::regex k_line(R"(^\s*deb\s+(\[[^\]]*\]\s+)?(\S+)\s+(\S+)\s+.*)");
  std::smatch m;
  while (std::getline(in, line))
    if (std::regex_match(line, m, k_line)) out.push_back({m[2], {m[3]}});
}

std::string with_slash(std::string uri) {
  if (!uri.empty() && uri.back() != '/') uri += '/';
  return uri;
}

}  // namespace

AptSources resolve_apt_sources(const std::string& release, const std::string& mirror) {
  std::vector<SourceEntry> entries;
  std::error_code ec;
  std::vector<fs::path> files;
  for (const auto& f : fs::directory_iterator("/etc/apt/sources.list.d", ec)) files.push_back(f.path());
  std::sort(files.begin(), files.end());
  for (const auto& f : files) {
    if (f.extension() == ".sources") parse_deb822(f, entries);
    else if (f.extension() == ".list") parse_one_line(f, entries);
  }
  if (fs::exists("/etc/apt/sources.list")) parse_one_line("/etc/apt/sources.list", entries);

  AptSources out;
  for (const auto& e : entries)
    for (const auto& s : e.suites) {
      if (out.main.empty() && s == release) out.main = with_slash(e.uri);
      if (out.security.empty() && (s == release + "-security" || s == release + "/updates")) out.security = with_slash(e.uri);
    }
  if (!mirror.empty()) out.main = with_slash(mirror);
  if (out.main.empty())
    throw Error("no Debian mirror for '" + release + "': the machine's apt sources have no entry for it.\n"
                "  hint: pass one with `tdx build --mirror URL` or the TDX_MIRROR environment variable");
  return out;
}

std::string mkosi_sources_file(const AptSources& sources, const std::string& release) {
  const char* keyring = "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n";
  std::string out = "Types: deb\nURIs: " + sources.main + "\nSuites: " + release + " " + release +
                    "-updates\nComponents: main\n" + keyring;
  if (!sources.security.empty())
    out += "\nTypes: deb\nURIs: " + sources.security + "\nSuites: " + release + "-security\nComponents: main\n" + keyring;
  return out;
}

}  // namespace tdx
