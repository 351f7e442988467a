"""node-agent as a tdx module: setup() builds it once, install() adds an instance."""

from importlib.resources import files

from tdx import Build, Image


class NodeAgent:
    def setup(self, image: Image):
        """Build node-agent (once per image; the build cache makes repeats free)."""
        image.build(Build.script(
            name="node-agent",
            src="./src",
            build_script="make",
            artifacts={"node-agent": "/usr/local/bin/node-agent"},
            build_deps=["gcc", "libc6-dev", "make"],
        ))

    def install(self, image: Image, *, name: str = "node-agent", port: int = 8080, secret: str = "",
                uid: int | None = None):
        """One instance: its own unprivileged user, config and service. secret= is the path whose
        presence it reports (it only checks that the file exists; it cannot read it)."""
        image.user(name, system=True, uid=uid)
        image.template(
            src=str(files("tdx_node_agent").joinpath("data", "agent.conf.j2")),
            dest=f"/etc/{name}/agent.conf",
            vars={"name": name, "port": port, "secret": secret},
        )
        image.service(
            name=name,
            exec=f"/usr/local/bin/node-agent /etc/{name}/agent.conf",
            restart="always",
            user=name,
            extra_unit={"Service": {"MemoryMax": "32M", "NoNewPrivileges": "yes", "ProtectSystem": "strict"}},
        )

    def apply(self, image: Image, **kwargs):
        self.setup(image)
        self.install(image, **kwargs)
