from django.apps import AppConfig


class ProductsConfig(AppConfig):
    name = "products"

    def ready(self) -> None:
        from products import caching  # noqa: F401  (registers the catalogue's cache warmers)
