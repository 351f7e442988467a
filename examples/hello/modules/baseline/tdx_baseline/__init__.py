"""A one-shot, config-only module: no setup()/install() split."""

from importlib.resources import files

from tdx import Image


def apply(image: Image, strict: bool = True):
    image.install("netbase")
    image.file("/etc/sysctl.d/99-tdx.conf", src=str(files("tdx_baseline").joinpath("data", "sysctl.conf")))
    image.run("echo 'tdx baseline applied' > /etc/tdx-baseline")
    if strict:
        image.run("rm -f /usr/lib/systemd/system/getty@.service")
