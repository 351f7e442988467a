"""Operating a node that has no shell for its operator: networking, and unit states on the
serial console. Function form: apply(image) sets up networking; console_status() adds a report."""

from importlib.resources import files

from tdx import Image

_STATUS = "/usr/local/lib/tdx-node-ops/console-status"


def _data(name: str) -> str:
    return str(files("tdx_node_ops").joinpath("data", name))


def apply(image: Image):
    """DHCP on every Ethernet interface through systemd-networkd (part of Debian 12's systemd),
    and the console-status program that console_status() reports with."""
    image.file("/etc/systemd/network/80-dhcp.network", src=_data("80-dhcp.network"))
    image.run("systemctl enable systemd-networkd.service")
    image.file(_STATUS, src=_data("console-status"), mode="0755")


def console_status(image: Image, name: str, units, *, after=(), requires=()):
    """A one-shot service `<name>-status` that writes `tdx-status <name>: <unit>=<state>` for each
    unit, then `tdx-status <name>: end`, to the console once the units in after= have started.
    Needs apply(image) first."""
    image.service(
        name=f"{name}-status",
        exec=" ".join([_STATUS, name, *units]),
        after=list(after),
        requires=list(requires),
        extra_unit={"Service": {"Type": "oneshot", "StandardOutput": "journal+console"}},
    )
