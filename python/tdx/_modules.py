"""Which distributions provide the modules a TDXfile imported, and checks of a module folder.

Used by the tdx CLI through its embedded interpreter (`tdx lock`, `tdx build`,
`tdx module validate`); the hashing itself happens in the C++ core.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import inspect
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import tomllib
import traceback
import urllib.parse
import urllib.request
import zipfile

from . import Error

_SDK = "tdx-vm-sdk"
# PEP 508 distribution names.
_NAME = re.compile(r"^([A-Z0-9]|[A-Z0-9][A-Z0-9._-]*[A-Z0-9])$", re.IGNORECASE)
# PEP 440 public versions (the canonical form is what packaging tools accept).
_VERSION = re.compile(
    r"^v?(\d+!)?\d+(\.\d+)*((a|b|rc|alpha|beta|c|pre|preview)[-_.]?\d*)?"
    r"([-_.]?(post|rev|r)[-_.]?\d*|-\d+)?([-_.]?dev[-_.]?\d*)?(\+[a-z0-9]+([-_.][a-z0-9]+)*)?$",
    re.IGNORECASE)


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _real(path) -> str:
    return os.path.realpath(os.fspath(path))


def _inside(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def _file_url_path(url: str) -> str | None:
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme != "file":
        return None
    return urllib.request.url2pathname(parsed.path)


def _relative_to_project(path: str, project: str) -> str:
    """Inside the project: relative (a lock that travels with the project); else absolute."""
    real = _real(path)
    if _inside(real, project):
        rel = os.path.relpath(real, project)
        return "." if rel == "." else rel.replace(os.sep, "/")
    return real


def _pyproject(folder: str) -> dict:
    with open(os.path.join(folder, "pyproject.toml"), "rb") as f:
        return tomllib.load(f)


# --- which distributions did the TDXfile import? -------------------------------------------

def _installed_by_tool(dist) -> bool:
    """pip (and other installers) write INSTALLER and RECORD; the OS's python3-* packages do not
    write INSTALLER, and they are pinned by the OS package manager rather than by tdx.lock."""
    return dist.read_text("INSTALLER") is not None and dist.files is not None


def _direct_url(dist) -> dict | None:
    text = dist.read_text("direct_url.json")
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


def _payload(dist, name: str) -> list[tuple[str, str]]:
    """The files a distribution installed that its integrity covers (see README, "Lockfile")."""
    out = []
    for f in dist.files:
        rel = f.as_posix()
        parts = rel.split("/")
        if rel.startswith("/") or parts[0] == ".." or parts[0].endswith(".dist-info"):
            continue  # scripts and data outside site-packages (machine-specific shebangs), metadata
        if "__pycache__" in parts or rel.endswith(".pyc"):
            continue  # bytecode compiled at install time
        path = str(dist.locate_file(f))
        if not os.path.lexists(path):
            raise Error(f"module {name} {dist.version}: {rel}, listed in its RECORD, is missing from {path}\n"
                        f"  hint: reinstall it (pip install --force-reinstall {name}=={dist.version})")
        out.append((rel, path))
    return out


def _describe(dist, project: str) -> dict:
    name = dist.metadata["Name"]
    entry = {"name": name, "version": dist.version, "source": "pypi"}
    direct = _direct_url(dist)
    folder = None
    if direct is not None:
        url = direct.get("url", "")
        if "vcs_info" in direct:
            vcs = direct["vcs_info"]
            if vcs.get("vcs") != "git":
                raise Error(f"module {name}: installed from {vcs.get('vcs')} ({url}); tdx.lock pins git, path, "
                            f"index and archive installs only")
            entry.update(source="git", git=url, resolved_rev=vcs.get("commit_id", ""))
        elif "dir_info" in direct:
            local = _file_url_path(url) or url
            entry.update(source="path", path=_relative_to_project(local, project))
            if direct["dir_info"].get("editable"):
                folder = _real(local)  # the sources are the payload
        else:  # archive_info: a wheel or sdist given by path or URL
            local = _file_url_path(url)
            if local is not None:
                entry.update(source="path", path=_relative_to_project(local, project))
            else:
                entry.update(source="url", url=url)
    result = {"entry": entry}
    if folder is not None:
        result["folder"] = folder
    else:
        result["files"] = _payload(dist, name)
    return result


def _local_modules(project: str) -> list[dict]:
    """The project's modules/*/ folders holding a pyproject.toml (importable without installing)."""
    out = []
    base = os.path.join(project, "modules")
    if not os.path.isdir(base):
        return out
    for child in sorted(os.listdir(base)):
        folder = os.path.join(base, child)
        if not os.path.isfile(os.path.join(folder, "pyproject.toml")):
            continue
        try:
            meta = _pyproject(folder).get("project", {})
        except (OSError, tomllib.TOMLDecodeError) as e:
            raise Error(f"{folder}/pyproject.toml: {e}\n  hint: `tdx module validate {folder}` checks a module") from None
        version = meta.get("version", "")
        # Named as the project names it, also when modules/<child> links to a folder shared by projects.
        out.append({"entry": {"name": meta.get("name") or child, "version": version if isinstance(version, str) else "",
                              "source": "path", "path": f"modules/{child}"},
                    "folder": _real(folder)})
    return out


def imported_distributions(before, project_dir) -> list[dict]:
    """One record per distribution providing a module imported since `before` (module names).

    Each is {"entry": {name, version, source, url|path|git+resolved_rev}, "files": [(name, path)]}
    or {"entry": ..., "folder": path}; the core computes the integrity from it.
    """
    project = _real(project_dir)
    files = set()
    for name, module in list(sys.modules.items()):
        if name in before or module is None:
            continue
        f = getattr(module, "__file__", None)
        if f:
            files.add(_real(f))
    if not files:
        return []

    # Most specific first: editable installs and local module folders own every file below them.
    folders = []  # (folder, record)
    owners = {}   # real file path -> record
    for dist in importlib.metadata.distributions():
        try:
            if not _installed_by_tool(dist):
                continue
        except OSError:
            continue
        direct = _direct_url(dist)
        if direct and direct.get("dir_info", {}).get("editable"):
            local = _file_url_path(direct.get("url", ""))
            if local:
                folders.append((_real(local), dist))
            continue
        for f in dist.files:
            owners.setdefault(_real(dist.locate_file(f)), dist)
    local = _local_modules(project)
    for record in local:
        folders.append((record["folder"], record))
    folders.sort(key=lambda x: len(x[0]), reverse=True)

    found = {}  # normalized name -> record
    for path in sorted(files):
        owner = None
        for folder, what in folders:
            if _inside(path, folder):
                owner = what
                break
        if owner is None:
            owner = owners.get(path)
        if owner is None:
            continue  # the standard library, the OS's packages, the project's own files
        if isinstance(owner, dict):
            record = owner
        else:
            key = normalize(owner.metadata["Name"])
            if key in found:
                continue
            record = _describe(owner, project)
        found.setdefault(normalize(record["entry"]["name"]), record)
    return [found[k] for k in sorted(found)]


# --- tdx module validate ---------------------------------------------------------------------

def _requirement_name(req: str) -> str:
    m = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", req)
    return normalize(m.group(1)) if m else ""


def _find_packages(folder: str) -> list[tuple[str, str]]:
    """(import name, folder holding it) for the top-level packages of a source tree (flat or src/)."""
    out = []
    for base in (folder, os.path.join(folder, "src")):
        if not os.path.isdir(base):
            continue
        for child in sorted(os.listdir(base)):
            if child.startswith((".", "_")) or child in ("tests", "test", "docs", "examples", "build", "dist"):
                continue
            if os.path.isfile(os.path.join(base, child, "__init__.py")) and child.isidentifier():
                out.append((child, base))
    return out


def _data_files(package_dir: str) -> list[str]:
    out = []
    for root, dirs, names in os.walk(package_dir):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__" and not d.startswith("."))
        for n in sorted(names):
            if n.endswith((".py", ".pyc")) or n.startswith("."):
                continue
            out.append(os.path.relpath(os.path.join(root, n), package_dir).replace(os.sep, "/"))
    return out


def _python() -> str:
    """The interpreter to run pip with (the embedded one has no executable of its own)."""
    for candidate in (os.path.join(sys.base_prefix, "bin", f"python{sys.version_info[0]}.{sys.version_info[1]}"),
                      os.path.join(sys.base_prefix, "bin", "python3")):
        if os.access(candidate, os.X_OK):
            return candidate
    return shutil.which("python3") or "python3"


def _built_files(folder: str, notes: list[str], problems: list[str]) -> set[str] | None:
    """The files of a wheel built from a copy of `folder` (the module folder is left untouched)."""
    try:
        import pip  # noqa: F401
    except ImportError:
        notes.append("cannot check that data files are packaged: pip is not installed (apt-get install python3-pip)")
        return None
    with tempfile.TemporaryDirectory(prefix="tdx-validate-") as tmp:
        copy = os.path.join(tmp, "src")
        shutil.copytree(folder, copy, symlinks=True, ignore=shutil.ignore_patterns(
            ".git", "__pycache__", "*.pyc", "build", "dist", "*.egg-info"))
        env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
        env["PIP_CONFIG_FILE"] = os.devnull
        env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
        proc = subprocess.run([_python(), "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
                               "-q", "-w", os.path.join(tmp, "wheel"), copy],
                              capture_output=True, text=True, encoding="utf-8", errors="replace", env=env, cwd=tmp)
        wheels = [n for n in os.listdir(os.path.join(tmp, "wheel"))] if os.path.isdir(os.path.join(tmp, "wheel")) else []
        if proc.returncode != 0 or len(wheels) != 1:
            tail = "\n    ".join((proc.stderr or proc.stdout).strip().splitlines()[-6:])
            problems.append("the package does not build with pip (pip wheel --no-build-isolation), so it cannot be "
                            f"installed as is:\n    {tail}")
            return None
        with zipfile.ZipFile(os.path.join(tmp, "wheel", wheels[0])) as z:
            return set(z.namelist())


def _sibling_modules(folder: str) -> list[str]:
    """The other module folders of the project's modules/ folder when `folder` is one of them."""
    parent = os.path.dirname(folder)
    if os.path.basename(parent) != "modules":
        return []
    return [os.path.join(parent, c) for c in sorted(os.listdir(parent))
            if os.path.join(parent, c) != folder and os.path.isfile(os.path.join(parent, c, "pyproject.toml"))]


def _api(module, package: str, problems: list[str]) -> str:
    """"function" or "class <Name>" when the module exposes the module API; a problem otherwise."""
    def takes_image(fn, bound: bool) -> bool:
        try:
            sig = inspect.signature(fn)
        except (TypeError, ValueError):
            return True
        try:
            sig.bind_partial(*([object()] * (1 if bound else 2)))
            return True
        except TypeError:
            return False

    apply = getattr(module, "apply", None)
    if inspect.isfunction(apply) or inspect.isbuiltin(apply):
        if not takes_image(apply, True):
            problems.append(f"{package}.apply{inspect.signature(apply)} does not take the image as its first argument")
        return "function apply(image)"
    classes = [c for _, c in inspect.getmembers(module, inspect.isclass)
               if (c.__module__ or "").split(".")[0] == package]
    complete = []
    for cls in classes:
        present = [m for m in ("setup", "install", "apply") if callable(getattr(cls, m, None))]
        if len(present) == 3:
            complete.append(cls)
            for m in present:
                if not takes_image(getattr(cls, m), False):
                    problems.append(f"{package}.{cls.__name__}.{m}{inspect.signature(getattr(cls, m))} does not take the "
                                    "image as its first argument after self")
        elif present:
            missing = ", ".join(f"{m}(image)" for m in ("setup", "install", "apply") if m not in present)
            problems.append(f"class {package}.{cls.__name__} has {', '.join(present)} but not {missing}; a module class "
                            "has all three (setup builds once, install configures an instance, apply does both)")
    if complete:
        return "class " + ", ".join(c.__name__ for c in complete)
    if not any("but not" in p for p in problems):
        problems.append(f"{package} exposes neither a function apply(image) nor a class with setup(image), "
                        "install(image) and apply(image)")
    return ""


def validate(folder) -> dict:
    """Every problem of the module in `folder` (not just the first), plus notes."""
    folder = os.path.abspath(os.fspath(folder))
    problems: list[str] = []
    notes: list[str] = []
    report = {"folder": folder, "name": "", "version": "", "package": "", "api": "", "problems": problems, "notes": notes}

    meta = None
    pyproject = os.path.join(folder, "pyproject.toml")
    if not os.path.isfile(pyproject):
        problems.append("no pyproject.toml: a module is a Python package; add one with [project] name, version and "
                        f'dependencies = ["{_SDK}"]')
    else:
        try:
            meta = _pyproject(folder)
        except tomllib.TOMLDecodeError as e:
            problems.append(f"pyproject.toml is not valid TOML: {e}")
        except OSError as e:
            problems.append(f"cannot read pyproject.toml: {e.strerror}")
    if meta is not None:
        project = meta.get("project")
        if not isinstance(project, dict):
            problems.append("pyproject.toml has no [project] table (name, version, dependencies)")
        else:
            dynamic = project.get("dynamic", []) or []
            name = project.get("name")
            if not name:
                problems.append("pyproject.toml: [project] name is missing, e.g. name = \"tdx-my-module\"")
            elif not isinstance(name, str) or not _NAME.match(name):
                problems.append(f"pyproject.toml: name {name!r} is not a valid distribution name (letters, digits, "
                                "'-', '_', '.'; starting and ending with a letter or digit)")
            else:
                report["name"] = name
            version = project.get("version")
            if version is None:
                if "version" in dynamic:
                    notes.append("the version is dynamic; tdx.lock records the installed one")
                else:
                    problems.append("pyproject.toml: [project] version is missing, e.g. version = \"0.1.0\"")
            elif not isinstance(version, str) or not _VERSION.match(version):
                problems.append(f"pyproject.toml: version {version!r} is not a PEP 440 version like \"1.2.0\"")
            else:
                report["version"] = version
            deps = project.get("dependencies", [])
            if not isinstance(deps, list) or _SDK not in {_requirement_name(d) for d in deps if isinstance(d, str)}:
                problems.append(f"pyproject.toml: dependencies do not include the SDK; add \"{_SDK}\" to "
                                "[project] dependencies")

    expected = normalize(report["name"] or os.path.basename(folder)).replace("-", "_")
    packages = _find_packages(folder)
    chosen = next((p for p in packages if p[0] == expected), None)
    if chosen is None and len(packages) == 1:
        chosen = packages[0]
        notes.append(f"the import package is {chosen[0]}, not {expected} as the name suggests")
    if chosen is None:
        found = ", ".join(p[0] for p in packages) or "none"
        problems.append(f"cannot tell which package to import: expected a folder {expected}/ (or src/{expected}/) "
                        f"holding __init__.py; packages found: {found}")
        return report
    package, base = chosen
    report["package"] = package

    # Import it as a TDXfile would (from the folder, without installing): a module in a project's
    # modules/ folder sees the other modules there, its local dependencies, as the TDXfile does.
    path = [base] + _sibling_modules(folder)
    sys.path[0:0] = path
    try:
        importlib.invalidate_caches()
        module = importlib.import_module(package)
        if not _inside(_real(getattr(module, "__file__", "") or ""), _real(base)):
            problems.append(f"importing {package} found another copy at {module.__file__}, not this folder's")
        report["api"] = _api(module, package, problems)
    except BaseException as e:  # SystemExit and KeyboardInterrupt from module code count as failures too
        frames = [f for f in traceback.extract_tb(e.__traceback__) if _inside(_real(f.filename), _real(base))]
        where = f" ({frames[-1].filename}:{frames[-1].lineno})" if frames else ""
        problems.append(f"the package {package} does not import: {type(e).__name__}: {e}{where}")
    finally:
        for p in path:
            sys.path.remove(p)

    data = _data_files(os.path.join(base, package))
    if data and meta is not None:
        built = _built_files(folder, notes, problems)
        if built is not None:
            missing = [d for d in data if f"{package}/{d}" not in built]
            for i, d in enumerate(missing):
                hint = (f"\n  hint: list the data files in pyproject.toml, e.g. [tool.setuptools.package-data] "
                        f"{package} = [\"data/*\"]") if i == len(missing) - 1 else ""
                problems.append(f"data file {package}/{d} is not in the built package, so "
                                f"importlib.resources.files(\"{package}\") will not find it once installed{hint}")
    return report
