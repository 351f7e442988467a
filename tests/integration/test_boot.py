"""The sealed-node example boots under QEMU (OVMF, software emulation), reaches its services, and
starts the service that needs a secret only after `tdx secrets push` delivered it over ssh.

The image is built by the real tdx binary with a key pair the test makes; the VM's serial
console is the only window into it: the example's `boot-status` and `sealed-status` units write
unit states there, its sealed app prints a fingerprint of its secret there, and its agent answers
on a TCP port forwarded to loopback, as does the VM's sshd.
"""

import hashlib
import json
import re
import secrets
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from conftest import EXAMPLES, file_sha256, need, run_tdx
from vm import Vm, missing_parts

# Under software emulation the kernel reaches the initrd after about 25 s and the services after
# 60-90 s on an idle machine; other work on the same cores can make that several times slower.
BOOT_TIMEOUT = 600
BUILD_TIMEOUT = 1500
PUSH_TIMEOUT = 300

UNITS = ["agent.service", "systemd-networkd.service", "ssh.service", "secrets-ready.target", "sealed-app.service"]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def sealed_node(tmp_path_factory):
    """The example built as a bootable disk, in a copy of its own whose operator key is the test's."""
    need("mkosi", "bwrap", "ssh", "ssh-keygen")
    reason = missing_parts()
    if reason:
        pytest.skip(reason)
    folder = tmp_path_factory.mktemp("boot")
    project = folder / "sealed-node"
    shutil.copytree(EXAMPLES / "sealed-node", project, ignore=shutil.ignore_patterns("build", "__pycache__"))
    key = folder / "operator"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "boot-test", "-f", key], check=True)
    shutil.copyfile(key.with_suffix(".pub"), project / "operator.pub")
    result = json.loads(run_tdx("build", "-C", project, "--json", timeout=BUILD_TIMEOUT).stdout)
    disk = Path(result["image"])
    assert disk == project / "build" / "sealed-node.raw"
    return project, disk, key, result["sha256"]


@pytest.fixture(scope="module")
def vm(sealed_node, tmp_path_factory):
    """The image booted until its boot-status report is on the console."""
    _, disk, _, _ = sealed_node
    with Vm(disk, tmp_path_factory.mktemp("vm"), guest_ports=[8080, 22]) as machine:
        machine.wait_for(r"tdx-status boot: end", timeout=BOOT_TIMEOUT)
        print(f"boot-status reported {machine.elapsed():.0f} s after the VM started")
        yield machine


def unit_states(text: str, report: str):
    """{unit: state} from the `tdx-status <report>: <unit>=<state>` lines of the console."""
    return dict(re.findall(rf"tdx-status {report}: (\S+?)=([a-z-]+)", text))


def push(project: Path, vm: Vm, key: Path, env_file: Path, known_hosts: Path):
    return run_tdx("secrets", "push", "-C", project, "--host", "127.0.0.1", "--port", vm.port(22),
                   "--identity", key, "--known-hosts", known_hosts, "-o", "StrictHostKeyChecking=accept-new",
                   "--file", env_file, "--json", expect=None, timeout=PUSH_TIMEOUT)


def test_boots_reaches_its_services_and_the_agent_answers(vm):
    states = unit_states(vm.serial(), "boot")
    for unit in ("agent.service", "systemd-networkd.service", "ssh.service"):
        assert states.get(unit) == "active", f"{unit}: {states}\n{vm.tail()}"
    # The agent really runs: through the forwarded port it says who it is.
    assert vm.read_line(8080, timeout=180).startswith("node-agent agent: secret ")


def test_sealed_app_starts_only_after_the_push(sealed_node, vm, tmp_path):
    project, _, key, _ = sealed_node
    # Before any push: the app and the target wait, and nothing of the app is on the console.
    states = unit_states(vm.serial(), "boot")
    assert states.get("secrets-ready.target") == "inactive" and states.get("sealed-app.service") == "inactive", \
        f"not waiting for its secret: {states}\n{vm.tail()}"
    assert "sealed-app: started" not in vm.serial() and "tdx-status sealed:" not in vm.serial()
    assert vm.read_line(8080, timeout=180) == "node-agent agent: secret absent"

    value = secrets.token_hex(24)
    env_file = tmp_path / "secrets.env"
    env_file.write_text(f"API_TOKEN={value}\n")
    known_hosts = tmp_path / "known_hosts"

    # A key the image does not know is refused, and changes nothing.
    stranger = tmp_path / "stranger"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", stranger], check=True)
    refused = push(project, vm, stranger, env_file, known_hosts)
    assert refused.returncode == 1 and "refused the ssh key" in refused.stderr, refused.stdout + refused.stderr
    assert value not in refused.stdout + refused.stderr

    pushed_at = len(vm.serial())
    started = time.monotonic()
    done = push(project, vm, key, env_file, known_hosts)
    assert done.returncode == 0, f"push failed\n{done.stdout}{done.stderr}\n{vm.tail()}"
    assert value not in done.stdout + done.stderr
    confirmed = json.loads(done.stdout)
    assert "API_TOKEN" in json.dumps(confirmed) and value not in json.dumps(confirmed)
    print(f"push took {time.monotonic() - started:.1f} s")

    # After the push: the target is reached, the app starts with the pushed value, the agent sees it.
    app = vm.wait_for(r"sealed-app: started with token sha256:([0-9a-f]{16})", timeout=BOOT_TIMEOUT, start=pushed_at)
    assert app.group(1) == hashlib.sha256(value.encode()).hexdigest()[:16]
    vm.wait_for(r"tdx-status sealed: end", timeout=BOOT_TIMEOUT, start=pushed_at)
    after = unit_states(vm.serial()[pushed_at:], "sealed")
    assert after.get("secrets-ready.target") == "active" and after.get("sealed-app.service") == "active", \
        f"{after}\n{vm.tail()}"
    assert vm.read_line(8080, timeout=60) == "node-agent agent: secret present"
    print(f"sealed-app started {vm.elapsed():.0f} s after the VM started")
    # The value itself never reaches the console.
    assert value not in vm.serial()


def test_the_booted_image_is_unchanged(sealed_node, vm):
    """snapshot=on: whatever the VM writes, the image file stays as built (checked while it runs)."""
    _, disk, _, built = sealed_node
    assert file_sha256(disk) == built
