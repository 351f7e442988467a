"""The sealed-node example boots under QEMU (OVMF, software emulation) and reaches its services.

The image is built by the real tdx binary; the VM's serial console is the only window into it:
the example's `boot-status` unit writes each service's state there, and its agent answers on
a TCP port forwarded to loopback.
"""

import json
import re
import shutil
from pathlib import Path

import pytest

from conftest import EXAMPLES, need, run_tdx
from vm import Vm, missing_parts

# Under software emulation the kernel reaches the initrd after about 25 s and the services after
# 60-90 s on an idle machine; other work on the same cores can make that several times slower.
BOOT_TIMEOUT = 600
BUILD_TIMEOUT = 1500

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def sealed_node(tmp_path_factory):
    """The example built as a bootable disk, in a copy of its own."""
    need("mkosi", "bwrap")
    reason = missing_parts()
    if reason:
        pytest.skip(reason)
    project = tmp_path_factory.mktemp("boot") / "sealed-node"
    shutil.copytree(EXAMPLES / "sealed-node", project, ignore=shutil.ignore_patterns("build", "__pycache__"))
    result = json.loads(run_tdx("build", "-C", project, "--json", timeout=BUILD_TIMEOUT).stdout)
    disk = Path(result["image"])
    assert disk == project / "build" / "sealed-node.raw"
    return project, disk


def unit_states(text: str, report: str):
    """{unit: state} from the `tdx-status <report>: <unit>=<state>` lines of the console."""
    return dict(re.findall(rf"tdx-status {report}: (\S+?)=([a-z-]+)", text))


def test_boots_reaches_its_services_and_the_agent_answers(sealed_node, tmp_path):
    _, disk = sealed_node
    image_before = disk.stat().st_mtime_ns, disk.stat().st_size
    with Vm(disk, tmp_path / "vm", guest_ports=[8080]) as vm:
        end = vm.wait_for(r"tdx-status boot: end", timeout=BOOT_TIMEOUT)
        print(f"boot-status reported {vm.elapsed():.0f} s after the VM started")
        states = unit_states(vm.serial()[:end.end()], "boot")
        assert states.get("agent.service") == "active", f"agent.service: {states}\n{vm.tail()}"
        assert states.get("systemd-networkd.service") == "active", f"networkd: {states}\n{vm.tail()}"
        # The agent really runs: through the forwarded port it says who it is and that the
        # node's secret has not arrived.
        assert vm.read_line(8080, timeout=180) == "node-agent agent: secret absent"
    # snapshot=on: the booted image is unchanged.
    assert (disk.stat().st_mtime_ns, disk.stat().st_size) == image_before
