"""Performance indexes as plain SQL migrations that run on SQLite and PostgreSQL alike."""

from django.db import migrations, models
from django.db.backends.base.schema import BaseDatabaseSchemaEditor


class PerformanceIndex(migrations.RunSQL):
    """CREATE INDEX from SQL, with Django's migration state told about the same index.

    On PostgreSQL the index is built CONCURRENTLY so that writes go on while it builds, which
    needs the migration to declare `atomic = False`.
    """

    def __init__(
        self, *, model_name: str, table: str, index: models.Index, columns: str, where: str = ""
    ) -> None:
        predicate = f" WHERE {where}" if where else ""
        super().__init__(
            sql=f"CREATE INDEX {{concurrently}}IF NOT EXISTS {index.name} "
            f"ON {table} ({columns}){predicate}",
            reverse_sql=f"DROP INDEX {{concurrently}}IF EXISTS {index.name}",
            state_operations=[migrations.AddIndex(model_name=model_name, index=index)],
        )

    def _run_sql(self, schema_editor: BaseDatabaseSchemaEditor, sqls: str) -> None:
        concurrently = "CONCURRENTLY " if schema_editor.connection.vendor == "postgresql" else ""
        # django-stubs omits RunSQL._run_sql, which Django 5.2 defines.
        sql = sqls.replace("{concurrently}", concurrently)
        super()._run_sql(schema_editor, sql)  # type: ignore[misc]
