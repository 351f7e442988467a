"""Lighthouse, the Ethereum consensus client (beacon node), as a tdx module.

The specification uses it (§12.2) without showing it; it has the shape of tdx-nethermind (§3.1):
setup() builds once, install() adds an instance with its own user, config, data directory and
service.

Stand-in: Lighthouse is a Rust program whose sources and crates cannot be downloaded where these
examples are built, so setup() builds standin/, a small Go program of ours that takes
`lighthouse bn --config-file FILE`, reads the same flag-named TOML keys, checks that the execution
client's engine endpoint answers, and listens on the beacon node's HTTP API and P2P ports.
"""

from importlib.resources import files

from tdx import Build, Image


def _data(name: str) -> str:
    return str(files("tdx_lighthouse").joinpath("data", name))


class Lighthouse:
    """Lighthouse beacon node: built once, installed as many instances as you want."""

    def setup(self, image: Image):
        """Build the lighthouse binary (idempotent) and install its runtime packages."""
        image.install("ca-certificates")

        # The real client:
        #   image.build(Build.rust(
        #       name="lighthouse", src=".", output="/usr/local/bin/lighthouse",
        #       features=["portable"], build_deps=["cmake", "clang", "libclang-dev", "protobuf-compiler"],
        #   ))
        image.build(Build.go(
            name="lighthouse",
            version="1.22.5",
            src="./standin",
            output="/usr/local/bin/lighthouse",
            ldflags="-s -w",
        ))

    def install(
        self,
        image: Image,
        *,
        name: str = "lighthouse",
        network: str = "mainnet",
        datadir: str | None = None,
        execution_endpoint: str = "http://127.0.0.1:8551",
        jwt_secret: str | None = None,
        http_address: str = "127.0.0.1",
        http_port: int = 5052,
        p2p_port: int = 9000,
        memory_max: str = "4G",
        limit_nofile: int = 65535,
        uid: int | None = None,
    ):
        """Install one beacon node. jwt_secret= is the path of the engine API's JWT secret,
        delivered after boot (image.secret); the service then waits for secrets-ready.target."""
        if datadir is None:
            datadir = f"/var/lib/{name}"

        image.user(name, system=True, uid=uid, home=datadir)

        image.template(
            src=_data("lighthouse.toml.j2"),
            dest=f"/etc/{name}/config.toml",
            vars={
                "name": name,
                "network": network,
                "datadir": datadir,
                "execution_endpoint": execution_endpoint,
                "jwt_secret": jwt_secret,
                "http_address": http_address,
                "http_port": http_port,
                "p2p_port": p2p_port,
            },
        )

        after = ["network-online.target"]
        requires = []
        if jwt_secret:
            after.append("secrets-ready.target")
            requires.append("secrets-ready.target")
        image.service(
            name=name,
            exec=f"/usr/local/bin/lighthouse bn --config-file /etc/{name}/config.toml",
            after=after,
            requires=requires,
            restart="always",
            user=name,
            extra_unit={
                "Service": {
                    "MemoryMax": memory_max,
                    "LimitNOFILE": str(limit_nofile),
                },
            },
        )

    def apply(self, image: Image, **kwargs):
        """Convenience: setup + single install."""
        self.setup(image)
        self.install(image, **kwargs)
