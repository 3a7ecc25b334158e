"""Performance indexes as plain SQL migrations that run on SQLite and PostgreSQL alike."""

from django.db import migrations, models
from django.db.backends.base.schema import BaseDatabaseSchemaEditor


def _create_sql(*, table: str, index: models.Index, columns: str, where: str) -> str:
    predicate = f" WHERE {where}" if where else ""
    return (
        f"CREATE INDEX {{concurrently}}IF NOT EXISTS {index.name} ON {table} ({columns}){predicate}"
    )


class _ConcurrentSQL(migrations.RunSQL):
    """On PostgreSQL the index is built or dropped CONCURRENTLY so that writes go on meanwhile,
    which needs the migration to declare `atomic = False`."""

    def _run_sql(self, schema_editor: BaseDatabaseSchemaEditor, sqls: str) -> None:
        concurrently = "CONCURRENTLY " if schema_editor.connection.vendor == "postgresql" else ""
        # django-stubs omits RunSQL._run_sql, which Django 5.2 defines.
        sql = sqls.replace("{concurrently}", concurrently)
        super()._run_sql(schema_editor, sql)  # type: ignore[misc]


class PerformanceIndex(_ConcurrentSQL):
    """CREATE INDEX from SQL, with Django's migration state told about the same index."""

    def __init__(
        self, *, model_name: str, table: str, index: models.Index, columns: str, where: str = ""
    ) -> None:
        super().__init__(
            sql=_create_sql(table=table, index=index, columns=columns, where=where),
            reverse_sql=f"DROP INDEX {{concurrently}}IF EXISTS {index.name}",
            state_operations=[migrations.AddIndex(model_name=model_name, index=index)],
        )


class DropPerformanceIndex(_ConcurrentSQL):
    """DROP INDEX of a performance index whose query is gone; reversing builds it again."""

    def __init__(
        self, *, model_name: str, table: str, index: models.Index, columns: str, where: str = ""
    ) -> None:
        super().__init__(
            sql=f"DROP INDEX {{concurrently}}IF EXISTS {index.name}",
            reverse_sql=_create_sql(table=table, index=index, columns=columns, where=where),
            state_operations=[migrations.RemoveIndex(model_name=model_name, name=index.name)],
        )
        self.index_name = index.name
