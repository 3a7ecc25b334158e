from django.apps import AppConfig


class ProductsConfig(AppConfig):
    name = "products"

    def ready(self) -> None:
        from config.caching import CacheType
        from config.fastpath import cached_route

        # A search is recorded, so it always reaches Django.
        cached_route(
            "product_list",
            r"/api/products/",
            types=[CacheType.PRODUCTS],
            unless_query=["search"],
        )
        cached_route("product_categories", r"/api/products/categories/", types=[CacheType.PRODUCTS])
        # The apps that add parts to the detail add their types (cached_route_depends).
        cached_route(
            "product_detail", r"/api/products/\d{1,18}/", types=[CacheType.PRODUCT_METADATA]
        )
