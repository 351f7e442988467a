// tdx secrets list / push: the TDXfile's declared secrets, and delivering their values to a
// running VM (docs/secret-delivery.md). Values never reach the output.
#include <csignal>
#include <iomanip>
#include <iostream>

#include <tdx/error.hpp>
#include <tdx/json.hpp>
#include <tdx/secrets.hpp>

#include "context.hpp"
#include "embed.hpp"

namespace fs = std::filesystem;

namespace tdx::cli {

namespace {

struct ListArgs {
  ProjectArgs project;
  bool json = false;
};

struct PushArgs {
  ProjectArgs project;
  std::string host, unix_path, file, user, identity, known_hosts;
  std::int64_t cid = -1, port = -1;
  StringList ssh_options;
  int timeout = 60;
  bool json = false;
};

std::string backend_of(const Image& image) { return image.delivery() ? image.delivery()->backend : ""; }

std::int64_t delivery_int(const Image& image, const std::string& key, std::int64_t fallback) {
  if (!image.delivery()) return fallback;
  auto it = image.delivery()->options.find(key);
  if (it == image.delivery()->options.end()) return fallback;
  const auto* v = std::get_if<std::int64_t>(&it->second);
  return v ? *v : fallback;
}

void list(const ListArgs& args) {
  python::TdxfileSession session;
  const Image& image = session.evaluate(resolve_project(args.project).tdxfile);
  const std::uint32_t max_bytes = secret_max_bytes(image.delivery());
  const std::string backend = backend_of(image);
  if (args.json) {
    JsonWriter w;
    w.begin_object().key("image").value(image.name()).key("backend");
    if (backend.empty()) w.null(); else w.value(backend);
    w.key("secrets").begin_array();
    for (const auto& s : image.secrets()) {
      w.begin_object().key("name").value(s.name).key("dest").value(s.dest).key("owner").value(s.owner);
      w.key("group").value(s.group).key("mode").value(s.mode).key("max_bytes").value(static_cast<std::int64_t>(max_bytes));
      w.key("declared_at").value(s.site.str()).end_object();
    }
    w.end_array().end_object();
    std::cout << w.str();
    return;
  }
  std::size_t n = image.secrets().size();
  std::cout << "image '" << image.name() << "': " << n << " secret" << (n == 1 ? "" : "s") << ", delivery "
            << (backend.empty() ? "(none: add image.secret_delivery(\"ssh\" | \"vsock\" | \"script\"))" : backend) << "\n";
  if (n == 0) return;
  std::size_t wn = 4, wd = 4, wo = 5;
  for (const auto& s : image.secrets()) {
    wn = std::max(wn, s.name.size());
    wd = std::max(wd, s.dest.size());
    wo = std::max(wo, s.owner.size() + (s.group.empty() ? 0 : s.group.size() + 1));
  }
  auto row = [&](const std::string& a, const std::string& b, const std::string& c, const std::string& d) {
    std::cout << "  " << std::left << std::setw(static_cast<int>(wn)) << a << "  " << std::setw(static_cast<int>(wd)) << b
              << "  " << std::setw(static_cast<int>(wo)) << c << "  " << d << "\n";
  };
  row("NAME", "DEST", "OWNER", "MODE");
  for (const auto& s : image.secrets()) row(s.name, s.dest, s.owner + (s.group.empty() ? "" : ":" + s.group), s.mode);
  std::cout << "values up to " << max_bytes << " bytes each; deliver them with `tdx secrets push`\n";
}

PushTarget target_of(const PushArgs& args, const Image& image) {
  PushTarget t;
  t.timeout_seconds = args.timeout;
  const bool ssh_backend = backend_of(image) == "ssh", vsock_backend = backend_of(image) == "vsock";
  if (!args.host.empty()) {
    t.kind = PushTarget::Kind::ssh;
    t.host = args.host;
    t.port = static_cast<int>(args.port >= 0 ? args.port : ssh_backend ? delivery_int(image, "port", 22) : 22);
    if (!args.user.empty()) t.user = args.user;
    else if (ssh_backend && image.delivery()->options.count("user"))
      if (const auto* u = std::get_if<std::string>(&image.delivery()->options.at("user"))) t.user = *u;
    t.identity = args.identity;
    t.known_hosts = args.known_hosts;
    t.ssh_options = args.ssh_options;
    if (t.port < 1 || t.port > 65535) throw UsageError("--port " + std::to_string(t.port) + " is not a TCP port");
  } else if (args.cid >= 0) {
    t.kind = PushTarget::Kind::vsock;
    t.cid = static_cast<std::uint32_t>(args.cid);
    std::int64_t port = args.port >= 0 ? args.port : vsock_backend ? delivery_int(image, "port", 7070) : 7070;
    if (port < 1 || port >= 0xffffffffLL) throw UsageError("--port " + std::to_string(port) + " is not a vsock port");
    t.vsock_port = static_cast<std::uint32_t>(port);
  } else {
    t.kind = PushTarget::Kind::unix_socket;
    t.unix_path = fs::absolute(args.unix_path).string();
  }
  bool ssh_only = !args.user.empty() || !args.identity.empty() || !args.known_hosts.empty() || !args.ssh_options.empty();
  if (ssh_only && t.kind != PushTarget::Kind::ssh)
    throw UsageError("--user, --identity, --known-hosts and -o are for ssh (--host)");
  if (args.port >= 0 && t.kind == PushTarget::Kind::unix_socket) throw UsageError("--port does not go with --unix");
  return t;
}

void push(const PushArgs& args, const Context& ctx) {
  if ((!args.host.empty()) + (args.cid >= 0) + (!args.unix_path.empty()) != 1)
    throw UsageError("say where to push with exactly one of --host IP (ssh), --vsock CID, --unix PATH");
  python::TdxfileSession session;
  const Project project = resolve_project(args.project);
  const Image& image = session.evaluate(project.tdxfile);
  if (image.secrets().empty())
    throw Error(project.tdxfile.string() + " declares no secrets; nothing to push\n  hint: declare them with "
                                           "image.secret(\"NAME\", dest=\"/path\", owner=\"user\")");
  const fs::path file = args.file;
  std::vector<SecretValue> values = read_secrets_env(file);
  check_secret_values(values, image.secrets(), secret_max_bytes(image.delivery()), file);
  // Send in declaration order, so the report reads like `tdx secrets list`.
  std::vector<SecretValue> ordered;
  for (const auto& d : image.secrets())
    for (auto& v : values)
      if (v.name == d.name) ordered.push_back(std::move(v));
  PushTarget target = target_of(args, image);
  if (!ctx.quiet && !args.json)
    std::cerr << "pushing " << ordered.size() << " secret(s) from " << file.string() << " to " << target.describe()
              << std::endl;
  // ssh may exit (a refused key) while a frame is being written to its stdin: that must be an
  // error to explain, not a silent death by SIGPIPE.
  std::signal(SIGPIPE, SIG_IGN);
  PushReport report = push_secrets(target, ordered);

  auto dest_of = [&](const std::string& name) {
    for (const auto& d : image.secrets())
      if (d.name == name) return d.dest;
    return std::string();
  };
  if (args.json) {
    JsonWriter w;
    w.begin_object().key("target").value(report.target).key("transport").value(target.transport());
    w.key("secrets").begin_array();
    for (const auto& s : report.secrets)
      w.begin_object().key("name").value(s.name).key("dest").value(dest_of(s.name)).key("bytes")
          .value(static_cast<std::int64_t>(s.bytes)).key("stored").value(s.stored).end_object();
    w.end_array().key("missing").strings(report.missing).key("complete").value(report.missing.empty()).end_object();
    std::cout << w.str();
  } else {
    std::size_t width = 0;
    for (const auto& s : report.secrets) width = std::max(width, s.name.size());
    for (const auto& s : report.secrets)
      std::cout << "  " << (s.stored ? "stored      " : "NOT STORED  ") << std::left << std::setw(static_cast<int>(width))
                << s.name << "  " << dest_of(s.name) << " (" << s.bytes << " bytes)\n";
    if (report.missing.empty()) {
      std::cout << "the VM confirmed all " << report.secrets.size()
                << " secret(s); every declared secret is in place, so secrets-ready.target can be reached\n";
    } else {
      std::string names;
      for (const auto& n : report.missing) names += (names.empty() ? "" : ", ") + n;
      std::cout << "the VM reports these declared secrets are still not in place: " << names << "\n";
    }
  }
  if (!report.missing.empty()) throw Exit{1};
}

}  // namespace

void add_secrets_command(CLI::App& app, Context& ctx) {
  auto* secrets = app.add_subcommand(
      "secrets",
      "Secrets declared in the TDXfile and delivered to the VM after boot (never part of the image).\n"
      "  tdx secrets list                         what the image declares\n"
      "  tdx secrets push --host IP --file F      deliver values over ssh (also --vsock CID, --unix PATH)");
  secrets->require_subcommand(1);

  auto largs = std::make_shared<ListArgs>();
  auto* list_cmd = secrets->add_subcommand(
      "list",
      "List the secrets the TDXfile declares with image.secret(): name, destination, owner[:group], mode,\n"
      "the size cap and the delivery backend. No values: the TDXfile never has them.");
  add_project_options(list_cmd, largs->project);
  list_cmd->add_flag("--json", largs->json, "Machine-readable output");
  list_cmd->callback([largs] {
    try {
      list(*largs);
    } catch (const python::ExitRequested& e) {
      throw Exit{e.code};
    }
  });

  auto pargs = std::make_shared<PushArgs>();
  auto* push_cmd = secrets->add_subcommand(
      "push",
      "Deliver secret values to a running VM's receiver, which writes each one to its declared destination\n"
      "with its owner and mode (temporary file, fsync, rename), then reports what is in place.\n"
      "The values come from an env file: one NAME=value per line (the rest of the line, blanks around it\n"
      "dropped, no quoting), or NAME=@path for a file's exact bytes (relative to the env file); blank lines\n"
      "and lines starting with # are skipped. A name set twice is an error.\n"
      "Before connecting, names the TDXfile does not declare, declared names without a value and values over\n"
      "the size cap are refused; the VM's receiver checks the same again. Values never appear in the output.\n"
      "Transports (exactly one):\n"
      "  --host IP     ssh with BatchMode to the image's secrets account (user= of secret_delivery(\"ssh\"),\n"
      "                default tdx-secrets); e.g. through QEMU's port forwarding:\n"
      "                  tdx secrets push --host 127.0.0.1 --port 2222 --identity ~/.ssh/deploy --file prod.env\n"
      "  --vsock CID   AF_VSOCK to the receiver service (port= of secret_delivery(\"vsock\"), default 7070)\n"
      "  --unix PATH   a receiver's Unix socket (tdx-secret-receiver serve --unix PATH), for local tests\n"
      "Exit status: 0 when the VM has every declared secret in place, 1 otherwise.");
  add_project_options(push_cmd, pargs->project, "--tdxfile");  // --file is the env file here
  push_cmd->add_option("--file", pargs->file, "The env file with the values (NAME=value / NAME=@path lines)")->required();
  push_cmd->add_option("--host", pargs->host, "The VM's address for ssh");
  push_cmd->add_option("--vsock", pargs->cid, "The VM's vsock CID (guest-cid of its vhost-vsock device)")
      ->check(CLI::Range(static_cast<std::int64_t>(1), static_cast<std::int64_t>(0xfffffffe)));
  push_cmd->add_option("--unix", pargs->unix_path, "A receiver's Unix socket");
  push_cmd->add_option("--port", pargs->port,
                       "ssh port (default: port= of secret_delivery(\"ssh\"), else 22) or vsock port (default: port= of "
                       "secret_delivery(\"vsock\"), else 7070)");
  push_cmd->add_option("--user", pargs->user, "ssh account (default: user= of secret_delivery(\"ssh\"), else tdx-secrets)");
  push_cmd->add_option("--identity", pargs->identity, "ssh private key whose public half the image accepts")
      ->check(CLI::ExistingFile);
  push_cmd->add_option("--known-hosts", pargs->known_hosts, "known_hosts file holding the VM's host key");
  push_cmd->add_option("-o,--ssh-option", pargs->ssh_options,
                       "Extra ssh option, repeatable (e.g. -o StrictHostKeyChecking=accept-new); these win over tdx's")
      ->allow_extra_args(false);
  push_cmd->add_option("--timeout", pargs->timeout, "Seconds to wait for each answer of the VM (default 60)")
      ->check(CLI::Range(1, 3600));
  push_cmd->add_flag("--json", pargs->json, "Print the VM's confirmation as JSON");
  push_cmd->callback([pargs, &ctx] {
    try {
      push(*pargs, ctx);
    } catch (const python::ExitRequested& e) {
      throw Exit{e.code};
    }
  });
}

}  // namespace tdx::cli
