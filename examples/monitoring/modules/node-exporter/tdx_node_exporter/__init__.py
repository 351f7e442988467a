"""The Prometheus node exporter as a tdx module; other modules build on it (§12.4).

Stand-in: the node exporter's sources and Go modules cannot be downloaded where these examples
are built, so setup() builds standin/, a small Go program of ours with the node exporter's
flags: it serves load and memory figures from /proc, plus the *.prom files of its textfile
collector folder, as Prometheus text on /metrics.
"""

from tdx import Build, Image

TEXTFILE_DIR = "/var/lib/node_exporter/textfile"


class NodeExporter:
    def setup(self, image: Image):
        """Build node_exporter once per image: modules that need it call this too (idempotent)."""
        image.build(Build.go(
            name="node_exporter",
            version="1.22.5",
            src="./standin",
            output="/usr/local/bin/node_exporter",
            ldflags="-s -w",
        ))

    def install(self, image: Image, *, name: str = "node-exporter", port: int = 9100,
                textfile_dir: str = TEXTFILE_DIR, uid: int | None = None):
        """One exporter instance on 127.0.0.1:port, reading textfile_dir's *.prom files."""
        image.user(name, system=True, uid=uid)
        image.run(f"install -d -m 0755 {textfile_dir}")
        image.service(
            name=name,
            exec=f"/usr/local/bin/node_exporter --web.listen-address=127.0.0.1:{port} "
                 f"--collector.textfile.directory={textfile_dir}",
            after=["network-online.target"],
            restart="always",
            user=name,
        )

    def apply(self, image: Image, **kwargs):
        self.setup(image)
        self.install(image, **kwargs)
