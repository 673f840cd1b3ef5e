"""ResultSet.assessed: per framework, the control refs a result set assessed (derived from its
control_counts, as posture.jobs.evaluate.assessed_refs computes it for new sets), so that
operating effectiveness reads which controls each scan in force left unassessed without
decoding every result set's counts."""

from django.db import migrations, models


def assessed_refs(counts):
    # A frozen copy of posture.jobs.evaluate.assessed_refs (a migration is a snapshot).
    return {slug: sorted(ref for ref, c in refs.items() if c and not (c.get("not_assessed") or c.get("error")))
            for slug, refs in (counts or {}).items()}


def fill(apps, schema_editor):
    ResultSet = apps.get_model("posture", "ResultSet")
    batch = []
    for row in ResultSet.objects.only("id", "control_counts").order_by("id").iterator(chunk_size=1000):
        row.assessed = assessed_refs(row.control_counts)
        batch.append(row)
        if len(batch) == 1000:
            ResultSet.objects.bulk_update(batch, ["assessed"])
            batch = []
    if batch:
        ResultSet.objects.bulk_update(batch, ["assessed"])


class Migration(migrations.Migration):

    dependencies = [("posture", "0009_current_findings")]

    operations = [
        migrations.AddField(
            model_name="resultset",
            name="assessed",
            field=models.JSONField(default=dict, help_text="{framework slug: [control refs with counts, none "
                                                           "not_assessed or error]} (from control_counts: "
                                                           "posture.jobs.evaluate.assessed_refs)"),
        ),
        migrations.RunPython(fill, migrations.RunPython.noop),
    ]
