#include <tdx/image.hpp>

#include <algorithm>
#include <regex>

#include <tdx/error.hpp>
#include <tdx/hash.hpp>
#include <tdx/json.hpp>
#include <tdx/secret_protocol.hpp>

namespace tdx {

namespace {

const std::regex k_image_name(R"([a-z0-9][a-z0-9._-]{0,62})");
const std::regex k_package_name(R"([a-z0-9][a-z0-9+.-]+)");
const std::regex k_user_name(R"([a-z_][a-z0-9_-]{0,30})");
const std::regex k_unit_name(R"([A-Za-z0-9:_.\\@-]+)");
const std::regex k_secret_name(R"([A-Za-z_][A-Za-z0-9_]*)");
const std::regex k_normal_path(R"((/(?!\.\.?(/|$))[A-Za-z0-9._@%+=:,~-]+)+)");
const StringList k_supported_bases = {"debian/bookworm", "debian/trixie"};

[[noreturn]] void fail(const CallSite& site, const std::string& message) {
  throw Error(site.str() + ": " + message);
}

void require_absolute(const std::string& path, const std::string& what, const CallSite& site) {
  if (path.empty() || path[0] != '/' || path.find("/../") != std::string::npos ||
      (path.size() >= 3 && path.compare(path.size() - 3, 3, "/..") == 0))
    fail(site, what + " '" + path + "' must be an absolute path inside the image (like /etc/app/config.json)");
}

std::string join(const StringList& list, const std::string& sep) {
  std::string out;
  for (const auto& s : list) out += (out.empty() ? "" : sep) + s;
  return out;
}

}  // namespace

bool is_valid_package_name(const std::string& name) { return std::regex_match(name, k_package_name); }

Image::Image(std::string name, std::string base, CallSite site)
    : m_name(std::move(name)), m_base(std::move(base)), m_site(std::move(site)) {
  if (!std::regex_match(m_name, k_image_name))
    fail(m_site, "image name '" + m_name + "' is not usable as a file name; use lower case letters, digits, '.', '_' and '-'");
  if (std::find(k_supported_bases.begin(), k_supported_bases.end(), m_base) == k_supported_bases.end()) {
    std::string hint = did_you_mean(m_base, k_supported_bases);
    fail(m_site, "unsupported base '" + m_base + "'" + (hint.empty() ? "" : " (did you mean '" + hint + "'?)") +
                     "; supported: " + join(k_supported_bases, ", "));
  }
  auto slash = m_base.find('/');
  m_distribution = m_base.substr(0, slash);
  m_release = m_base.substr(slash + 1);
  ImageRegistry::instance().add(this);
}

Image::~Image() { ImageRegistry::instance().remove(this); }

void Image::set_format(const std::string& format) {
  if (format != "disk" && format != "directory")
    throw Error("unknown image format '" + format + "'; use 'disk' (a bootable disk with a UKI) or 'directory'");
  m_format = format;
}

void Image::claim_path(const std::string& path, const std::string& what, const CallSite& site) {
  auto [it, inserted] = m_claimed_paths.emplace(path, what + " at " + site.str());
  if (!inserted) fail(site, what + " writes " + path + ", which " + it->second + " already writes");
}

std::string Image::claimed_by(const std::string& path) const {
  auto it = m_claimed_paths.find(path);
  return it == m_claimed_paths.end() ? std::string() : it->second;
}

void Image::install(const StringList& packages, const CallSite& site) {
  for (const auto& p : packages) {
    if (!is_valid_package_name(p))
      fail(site, "'" + p + "' is not a valid Debian package name (lower case letters, digits, '+', '-' and '.', "
                     "at least two characters, starting with a letter or digit)");
  }
  for (const auto& p : packages) m_packages.emplace(p, site);
}

StringList Image::packages() const {
  StringList out;
  for (const auto& [name, site] : m_packages) out.push_back(name);
  return out;
}

bool Image::build(const BuildSpec& spec) {
  KeyHasher h("tdx-spec-v1");
  h.field("builder", spec.builder).field("name", spec.name).field("src", spec.src).field("output", spec.output);
  for (const auto& [from, to] : spec.artifacts) h.field("artifact", from).field("to", to);
  for (const auto& d : spec.build_deps) h.field("build_dep", d);
  for (const auto& [k, v] : spec.env) h.field("env", k).field("value", v);
  h.field("reproducible", spec.reproducible ? "1" : "0").field("install", spec.install ? "1" : "0");
  JsonWriter options;
  options.begin_object();
  for (const auto& [k, v] : spec.options) write_option(options.key(k), v);
  options.end_object();
  h.field("options", options.str());
  std::string id = to_hex(h.finish());
  for (const auto& b : m_builds)
    if (b.spec_id == id) return false;

  for (const auto& d : spec.build_deps)
    if (!is_valid_package_name(d))
      fail(spec.site, "build_deps entry '" + d + "' of build '" + spec.name + "' is not a valid Debian package name");
  std::string what = "build '" + spec.name + "'";
  auto claimed_before = m_claimed_paths;  // a refused build must not keep the paths it claimed
  try {
    if (spec.install && !spec.output.empty()) claim_path(spec.output, what, spec.site);
    if (spec.install)
      for (const auto& [from, to] : spec.artifacts) claim_path(to, what, spec.site);
  } catch (...) {
    m_claimed_paths = std::move(claimed_before);
    throw;
  }
  m_builds.push_back({spec, id});
  return true;
}

void Image::user(UserSpec user) {
  if (!std::regex_match(user.name, k_user_name))
    fail(user.site, "user name '" + user.name + "' is not valid (lower case letters, digits, '_' and '-', at most 31 characters)");
  for (const auto& u : m_users)
    if (u.name == user.name)
      fail(user.site, "user '" + user.name + "' is declared twice: here and at " + u.site.str() +
                          "; give each instance its own name");
  if (user.uid) {
    if (*user.uid < 1 || *user.uid > 65533) fail(user.site, "uid " + std::to_string(*user.uid) + " of user '" + user.name + "' is outside 1..65533");
    for (const auto& u : m_users)
      if (u.uid == user.uid)
        fail(user.site, "uid " + std::to_string(*user.uid) + " of user '" + user.name + "' is already used by user '" +
                            u.name + "' at " + u.site.str());
  }
  if (!user.home.empty()) require_absolute(user.home, "home of user '" + user.name + "'", user.site);
  for (const auto& g : user.groups)
    if (!std::regex_match(g, k_user_name)) fail(user.site, "group name '" + g + "' of user '" + user.name + "' is not valid");
  m_steps.push_back({StepKind::user, m_users.size()});
  m_users.push_back(std::move(user));
}

void Image::file(FileSpec file) {
  require_absolute(file.dest, "file destination", file.site);
  if (file.mode > 07777) fail(file.site, "mode of " + file.dest + " is not a file mode (use an octal string like \"0644\")");
  claim_path(file.dest, file.origin.rfind("template:", 0) == 0 ? "template" : "file", file.site);
  m_steps.push_back({StepKind::file, m_files.size()});
  m_files.push_back(std::move(file));
}

void Image::service(ServiceSpec service) {
  if (!std::regex_match(service.name, k_unit_name))
    fail(service.site, "service name '" + service.name + "' is not a valid systemd unit name");
  if (service.exec.empty()) fail(service.site, "service '" + service.name + "' needs exec=, the command it runs");
  // A newline would start a new unit line: reject it wherever a value lands in the unit file.
  auto single_line = [&](const std::string& what, const std::string& value) {
    if (value.find('\n') != std::string::npos)
      fail(service.site, "service '" + service.name + "': " + what + " contains a newline; unit values are one line");
  };
  single_line("exec", service.exec);
  single_line("description", service.description);
  single_line("restart", service.restart);
  single_line("user", service.user);
  for (const auto& list : {service.after, service.required, service.wants})
    for (const auto& v : list) single_line("a dependency", v);
  for (const auto& [section, keys] : service.extra_unit)
    for (const auto& [key, values] : keys)
      for (const auto& v : values) single_line("extra_unit[" + section + "][" + key + "]", v + key + section);
  claim_path("/etc/systemd/system/" + service.name + ".service", "service '" + service.name + "'", service.site);
  m_steps.push_back({StepKind::service, m_services.size()});
  m_services.push_back(std::move(service));
}

void Image::secret(SecretDecl secret) {
  if (!std::regex_match(secret.name, k_secret_name) || secret.name.size() > secret_protocol::k_max_name)
    fail(secret.site, "secret name '" + secret.name + "' is not valid (letters, digits and '_', not starting with a digit, "
                          "at most " + std::to_string(secret_protocol::k_max_name) + " characters)");
  for (const auto& s : m_secrets)
    if (s.name == secret.name) fail(secret.site, "secret '" + secret.name + "' is declared twice: here and at " + s.site.str());
  // The receiver reads dests from a TAB-separated list and compares them as strings: one spelling only.
  if (!std::regex_match(secret.dest, k_normal_path))
    fail(secret.site, "destination '" + secret.dest + "' of secret '" + secret.name +
                          "' must be a normalized absolute file path: names of letters, digits and ._-+@%=:,~ "
                          "after single slashes, no '.' or '..' (like /etc/app/token)");
  if (!std::regex_match(secret.mode, std::regex("0?[0-7]{3}")))
    fail(secret.site, "mode '" + secret.mode + "' of secret '" + secret.name + "' is not an octal mode like \"0440\"");
  if (secret.mode.size() == 3) secret.mode = "0" + secret.mode;
  if (!std::regex_match(secret.owner, k_user_name))
    fail(secret.site, "owner '" + secret.owner + "' of secret '" + secret.name + "' is not a valid user name");
  if (!secret.group.empty() && !std::regex_match(secret.group, k_user_name))
    fail(secret.site, "group '" + secret.group + "' of secret '" + secret.name + "' is not a valid group name");
  claim_path(secret.dest, "secret '" + secret.name + "'", secret.site);
  m_secrets.push_back(std::move(secret));
}

void Image::secret_delivery(DeliveryConfig config) {
  if (m_delivery && m_delivery->backend != config.backend)
    fail(config.site, "secret delivery is already '" + m_delivery->backend + "' (set at " + m_delivery->site.str() +
                          "); an image has one delivery backend");
  m_delivery = std::move(config);
}

void Image::run(RunSpec run) {
  if (run.command.empty()) fail(run.site, "run() needs a command");
  m_steps.push_back({StepKind::run, m_runs.size()});
  m_runs.push_back(std::move(run));
}

std::string ServiceSpec::unit_text() const {
  std::map<std::string, std::vector<std::pair<std::string, std::string>>> sections;
  auto add = [&](const std::string& section, const std::string& key, const std::string& value) {
    if (!value.empty()) sections[section].emplace_back(key, value);
  };
  add("Unit", "Description", description.empty() ? name : description);
  add("Unit", "After", join(after, " "));
  add("Unit", "Requires", join(required, " "));
  add("Unit", "Wants", join(wants, " "));
  add("Service", "ExecStart", exec);
  add("Service", "Restart", restart);
  add("Service", "User", user);
  add("Install", "WantedBy", wanted_by);
  for (const auto& [section, keys] : extra_unit)
    for (const auto& [key, values] : keys)
      for (const auto& v : values) sections[section].emplace_back(key, v);

  std::string out;
  auto emit = [&](const std::string& section) {
    auto it = sections.find(section);
    if (it == sections.end()) return;
    out += (out.empty() ? "" : "\n") + std::string("[") + section + "]\n";
    for (const auto& [k, v] : it->second) out += k + "=" + v + "\n";
    sections.erase(it);
  };
  emit("Unit");
  emit("Service");
  while (sections.size() > 1 || (sections.size() == 1 && sections.begin()->first != "Install")) {
    auto it = sections.begin();
    if (it->first == "Install") ++it;
    emit(it->first);
  }
  emit("Install");
  return out;
}

std::string Image::recipe_json() const {
  JsonWriter w;
  w.begin_object();
  w.key("name").value(m_name).key("base").value(m_base).key("format").value(m_format);
  w.key("packages").strings(packages());
  w.key("builds").begin_array();
  for (const auto& b : m_builds) {
    const auto& s = b.spec;
    w.begin_object().key("builder").value(s.builder).key("name").value(s.name).key("src").value(s.src);
    w.key("output").value(s.output).key("artifacts");
    write_string_map(w, s.artifacts);
    w.key("build_deps").strings(s.build_deps).key("env");
    write_string_map(w, s.env);
    w.key("reproducible").value(s.reproducible).key("install").value(s.install).key("options").begin_object();
    for (const auto& [k, v] : s.options) write_option(w.key(k), v);
    w.end_object().key("spec_id").value(b.spec_id).key("site").value(s.site.str()).end_object();
  }
  w.end_array();
  w.key("users").begin_array();
  for (const auto& u : m_users) {
    w.begin_object().key("name").value(u.name).key("system").value(u.system).key("uid");
    if (u.uid) w.value(*u.uid); else w.null();
    w.key("home").value(u.home).key("shell").value(u.shell).key("groups").strings(u.groups).end_object();
  }
  w.end_array();
  w.key("files").begin_array();
  for (const auto& f : m_files) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", f.mode);
    w.begin_object().key("dest").value(f.dest).key("origin").value(f.origin).key("mode").value(mode);
    w.key("owner").value(f.owner).key("content").value(f.content).end_object();
  }
  w.end_array();
  w.key("services").begin_array();
  for (const auto& s : m_services)
    w.begin_object().key("name").value(s.name).key("exec").value(s.exec).key("enable").value(s.enable)
        .key("unit").value(s.unit_text()).end_object();
  w.end_array();
  w.key("secrets").begin_array();
  for (const auto& s : m_secrets)
    w.begin_object().key("name").value(s.name).key("dest").value(s.dest).key("owner").value(s.owner)
        .key("mode").value(s.mode).end_object();
  w.end_array();
  w.key("secret_delivery");
  if (m_delivery) {
    w.begin_object().key("backend").value(m_delivery->backend).key("options").begin_object();
    for (const auto& [k, v] : m_delivery->options) write_option(w.key(k), v);
    w.end_object().end_object();
  } else {
    w.null();
  }
  w.key("runs").begin_array();
  for (const auto& r : m_runs) w.value(r.command);
  w.end_array();
  w.key("steps").begin_array();
  for (const auto& st : m_steps) {
    switch (st.kind) {
      case StepKind::user: w.value("user " + m_users[st.index].name); break;
      case StepKind::file: w.value("file " + m_files[st.index].dest); break;
      case StepKind::service: w.value("service " + m_services[st.index].name); break;
      case StepKind::run: w.value("run " + m_runs[st.index].command); break;
    }
  }
  w.end_array();
  w.end_object();
  return w.str();
}

ImageRegistry& ImageRegistry::instance() {
  static ImageRegistry registry;
  return registry;
}

void ImageRegistry::remove(Image* image) {
  m_images.erase(std::remove(m_images.begin(), m_images.end(), image), m_images.end());
}

}  // namespace tdx
