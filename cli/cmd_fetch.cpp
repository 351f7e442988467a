// tdx fetch --hash: the pin for a URL, a file or a folder.
#include <iostream>

#include <tdx/error.hpp>
#include <tdx/fetch.hpp>
#include <tdx/hash.hpp>
#include <tdx/json.hpp>

#include "context.hpp"

namespace fs = std::filesystem;

namespace tdx::cli {

void add_fetch_command(CLI::App& app, Context&) {
  struct Args {
    std::string target;
    std::string ca_bundle;
    bool json = false;
  };
  auto args = std::make_shared<Args>();
  auto* cmd = app.add_subcommand(
      "fetch",
      "Compute the hash that pins a resource.\n"
      "  tdx fetch --hash https://example.invalid/go1.22.5.linux-amd64.tar.gz   -> sha256:<hex> for fetch()\n"
      "  tdx fetch --hash ./file                                               -> sha256:<hex>\n"
      "  tdx fetch --hash ./folder       -> its tree hash, as h1:<base64> and sha256:<hex> (for fetch_git)");
  cmd->add_option("--hash", args->target, "URL (http, https, file) or local path to hash")->required();
  cmd->add_option("--ca-bundle", args->ca_bundle, "PEM file of CA certificates for https");
  cmd->add_flag("--json", args->json, "Machine-readable output");
  cmd->callback([args] {
    std::string kind, sha;
    std::string h1;
    std::error_code ec;
    bool is_url = args->target.find("://") != std::string::npos;
    if (!is_url && fs::is_directory(args->target, ec)) {
      Digest d = tree_hash(args->target);
      kind = "tree";
      sha = to_hex(d);
      h1 = h1_string(d);
    } else if (!is_url) {
      if (!fs::is_regular_file(args->target, ec))
        throw Error("fetch --hash: '" + args->target + "' is neither a URL nor an existing file or folder");
      kind = "file";
      sha = to_hex(sha256_file(args->target));
    } else {
      FetchOptions options;
      options.ca_bundle = args->ca_bundle;
      kind = "url";
      sha = hash_url(args->target, options);
    }
    if (args->json) {
      JsonWriter w;
      w.begin_object().key("target").value(args->target).key("kind").value(kind).key("sha256").value("sha256:" + sha);
      if (!h1.empty()) w.key("h1").value(h1);
      std::cout << w.end_object().str();
    } else {
      if (!h1.empty()) std::cout << h1 << "\n";
      std::cout << "sha256:" << sha << "\n";
    }
  });
}

}  // namespace tdx::cli
