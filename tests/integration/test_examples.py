"""The worked examples of the module-system design (§12), as the projects under examples/: each
is built by `tdx build` (directory format), its image tree is checked, and its services' programs
(stand-ins for clients whose sources cannot be downloaded here) are started from the image tree
under bwrap, in a network namespace of their own, and answer on their configured ports."""

import hashlib
import json
import shlex
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from conftest import EXAMPLES, SHARED_CACHE, installed_packages, need, private_cache, read_json, run_tdx, tdx_env
from toolchains import go_module_proxy, go_source_repo

SHARED_MODULES = EXAMPLES / "modules"


@pytest.fixture(scope="module")
def goproxy():
    """GOPROXY for the examples' Go builds: the pinned Go 1.22.5 served on loopback."""
    need("mkosi", "bwrap")
    with go_module_proxy() as proxy:
        yield proxy.url("")


def build_example(name: str, folder: Path, goproxy: str, cache: Path = SHARED_CACHE, prepare=None):
    """A copy of examples/<name> (links to the shared modules copied as folders), built as a
    directory image; returns (image root, --json result, progress)."""
    project = folder / name
    shutil.copytree(EXAMPLES / name, project, ignore=shutil.ignore_patterns("build", "__pycache__", "tdx.lock",
                                                                             "go-source"))
    if prepare:
        prepare(project)
    proc = run_tdx("build", "-C", project, "--format", "directory", "--json",
                   env=tdx_env(TDX_CACHE_DIR=cache, GOPROXY=goproxy), timeout=1800)
    return project / "build" / name, json.loads(proc.stdout), proc.stderr


def passwd(root: Path) -> dict:
    return {f[0]: f for f in (line.split(":") for line in (root / "etc/passwd").read_text().splitlines())}


def groups(root: Path) -> dict:
    return {f[0]: f for f in (line.split(":") for line in (root / "etc/group").read_text().splitlines())}


def unit(root: Path, name: str) -> dict:
    """A service unit's keys (each a list of values) and whether multi-user.target wants it."""
    keys = {}
    for line in (root / f"etc/systemd/system/{name}.service").read_text().splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, value = line.split("=", 1)
            keys.setdefault(key, []).append(value)
    link = root / f"etc/systemd/system/multi-user.target.wants/{name}.service"
    keys["enabled"] = link.is_symlink() and str(link.readlink()) == f"/etc/systemd/system/{name}.service"
    return keys


PROBE = r"""
import socket, sys, time
port, send = int(sys.argv[1]), sys.argv[2].encode()
deadline = time.monotonic() + 10
while True:
    try:
        conn = socket.create_connection(("127.0.0.1", port), timeout=5)
        break
    except OSError:
        if time.monotonic() > deadline:
            raise
        time.sleep(0.05)
conn.sendall(send)
answer = b""
while chunk := conn.recv(65536):
    answer += chunk
sys.stdout.buffer.write(answer)
"""


class Services:
    """Starts services' ExecStart programs from an image tree under bwrap (the image read-only as
    /, fresh /dev, /proc, /tmp and /run), all in one private network namespace, and talks to them
    from inside that namespace; stops them all on exit."""

    def __init__(self, root: Path, logs: Path):
        need("unshare", "nsenter", "ip")
        self.root, self.logs = root, logs
        self.running = {}

    def __enter__(self):
        self.netns = subprocess.Popen(["unshare", "--net", "sh", "-c", "ip link set lo up && echo up && exec sleep 600"],
                                      stdout=subprocess.PIPE, text=True)
        assert self.netns.stdout.readline() == "up\n"
        self.enter = ["nsenter", f"--net=/proc/{self.netns.pid}/ns/net"]
        return self

    def __exit__(self, *exc):
        for proc in self.running.values():
            proc.terminate()
            proc.wait(timeout=10)
        self.netns.kill()
        self.netns.wait()

    def start(self, name: str):
        argv = shlex.split(unit(self.root, name)["ExecStart"][0])
        log = open(self.logs / f"{name}.log", "w")
        self.running[name] = subprocess.Popen(
            [*self.enter, "bwrap", "--ro-bind", str(self.root), "/", "--dev", "/dev", "--proc", "/proc",
             "--tmpfs", "/tmp", "--tmpfs", "/run", "--die-with-parent", "--", *argv],
            stdout=log, stderr=subprocess.STDOUT)
        log.close()

    def ask(self, port: int, send: str = "") -> str:
        """Connects to 127.0.0.1:port (retrying while the service starts), sends, reads to the end."""
        proc = subprocess.run([*self.enter, "/usr/bin/python3", "-c", PROBE, str(port), send],
                              capture_output=True, timeout=30)
        if proc.returncode != 0:
            raise AssertionError(f"nothing answered on port {port}: {proc.stderr.decode().strip()}\n" + self.describe())
        return proc.stdout.decode()

    def log(self, name: str) -> str:
        return (self.logs / f"{name}.log").read_text()

    def describe(self) -> str:
        return "\n".join(f"--- {name} (exit {p.poll()})\n{self.log(name)}" for name, p in self.running.items())

    def check_alive(self):
        """Every started program still running: none exited after start-up (e.g. on a bad config)."""
        dead = [name for name, p in self.running.items() if p.poll() is not None]
        assert not dead, f"{dead} stopped\n" + self.describe()


def wait_for(predicate, what: str, seconds: float = 10):
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


# Each example module: its folder, distribution name and module API.
EXAMPLE_MODULES = [
    ("modules/hardening", "tdx-hardening", "function apply(image)"),
    ("modules/lighthouse", "tdx-lighthouse", "class Lighthouse"),
    ("modules/nethermind", "tdx-nethermind", "class Nethermind"),
    ("monitoring/modules/monitoring", "tdx-monitoring", "class Monitoring"),
    ("monitoring/modules/node-exporter", "tdx-node-exporter", "class NodeExporter"),
    ("monitoring/modules/node-facts", "tdx-node-facts", "class NodeFacts"),
]


def test_example_modules_are_valid_pip_installable_modules():
    """Each module of the examples passes `tdx module validate` (its data files are in the wheel
    pip builds); modules with local dependencies import beside them, as their TDXfile does."""
    reports = [json.loads(run_tdx("module", "validate", EXAMPLES / folder, "--json").stdout)
               for folder, _, _ in EXAMPLE_MODULES]
    assert [(r["name"], r["api"], r["problems"]) for r in reports] == [(n, a, []) for _, n, a in EXAMPLE_MODULES]


def check_hardening(root: Path):
    """§12.5, tdx_hardening.apply: iptables, the sysctl file, no login consoles."""
    assert (root / "etc/sysctl.d/99-tdx.conf").read_bytes() == \
        (SHARED_MODULES / "hardening/tdx_hardening/data/sysctl.conf").read_bytes()
    assert installed_packages(root).get("iptables") == "install ok installed"
    units = root / "usr/lib/systemd/system"
    for removed in ("getty@.service", "getty.target", "serial-getty@.service"):  # all shipped by systemd
        assert not (units / removed).exists(), removed
    assert (units / "systemd-journald.service").exists()


# --- §12.1 dual Nethermind instances --------------------------------------------------------

@pytest.fixture(scope="module")
def dual_nethermind(goproxy, tmp_path_factory):
    return build_example("dual-nethermind", tmp_path_factory.mktemp("dual"), goproxy)


def test_dual_nethermind_one_build_two_instances(dual_nethermind):
    root, result, progress = dual_nethermind
    assert [b["name"] for b in result["builds"]] == ["nethermind"]
    assert progress.count("[build] nethermind:") == 1
    assert (root / "opt/nethermind/nethermind").stat().st_mode & 0o111
    users = passwd(root)
    for name, uid, network, ports, memory, nofile in (
            ("nm-mainnet", 801, "mainnet", (8545, 8551, 30303), "16G", "65535"),
            ("nm-holesky", 802, "holesky", (8546, 8552, 30304), "4G", "32768")):
        datadir = f"/var/lib/{name}"
        assert users[name][2:] == [str(uid), str(uid), "", datadir, "/usr/sbin/nologin"]
        assert groups(root)[name][2] == str(uid)
        st = (root / datadir.lstrip("/")).stat()
        assert (st.st_uid, st.st_gid) == (uid, uid)
        config = json.loads((root / f"etc/{name}/config.json").read_text())
        assert config["Init"]["ChainSpecPath"] == f"chainspec/{network}.json"
        assert config["Init"]["BaseDbPath"] == f"{datadir}/db"
        assert (config["JsonRpc"]["Port"], config["JsonRpc"]["EnginePort"], config["Network"]["P2PPort"]) == ports
        assert config["JsonRpc"]["Host"] == "127.0.0.1" and "JwtSecretFile" not in config["JsonRpc"]
        keys = unit(root, name)
        assert keys["ExecStart"] == [f"/opt/nethermind/nethermind --config /etc/{name}/config.json --datadir {datadir}"]
        assert keys["User"] == [name] and keys["Restart"] == ["always"] and keys["After"] == ["network-online.target"]
        assert keys["MemoryMax"] == [memory] and keys["LimitNOFILE"] == [nofile]
        assert "Requires" not in keys and keys["enabled"]
    check_hardening(root)
    manifest = read_json(root.parent / "dual-nethermind.manifest.json")
    assert manifest["packages"] == ["ca-certificates", "iptables", "libsnappy1v5"]
    assert [(u["name"], u["uid"]) for u in manifest["users"]] == [("nm-mainnet", 801), ("nm-holesky", 802)]


def test_dual_nethermind_both_instances_answer_on_their_own_ports(dual_nethermind, tmp_path):
    root = dual_nethermind[0]
    with Services(root, tmp_path) as services:
        services.start("nm-mainnet")
        services.start("nm-holesky")
        for port, line in ((8545, "mainnet json-rpc"), (8551, "mainnet engine"), (30303, "mainnet p2p"),
                           (8546, "holesky json-rpc"), (8552, "holesky engine"), (30304, "holesky p2p")):
            assert services.ask(port) == f"nethermind {line}\n"
        services.check_alive()
        wait_for(lambda: "ready" in services.log("nm-holesky"), "nm-holesky to log ready")
        log = services.log("nm-holesky")
    assert "config /etc/nm-holesky/config.json: chain holesky, database /var/lib/nm-holesky/db" in log
    assert "json-rpc listening on 127.0.0.1:8546" in log


# --- §12.4 modules depending on a module (a diamond) ----------------------------------------

@pytest.fixture(scope="module")
def monitoring(goproxy, tmp_path_factory):
    """Built with a build cache of its own, so that "built" shows the builds that really ran."""
    folder = tmp_path_factory.mktemp("monitoring")
    return build_example("monitoring", folder, goproxy, cache=private_cache(folder / "cache"))


def test_monitoring_diamond_builds_the_shared_module_once(monitoring):
    root, result, progress = monitoring
    assert [(b["name"], b["cached"]) for b in result["builds"]] == [("node_exporter", False), ("metrics-agg", False)]
    assert progress.count("[build] node_exporter: built") == 1
    assert progress.count("[build] building node_exporter") == 1
    assert {p.name for p in (root / "usr/local/bin").iterdir()} == {"node_exporter", "metrics-agg"}
    users = passwd(root)
    assert users["monitoring"][2:4] == ["830", "830"] and users["node-exporter"][2:4] == ["831", "831"]
    agg, exporter = unit(root, "monitoring"), unit(root, "node-exporter")
    assert agg["ExecStart"] == ["/usr/local/bin/metrics-agg --port 9090"] and agg["User"] == ["monitoring"]
    assert exporter["ExecStart"] == ["/usr/local/bin/node_exporter --web.listen-address=127.0.0.1:9100 "
                                     "--collector.textfile.directory=/var/lib/node_exporter/textfile"]
    assert agg["enabled"] and exporter["enabled"]
    facts = (root / "var/lib/node_exporter/textfile/tdx_image.prom").read_text()
    assert facts.endswith('\ntdx_image_info{image="monitoring",role="example"} 1\n')
    lock = (root.parent.parent / "tdx.lock").read_text()
    for module in ("tdx-monitoring", "tdx-node-exporter", "tdx-node-facts"):
        assert f'name = "{module}"' in lock


def test_monitoring_services_scrape_each_other(monitoring, tmp_path):
    root = monitoring[0]
    with Services(root, tmp_path) as services:
        services.start("node-exporter")
        services.start("monitoring")
        metrics = services.ask(9100, "GET /metrics HTTP/1.0\r\n\r\n")
        assert metrics.startswith("HTTP/1.0 200 OK\r\n") and "\nnode_load1 " in metrics
        assert '\ntdx_image_info{image="monitoring",role="example"} 1\n' in metrics
        aggregated = services.ask(9090, "GET /metrics HTTP/1.0\r\n\r\n")
        services.check_alive()
    assert 'metrics_agg_up{target="127.0.0.1:9100"} 1\n' in aggregated
    assert 'metrics_agg_samples{target="127.0.0.1:9100",family="tdx_image_info"} 1\n' in aggregated


# --- §12.3 a program built with a Go toolchain built from source ----------------------------

@pytest.mark.slow
def test_audited_build_with_go_from_source(goproxy, tmp_path):
    """The toolchain build has the key of test_builders' GoFromSource test (same source repository,
    bootstrap and version), so whichever runs second finds it in the shared cache."""
    need("git")
    repo = go_source_repo()
    root, result, progress = build_example("audited-build", tmp_path, goproxy,
                                           prepare=lambda p: (p / "go-source").symlink_to(repo))
    assert [b["name"] for b in result["builds"]] == ["go1.22.5-from-source", "my-prover"]
    assert not (root / "opt/tdx-toolchains").exists(), "the compiler built from source reached the image"
    manifest = read_json(root.parent / "audited-build.manifest.json")
    assert [b["cache_key"] for b in manifest["builds"]] == [b["cache_key"] for b in result["builds"]]
    assert passwd(root)["prover"][2:4] == ["820", "820"]
    keys = unit(root, "my-prover")
    assert keys["ExecStart"] == ["/usr/local/bin/my-prover --listen 127.0.0.1:7000"] and keys["User"] == ["prover"]
    with Services(root, tmp_path) as services:
        services.start("my-prover")
        answer = services.ask(7000, "statement\n")
        services.check_alive()
    assert answer == hashlib.sha256(b"statement\n").hexdigest() + " go1.22.5\n"


# --- §12.2 execution + consensus clients sharing a JWT secret -------------------------------

@pytest.fixture(scope="module")
def eth_fullnode(goproxy, tmp_path_factory):
    return build_example("eth-fullnode", tmp_path_factory.mktemp("eth"), goproxy)


def test_eth_fullnode_clients_share_the_jwt_group_and_the_secret_is_absent(eth_fullnode):
    root, result, _ = eth_fullnode
    assert [b["name"] for b in result["builds"]] == ["nethermind", "lighthouse"]
    users, group = passwd(root), groups(root)
    assert users["nethermind"][2:4] == ["811", "811"] and users["lighthouse"][2:4] == ["812", "812"]
    assert group["ethereum"][2] == "810" and sorted(group["ethereum"][3].split(",")) == ["lighthouse", "nethermind"]
    # Declared, owned by the group both users are in, and not in the image.
    manifest = read_json(root.parent / "eth-fullnode.manifest.json")
    assert manifest["secrets"] == [{"name": "JWT_SECRET", "dest": "/etc/ethereum/jwt.hex", "owner": "root",
                                    "group": "ethereum", "mode": "0440"}]
    assert manifest["secret_delivery"]["backend"] == "vsock"
    assert not (root / "etc/ethereum/jwt.hex").exists()
    # What the image's receiver will write on delivery: root:ethereum 0440 (docs/secret-delivery.md).
    assert "\nJWT_SECRET\t/etc/ethereum/jwt.hex\troot\tethereum\t0440\t" in (root / "etc/tdx/secrets.list").read_text()
    assert (root / "etc/systemd/system/secrets-ready.target").exists()
    nethermind = json.loads((root / "etc/nethermind/config.json").read_text())
    assert nethermind["JsonRpc"]["JwtSecretFile"] == "/etc/ethereum/jwt.hex"
    assert nethermind["JsonRpc"]["EnginePort"] == 8551
    lighthouse = (root / "etc/lighthouse/config.toml").read_text()
    assert 'execution-endpoint = "http://127.0.0.1:8551"\nexecution-jwt = "/etc/ethereum/jwt.hex"\n' in lighthouse
    for name in ("nethermind", "lighthouse"):
        keys = unit(root, name)
        assert keys["After"] == ["network-online.target secrets-ready.target"], keys
        assert keys["Requires"] == ["secrets-ready.target"] and keys["User"] == [name] and keys["enabled"]
    check_hardening(root)


def test_eth_fullnode_consensus_client_reaches_the_execution_client(eth_fullnode, tmp_path):
    root = eth_fullnode[0]
    with Services(root, tmp_path) as services:
        services.start("nethermind")
        assert services.ask(8551) == "nethermind mainnet engine\n"
        services.start("lighthouse")
        assert services.ask(5052) == "lighthouse mainnet http\n"
        assert services.ask(9000) == "lighthouse mainnet p2p\n"
        services.check_alive()
        wait_for(lambda: "ready" in services.log("lighthouse"), "lighthouse to log ready")
        log = services.log("lighthouse")
    assert "execution endpoint http://127.0.0.1:8551: answering" in log
    assert "execution JWT secret /etc/ethereum/jwt.hex: not delivered yet" in log
