"""Run in a subprocess against the fault suite's database: products to rank and signed-in users."""

import json

CATEGORY = "faults"
USERS = 80
PRODUCTS = 12


def seed() -> None:
    from accounts.models import User, UserSession
    from accounts.services import token_hash
    from products.models import Product, ProductMetadata

    products = []
    for number in range(PRODUCTS):
        product = Product.objects.create(
            name=f"Fault product {number}", slug=f"fault-product-{number}", category=CATEGORY
        )
        ProductMetadata.objects.create(product=product)
        products.append(product.pk)
    tokens = []
    for number in range(USERS):
        user = User.objects.create(email=f"fault{number}@example.com", display_name=f"F{number}")
        token = f"fault-token-{number}"
        UserSession.objects.create(user=user, token_hash=token_hash(token))
        tokens.append([user.pk, token])
    print(json.dumps({"category": CATEGORY, "products": products, "users": tokens}))


if __name__ == "__main__":
    import django

    django.setup()
    seed()
