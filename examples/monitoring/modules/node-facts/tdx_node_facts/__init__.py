"""Facts about the image (its name, role, whatever labels you give) as a Prometheus metric,
written for the node exporter's textfile collector.

It builds nothing of its own but needs node_exporter to serve the facts, so its setup() sets
up tdx-node-exporter, as tdx-monitoring does: two modules sharing one dependency, which the
image builds once.
"""

import re
from importlib.resources import files

from tdx import Error, Image
from tdx_node_exporter import TEXTFILE_DIR, NodeExporter


class NodeFacts:
    def setup(self, image: Image):
        NodeExporter().setup(image)  # the same build as tdx-monitoring's: registered once

    def install(self, image: Image, *, labels: dict[str, str], textfile_dir: str = TEXTFILE_DIR):
        """One tdx_image_info sample carrying labels, in textfile_dir/tdx_image.prom."""
        for key, value in labels.items():
            if not re.fullmatch(r"[a-zA-Z_][a-zA-Z0-9_]*", key) or re.search(r'["\\\n]', str(value)):
                raise Error(f"NodeFacts: label {key}={value!r} is not usable in Prometheus text: names are "
                            f"letters, digits and '_', values hold no quote, backslash or newline")
        image.template(
            src=str(files("tdx_node_facts").joinpath("data", "tdx_image.prom.j2")),
            dest=f"{textfile_dir}/tdx_image.prom",
            vars={"labels": dict(sorted(labels.items()))},
        )

    def apply(self, image: Image, **kwargs):
        self.setup(image)
        self.install(image, **kwargs)
