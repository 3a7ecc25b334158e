import factory

from products.models import Product, ProductMetadata


class ProductFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Product
        skip_postgeneration_save = True

    name = factory.Sequence(lambda n: f"Product {n}")
    slug = factory.Sequence(lambda n: f"product-{n}")
    brand = "Acme"
    category = "headphones"
    metadata = factory.RelatedFactory(
        "products.tests.factories.ProductMetadataFactory", factory_related_name="product"
    )


class ProductMetadataFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ProductMetadata

    product = factory.SubFactory(ProductFactory, metadata=None)
    description = "A product."
