"""A service that needs a secret, in function form: it declares the secret it needs and starts
only after secrets-ready.target, which the image's delivery backend reaches once every declared
secret has arrived (after `tdx secrets push`, for the ssh backend)."""

from importlib.resources import files

from tdx import Image


def apply(image: Image, *, name: str = "sealed-app", secret: str = "API_TOKEN", uid: int | None = None):
    """The account `name`, the secret `secret` delivered to /run/<name>/token (0400, owned by the
    account, on tmpfs: gone at power-off) and the service `name`, which prints a fingerprint of it
    on the console when it starts."""
    token = f"/run/{name}/token"
    image.user(name, system=True, uid=uid)
    image.secret(secret, dest=token, owner=name, mode="0400")
    image.file(f"/usr/local/bin/{name}", src=str(files("tdx_sealed_app").joinpath("data", "sealed-app")), mode="0755")
    image.service(
        name=name,
        exec=f"/usr/local/bin/{name} {token}",
        after=["secrets-ready.target"],
        requires=["secrets-ready.target"],
        user=name,
        extra_unit={"Service": {"StandardOutput": "journal+console", "NoNewPrivileges": "yes"}},
    )
    return token
