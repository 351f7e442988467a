"""A QEMU virtual machine for boot tests.

UEFI firmware (OVMF) with software emulation (these machines have /dev/kvm, but it fails with
an emulation error), the disk opened with snapshot=on so the image file is never written, the
serial console (console=ttyS0 is on the image's kernel command line) written to a file the test
reads, and guest TCP ports forwarded to loopback through QEMU's user networking.
"""

import ctypes
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from inputs_support import free_port

QEMU = "qemu-system-x86_64"
OVMF_CODE = Path("/usr/share/OVMF/OVMF_CODE_4M.fd")
OVMF_VARS = Path("/usr/share/OVMF/OVMF_VARS_4M.fd")


def _die_with_parent():
    """In the child before exec: the kernel kills QEMU if the test process dies (PR_SET_PDEATHSIG),
    so an interrupted or killed test run leaves no VM behind."""
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)


def missing_parts():
    """Why a VM cannot run on this machine, or None."""
    if shutil.which(QEMU) is None:
        return f"{QEMU} is not installed (package qemu-system-x86; scripts/setup-debian.sh installs it)"
    for firmware in (OVMF_CODE, OVMF_VARS):
        if not firmware.exists():
            return f"{firmware} is missing (package ovmf; scripts/setup-debian.sh installs it)"
    return None


class VmError(AssertionError):
    pass


class Vm:
    """with Vm(disk, folder, guest_ports=[8080]) as vm: vm.wait_for(r"..."); vm.port(8080).

    The VM is killed when the block ends, whatever happened. Failures raised by this class end
    with the last lines of the serial console."""

    def __init__(self, disk: Path, folder: Path, guest_ports=(), memory_mb=2048, cpus=2):
        self.disk = Path(disk)
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.serial_log = self.folder / "serial.log"
        self.qemu_log = self.folder / "qemu.log"
        self.ports = {guest: free_port() for guest in guest_ports}
        self.memory_mb = memory_mb
        self.cpus = cpus
        self.proc = None
        self.started = None

    def command(self):
        # The firmware writes its variables: each VM gets its own copy.
        vars_copy = self.folder / "OVMF_VARS.fd"
        shutil.copyfile(OVMF_VARS, vars_copy)
        forwards = "".join(f",hostfwd=tcp:127.0.0.1:{host}-:{guest}" for guest, host in self.ports.items())
        return [
            QEMU, "-machine", "q35,accel=tcg", "-m", str(self.memory_mb), "-smp", str(self.cpus),
            "-display", "none", "-vga", "none", "-monitor", "none", "-no-reboot",
            "-drive", f"if=pflash,format=raw,unit=0,readonly=on,file={OVMF_CODE}",
            "-drive", f"if=pflash,format=raw,unit=1,file={vars_copy}",
            "-drive", f"if=virtio,format=raw,snapshot=on,file={self.disk}",
            "-netdev", f"user,id=net0{forwards}", "-device", "virtio-net-pci,netdev=net0",
            "-device", "virtio-rng-pci",
            "-serial", f"file:{self.serial_log}",
        ]

    def __enter__(self):
        self.serial_log.write_bytes(b"")
        with open(self.qemu_log, "wb") as out:
            self.proc = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL, stdout=out,
                                         stderr=subprocess.STDOUT, start_new_session=True,
                                         preexec_fn=_die_with_parent)
        self.started = time.monotonic()
        return self

    def __exit__(self, *exc):
        self.stop()

    def stop(self):
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=15)

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def serial(self) -> str:
        return self.serial_log.read_bytes().decode("utf-8", errors="replace")

    def tail(self, lines=60) -> str:
        text = "\n".join(self.serial().splitlines()[-lines:])
        qemu = self.qemu_log.read_text(errors="replace").strip()
        return (f"--- last {lines} lines of the serial console ({self.serial_log})\n{text}" +
                (f"\n--- qemu\n{qemu}" if qemu else ""))

    def fail(self, message: str):
        raise VmError(f"{message} ({self.elapsed():.0f} s after the VM started)\n{self.tail()}")

    def wait_for(self, pattern: str, timeout: float, start: int = 0) -> re.Match:
        """The first match of pattern in the serial console from offset start, waiting for it."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            found = regex.search(self.serial(), start)
            if found:
                return found
            if self.proc.poll() is not None:
                self.fail(f"QEMU exited with {self.proc.returncode} before the console showed /{pattern}/")
            if time.monotonic() > deadline:
                self.fail(f"the console did not show /{pattern}/ within {timeout:.0f} s")
            time.sleep(1)

    def port(self, guest_port: int) -> int:
        """The loopback port forwarded to guest_port."""
        return self.ports[guest_port]

    def read_line(self, guest_port: int, timeout: float) -> str:
        """The first line a guest TCP service sends on connect. QEMU accepts on the host side
        before the guest listens (then closes at once), so empty answers are retried."""
        deadline = time.monotonic() + timeout
        last = "no answer"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.fail(f"QEMU exited with {self.proc.returncode}")
            try:
                with socket.create_connection(("127.0.0.1", self.port(guest_port)), timeout=10) as conn:
                    data = conn.makefile("rb").readline()
                if data:
                    return data.decode(errors="replace").rstrip("\n")
                last = "the connection closed without data"
            except OSError as e:
                last = str(e)
            time.sleep(2)
        self.fail(f"guest port {guest_port} sent no line within {timeout:.0f} s (last: {last})")
