import factory

from accounts.tests.factories import UserFactory
from products.tests.factories import ProductFactory
from rankings.models import ProductRanking, borda_points


class ProductRankingFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ProductRanking

    user = factory.SubFactory(UserFactory)
    product = factory.SubFactory(ProductFactory)
    category = factory.SelfAttribute("product.category")
    position = 1
    points = factory.LazyAttribute(lambda ranking: borda_points(ranking.position))
