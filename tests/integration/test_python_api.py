"""The tdx package in a plain python3: modules record recipes without building."""

import subprocess
import sys

import pytest

from conftest import EXAMPLES, PYTHON_DIR

import tdx
from tdx import Build, Error, Image

for module in ("hello-service", "baseline"):
    sys.path.insert(0, str(EXAMPLES / "hello" / "modules" / module))

from tdx_baseline import apply as baseline  # noqa: E402
from tdx_hello_service import HelloService  # noqa: E402


def here():
    return sys._getframe(1).f_lineno


def test_class_module_builds_once_and_installs_two_instances():
    image = Image("unit", base="debian/bookworm")
    svc = HelloService()
    svc.setup(image)
    svc.install(image, name="a", greeting="hi", port=1, uid=901)
    svc.install(image, name="b", greeting="yo", port=2, uid=902, memory_max="8M")
    svc.setup(image)
    recipe = image.recipe()

    assert [b["name"] for b in recipe["builds"]] == ["hello-server"]
    assert recipe["builds"][0]["builder"] == "script"
    assert recipe["builds"][0]["build_deps"] == ["gcc", "libc6-dev", "make"]
    assert recipe["packages"] == ["ca-certificates"]
    assert [(u["name"], u["uid"], u["home"]) for u in recipe["users"]] == [("a", 901, "/var/lib/a"), ("b", 902, "/var/lib/b")]
    conf = {f["dest"]: f for f in recipe["files"]}
    assert conf["/etc/b/hello.conf"]["content"].splitlines()[1:3] == ["greeting=yo", "port=2"]
    assert conf["/etc/b/hello.conf"]["origin"].startswith("template:")
    unit = {s["name"]: s["unit"] for s in recipe["services"]}["b"]
    assert "MemoryMax=8M\n" in unit and "LimitNOFILE=1024\n" in unit and "User=b\n" in unit
    assert recipe["steps"] == ["user a", "file /etc/a/hello.conf", "service a",
                               "user b", "file /etc/b/hello.conf", "service b"]


def test_function_module_and_apply_form():
    image = Image("unit2")
    baseline(image)
    HelloService().apply(image, name="solo", uid=950)
    recipe = image.recipe()
    assert recipe["packages"] == ["ca-certificates", "netbase"]
    assert recipe["steps"][:3] == ["file /etc/sysctl.d/99-tdx.conf", "run echo 'tdx baseline applied' > /etc/tdx-baseline",
                                   "run rm -f /usr/lib/systemd/system/getty@.service"]
    assert recipe["format"] == "disk"


def test_install_is_a_sorted_union():
    image = Image("pk")
    image.install("ca-certificates", "libsnappy1v5")
    image.install("ca-certificates", "curl")
    assert image.packages == ["ca-certificates", "curl", "libsnappy1v5"]


def test_invalid_package_name_quotes_it_and_the_line():
    image = Image("pk")
    with pytest.raises(Error) as e:
        line = here() + 1
        image.install("Bad_Name")
    assert "'Bad_Name' is not a valid Debian package name" in str(e.value)
    assert f"test_python_api.py:{line}" in str(e.value)


def test_duplicate_user_names_both_call_sites():
    image = Image("u")
    first = here() + 1
    image.user("svc", system=True)
    with pytest.raises(Error) as e:
        second = here() + 1
        image.user("svc")
    msg = str(e.value)
    assert f"test_python_api.py:{first}" in msg and f"test_python_api.py:{second}" in msg


def test_unknown_builder_suggests_the_close_one():
    with pytest.raises(Error, match=r"unknown builder 'scirpt' \(did you mean 'script'\?\)"):
        Build.scirpt(name="x")


def test_same_spec_registers_once_and_conflicting_outputs_fail(tmp_path):
    image = Image("b")
    spec = dict(name="t", src=str(tmp_path), build_script="true", output="/usr/bin/t")
    assert image.build(Build.script(**spec)) is True
    assert image.build(Build.script(**spec)) is False
    with pytest.raises(Error, match="writes /usr/bin/t, which build 't' at .* already writes"):
        image.build(Build.script(**{**spec, "build_script": "make"}))


def test_builder_plugins_validate_their_specs(tmp_path):
    from tdx.builders.go import GoBuild
    from tdx.builders.rust import RustBuild

    spec = GoBuild(version="1.22.5", src=str(tmp_path), output="/usr/local/bin/app", ldflags="-s -w")
    assert (spec.builder, spec.name, spec.output) == ("go", "app", "/usr/local/bin/app")
    with pytest.raises(Error, match="version '1.x' is not a version"):
        GoBuild(version="1.x", src=str(tmp_path), output="/x")
    with pytest.raises(Error, match="unknown parameter 'feature'"):
        RustBuild(toolchain="1.83.0", src=str(tmp_path), output="/x", feature=["a"])
    with pytest.raises(Error, match="needs build_script="):
        Build.script(name="s", src=str(tmp_path), output="/x")


def test_file_and_template_errors(tmp_path):
    image = Image("f")
    with pytest.raises(Error, match="cannot read file source 'nope.conf'"):
        image.file("/etc/x", src="nope.conf")
    with pytest.raises(Error, match="exactly one of src= or content="):
        image.file("/etc/x")
    with pytest.raises(Error, match="must be an absolute path"):
        image.file("etc/x", content="x")
    t = tmp_path / "t.j2"
    t.write_text("port={{ port }}\n")
    with pytest.raises(Error, match="'port' is undefined; pass it in vars="):
        image.template(str(t), "/etc/t")
    image.template(str(t), "/etc/t", vars={"port": 5})
    assert image.recipe()["files"][-1]["content"] == "port=5\n"


def test_secrets_are_declared_without_values():
    image = Image("s")
    image.secret("JWT_SECRET", dest="/etc/ethereum/jwt.hex", owner="root", mode="0440")
    image.secret_delivery("vsock", port=1024)
    with pytest.raises(Error, match="declared twice"):
        image.secret("JWT_SECRET", dest="/etc/other")
    with pytest.raises(Error, match="unknown secret-delivery 'sssh' \\(did you mean 'ssh'\\?\\)"):
        image.secret_delivery("sssh")
    recipe = image.recipe()
    assert recipe["secrets"] == [{"name": "JWT_SECRET", "dest": "/etc/ethereum/jwt.hex", "owner": "root", "mode": "0440"}]
    assert recipe["secret_delivery"] == {"backend": "vsock", "options": {"port": 1024}}


def test_imports_in_a_separate_plain_python3():
    code = ("from tdx import Image, Build, fetch, fetch_git\n"
            "import tdx.builders.go, tdx.builders.rust, tdx.builders.dotnet, tdx.builders.c\n"
            "i = Image('p'); i.install('curl'); print(i.packages)\n")
    out = subprocess.run(["/usr/bin/python3", "-c", code], env={"PYTHONPATH": str(PYTHON_DIR)},
                         capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "['curl']"
    assert tdx.__all__ == ["Image", "Build", "BuildSpec", "Error", "fetch", "fetch_git"]
