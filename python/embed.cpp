#include "embed.hpp"

#include <pybind11/embed.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <cstdlib>

#include <tdx/error.hpp>
#include <tdx/fsutil.hpp>
#include <tdx/paths.hpp>

namespace py = pybind11;
namespace fs = std::filesystem;

namespace tdx::python {

namespace {
// UTF-8 mode, as `python3` itself has under a C locale (PEP 538/540): otherwise the embedded
// interpreter decodes file names and subprocess output as ASCII.
bool preinitialize_utf8() {
  PyPreConfig config;
  PyPreConfig_InitPythonConfig(&config);
  config.utf8_mode = 1;
  return !PyStatus_Exception(Py_PreInitialize(&config));
}
}  // namespace

// An audit hook (PEP 578) noting what the TDXfile opens for reading and which folders it lists.
constexpr const char* k_read_tracker = R"py(
import os, sys
reads = []
def _hook(event, args):
    if event == "open":
        path, mode, flags = args
        if isinstance(mode, str):
            if any(c in mode for c in "wax+"):
                return
        elif isinstance(flags, int) and flags & (os.O_WRONLY | os.O_RDWR):
            return
    elif event in ("os.listdir", "os.scandir"):
        path = args[0] if args and args[0] is not None else "."
    else:
        return
    if isinstance(path, (str, bytes, os.PathLike)):
        reads.append(os.path.abspath(os.fsdecode(path)))
sys.addaudithook(_hook)
)py";

struct TdxfileSession::Impl {
  bool utf8 = preinitialize_utf8();
  py::scoped_interpreter interpreter{true, 0, nullptr, false};
  py::dict globals;
  py::dict tracker;  // k_read_tracker's namespace: "reads"
  fs::path tdxfile;
  py::set modules_before;  // sys.modules before the TDXfile ran: what it imported is the rest
  fs::path project;
};

TdxfileSession::TdxfileSession() : m_impl(std::make_unique<Impl>()) {}
TdxfileSession::~TdxfileSession() = default;

TdxfileSession::Unlocked::Unlocked() : m_state(PyEval_SaveThread()) {}
TdxfileSession::Unlocked::~Unlocked() { PyEval_RestoreThread(static_cast<PyThreadState*>(m_state)); }

namespace {

// "file:line: Type: message", pointing at the deepest frame outside the tdx package,
// followed by the user's part of the traceback.
std::string describe(py::error_already_set& e, const fs::path& tdxfile) {
  py::module_ traceback = py::module_::import("traceback");
  py::object type = e.type(), value = e.value();
  std::string type_name = type.attr("__name__").cast<std::string>();
  std::string message = py::str(value).cast<std::string>();

  if (py::isinstance(value, py::module_::import("builtins").attr("SyntaxError"))) {
    std::string file = value.attr("filename").is_none() ? tdxfile.string() : value.attr("filename").cast<std::string>();
    int line = value.attr("lineno").is_none() ? 0 : value.attr("lineno").cast<int>();
    std::string text = value.attr("text").is_none() ? "" : value.attr("text").cast<std::string>();
    while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
    std::string out = file + ":" + std::to_string(line) + ": " + type_name + ": " + value.attr("msg").cast<std::string>();
    if (!text.empty()) out += "\n    " + text;
    return out;
  }

  std::string package_dir = (python_dir() / "tdx").string();
  py::list frames = traceback.attr("extract_tb")(e.trace());
  std::string location, trace;
  for (auto frame : frames) {
    std::string file = frame.attr("filename").cast<std::string>();
    if (file.rfind(package_dir, 0) == 0) continue;
    std::string here = file + ":" + std::to_string(frame.attr("lineno").cast<int>());
    location = here;
    trace += "\n    " + here + " in " + frame.attr("name").cast<std::string>();
    if (!frame.attr("line").is_none()) trace += ": " + frame.attr("line").cast<std::string>();
  }
  // tdx.Error messages already start with their call site.
  if (type_name == "Error") return message;
  std::string out = (location.empty() ? tdxfile.string() : location) + ": " + type_name + ": " + message;
  if (!trace.empty()) out += "\n  traceback (most recent call last):" + trace;
  return out;
}

}  // namespace

Image& TdxfileSession::evaluate(const fs::path& tdxfile) {
  std::string source;
  try {
    source = read_file(tdxfile);
  } catch (const Error&) {
    throw Error("no TDXfile at " + tdxfile.string() + "\n  hint: run tdx in the folder that holds the TDXfile, or pass --file PATH");
  }
  try {
    py::module_ sys = py::module_::import("sys");
    py::list path = sys.attr("path");
    // Lookup order: tdx itself, the project folder, its local modules (modules/*/ holding a
    // pyproject.toml, importable without installing), then an active virtualenv's packages.
    std::vector<std::string> front{python_dir().string(), tdxfile.parent_path().string()};
    std::vector<std::string> site_dirs;
    std::error_code ec;
    std::vector<fs::path> local;
    for (const auto& m : fs::directory_iterator(tdxfile.parent_path() / "modules", ec))
      if (fs::exists(m.path() / "pyproject.toml")) local.push_back(m.path());
    std::sort(local.begin(), local.end());
    for (const auto& m : local) front.push_back(m.string());
    if (const char* venv = std::getenv("VIRTUAL_ENV"); venv && *venv)
      for (const auto& lib : fs::directory_iterator(fs::path(venv) / "lib", ec))
        if (fs::is_directory(lib.path() / "site-packages")) site_dirs.push_back((lib.path() / "site-packages").string());
    front.insert(front.end(), site_dirs.begin(), site_dirs.end());
    for (auto it = front.rbegin(); it != front.rend(); ++it) path.insert(0, *it);
    // The virtualenv's .pth files too (editable installs put their path or import hook there).
    for (const auto& dir : site_dirs) py::module_::import("site").attr("addsitedir")(dir);
    sys.attr("argv") = py::make_tuple(tdxfile.string());
    sys.attr("dont_write_bytecode") = true;
    m_impl->modules_before = py::set(sys.attr("modules"));
    m_impl->project = tdxfile.parent_path();
    m_impl->tdxfile = tdxfile;
    m_impl->tracker["__builtins__"] = py::module_::import("builtins");
    py::exec(k_read_tracker, m_impl->tracker);

    py::dict globals;
    globals["__name__"] = "__main__";
    globals["__file__"] = tdxfile.string();
    globals["__builtins__"] = py::module_::import("builtins");
    py::object code = py::module_::import("builtins").attr("compile")(source, tdxfile.string(), "exec");
    py::module_::import("builtins").attr("exec")(code, globals);
    m_impl->globals = globals;
  } catch (py::error_already_set& e) {
    if (e.matches(PyExc_SystemExit)) {
      py::object code = e.value().attr("code");
      if (code.is_none()) throw ExitRequested{0};
      if (py::isinstance<py::int_>(code)) throw ExitRequested{code.cast<int>()};
      throw Error(tdxfile.string() + ": sys.exit(" + py::str(code).cast<std::string>() + ")");
    }
    throw Error(describe(e, tdxfile));
  }

  const auto& images = ImageRegistry::instance().images();
  if (images.empty())
    throw Error(tdxfile.string() + ": the TDXfile defined no image\n  hint: create one with image = Image(\"name\", base=\"debian/bookworm\")");
  if (images.size() > 1) {
    std::string list;
    for (const auto* i : images) list += "\n    " + i->name() + " (" + i->site().str() + ")";
    throw Error(tdxfile.string() + ": the TDXfile defined " + std::to_string(images.size()) +
                " images; tdx builds one image per TDXfile:" + list);
  }
  return *images.front();
}

std::vector<ModuleOrigin> TdxfileSession::imported_distributions() {
  std::vector<ModuleOrigin> out;
  try {
    py::list records = py::module_::import("tdx._modules").attr("imported_distributions")(m_impl->modules_before,
                                                                                          m_impl->project.string());
    for (auto record : records) {
      ModuleOrigin o;
      py::dict entry = record["entry"];
      auto text = [&](const char* key) { return entry.contains(key) ? py::str(entry[key]).cast<std::string>() : ""; };
      o.entry = {text("name"), text("version"), text("source"), text("url"), text("path"), text("git"), text("resolved_rev"), ""};
      if (record.contains("folder")) o.folder = record["folder"].cast<std::string>();
      else
        for (const auto& [name, file] : record["files"].cast<std::vector<std::pair<std::string, std::string>>>())
          o.files.emplace_back(name, file);
      out.push_back(std::move(o));
    }
  } catch (py::error_already_set& e) {
    throw Error(describe(e, m_impl->project / "TDXfile"));
  }
  return out;
}

std::vector<fs::path> TdxfileSession::files_read() {
  std::vector<fs::path> out{m_impl->tdxfile, m_impl->project / "modules"};
  py::module_ sys = py::module_::import("sys");
  for (auto entry : py::list(sys.attr("path")))
    if (py::isinstance<py::str>(entry)) out.emplace_back(entry.cast<std::string>());
  for (auto item : py::dict(sys.attr("modules"))) {
    py::object file = py::getattr(item.second, "__file__", py::none());
    if (py::isinstance<py::str>(file)) out.emplace_back(file.cast<std::string>());
  }
  if (m_impl->tracker.contains("reads"))
    for (auto path : py::list(m_impl->tracker["reads"])) out.emplace_back(path.cast<std::string>());
  return out;
}

ModuleCheck TdxfileSession::validate_module(const fs::path& folder) {
  ModuleCheck check;
  try {
    py::list path = py::module_::import("sys").attr("path");
    path.insert(0, python_dir().string());
    py::module_::import("sys").attr("dont_write_bytecode") = true;
    py::dict r = py::module_::import("tdx._modules").attr("validate")(folder.string());
    check.name = r["name"].cast<std::string>();
    check.version = r["version"].cast<std::string>();
    check.package = r["package"].cast<std::string>();
    check.api = r["api"].cast<std::string>();
    check.problems = r["problems"].cast<std::vector<std::string>>();
    check.notes = r["notes"].cast<std::vector<std::string>>();
  } catch (py::error_already_set& e) {
    throw Error(describe(e, folder));
  }
  return check;
}

}  // namespace tdx::python
