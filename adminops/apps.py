from django.apps import AppConfig


class AdminopsConfig(AppConfig):
    name = "adminops"
