from django.apps import AppConfig


class ExportsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "exports"
    verbose_name = "SpermGrade dataset export and import"

    def ready(self) -> None:
        from exports.lost import export_lost, import_lost
        from jobs.reaper import kind_register

        kind_register("export", export_lost)
        kind_register("import", import_lost)
