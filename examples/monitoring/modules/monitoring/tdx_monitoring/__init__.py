"""A module depending on another module (§12.4): setup() first sets up tdx-node-exporter, its
Python dependency (pyproject.toml), then builds its own metrics aggregator.

metrics-agg (standin/) is a small Go program of ours: it scrapes the node exporter on
127.0.0.1:9100 and serves what it saw as Prometheus text on its own port.
"""

from tdx import Build, Image
from tdx_node_exporter import NodeExporter


class Monitoring:
    def setup(self, image: Image):
        NodeExporter().setup(image)  # Idempotent dep
        image.build(Build.go(
            name="metrics-agg", version="1.22.5",
            src="./standin", output="/usr/local/bin/metrics-agg",
        ))

    def install(self, image: Image, *, name: str = "monitoring", port: int = 9090, uid: int | None = None):
        image.user(name, system=True, uid=uid)
        image.service(name=name, exec=f"/usr/local/bin/metrics-agg --port {port}", user=name)

    def apply(self, image: Image, **kwargs):
        self.setup(image)
        self.install(image, **kwargs)
