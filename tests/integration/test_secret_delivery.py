"""Secret delivery in real images: what the ssh, vsock and script backends put into a directory image
built by mkosi, the receiver running inside that tree under bubblewrap, the script backend's fetch
service delivering into the tree, refused options, and secret values that never reach anything tdx writes.
"""

import hashlib
import json
import os
import re
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from conftest import BUILD, SHARED_CACHE, need, read_json, run_tdx, tdx_env, tree_listing, write_tdxfile

RECEIVER = BUILD / "lib" / "tdx" / "libexec" / "tdx-secret-receiver"
SECRETS = [("JWT_SECRET", "/etc/app/jwt.hex", "app", "", "0440"),
           ("API_TOKEN", "/var/lib/app/keys/token", "app", "app", "0400"),
           ("RUN_KEY", "/run/app/key", "root", "", "0600")]
TDXFILE = """\
from tdx import Image

image = Image("vault-{backend}", format="directory")
image.user("app", system=True, uid=850, home="/var/lib/app")
image.secret("JWT_SECRET", dest="/etc/app/jwt.hex", owner="app", mode="0440")
image.secret("API_TOKEN", dest="/var/lib/app/keys/token", owner="app", group="app", mode=0o400)
image.secret("RUN_KEY", dest="/run/app/key", mode="600")
image.secret_delivery({delivery})
"""
# A fetch script of the kind a user writes: values come from outside the image (here a folder the
# test binds at /run/secret-source; in a VM, a vault or metadata service) and go in through `put`.
FETCH_SCRIPT = """\
#!/bin/sh
set -eu
src=/run/secret-source
for name in JWT_SECRET API_TOKEN RUN_KEY; do
    [ -f "$src/$name" ] && tdx-secret-receiver put "$name" < "$src/$name"
done
exit 0
"""


def public_key(folder: Path) -> str:
    need("ssh-keygen")
    key = folder / "push_key"
    if not key.exists():
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "pusher@test", "-f", str(key)], check=True)
    return (folder / "push_key.pub").read_text().strip()


def delivery_call(backend: str, folder: Path) -> str:
    if backend == "ssh":
        return f'"ssh", authorized_key={public_key(folder)!r}'
    if backend == "script":
        return '"script", fetch_script="scripts/fetch-secrets.sh"'
    return '"vsock", port=7171'


def make_project(folder: Path, backend: str) -> Path:
    project = folder / f"project-{backend}"
    write_tdxfile(project, TDXFILE.format(backend=backend, delivery=delivery_call(backend, folder)))
    (project / "scripts").mkdir()
    (project / "scripts" / "fetch-secrets.sh").write_text(FETCH_SCRIPT)
    return project


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    """backend -> (project, build result, image root), built on first use."""
    need("mkosi", "bwrap")
    assert RECEIVER.is_file(), f"{RECEIVER} is built by scripts/build.sh"
    folder = tmp_path_factory.mktemp("delivery")
    built = {}

    def get(backend):
        if backend not in built:
            project = make_project(folder, backend)
            result = json.loads(run_tdx("build", "-C", project, "--json").stdout)
            built[backend] = (project, result, Path(result["image"]))
        return built[backend]

    return get


def bwrap_args(root: Path, binds=(), env=None):
    """bubblewrap running a command inside the image tree (read-only; `binds` writable), dying with the test."""
    args = ["bwrap", "--ro-bind", str(root), "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp",
            "--die-with-parent"]
    for host, inside in binds:
        args += ["--bind", str(host), inside]
    return args + ["--clearenv", "--setenv", "PATH", (env or {}).get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")]


def in_image(root: Path, *command, binds=(), env=None, stdin=None):
    return subprocess.run(bwrap_args(root, binds, env) + list(command), capture_output=True, text=True, input=stdin,
                          timeout=60)


def unit(root: Path, name: str) -> str:
    return (root / "etc/systemd/system" / name).read_text()


def unit_values(text: str, key: str):
    return [line.split("=", 1)[1] for line in text.splitlines() if line.startswith(key + "=")]


def enabled(root: Path, wants: str, name: str) -> bool:
    link = root / "etc/systemd/system" / wants / name
    return link.is_symlink() and os.readlink(link) == f"/etc/systemd/system/{name}"


def check_common_parts(root: Path, manifest: dict):
    receiver = root / "usr/lib/tdx/tdx-secret-receiver"
    assert receiver.read_bytes() == RECEIVER.read_bytes()
    assert receiver.stat().st_mode & 0o7777 == 0o755
    listing = (root / "etc/tdx/secrets.list").read_text()
    assert listing == ("tdx-secrets 1\n"
                       "API_TOKEN\t/var/lib/app/keys/token\tapp\tapp\t0400\t65536\n"
                       "JWT_SECRET\t/etc/app/jwt.hex\tapp\t\t0440\t65536\n"
                       "RUN_KEY\t/run/app/key\troot\t\t0600\t65536\n")
    assert (root / "etc/tdx/secrets.list").stat().st_mode & 0o7777 == 0o644
    target = unit(root, "secrets-ready.target")
    assert unit_values(target, "Requires") == ["tdx-secrets-wait.service"]
    assert unit_values(target, "After") == ["tdx-secrets-wait.service"]
    assert enabled(root, "multi-user.target.wants", "secrets-ready.target")
    wait = unit(root, "tdx-secrets-wait.service")
    assert unit_values(wait, "ExecStart") == ["/usr/lib/tdx/tdx-secret-receiver wait"]
    assert unit_values(wait, "Type") == ["oneshot"] and unit_values(wait, "TimeoutStartSec") == ["infinity"]
    # Parents of the destinations are in the image; no secret is.
    assert (root / "etc/app").is_dir() and (root / "var/lib/app/keys").is_dir()
    for _, dest, *_ in SECRETS:
        assert not (root / dest.lstrip("/")).exists(), dest
    # The manifest names every delivery file with its digest.
    files = {f["path"]: f for f in manifest["secret_delivery"]["files"]}
    for path, f in files.items():
        assert hashlib.sha256((root / path.lstrip("/")).read_bytes()).hexdigest() == f["sha256"], path
    assert files["/usr/lib/tdx/tdx-secret-receiver"]["sha256"] == hashlib.sha256(RECEIVER.read_bytes()).hexdigest()
    assert [s["name"] for s in manifest["secrets"]] == [s[0] for s in SECRETS]


def test_receiver_runs_inside_the_image(images):
    _, _, root = images("vsock")
    helped = in_image(root, "/usr/lib/tdx/tdx-secret-receiver", "--help")
    assert helped.returncode == 0 and "usage: tdx-secret-receiver" in helped.stdout, helped.stderr
    # It reads the image's secrets.list: nothing has been delivered, so all three are missing.
    checked = in_image(root, "/usr/lib/tdx/tdx-secret-receiver", "check")
    assert checked.returncode == 1
    for name, *_ in SECRETS:
        assert name in checked.stderr


def test_vsock_image(images):
    project, result, root = images("vsock")
    manifest = read_json(result["manifest"])
    check_common_parts(root, manifest)
    service = unit(root, "tdx-secret-receiver.service")
    assert unit_values(service, "ExecStart") == ["/usr/lib/tdx/tdx-secret-receiver serve --vsock 7171"]
    assert enabled(root, "multi-user.target.wants", "tdx-secret-receiver.service")
    assert not (root / "etc/tdx/ssh").exists() and not (root / "usr/sbin/sshd").exists()
    assert manifest["secret_delivery"]["backend"] == "vsock"


def test_ssh_image(images, tmp_path):
    project, result, root = images("ssh")
    manifest = read_json(result["manifest"])
    check_common_parts(root, manifest)
    key = (project.parent / "push_key.pub").read_text().strip()
    passwd = {line.split(":")[0]: line.split(":") for line in (root / "etc/passwd").read_text().splitlines()}
    account = passwd["tdx-secrets"]
    assert account[5:] == ["/run/tdx-secrets", "/bin/sh"] and int(account[2]) < 1000
    groups = {line.split(":")[0]: line.split(":") for line in (root / "etc/group").read_text().splitlines()}
    assert groups["tdx-secrets"][2] == account[3]
    authorized = root / "etc/tdx/ssh/authorized_keys"
    assert f"restrict {key}\n" in authorized.read_text()
    assert authorized.stat().st_uid == 0 and authorized.stat().st_mode & 0o7777 == 0o644
    assert not list((root / "etc/ssh").glob("ssh_host_*")), "host keys must be made at first boot, not shipped"
    keys_unit = unit(root, "tdx-ssh-host-keys.service")
    assert unit_values(keys_unit, "ExecStart") == ["/usr/bin/ssh-keygen -A"]
    assert unit_values(keys_unit, "Before") == ["ssh.service"]
    assert enabled(root, "ssh.service.requires", "tdx-ssh-host-keys.service")
    assert os.readlink(root / "etc/systemd/system/multi-user.target.wants/ssh.service").endswith("/ssh.service")
    service = unit(root, "tdx-secret-receiver.service")
    assert unit_values(service, "ExecStart") == [
        "/usr/lib/tdx/tdx-secret-receiver serve --unix /run/tdx-secrets/receiver.sock --socket-group tdx-secrets"]
    assert enabled(root, "multi-user.target.wants", "tdx-secret-receiver.service")
    assert manifest["secret_delivery"]["users"] == ["tdx-secrets"]

    # The image's own sshd reads the drop-in: for the account only, the forced relay and nothing else.
    host_keys = tmp_path / "hostkeys"
    host_keys.mkdir()
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(host_keys / "key")], check=True)

    def effective(user):
        out = in_image(root, "/usr/sbin/sshd", "-T", "-h", "/tmp/hostkeys/key", "-C", f"user={user},host=h,addr=127.0.0.1",
                       binds=[(host_keys, "/tmp/hostkeys"), (tmp_path, "/run")])
        assert out.returncode == 0, out.stderr
        return dict(line.split(" ", 1) for line in out.stdout.splitlines() if " " in line)

    (tmp_path / "sshd").mkdir()
    mine, other = effective("tdx-secrets"), effective("app")
    assert mine["forcecommand"] == "/usr/lib/tdx/tdx-secret-receiver relay --unix /run/tdx-secrets/receiver.sock"
    assert mine["authorizedkeysfile"] == "/etc/tdx/ssh/authorized_keys"
    for setting in ("permittty", "allowtcpforwarding", "x11forwarding", "passwordauthentication", "permituserrc",
                    "allowagentforwarding"):
        assert mine[setting] == "no", setting
    assert mine["authenticationmethods"] == "publickey"
    assert other["forcecommand"] == "none" and other["permittty"] == "yes"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def listening(port):
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def wait_for(ready, what, proc, seconds=20):
    deadline = time.monotonic() + seconds
    while not ready():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"{what} did not come up: {proc.communicate()[1]}")
        time.sleep(0.1)


def test_ssh_image_takes_a_push_through_its_own_sshd(images, tmp_path):
    """The image's sshd, account, forced relay and receiver service, run from the tree with
    bubblewrap, and `tdx secrets push --host` on the host: the path a VM takes, without the VM."""
    need("ssh")
    project, _, root = images("ssh")
    run, etc_app, keys, host_keys = (tmp_path / n for n in ("run", "etc-app", "keys", "hostkeys"))
    for folder in (run / "sshd", run / "tdx-secrets", etc_app, keys, host_keys):
        folder.mkdir(parents=True)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(host_keys / "key")], check=True)
    binds = [(run, "/run"), (etc_app, "/etc/app"), (keys, "/var/lib/app/keys"), (host_keys, "/tmp/hostkeys")]
    port = free_port()
    (receiver_command,) = unit_values(unit(root, "tdx-secret-receiver.service"), "ExecStart")
    started = []
    try:
        receiver = subprocess.Popen(bwrap_args(root, binds) + receiver_command.split(), stderr=subprocess.PIPE, text=True)
        started.append(receiver)
        wait_for((run / "tdx-secrets" / "receiver.sock").exists, "the receiver service", receiver)
        sshd = subprocess.Popen(bwrap_args(root, binds) + ["/usr/sbin/sshd", "-D", "-e", "-p", str(port), "-o",
                                                           "ListenAddress=127.0.0.1", "-o", "PidFile=none", "-h",
                                                           "/tmp/hostkeys/key"], stderr=subprocess.PIPE, text=True)
        started.append(sshd)
        wait_for(lambda: listening(port), "sshd", sshd)

        values = tmp_path / "prod.env"
        values.write_text("JWT_SECRET=jwt-over-ssh\nAPI_TOKEN=token-over-ssh\nRUN_KEY=run-key-over-ssh\n")

        def push(identity):
            return run_tdx("secrets", "push", "-C", project, "--file", values, "--host", "127.0.0.1", "--port", port,
                           "--identity", identity, "--known-hosts", tmp_path / "known_hosts", "-o",
                           "StrictHostKeyChecking=accept-new", expect=None, timeout=120)

        refused = push(host_keys / "key")  # a key the image does not list
        assert refused.returncode == 1 and not list(etc_app.iterdir()), refused.stdout + refused.stderr
        pushed = push(project.parent / "push_key")
        assert pushed.returncode == 0, pushed.stdout + pushed.stderr
        assert "jwt-over-ssh" not in pushed.stdout + pushed.stderr
    finally:
        for proc in started:
            proc.kill()
            proc.wait()
    jwt = etc_app / "jwt.hex"
    assert jwt.read_text() == "jwt-over-ssh"
    assert (jwt.stat().st_uid, jwt.stat().st_mode & 0o7777) == (850, 0o440)
    assert (keys / "token").read_text() == "token-over-ssh" and (run / "app" / "key").read_text() == "run-key-over-ssh"
    assert in_image(root, "/usr/lib/tdx/tdx-secret-receiver", "check", binds=binds).returncode == 0


def test_script_image_and_its_fetch_service_delivers(images, tmp_path):
    project, result, root = images("script")
    manifest = read_json(result["manifest"])
    check_common_parts(root, manifest)
    installed = root / "usr/lib/tdx/fetch-secrets"
    assert installed.read_bytes() == (project / "scripts/fetch-secrets.sh").read_bytes()
    assert installed.stat().st_mode & 0o7777 == 0o755
    service = unit(root, "tdx-secrets-fetch.service")
    commands = unit_values(service, "ExecStart")
    assert commands == ["/usr/lib/tdx/fetch-secrets", "/usr/lib/tdx/tdx-secret-receiver check"]
    assert enabled(root, "secrets-ready.target.wants", "tdx-secrets-fetch.service")
    env = dict(v.split("=", 1) for v in unit_values(service, "Environment"))

    # The service's commands, as systemd would run them, in the image tree; the destinations'
    # folders (and /run, a tmpfs at boot) are temporary folders of this test.
    writable = {"/etc/app": tmp_path / "etc-app", "/var/lib/app/keys": tmp_path / "keys", "/run": tmp_path / "run"}
    for folder in writable.values():
        folder.mkdir()
    source = tmp_path / "run" / "secret-source"
    source.mkdir()
    binds = [(host, inside) for inside, host in writable.items()]

    def run_service():
        return [in_image(root, *c.split(), binds=binds, env=env) for c in commands]

    # Only two of three values available: the fetch succeeds, the check says which one is missing.
    (source / "JWT_SECRET").write_text("jwt-value\n")
    (source / "API_TOKEN").write_bytes(b"\x00token\xff")
    fetched, checked = run_service()
    assert fetched.returncode == 0, fetched.stderr
    assert checked.returncode == 1 and "RUN_KEY" in checked.stderr and "JWT_SECRET" not in checked.stderr
    (source / "RUN_KEY").write_text("run-key")
    fetched, checked = run_service()
    assert (fetched.returncode, checked.returncode) == (0, 0), fetched.stderr + checked.stderr

    jwt = tmp_path / "etc-app" / "jwt.hex"
    assert jwt.read_text() == "jwt-value\n"
    assert (jwt.stat().st_uid, jwt.stat().st_gid, jwt.stat().st_mode & 0o7777) == (850, 850, 0o440)
    token = tmp_path / "keys" / "token"
    assert token.read_bytes() == b"\x00token\xff" and token.stat().st_mode & 0o7777 == 0o400
    run_key = tmp_path / "run" / "app" / "key"  # its folder made by the receiver, as at boot
    assert run_key.read_text() == "run-key" and run_key.stat().st_uid == 0 and run_key.stat().st_mode & 0o7777 == 0o600
    assert sorted(p.name for p in (tmp_path / "etc-app").iterdir()) == ["jwt.hex"]  # no temporary file left
    # What secrets-ready.target waits on now returns at once.
    waited = in_image(root, "/usr/lib/tdx/tdx-secret-receiver", "wait", binds=binds)
    assert waited.returncode == 0, waited.stderr


def test_fetch_script_and_receiver_are_image_inputs(tmp_path):
    """A changed fetch script or receiver makes mkosi run again; unchanged, it is skipped."""
    need("mkosi", "bwrap")
    project = make_project(tmp_path, "script")
    first = json.loads(run_tdx("build", "-C", project, "--json").stdout)
    assert json.loads(run_tdx("build", "-C", project, "--json").stdout)["mkosi_skipped"] is True

    script = project / "scripts" / "fetch-secrets.sh"
    script.write_text(FETCH_SCRIPT.replace("exit 0", "echo fetched; exit 0"))
    changed = json.loads(run_tdx("build", "-C", project, "--json").stdout)
    assert changed["mkosi_skipped"] is False and changed["sha256"] != first["sha256"]
    assert (Path(changed["image"]) / "usr/lib/tdx/fetch-secrets").read_text() == script.read_text()

    other_receiver = tmp_path / "tdx-secret-receiver"
    other_receiver.write_bytes(RECEIVER.read_bytes() + b"\0")  # same program, other bytes
    env = tdx_env(TDX_SECRET_RECEIVER=other_receiver)
    rebuilt = json.loads(run_tdx("build", "-C", project, "--json", env=env).stdout)
    assert rebuilt["mkosi_skipped"] is False
    manifest = read_json(rebuilt["manifest"])
    (entry,) = [f for f in manifest["secret_delivery"]["files"] if f["path"] == "/usr/lib/tdx/tdx-secret-receiver"]
    assert entry["sha256"] == hashlib.sha256(other_receiver.read_bytes()).hexdigest()


# --- refused inputs: evaluation or assembly fails before mkosi, naming the bad value ---------------

def emit_fails(project: Path, tdxfile: str, *fragments):
    write_tdxfile(project, tdxfile)
    proc = run_tdx("build", "-C", project, "--emit-mkosi", project / "tree", expect=1)
    for fragment in fragments:
        assert fragment in proc.stderr, proc.stderr
    assert not (project / "tree").exists()
    return proc.stderr


BASE = 'from tdx import Image\nimage = Image("bad", format="directory")\nimage.secret("TOKEN", dest="/etc/app/token")\n'


@pytest.mark.parametrize("call,fragments", [
    ('image.secret_delivery("ssh")', ["TDXfile:4", "needs authorized_key="]),
    ('image.secret_delivery("ssh", authorized_key="hunter2 AAAA")', ["'hunter2 AAAA' has key type 'hunter2'"]),
    ('image.secret_delivery("ssh", authorized_key="my-laptop-key")', ["'my-laptop-key' is not an OpenSSH public key line"]),
    ('image.secret_delivery("ssh", authorized_key="ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA==")',
     ["'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA==' does not hold a ssh-ed25519 key"]),
    ('image.secret_delivery("script")', ["TDXfile:4", "needs fetch_script="]),
    ('image.secret_delivery("script", fetch_script="missing.sh")', ["fetch_script '", "/missing.sh' does not exist"]),
    ('image.secret_delivery("vsock", port=-1)', ["port -1 is not a vsock port"]),
    ('image.secret_delivery("vsock", max_size=1 << 30)', ["max_size 1073741824 is outside 1..1048576"]),
    ('image.secret_delivery("vsock", colour="blue")', ["unknown parameter 'colour'"]),
])
def test_bad_options_are_refused_quoting_the_value(tmp_path, call, fragments):
    emit_fails(tmp_path / "p", BASE + call + "\n", *fragments)


def test_a_private_key_is_refused_without_being_repeated(tmp_path):
    need("ssh-keygen")
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "id")], check=True)
    private = (tmp_path / "id").read_text()
    stderr = emit_fails(tmp_path / "p", BASE + f'image.secret_delivery("ssh", authorized_key={private!r})\n',
                        "is a private key; give the public key line")
    body = "".join(private.splitlines()[1:-1])
    assert body[:40] not in stderr.replace("\n", "")


def test_secrets_without_a_delivery_backend_are_refused(tmp_path):
    emit_fails(tmp_path / "p", BASE, "TDXfile:3", "secret 'TOKEN' is declared, but the image has no way to receive it",
               'image.secret_delivery("ssh"')


def test_delivery_files_and_accounts_must_not_collide_with_the_recipe(tmp_path):
    emit_fails(tmp_path / "a", BASE.replace("/etc/app/token", "/etc/tdx/secrets.list") + 'image.secret_delivery("vsock")\n',
               "secret delivery 'vsock'", "writes /etc/tdx/secrets.list, which the secret 'TOKEN' at")
    key = public_key(tmp_path)
    emit_fails(tmp_path / "b", BASE + f'image.user("pusher", system=True)\nimage.secret_delivery("ssh", '
                                      f'authorized_key={key!r}, user="pusher")\n',
               "creates user 'pusher', which image.user() at", "TDXfile:4")


def test_a_backend_without_secrets_waits_for_nothing(tmp_path):
    project = tmp_path / "p"
    write_tdxfile(project, 'from tdx import Image\nimage = Image("none", format="directory")\n'
                           'image.secret_delivery("vsock")\n')
    run_tdx("build", "-C", project, "--emit-mkosi", project / "tree")
    staged = [p.read_bytes() for p in sorted((project / "tree" / "tdx-stage").iterdir())]
    assert b"tdx-secrets 1\n" in staged  # the list holds only its header: the target is reached at once


# --- secret values stay on the host -----------------------------------------------------------------

def files_containing(folder: Path, needles):
    """Every file under `folder` (symlinks not followed) whose bytes contain one of `needles`."""
    hits = []
    for dirpath, dirnames, filenames in os.walk(folder):
        for name in filenames:
            path = Path(dirpath, name)
            if path.is_symlink() or not path.is_file():
                continue
            data = path.read_bytes()
            hits += [f"{path}: {n!r}" for n in needles if n in data]
    return hits


def test_secret_values_never_reach_the_image_manifest_logs_or_cache(tmp_path):
    need("mkosi", "bwrap")
    project = make_project(tmp_path, "ssh")
    values = {name: f"tdx-leak-probe-{name.lower()}-{os.urandom(8).hex()}" for name, *_ in SECRETS}
    secrets_env = project / "secrets.env"
    secrets_env.write_text("".join(f"{k}={v}\n" for k, v in values.items()))
    # A cache of its own (only mkosi's downloaded packages shared), so all of it can be searched.
    cache = tmp_path / "cache"
    cache.mkdir()
    (SHARED_CACHE / "mkosi-packages").mkdir(parents=True, exist_ok=True)
    shutil.copytree(SHARED_CACHE / "mkosi-packages", cache / "mkosi-packages")
    env = tdx_env(TDX_CACHE_DIR=cache)

    with_values = run_tdx("build", "-C", project, "-o", tmp_path / "out-with", "--json", env=env)
    secrets_env.unlink()
    without = run_tdx("build", "-C", project, "-o", tmp_path / "out-without", "--json", env=env)
    a, b = json.loads(with_values.stdout), json.loads(without.stdout)
    assert a["mkosi_skipped"] is False and b["mkosi_skipped"] is False
    assert a["sha256"] == b["sha256"]
    assert tree_listing(Path(a["image"])) == tree_listing(Path(b["image"]))

    needles = [v.encode() for v in values.values()]
    searched = [tmp_path / "out-with", tmp_path / "out-without", cache, project]
    assert (tmp_path / "out-with" / "vault-ssh.mkosi.log").is_file()  # the build log is among them
    hits = []
    for folder in searched:
        hits += files_containing(folder, needles)
    for output in (with_values.stdout, with_values.stderr, without.stdout, without.stderr):
        hits += [n.decode() for n in needles if n.decode() in output]
    assert hits == []
