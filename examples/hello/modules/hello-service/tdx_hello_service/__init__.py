"""hello-server as a tdx module: setup() builds it once, install() adds an instance."""

from importlib.resources import files

from tdx import Build, Image


def _data(name: str) -> str:
    return str(files("tdx_hello_service").joinpath("data", name))


class HelloService:
    def setup(self, image: Image):
        """Build hello-server (once per image; the build cache makes repeats free)."""
        image.install("ca-certificates")
        image.build(Build.script(
            name="hello-server",
            src="./src",
            build_script="make",
            artifacts={"hello-server": "/usr/local/bin/hello-server"},
            build_deps=["gcc", "libc6-dev", "make"],
        ))

    def install(self, image: Image, *, name: str = "hello", greeting: str = "hello", port: int = 8080,
                uid: int | None = None, memory_max: str = "64M"):
        """One instance: its own user, data dir, config and service."""
        datadir = f"/var/lib/{name}"
        image.user(name, system=True, uid=uid, home=datadir)
        image.template(
            src=_data("hello.conf.j2"),
            dest=f"/etc/{name}/hello.conf",
            vars={"name": name, "greeting": greeting, "port": port, "datadir": datadir},
        )
        image.service(
            name=name,
            exec=f"/usr/local/bin/hello-server /etc/{name}/hello.conf",
            after=["network-online.target"],
            restart="always",
            user=name,
            extra_unit={"Service": {"MemoryMax": memory_max, "LimitNOFILE": "1024"}},
        )

    def apply(self, image: Image, **kwargs):
        self.setup(image)
        self.install(image, **kwargs)
