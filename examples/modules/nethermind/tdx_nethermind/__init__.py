"""Nethermind, the Ethereum execution client, as a tdx module (§3.1 of the module-system design).

Stand-in: Nethermind is a .NET program whose sources cannot be downloaded where these examples
are built, so setup() builds standin/, a small Go program of ours that takes Nethermind's command
line, reads the same config.json and listens on the instance's JSON-RPC, engine and P2P ports.
Everything else (packages, users, config, data dirs, services) is what the real module does.
"""

from importlib.resources import files

from tdx import Build, Image


def _data(name: str) -> str:
    """Resolve a data file bundled with this module."""
    return str(files("tdx_nethermind").joinpath("data", name))


class Nethermind:
    """Nethermind Ethereum execution client.

    Build the binary once, then install as many instances as you want
    with different networks, ports, and data directories.
    """

    def setup(self, image: Image):
        """Build the Nethermind binary and install runtime packages.

        Idempotent: the same build registered twice is one build, and the build cache
        ensures the binary is compiled at most once.
        """
        image.install("ca-certificates", "libsnappy1v5")

        # The real client:
        #   image.build(Build.dotnet(
        #       name="nethermind", src=".", sdk_version="10.0",
        #       project="src/Nethermind/Nethermind.Runner", output="/opt/nethermind/",
        #       self_contained=True, build_deps=["libsnappy-dev", "libgflags-dev"],
        #       env={"DOTNET_CLI_TELEMETRY_OPTOUT": "1"},
        #   ))
        image.build(Build.go(
            name="nethermind",
            version="1.22.5",
            src="./standin",
            output="/opt/nethermind/nethermind",
            ldflags="-s -w",
        ))

    def install(
        self,
        image: Image,
        *,
        name: str = "nethermind",
        network: str = "mainnet",
        datadir: str | None = None,
        rpc_port: int = 8545,
        rpc_host: str = "127.0.0.1",
        engine_port: int = 8551,
        p2p_port: int = 30303,
        memory_max: str = "8G",
        limit_nofile: int = 65535,
        uid: int | None = None,
        jwt_secret: str | None = None,
    ):
        """Install one Nethermind instance.

        Each call creates a separate user, config, data directory, and systemd service.
        uid= pins the user's uid and gid (reproducible images). jwt_secret= is the path of
        the engine API's JWT secret, delivered after boot (image.secret); the service then
        waits for secrets-ready.target.
        """
        if datadir is None:
            datadir = f"/var/lib/{name}"

        # Per-instance user and data directory
        image.user(name, system=True, uid=uid, home=datadir)

        # Per-instance configuration
        image.template(
            src=_data("nethermind.cfg.j2"),
            dest=f"/etc/{name}/config.json",
            vars={
                "network": network,
                "datadir": datadir,
                "rpc_port": rpc_port,
                "rpc_host": rpc_host,
                "engine_port": engine_port,
                "p2p_port": p2p_port,
                "jwt_secret": jwt_secret,
            },
        )

        # Per-instance service
        after = ["network-online.target"]
        requires = []
        if jwt_secret:
            after.append("secrets-ready.target")
            requires.append("secrets-ready.target")
        image.service(
            name=name,
            exec=f"/opt/nethermind/nethermind --config /etc/{name}/config.json --datadir {datadir}",
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
