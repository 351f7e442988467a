// The image recipe a TDXfile records: packages, builds, users, files,
// services, secrets and commands, with the call order of the post-install steps.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>
#include <tdx/spec.hpp>

namespace tdx {

struct FileSpec {
  std::string dest;
  std::string content;   // bytes, already rendered for templates
  std::string origin;    // "content", the source path, or "template:<path>"
  std::uint32_t mode = 0644;
  std::string owner;     // "user" or "user:group"; empty keeps root
  CallSite site;
};

using UnitSection = std::map<std::string, StringList>;

struct ServiceSpec {
  std::string name;
  std::string exec;
  std::string description;
  StringList after, required, wants;
  std::string restart;
  std::string user;
  std::string wanted_by = "multi-user.target";
  std::map<std::string, UnitSection> extra_unit;  // section -> key -> values
  bool enable = true;
  CallSite site;
  std::string unit_text() const;
};

struct RegisteredBuild {
  BuildSpec spec;
  std::string spec_id;  // hex digest of the spec's declared fields, for de-duplication
};

enum class StepKind { user, file, service, run };
struct Step {
  StepKind kind;
  std::size_t index;  // into users/files/services/runs
};

struct RunSpec {
  std::string command;
  CallSite site;
};

class Image {
 public:
  Image(std::string name, std::string base, CallSite site);
  ~Image();
  Image(const Image&) = delete;
  Image& operator=(const Image&) = delete;

  const std::string& name() const { return m_name; }
  const std::string& base() const { return m_base; }
  const std::string& distribution() const { return m_distribution; }
  const std::string& release() const { return m_release; }
  const CallSite& site() const { return m_site; }

  void set_format(const std::string& format);  // "disk" (default) or "directory"
  const std::string& format() const { return m_format; }

  void install(const StringList& packages, const CallSite& site);
  // Returns false when a build with the same declared spec is already registered.
  bool build(const BuildSpec& spec);
  void user(UserSpec user);
  void file(FileSpec file);
  void service(ServiceSpec service);
  void secret(SecretDecl secret);
  void secret_delivery(DeliveryConfig config);
  void run(RunSpec run);

  StringList packages() const;
  const std::vector<RegisteredBuild>& builds() const { return m_builds; }
  const std::vector<UserSpec>& users() const { return m_users; }
  const std::vector<FileSpec>& files() const { return m_files; }
  const std::vector<ServiceSpec>& services() const { return m_services; }
  const std::vector<SecretDecl>& secrets() const { return m_secrets; }
  const std::optional<DeliveryConfig>& delivery() const { return m_delivery; }
  const std::vector<RunSpec>& runs() const { return m_runs; }
  const std::vector<Step>& steps() const { return m_steps; }

  // What in the recipe writes `path` ("file at TDXfile:3"), or empty when nothing does.
  std::string claimed_by(const std::string& path) const;

  // The recipe as JSON (what Python's Image.recipe() returns).
  std::string recipe_json() const;

 private:
  void claim_path(const std::string& path, const std::string& what, const CallSite& site);

  std::string m_name, m_base, m_distribution, m_release, m_format = "disk";
  CallSite m_site;
  std::map<std::string, CallSite> m_packages;  // sorted union; the first call site of each
  std::vector<RegisteredBuild> m_builds;
  std::vector<UserSpec> m_users;
  std::vector<FileSpec> m_files;
  std::vector<ServiceSpec> m_services;
  std::vector<SecretDecl> m_secrets;
  std::optional<DeliveryConfig> m_delivery;
  std::vector<RunSpec> m_runs;
  std::vector<Step> m_steps;
  std::map<std::string, std::string> m_claimed_paths;  // image path -> "what at site"
};

// Debian policy: lower case letters, digits, '+', '-', '.', at least two chars, starting alphanumeric.
bool is_valid_package_name(const std::string& name);

// Images created while evaluating a TDXfile, in creation order. The CLI reads
// them after evaluation; they live as long as the Python objects that own them.
class ImageRegistry {
 public:
  static ImageRegistry& instance();
  void add(Image* image) { m_images.push_back(image); }
  void remove(Image* image);
  const std::vector<Image*>& images() const { return m_images; }

 private:
  std::vector<Image*> m_images;
};

}  // namespace tdx
