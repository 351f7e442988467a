"""tdx: reproducible, measured Intel TDX VM images described in Python.

A TDXfile (or a module) records an image recipe::

    from tdx import Image, Build

    image = Image("my-node", base="debian/bookworm")
    image.install("ca-certificates")
    image.build(Build.script(name="hello", src="./hello", build_script="make",
                             artifacts={"hello": "/usr/local/bin/hello"}))
    image.user("hello", system=True, uid=800, home="/var/lib/hello")
    image.service(name="hello", exec="/usr/local/bin/hello", user="hello")

`tdx build` turns the recipe into an image. Importing this package in a plain
python3 records recipes without building, so modules can be unit-tested.
"""

from __future__ import annotations

import json
import os
import pathlib
import sys

from . import _tdx
from ._tdx import BuildSpec, Error

__all__ = ["Image", "Build", "BuildSpec", "Error", "fetch", "fetch_git"]

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


def _site():
    """(file, line) of the nearest caller outside this package: where errors point."""
    frame = sys._getframe(1)
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(_PACKAGE_DIR):
        frame = frame.f_back
    if frame is None:
        return ("<unknown>", 0)
    name = frame.f_code.co_filename
    return (name if name.startswith("<") else os.path.abspath(name), frame.f_lineno)


def _where(site):
    return f"{site[0]}:{site[1]}"


def _resolve(path, site):
    """A path relative to the folder of the file that named it."""
    path = os.fspath(path)
    if os.path.isabs(path) or site[0].startswith("<"):
        return os.path.abspath(path)
    return os.path.normpath(os.path.join(os.path.dirname(site[0]), path))


def _strings(values, what, site):
    if isinstance(values, (str, bytes)):
        raise Error(f"{_where(site)}: {what} must be a list of strings, not the single string {values!r}")
    out = []
    for v in values:
        if not isinstance(v, str):
            raise Error(f"{_where(site)}: {what} must hold strings, got {v!r}")
        out.append(v)
    return out


def _mode(mode, site):
    if isinstance(mode, int):
        return mode
    try:
        return int(str(mode), 8)
    except ValueError:
        raise Error(f"{_where(site)}: mode {mode!r} is not an octal file mode like \"0644\"") from None


class Image(_tdx.ImageCore):
    """An image recipe: packages, builds, users, files, services, secrets, commands."""

    def __init__(self, name: str, base: str = "debian/bookworm", *, format: str = "disk"):
        super().__init__(name, base, _site())
        self.format = format

    def install(self, *packages: str) -> None:
        """Request Debian packages in the final image (a sorted union across calls)."""
        site = _site()
        flat = []
        for p in packages:  # install("a", "b") and install(["a", "b"]) both work
            flat.extend(p if isinstance(p, (list, tuple)) else [p])
        self._install(_strings(flat, "install() arguments", site), site)

    def build(self, spec: BuildSpec) -> bool:
        """Register a build; a spec already registered is a no-op (returns False)."""
        if not isinstance(spec, BuildSpec):
            raise Error(f"{_where(_site())}: image.build() takes a Build.<builder>(...) spec, got {spec!r}")
        for required in getattr(spec, "_requires", ()):  # e.g. a compiler built from source, first
            self.build(required)
        return self._build(spec)

    def user(self, name: str, *, system: bool = False, uid: int | None = None, home: str | None = None,
             shell: str | None = None, groups=()) -> None:
        """Create a user in the image (explicit uid keeps /etc/passwd reproducible)."""
        site = _site()
        self._user(name, bool(system), uid, home or "", shell or "", _strings(groups, "groups", site), site)

    def file(self, dest: str, *, src=None, content=None, mode="0644", owner: str | None = None) -> None:
        """Place a file, from src= (relative to the calling file) or content= (str or bytes)."""
        site = _site()
        if (src is None) == (content is None):
            raise Error(f"{_where(site)}: image.file({dest!r}) needs exactly one of src= or content=")
        if src is not None:
            path = _resolve(src, site)
            try:
                with open(path, "rb") as f:
                    data = f.read()
            except OSError as e:
                raise Error(f"{_where(site)}: cannot read file source '{src}' ({path}): {e.strerror}") from None
            origin = path
        else:
            data = content.encode() if isinstance(content, str) else bytes(content)
            origin = "content"
        self._file(dest, data, origin, _mode(mode, site), owner or "", site)

    def template(self, src, dest: str, vars: dict | None = None, *, mode="0644", owner: str | None = None) -> None:
        """Render a Jinja2 template (undefined variables are errors) and place the result."""
        site = _site()
        path = _resolve(src, site)
        try:
            import jinja2
        except ImportError:
            raise Error(f"{_where(site)}: templates need Jinja2: apt-get install python3-jinja2") from None
        env = jinja2.Environment(loader=jinja2.FileSystemLoader(os.path.dirname(path)),
                                 undefined=jinja2.StrictUndefined, keep_trailing_newline=True, autoescape=False)
        try:
            text = env.get_template(os.path.basename(path)).render(**(vars or {}))
        except jinja2.TemplateNotFound:
            raise Error(f"{_where(site)}: template '{src}' does not exist ({path})") from None
        except jinja2.TemplateSyntaxError as e:
            raise Error(f"{_where(site)}: template {path}:{e.lineno}: {e.message}") from None
        except jinja2.UndefinedError as e:
            raise Error(f"{_where(site)}: template {path}: {e.message}; pass it in vars=") from None
        self._file(dest, text.encode(), "template:" + path, _mode(mode, site), owner or "", site)

    def service(self, name: str, exec: str, *, after=(), requires=(), wants=(), restart: str | None = None,
                user: str | None = None, description: str | None = None, extra_unit: dict | None = None,
                wanted_by: str = "multi-user.target", enable: bool = True) -> None:
        """A systemd service unit, enabled by default; extra_unit adds {section: {key: value}}."""
        site = _site()
        extra = {}
        for section, keys in (extra_unit or {}).items():
            if not isinstance(keys, dict):
                raise Error(f"{_where(site)}: extra_unit[{section!r}] must be a dict of unit keys")
            extra[section] = {k: [str(x) for x in (v if isinstance(v, (list, tuple)) else [v])] for k, v in keys.items()}
        self._service(name, exec, description or "", _strings(after, "after", site), _strings(requires, "requires", site),
                      _strings(wants, "wants", site), restart or "", user or "", wanted_by, extra, bool(enable), site)

    def secret(self, name: str, dest: str, *, owner: str = "root", group: str | None = None, mode="0400") -> None:
        """Declare a secret delivered after boot; its value never enters the image."""
        site = _site()
        self._secret(name, dest, owner, group or "", mode if isinstance(mode, str) else format(mode, "04o"), site)

    def secret_delivery(self, backend: str, **options) -> None:
        """Choose how secrets arrive after boot: "ssh", "vsock" or "script"."""
        site = _site()
        if "fetch_script" in options and options["fetch_script"] is not None:
            options["fetch_script"] = _resolve(options["fetch_script"], site)
        _tdx.check_delivery(backend, options, site)
        self._secret_delivery(backend, options, site)

    def run(self, cmd: str) -> None:
        """A shell command run in the image at post-install, in call order."""
        self._run(cmd, _site())

    def recipe(self) -> dict:
        """The recorded recipe as a dict (for tests of modules)."""
        return json.loads(self.recipe_json())


def _compiler_ref(compiler, site):
    """compiler= as the plugins take it: 'sha256:<hex>' for a fetch() result, 'build:<name>' for a
    compiler built by an earlier build (GoFromSource); the BuildSpecs that must run first."""
    toolchain = getattr(compiler, "toolchain_spec", None)
    if isinstance(toolchain, BuildSpec):
        return "build:" + toolchain.name, [toolchain]
    if isinstance(compiler, str) and compiler.startswith(("sha256:", "build:")):
        return compiler, []
    identity = _tdx.fetched_identity(os.fspath(compiler))
    if not identity:
        raise Error(f"{_where(site)}: compiler={os.fspath(compiler)!r} is not a fetch() result; pass "
                    f"compiler=fetch(url, sha256=...) so the toolchain is pinned by its hash")
    return identity, []


def _make_spec(builder, *, name=None, src=None, output=None, artifacts=None, build_deps=(), env=None,
               reproducible=True, install=True, **options):
    site = _site()
    requires = []
    if options.get("compiler") is not None:
        options["compiler"], requires = _compiler_ref(options["compiler"], site)
    artifacts = {str(k): str(v) for k, v in (artifacts or {}).items()}
    if name is None:  # named after what it makes: the output, else its first artifact, else its folder
        if output:
            name = os.path.basename(os.fspath(output).rstrip("/"))
        elif artifacts:
            name = os.path.basename(sorted(artifacts.values())[0].rstrip("/"))
        elif src is not None:
            name = os.path.basename(os.path.normpath(os.fspath(src)))
    env = {str(k): str(v) for k, v in (env or {}).items()}
    src_path = _resolve(src, site) if src is not None else ""
    spec = _tdx.make_build_spec(builder, name or "", src_path, os.fspath(output) if output else "", artifacts,
                                _strings(build_deps, "build_deps", site), env, bool(reproducible), bool(install),
                                options, site)
    spec._requires = requires
    return spec


class _BuildFactory(type):
    """`Build.<builder>(...)` for every builder plugin that loaded, stock or third-party."""

    def __getattr__(cls, builder):
        if builder.startswith("_"):
            raise AttributeError(builder)
        names = _tdx.builder_names()
        if builder not in names:
            hint = _tdx.did_you_mean(builder, names)
            raise Error(f"{_where(_site())}: unknown builder '{builder}'"
                        + (f" (did you mean '{hint}'?)" if hint else "")
                        + f"; available: {', '.join(names) or 'none'}"
                        + "\n  hint: `tdx plugins list` shows what was found; third-party plugins go on TDX_PLUGIN_PATH")

        def make(**kwargs):
            return _make_spec(builder, **kwargs)

        make.__name__ = builder
        return make

    def __dir__(cls):
        return sorted(set(super().__dir__()) | set(_tdx.builder_names()))


class Build(metaclass=_BuildFactory):
    """Build specs: Build.script(...), Build.go(...), Build.rust(...), Build.dotnet(...), Build.c(...)."""


def fetch(url, *, sha256=None, ca_bundle=None):
    """Download url (http, https or file) verified by its sha256; returns the cached file's Path.

    The hash is mandatory; `tdx fetch --hash URL` prints it. The file is cached by content in
    ~/.cache/tdx/fetch/<sha256>, so a second call uses no network, and it is recorded in tdx.lock.
    """
    site = _site()
    if not sha256:
        raise Error(f"{_where(site)}: fetch({url!r}) needs sha256=; every download is pinned by its hash\n"
                    f"  hint: run `tdx fetch --hash {url}` to print it")
    try:
        return pathlib.Path(_tdx.fetch(os.fspath(url), sha256, os.fspath(ca_bundle) if ca_bundle else ""))
    except Error as e:
        raise Error(f"{_where(site)}: {e}") from None


def fetch_git(url, *, tag=None, commit=None, sha256=None):
    """Check out tag= or commit= of a git repository, verified by its tree hash; returns the folder's Path.

    sha256= is the tree hash of the checked-out files (.git excluded), as "sha256:<hex>" or "h1:<base64>";
    `tdx fetch --hash ./checkout` prints it. The checkout is cached per commit in ~/.cache/tdx/git/ and
    recorded in tdx.lock; a tag that moved since it was locked is an error. A relative path as url is
    resolved against the folder of the file that names it.
    """
    site = _site()
    url = os.fspath(url)
    if "://" not in url and (url.startswith((".", "/")) or ":" not in url):
        url = _resolve(url, site)
    if (tag is None) == (commit is None):
        raise Error(f"{_where(site)}: fetch_git({url!r}) needs exactly one of tag= or commit=")
    if not sha256:
        raise Error(f"{_where(site)}: fetch_git({url!r}) needs sha256=, the tree hash of the checkout\n"
                    f"  hint: check it out once and run `tdx fetch --hash ./checkout`")
    try:
        return pathlib.Path(_tdx.fetch_git(url, str(tag or ""), str(commit or ""), str(sha256)))
    except Error as e:
        raise Error(f"{_where(site)}: {e}") from None
