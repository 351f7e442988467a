"""Standard TDX VM hardening (§3.3 and §12.5 of the module-system design).

A config-only module in function form: nothing is built and there is one of it per image, so
there is no setup()/install() split. The specification's version also runs `sysctl --system`;
that would apply the settings to the machine building the image, not to the image, so it is
left out: systemd-sysctl applies /etc/sysctl.d/ when the VM boots.
"""

from importlib.resources import files

from tdx import Image


def apply(image: Image, strict: bool = True):
    """Kernel settings, no login consoles; strict also drops systemd's home and user databases."""
    image.install("iptables")
    image.file("/etc/sysctl.d/99-tdx.conf", src=str(files("tdx_hardening").joinpath("data", "sysctl.conf")))
    image.run("rm -rf /usr/lib/systemd/system/getty*")
    image.run("rm -rf /usr/lib/systemd/system/serial-getty*")
    if strict:
        image.run("rm -rf /usr/lib/systemd/system/systemd-homed*")
        image.run("rm -rf /usr/lib/systemd/system/systemd-userdbd*")
