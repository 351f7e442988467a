// The project folder and TDXfile a command works on (-C / -f), shared by build and lock.
#include "context.hpp"

namespace fs = std::filesystem;

namespace tdx::cli {

void add_project_options(CLI::App* cmd, ProjectArgs& args, const std::string& file_flag) {
  cmd->add_option("-C,--directory", args.directory, "The project folder (holding the TDXfile)")
      ->check(CLI::ExistingDirectory);
  cmd->add_option(file_flag, args.file, "The TDXfile to evaluate (default: <directory>/TDXfile)");
}

Project resolve_project(const ProjectArgs& args) {
  Project p;
  p.dir = fs::weakly_canonical(fs::absolute(args.directory));
  p.tdxfile = args.file.empty() ? p.dir / "TDXfile" : fs::weakly_canonical(fs::absolute(args.file));
  if (!args.file.empty() && args.directory == ".") p.dir = p.tdxfile.parent_path();  // -f alone: its folder
  return p;
}

}  // namespace tdx::cli
