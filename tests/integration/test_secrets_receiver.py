"""Secret delivery with real parts: the receiver writing into a temporary root, `tdx secrets push`
over a Unix socket, AF_VSOCK where the kernel offers loopback, and a real sshd on loopback with
the receiver as its forced command (directly, and through the relay to a root service).

The temporary root has its own etc/passwd and etc/group with a service account (uid 4711) and a
shared group (gid 4712); the tests run as root, so chown is real.
"""

import errno
import grp
import json
import os
import signal
import socket
import struct
import subprocess
import time
from pathlib import Path

import pytest

from conftest import BUILD, need, run_tdx, write_tdxfile

RECEIVER = BUILD / "lib" / "tdx" / "libexec" / "tdx-secret-receiver"
SVC_UID, SVC_GID, SHARED_GID = 4711, 4711, 4712

# Distinctive values, so that a search for them anywhere cannot match by chance.
JWT_VALUE = "jwt-5b1f0c9e7d3a-do-not-print"
TLS_VALUE = "-----BEGIN TEST KEY-----\ntls-a8c24e61f0b7-do-not-print\n-----END TEST KEY-----\n"
VALUES = [JWT_VALUE, TLS_VALUE.strip(), "tls-a8c24e61f0b7-do-not-print"]

TDXFILE = """\
from tdx import Image
image = Image("secrets-test", base="debian/bookworm")
image.user("svc", system=True, uid=4711)
image.secret("JWT", dest="/etc/app/jwt.hex", owner="svc")
image.secret("TLS", dest="/etc/app/tls/key.pem", owner="svc", group="shared", mode="0440")
image.secret_delivery({delivery})
"""


def secrets_list(jwt_cap=65536, tls_cap=65536, extra=""):
    return ("tdx-secrets 1\n"
            f"JWT\t/etc/app/jwt.hex\tsvc\t\t0400\t{jwt_cap}\n"
            f"TLS\t/etc/app/tls/key.pem\tsvc\tshared\t0440\t{tls_cap}\n" + extra)


class Vm:
    """A temporary root the receiver writes into, with its secrets.list beside it."""

    def __init__(self, base: Path):
        self.base = base
        self.root = base / "root"
        (self.root / "etc").mkdir(parents=True)
        (self.root / "etc" / "passwd").write_text(
            "root:x:0:0:root:/root:/bin/sh\nsvc:x:4711:4711::/var/lib/svc:/usr/sbin/nologin\n")
        (self.root / "etc" / "group").write_text("root:x:0:\nsvc:x:4711:\nshared:x:4712:svc\n")
        self.config = base / "secrets.list"
        self.config.write_text(secrets_list())

    def args(self):
        return ["--config", str(self.config), "--root", str(self.root)]

    def run(self, *args, stdin=b"", expect=None):
        proc = subprocess.run([str(RECEIVER), *self.args(), *args], input=stdin, capture_output=True, timeout=60)
        if expect is not None:
            assert proc.returncode == expect, (proc.returncode, proc.stdout, proc.stderr)
        return proc

    def put(self, name, value: bytes, expect=0):
        return self.run("put", name, stdin=value, expect=expect)

    def snapshot(self):
        """Every path under the root with its bytes, owner and mode: the state a refusal must not change."""
        out = {"secrets.list": self.config.read_bytes()}
        for p in sorted(self.root.rglob("*")):
            st = p.lstat()
            out[str(p.relative_to(self.root))] = (p.read_bytes() if p.is_file() and not p.is_symlink() else None,
                                                  st.st_uid, st.st_gid, st.st_mode)
        return out

    def stat(self, rel):
        return (self.root / rel).stat()

    def read(self, rel):
        return (self.root / rel).read_bytes()


@pytest.fixture
def vm(tmp_path):
    assert RECEIVER.exists(), f"{RECEIVER} is missing: run scripts/build.sh"
    return Vm(tmp_path / "vm")


@pytest.fixture
def project(tmp_path):
    """A TDXfile declaring JWT and TLS, and an env file with both values."""
    folder = tmp_path / "project"
    write_tdxfile(folder, TDXFILE.format(delivery='"vsock"'))
    (folder / "certs").mkdir()
    (folder / "certs" / "key.pem").write_text(TLS_VALUE)
    (folder / "secrets.env").write_text(f"# test values\nJWT={JWT_VALUE}\n\nTLS=@certs/key.pem\n")
    return folder


def assert_no_values(*texts):
    for text in texts:
        if isinstance(text, bytes):
            text = text.decode(errors="replace")
        for value in VALUES:
            assert value not in text, f"a secret value leaked into: {text[:2000]}"


def assert_delivered(vm):
    assert vm.read("etc/app/jwt.hex") == JWT_VALUE.encode()
    assert vm.read("etc/app/tls/key.pem") == TLS_VALUE.encode()
    jwt, tls = vm.stat("etc/app/jwt.hex"), vm.stat("etc/app/tls/key.pem")
    assert (jwt.st_uid, jwt.st_gid, jwt.st_mode & 0o7777) == (SVC_UID, SVC_GID, 0o400)
    assert (tls.st_uid, tls.st_gid, tls.st_mode & 0o7777) == (SVC_UID, SHARED_GID, 0o440)
    leftovers = [p.name for p in (vm.root / "etc" / "app").rglob(".*tdx-new-*")]
    assert leftovers == []


# ---- the receiver against a temporary root -------------------------------------------------

def test_put_writes_contents_owner_group_and_mode_and_check_follows(vm):
    first = vm.run("check", expect=1)
    assert b"missing: JWT, TLS" in first.stderr
    vm.put("JWT", JWT_VALUE.encode())
    vm.put("TLS", TLS_VALUE.encode())
    assert_delivered(vm)
    app = vm.stat("etc/app/tls")
    assert (app.st_uid, app.st_mode & 0o7777) == (0, 0o755)  # folders the receiver makes
    ok = vm.run("check", expect=0)
    assert b"all 2 declared secret(s) are in place" in ok.stderr
    # A wrong mode or owner is not "in place".
    os.chmod(vm.root / "etc/app/jwt.hex", 0o644)
    os.chown(vm.root / "etc/app/tls/key.pem", 0, 0)
    wrong = vm.run("check", expect=1)
    assert b"jwt.hex: mode 0644, expected 0400" in wrong.stderr
    assert b"key.pem: owner 0:0, expected svc:shared (4711:4712)" in wrong.stderr


def test_put_replaces_atomically(vm):
    vm.put("JWT", b"old-value")
    before = vm.stat("etc/app/jwt.hex").st_ino
    with open(vm.root / "etc/app/jwt.hex", "rb") as reader:
        vm.put("JWT", JWT_VALUE.encode())
        assert reader.read() == b"old-value"  # the open file is the old inode, whole
    assert vm.read("etc/app/jwt.hex") == JWT_VALUE.encode()
    assert vm.stat("etc/app/jwt.hex").st_ino != before  # renamed over, not rewritten in place
    assert sorted(p.name for p in (vm.root / "etc/app").iterdir()) == ["jwt.hex"]


@pytest.mark.parametrize("case", ["unknown-name", "traversal-name", "oversized", "symlinked-parent",
                                  "malformed-config", "unknown-owner"])
def test_refusals_leave_nothing_half_written(vm, tmp_path, case):
    vm.put("JWT", b"kept-value")
    outside = tmp_path / "outside"
    outside.mkdir()
    name, value = "TLS", TLS_VALUE.encode()
    if case == "unknown-name":
        name = "NOT_DECLARED"
        message = "NOT_DECLARED is not declared in"
    elif case == "traversal-name":
        name = "../../etc/shadow"
        message = "'../../etc/shadow' is not a secret name"
    elif case == "oversized":
        vm.config.write_text(secrets_list(tls_cap=16))
        message = f"TLS: the value on stdin is larger than its cap of 16 bytes; nothing was written"
    elif case == "symlinked-parent":
        (vm.root / "etc/app/tls").symlink_to(outside)
        message = f"/etc/app/tls is a symlink (to {outside})"
    elif case == "malformed-config":
        vm.config.write_text(secrets_list() + "BROKEN\t/etc/x\troot\n")
        message = f"{vm.config}:4: expected 6 TAB-separated fields"
    else:
        vm.config.write_text(secrets_list().replace("svc\tshared", "ghost\tshared"))
        message = "TLS: owner 'ghost' is not a user in"
    before = vm.snapshot()
    proc = vm.put(name, value, expect=1)
    assert message in proc.stderr.decode(), proc.stderr
    assert_no_values(proc.stdout, proc.stderr)
    assert vm.snapshot() == before
    assert list(outside.iterdir()) == []
    assert vm.read("etc/app/jwt.hex") == b"kept-value"


def test_wait_returns_once_put_completes(vm):
    waiter = subprocess.Popen([str(RECEIVER), *vm.args(), "wait", "--interval", "0.1"], stderr=subprocess.PIPE)
    try:
        time.sleep(0.6)
        assert waiter.poll() is None, "wait returned before any secret was delivered"
        vm.put("JWT", JWT_VALUE.encode())
        time.sleep(0.6)
        assert waiter.poll() is None, "wait returned with TLS still missing"
        vm.put("TLS", TLS_VALUE.encode())
        assert waiter.wait(timeout=10) == 0
    finally:
        if waiter.poll() is None:
            waiter.kill()
    log = waiter.stderr.read().decode()
    assert "waiting for 2 of 2 secret(s)" in log and "missing: JWT, TLS" in log
    assert "waiting for 1 of 2 secret(s)" in log and "missing: TLS" in log
    assert log.rstrip().endswith("all 2 declared secret(s) are in place")
    assert_no_values(log)


# ---- push over a Unix socket ----------------------------------------------------------------

class Server:
    """`tdx-secret-receiver serve ...` in the background, its log in a file."""

    def __init__(self, vm, *serve_args, ready=None):
        self.log = vm.base / f"serve-{time.monotonic_ns()}.log"
        self.proc = subprocess.Popen([str(RECEIVER), *vm.args(), "serve", *serve_args],
                                     stderr=open(self.log, "wb"))
        deadline = time.monotonic() + 10
        while not ready():
            if self.proc.poll() is not None:
                raise AssertionError(f"the receiver exited {self.proc.returncode}: {self.text()}")
            assert time.monotonic() < deadline, f"the receiver did not start: {self.text()}"
            time.sleep(0.05)

    def text(self):
        return self.log.read_text(errors="replace")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=10)
        return self.text()


@pytest.fixture
def unix_server(vm):
    sock = vm.base / "run" / "receiver.sock"
    server = Server(vm, "--unix", str(sock), ready=sock.exists)
    server.sock = sock
    yield server
    server.stop()


def push(project, *target, expect=0, env_file=None):
    return run_tdx("secrets", "push", "-C", project, "--file", env_file or project / "secrets.env", *target,
                   expect=expect, timeout=120)


def test_unix_socket_push_end_to_end(vm, project, unix_server):
    assert (unix_server.sock.stat().st_mode & 0o777) == 0o660
    proc = push(project, "--unix", unix_server.sock)
    assert "stored      JWT  /etc/app/jwt.hex (29 bytes)" in proc.stdout
    assert "the VM confirmed all 2 secret(s); every declared secret is in place" in proc.stdout
    assert_delivered(vm)
    report = json.loads(push(project, "--unix", unix_server.sock, "--json").stdout)
    assert report["transport"] == "unix" and report["complete"] is True and report["missing"] == []
    assert [(s["name"], s["dest"], s["stored"]) for s in report["secrets"]] == [
        ("JWT", "/etc/app/jwt.hex", True), ("TLS", "/etc/app/tls/key.pem", True)]
    log = unix_server.stop()
    assert "stored JWT -> " in log and "session committed, 2 secret(s) stored" in log
    assert_no_values(proc.stdout, proc.stderr, log, json.dumps(report))


def test_secrets_list_shows_declarations_without_values(project):
    text = run_tdx("secrets", "list", "-C", project).stdout
    assert "image 'secrets-test': 2 secrets, delivery vsock" in text
    assert "TLS   /etc/app/tls/key.pem  svc:shared  0440" in text
    listing = json.loads(run_tdx("secrets", "list", "-C", project, "--json").stdout)
    assert listing["backend"] == "vsock"
    assert [(s["name"], s["owner"], s["group"], s["mode"], s["max_bytes"]) for s in listing["secrets"]] == [
        ("JWT", "svc", "", "0400", 65536), ("TLS", "svc", "shared", "0440", 65536)]
    assert_no_values(text, json.dumps(listing))


@pytest.mark.parametrize("case,env,message", [
    ("unknown", f"JWT={JWT_VALUE}\nTLS=@certs/key.pem\nJWTT={JWT_VALUE}x\n",
     "not declared by the TDXfile: JWTT (line 3; did you mean JWT?)"),
    ("missing", f"JWT={JWT_VALUE}\n", "declared but not set in"),
    ("duplicate", f"JWT={JWT_VALUE}\nTLS=@certs/key.pem\nJWT={JWT_VALUE}\n",
     "secrets.env:3: JWT is set again (first at line 1)"),
    ("no-name", f"JWT={JWT_VALUE}\n{JWT_VALUE}\n", "secrets.env:2: expected NAME=value or NAME=@path"),
])
def test_push_refuses_bad_env_files_before_connecting(vm, project, unix_server, case, env, message):
    (project / "secrets.env").write_text(env)
    before = vm.snapshot()
    proc = push(project, "--unix", unix_server.sock, expect=1)
    assert message in proc.stderr
    assert vm.snapshot() == before
    log = unix_server.stop()
    assert "session" not in log, "push connected although the env file was refused"
    assert_no_values(proc.stdout, proc.stderr, log)


def test_push_sends_nothing_to_a_vm_declaring_other_secrets(vm, project, unix_server):
    vm.config.write_text(secrets_list(tls_cap=16) + "OTHER\t/etc/other\troot\t\t0400\t64\n")
    before = vm.snapshot()
    proc = push(project, "--unix", unix_server.sock, expect=1)
    assert "the VM's image declares other secrets than this TDXfile; no value was sent" in proc.stderr
    assert "the VM also expects: OTHER" in proc.stderr
    assert "larger than the VM accepts: TLS (78 bytes, cap 16)" in proc.stderr
    assert vm.snapshot() == before
    log = unix_server.stop()
    assert "the client closed the connection before commit" in log
    assert_no_values(proc.stdout, proc.stderr, log)


def test_vm_side_refusal_is_reported_and_nothing_is_stored(vm, project, unix_server):
    vm.config.write_text(secrets_list().replace("svc\tshared", "ghost\tshared"))
    before = vm.snapshot()
    proc = push(project, "--unix", unix_server.sock, expect=1)
    assert "the VM refused the delivery (store-failed): TLS: owner 'ghost' is not a user in" in proc.stderr
    assert "nothing was stored; the VM keeps what it had" in proc.stderr
    assert vm.snapshot() == before  # JWT was staged first, then removed with the session
    assert_no_values(proc.stdout, proc.stderr, unix_server.stop())


def test_push_to_a_missing_socket_says_how_to_start_one(project, tmp_path):
    proc = push(project, "--unix", tmp_path / "absent.sock", expect=1)
    assert f"cannot reach the receiver at {tmp_path / 'absent.sock'}: No such file or directory" in proc.stderr


# ---- the protocol spoken by hand (docs/secret-delivery.md), against the real receiver --------

class RawClient:
    """A second implementation of the wire format, written from the document, for what push never sends."""

    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(20)
        self.sock.connect(str(path))

    def send(self, kind, payload=b""):
        self.sock.sendall(struct.pack(">BI", kind, len(payload)) + payload)

    def hello(self, version=1):
        self.send(0x01, b"TDXS" + struct.pack(">H", version))
        return self.receive()

    def secret(self, name: bytes, value: bytes):
        self.send(0x02, struct.pack(">H", len(name)) + name + value)
        return self.receive()

    def receive(self):
        header = self._exact(5)
        if header is None:
            return None
        kind, length = struct.unpack(">BI", header)
        return kind, self._exact(length)

    def _exact(self, n):
        data = b""
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            if not chunk:
                return None if not data else data
            data += chunk
        return data

    def close(self):
        self.sock.close()


def error_of(frame):
    kind, payload = frame
    assert kind == 0xEE, frame
    return struct.unpack(">H", payload[:2])[0], payload[2:].decode()


def test_welcome_lists_the_declared_secrets_and_caps(vm, unix_server):
    client = RawClient(unix_server.sock)
    kind, payload = client.hello()
    assert kind == 0x81 and payload[:4] == b"TDXS"
    version, max_frame, max_session, count = struct.unpack(">HIIH", payload[4:16])
    assert (version, max_frame, max_session, count) == (1, (1 << 20) + 1024, 16 << 20, 2)
    rest, names = payload[16:], []
    for _ in range(count):
        (n,) = struct.unpack(">H", rest[:2])
        names.append((rest[2:2 + n].decode(), struct.unpack(">I", rest[2 + n:6 + n])[0]))
        rest = rest[6 + n:]
    assert names == [("JWT", 65536), ("TLS", 65536)] and rest == b""
    client.close()


@pytest.mark.parametrize("case", ["traversal", "undeclared", "oversized-value", "oversized-frame", "version",
                                  "unknown-frame"])
def test_receiver_refuses_hostile_frames_and_keeps_nothing(vm, unix_server, case):
    vm.config.write_text(secrets_list(tls_cap=32))
    before = vm.snapshot()
    client = RawClient(unix_server.sock)
    if case == "version":
        code, reason = error_of(client.hello(version=9))
        assert (code, reason) == (2, "the client speaks protocol version 9; this receiver speaks version 1 "
                                     "(use a tdx that matches the image)")
    else:
        assert client.hello()[0] == 0x81
        assert client.secret(b"JWT", JWT_VALUE.encode()) == (0x82, struct.pack(">H", 3) + b"JWT" + struct.pack(">I", 29))
        if case == "traversal":
            code, reason = error_of(client.secret(b"../../etc/shadow", b"x"))
            assert code == 3 and "shadow" not in reason
        elif case == "undeclared":
            code, reason = error_of(client.secret(b"ROOT_PASSWORD", b"x"))
            assert code == 3 and reason.startswith("ROOT_PASSWORD is not declared in")
        elif case == "oversized-value":
            code, reason = error_of(client.secret(b"TLS", TLS_VALUE.encode()))
            assert (code, reason) == (4, "TLS: the value has 78 bytes, more than its cap of 32")
        elif case == "oversized-frame":
            client.sock.sendall(struct.pack(">BI", 0x02, 64 << 20))  # announces 64 MiB, sends none of it
            code, reason = error_of(client.receive())
            assert code == 4 and str(64 << 20) in reason
        else:
            client.send(0x42)
            code, reason = error_of(client.receive())
            assert (code, reason) == (1, "unexpected frame type 0x42")
    assert client.receive() is None  # the receiver closed the session
    client.close()
    assert vm.snapshot() == before  # JWT was accepted (staged), and is gone with the session
    log = unix_server.stop()
    assert "session ended without storing anything new" in log
    assert_no_values(log)


def test_stalled_client_is_dropped_and_the_next_one_is_served(vm, project, tmp_path):
    sock = vm.base / "run" / "receiver.sock"
    server = Server(vm, "--unix", str(sock), "--timeout", "1", "--socket-group", "daemon", "--socket-mode", "0600",
                    ready=sock.exists)
    try:
        st = sock.stat()
        assert (st.st_mode & 0o777, st.st_gid) == (0o600, grp.getgrnam("daemon").gr_gid)
        stalled = RawClient(sock)
        assert stalled.hello()[0] == 0x81
        stalled.sock.sendall(struct.pack(">BI", 0x02, 100) + b"JWT")  # then nothing more
        started = time.monotonic()
        code, reason = error_of(stalled.receive())
        assert (code, reason) == (7, "the peer sent nothing for too long")
        assert time.monotonic() - started < 10
        stalled.close()
        proc = push(project, "--unix", sock)
        assert "every declared secret is in place" in proc.stdout
        assert_delivered(vm)
    finally:
        log = server.stop()
    assert_no_values(log)


def test_stopping_the_receiver_mid_session_removes_what_was_staged(vm, unix_server):
    client = RawClient(unix_server.sock)
    assert client.hello()[0] == 0x81
    assert client.secret(b"JWT", JWT_VALUE.encode())[0] == 0x82
    staged = list((vm.root / "etc/app").glob(".jwt.hex.tdx-new-*"))
    assert len(staged) == 1 and staged[0].read_bytes() == JWT_VALUE.encode()
    unix_server.proc.send_signal(signal.SIGTERM)
    code, reason = error_of(client.receive())
    assert (code, reason) == (8, "the receiver is stopping")
    assert unix_server.proc.wait(timeout=10) == 0
    assert not (vm.root / "etc/app").exists()  # the temporary file and the folder made for it
    assert not unix_server.sock.exists()
    client.close()


def test_serve_refuses_a_malformed_list_at_start(vm):
    vm.config.write_text("tdx-secrets 1\nJWT\t/etc/app/jwt.hex\tsvc\t\t0999\t64\n")
    proc = vm.run("serve", "--unix", str(vm.base / "r.sock"), expect=1)
    assert f"{vm.config}:2: JWT: mode '0999' is not an octal mode like 0440" in proc.stderr.decode()
    assert not (vm.base / "r.sock").exists()
    usage = vm.run("serve", expect=2)
    assert b"serve needs exactly one of --stdio, --unix PATH, --vsock PORT" in usage.stderr


# ---- AF_VSOCK ------------------------------------------------------------------------------

def vsock_loopback_port():
    """A free vsock port on the loopback CID, or pytest.skip saying why there is none."""
    if not hasattr(socket, "AF_VSOCK"):
        pytest.skip("this Python has no AF_VSOCK")
    try:
        s = socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)
    except OSError as e:
        pytest.skip(f"the kernel offers no AF_VSOCK sockets here ({e.strerror}); the same protocol code is "
                    "tested over a Unix socket")
    with s:
        try:
            s.bind((socket.VMADDR_CID_LOCAL if hasattr(socket, "VMADDR_CID_LOCAL") else 1, socket.VMADDR_PORT_ANY))
        except OSError as e:
            pytest.skip(f"vsock loopback (CID 1) is not available: bind fails with {errno.errorcode.get(e.errno)} "
                        f"({e.strerror}); the vsock_loopback transport is not loaded, so the same protocol code is "
                        "tested over a Unix socket instead")
        return s.getsockname()[1]


def test_vsock_loopback_push(vm, project):
    port = vsock_loopback_port()

    def listening():
        try:
            with socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM) as probe:
                probe.connect((1, port))
            return True
        except OSError:
            return False

    server = Server(vm, "--vsock", str(port), ready=listening)
    try:
        proc = push(project, "--vsock", "1", "--port", str(port))
        assert "every declared secret is in place" in proc.stdout
        assert_delivered(vm)
    finally:
        log = server.stop()
    assert_no_values(proc.stdout, proc.stderr, log)


# ---- ssh: a real sshd on loopback ----------------------------------------------------------

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Sshd:
    """/usr/sbin/sshd on 127.0.0.1 with its own host key, config and authorized_keys."""

    def __init__(self, folder: Path, authorized_keys: str, extra_config=""):
        need("sshd", "ssh", "ssh-keygen")
        folder.mkdir(parents=True)
        self.folder = folder
        self.port = free_port()
        keygen = ["ssh-keygen", "-q", "-t", "ed25519", "-N", ""]
        subprocess.run([*keygen, "-f", folder / "host_key"], check=True)
        (folder / "authorized_keys").write_text(authorized_keys)
        host_pub = (folder / "host_key.pub").read_text().split()
        self.known_hosts = folder / "known_hosts"
        self.known_hosts.write_text(f"[127.0.0.1]:{self.port} {host_pub[0]} {host_pub[1]}\n")
        (folder / "sshd_config").write_text(
            f"Port {self.port}\nListenAddress 127.0.0.1\nHostKey {folder / 'host_key'}\n"
            f"PidFile {folder / 'sshd.pid'}\nAuthorizedKeysFile {folder / 'authorized_keys'}\n"
            "PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\n"
            "LogLevel DEBUG3\n" + extra_config)
        Path("/run/sshd").mkdir(exist_ok=True)  # sshd's privilege separation folder
        self.log = folder / "sshd.log"
        self.proc = subprocess.Popen(["/usr/sbin/sshd", "-D", "-e", "-f", str(folder / "sshd_config")],
                                     stderr=open(self.log, "wb"))
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                if self.proc.poll() is not None:
                    raise AssertionError(f"sshd exited: {self.log.read_text()}")
                assert time.monotonic() < deadline, "sshd did not start listening"
                time.sleep(0.05)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
        return self.log.read_text(errors="replace")


def client_key(folder: Path, name="client"):
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", folder / name], check=True)
    return folder / name, (folder / f"{name}.pub").read_text().strip()


def ssh_project(project, public_key):
    write_tdxfile(project, TDXFILE.format(delivery=f'"ssh", authorized_key={public_key!r}'))


def push_ssh(project, sshd, identity, *extra, expect=0, known_hosts=None):
    return push(project, "--host", "127.0.0.1", "--port", str(sshd.port), "--user", "root", "--identity", identity,
                "--known-hosts", known_hosts or sshd.known_hosts, *extra, expect=expect)


@pytest.fixture
def forced_command_sshd(tmp_path, vm, project):
    need("sshd", "ssh", "ssh-keygen")
    key, public = client_key(tmp_path / "keys")
    ssh_project(project, public)
    command = f"{RECEIVER} serve --stdio --config {vm.config} --root {vm.root}"
    sshd = Sshd(tmp_path / "sshd", f'restrict,command="{command}" {public}\n',
                "PermitRootLogin forced-commands-only\n")
    sshd.key = key
    yield sshd
    sshd.stop()


def test_ssh_push_with_the_receiver_as_forced_command(vm, project, forced_command_sshd, tmp_path):
    sshd = forced_command_sshd
    proc = push_ssh(project, sshd, sshd.key)
    assert "the VM confirmed all 2 secret(s)" in proc.stdout
    assert "over ssh" in proc.stderr
    assert_delivered(vm)
    report = json.loads(push_ssh(project, sshd, sshd.key, "--json").stdout)
    assert report["transport"] == "ssh" and report["complete"]
    assert report["target"] == f"root@127.0.0.1:{sshd.port} over ssh"
    assert_no_values(proc.stdout, proc.stderr, sshd.stop())


def test_ssh_wrong_key_is_refused_clearly_and_nothing_written(vm, project, forced_command_sshd, tmp_path):
    wrong, _ = client_key(tmp_path / "keys", "wrong")
    before = vm.snapshot()
    proc = push_ssh(project, forced_command_sshd, wrong, expect=1)
    assert f"the VM refused the ssh key for root@127.0.0.1:{forced_command_sshd.port} over ssh" in proc.stderr
    assert "Permission denied (publickey)" in proc.stderr
    assert "pass the matching private key with --identity KEY" in proc.stderr
    assert vm.snapshot() == before
    assert_no_values(proc.stdout, proc.stderr, forced_command_sshd.stop())


def test_ssh_unknown_host_key_is_refused_unless_trusted_on_first_use(vm, project, forced_command_sshd, tmp_path):
    empty = tmp_path / "empty_known_hosts"
    empty.write_text("")
    before = vm.snapshot()
    proc = push_ssh(project, forced_command_sshd, forced_command_sshd.key, expect=1, known_hosts=empty)
    assert "ssh could not verify the VM's host key" in proc.stderr and "Host key verification failed" in proc.stderr
    assert vm.snapshot() == before
    # Trust on first use, as the hint says (a VM makes its host key at first boot): the user's -o wins.
    proc = push_ssh(project, forced_command_sshd, forced_command_sshd.key, "-o", "StrictHostKeyChecking=accept-new",
                    known_hosts=empty)
    assert "every declared secret is in place" in proc.stdout
    host_key = (forced_command_sshd.folder / "host_key.pub").read_text().split()[1]
    assert host_key in empty.read_text()  # recorded (hashed, as Debian's ssh_config asks)
    assert_delivered(vm)


def test_ssh_vm_refusal_reaches_the_host_and_nothing_is_written(vm, project, forced_command_sshd):
    vm.config.write_text(secrets_list().replace("svc\tshared", "ghost\tshared"))
    before = vm.snapshot()
    proc = push_ssh(project, forced_command_sshd, forced_command_sshd.key, expect=1)
    assert "the VM refused the delivery (store-failed): TLS: owner 'ghost' is not a user in" in proc.stderr
    assert vm.snapshot() == before


def test_ssh_relay_to_the_root_receiver_service(vm, project, tmp_path):
    """The image's layout: sshd forces `relay --unix SOCK` on the account; a root service serves SOCK."""
    need("sshd", "ssh", "ssh-keygen")
    key, public = client_key(tmp_path / "keys")
    ssh_project(project, public)
    sock = vm.base / "run" / "receiver.sock"
    sshd = Sshd(tmp_path / "sshd", f"restrict {public}\n",
                "PermitRootLogin prohibit-password\nMatch User root\n"
                f"  ForceCommand {RECEIVER} relay --unix {sock}\n"
                "  AllowTcpForwarding no\n  X11Forwarding no\n  PermitTTY no\n")
    try:
        # No receiver service yet: the relay answers with an error frame, and push says so.
        before = vm.snapshot()
        down = push_ssh(project, sshd, key, expect=1)
        assert "the VM refused the delivery (unavailable): the receiver service is not reachable at" in down.stderr
        assert vm.snapshot() == before
        server = Server(vm, "--unix", str(sock), ready=sock.exists)
        try:
            proc = push_ssh(project, sshd, key)
            assert "every declared secret is in place" in proc.stdout
            assert_delivered(vm)
        finally:
            log = server.stop()
        assert "session committed, 2 secret(s) stored" in log
    finally:
        sshd_log = sshd.stop()
    assert_no_values(down.stdout, down.stderr, proc.stdout, proc.stderr, log, sshd_log)


def test_no_value_in_any_output_or_log(vm, project, forced_command_sshd, tmp_path):
    """Every refusal path and every success path, then a search of everything that was printed or logged."""
    texts = []
    sshd = forced_command_sshd
    # Success over ssh, with sshd logging at DEBUG3.
    proc = push_ssh(project, sshd, sshd.key, "--json")
    texts += [proc.stdout, proc.stderr]
    # The VM refuses (a value over its cap): the receiver's error goes back through ssh.
    vm.config.write_text(secrets_list(jwt_cap=8))
    (project / "secrets.env").write_text(f"JWT={JWT_VALUE}\nTLS=@certs/key.pem\n")
    proc = push_ssh(project, sshd, sshd.key, expect=1)
    assert "larger than the VM accepts: JWT (29 bytes, cap 8)" in proc.stderr
    texts += [proc.stdout, proc.stderr]
    # Values quoted in places a careless program would echo: a line without a name, a bad name.
    for env in (f"JWT={JWT_VALUE}\n{TLS_VALUE.strip().splitlines()[1]}\n", f"9{JWT_VALUE}=x\n"):
        (project / "secrets.env").write_text(env)
        proc = push_ssh(project, sshd, sshd.key, expect=1)
        texts += [proc.stdout, proc.stderr]
    # The receiver's own put/check/wait logs.
    vm.config.write_text(secrets_list())
    texts += [vm.put("JWT", JWT_VALUE.encode()).stderr, vm.put("TLS", TLS_VALUE.encode()).stderr]
    texts += [vm.run("check").stderr, vm.run("wait").stderr]
    texts.append(sshd.stop())
    assert len(texts) >= 12
    assert_no_values(*texts)
    # And the values did arrive where they belong, proving the search looked at a real delivery.
    assert_delivered(vm)
