"""Evidence referenced by bigint ids; set memberships keyed by (set, kind, key).

``Evidence`` and ``EvidenceSet`` were keyed by their sha256 digests, so every membership row
(one per resource per changed scan) carried two 64-character keys, and its indexes again:
~560 bytes per item. They get bigint ids, their digests stay unique keys (what auditors, the
API and the hash chain see); ``EvidenceSetItem`` references both by id and has the composite
primary key (set, kind, key) instead of an id and a separate unique index.

The new tables are created beside the old ones (as ``New*``, renamed at the end so no index
name collides), the rows are copied in SQL (set-based: fast on a large history, the same on
PostgreSQL and SQLite), each scan is repointed at its set by digest, and the counts are
checked before the old tables go: a row that could not be carried over stops the migration
instead of being lost. Digests are copied verbatim, so ``verify_chain`` gives the same answer
before and after (the chain never covered the log).

Succeeded scans keep the milestones of their log only (connection, the end of each
collection phase, storing; not the intermediate "inspecting containers 35/50" counters), as
new scans now do; failed and errored scans keep every line.
"""

import re

import django.db.models.deletion
from django.db import migrations, models


def copy_evidence(apps, schema_editor):
    q = schema_editor.quote_name

    def table(name: str) -> str:
        return q(apps.get_model("posture", name)._meta.db_table)

    old_ev, old_set, old_item = table("Evidence"), table("EvidenceSet"), table("EvidenceSetItem")
    new_ev, new_set, new_item = table("NewEvidence"), table("NewEvidenceSet"), table("NewEvidenceSetItem")
    scan = table("ScanRun")
    key = q("key")
    statements = [
        f"INSERT INTO {new_ev} (digest, kind, payload, size, first_seen_at) "
        f"SELECT digest, kind, payload, size, first_seen_at FROM {old_ev} ORDER BY first_seen_at, digest",
        f"INSERT INTO {new_set} (digest, item_count, created_at) "
        f"SELECT digest, item_count, created_at FROM {old_set} ORDER BY created_at, digest",
        f"INSERT INTO {new_item} (evidence_set_id, kind, {key}, evidence_id) "
        f"SELECT s.id, i.kind, i.{key}, e.id FROM {old_item} i "
        f"JOIN {new_set} s ON s.digest = i.evidence_set_id JOIN {new_ev} e ON e.digest = i.evidence_id",
        f"UPDATE {scan} SET new_evidence_set_id = (SELECT s.id FROM {new_set} s WHERE s.digest = {scan}.evidence_set_id) "
        f"WHERE evidence_set_id IS NOT NULL",
    ]
    for sql in statements:
        schema_editor.execute(sql)
    checks = {
        "evidence": (old_ev, new_ev, ""),
        "evidence sets": (old_set, new_set, ""),
        "set items": (old_item, new_item, ""),
        "scans with evidence": (scan, scan, "evidence_set_id IS NOT NULL|new_evidence_set_id IS NOT NULL"),
    }
    with schema_editor.connection.cursor() as cur:
        for what, (old, new, where) in checks.items():
            old_where, new_where = where.split("|") if where else ("1 = 1", "1 = 1")
            cur.execute(f"SELECT COUNT(*) FROM {old} WHERE {old_where}")
            before = cur.fetchone()[0]
            cur.execute(f"SELECT COUNT(*) FROM {new} WHERE {new_where}")
            after = cur.fetchone()[0]
            if before != after:
                raise RuntimeError(f"0007: {before} {what} before, {after} after the copy; nothing was changed")
    if schema_editor.connection.vendor == "postgresql":
        # Fire the deferred foreign-key checks now, so the ALTER TABLEs that follow in this
        # transaction are allowed ("pending trigger events").
        schema_editor.execute("SET CONSTRAINTS ALL IMMEDIATE")


#: posture.jobs.scans._COUNTER, frozen here.
_COUNTER = re.compile(r"^\S+ inspecting \w+ (\d+)/(\d+)$")


def compact_logs(apps, schema_editor):
    """Succeeded scans keep the milestones of their log, as new ones do (kept_log, frozen)."""
    ScanRun = apps.get_model("posture", "ScanRun")
    changed = []
    for scan in ScanRun.objects.filter(state="succeeded").only("id", "log").iterator(chunk_size=2000):
        lines = scan.log if isinstance(scan.log, list) else []
        kept = [line for line in lines if not (isinstance(line, str) and (m := _COUNTER.match(line))
                                                and m.group(1) != m.group(2))]
        if len(kept) != len(lines):
            scan.log = kept
            changed.append(scan)
        if len(changed) >= 2000:
            ScanRun.objects.bulk_update(changed, ["log"])
            changed = []
    ScanRun.objects.bulk_update(changed, ["log"])


class Migration(migrations.Migration):

    dependencies = [
        ('posture', '0006_api_tokens'),
    ]

    operations = [
        # 1. The new storage beside the old.
        migrations.CreateModel(
            name='NewEvidence',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('digest', models.CharField(help_text='sha256 of the canonical JSON', max_length=64, unique=True)),
                ('kind', models.CharField(max_length=32)),
                ('payload', models.JSONField()),
                ('size', models.PositiveIntegerField(help_text='bytes of canonical JSON')),
                ('first_seen_at', models.DateTimeField(auto_now_add=True)),
            ],
            options={'verbose_name_plural': 'evidence'},
        ),
        migrations.CreateModel(
            name='NewEvidenceSet',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('digest', models.CharField(help_text='sha256 of the sorted manifest lines', max_length=64, unique=True)),
                ('item_count', models.PositiveIntegerField()),
                ('created_at', models.DateTimeField(auto_now_add=True)),
            ],
        ),
        migrations.CreateModel(
            name='NewEvidenceSetItem',
            fields=[
                ('pk', models.CompositePrimaryKey('evidence_set', 'kind', 'key', blank=True, editable=False, primary_key=True, serialize=False)),
                ('evidence_set', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='posture.newevidenceset')),
                ('evidence', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='+', to='posture.newevidence')),
                ('kind', models.CharField(max_length=32)),
                ('key', models.CharField(max_length=255)),
            ],
        ),
        migrations.AddField(
            model_name='scanrun',
            name='new_evidence_set',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='posture.newevidenceset'),
        ),
        # 2. Copy, checked.
        migrations.RunPython(copy_evidence, migrations.RunPython.noop),
        # 3. The old storage goes; the new takes its names.
        migrations.RemoveField(model_name='scanrun', name='evidence_set'),
        migrations.DeleteModel(name='EvidenceSetItem'),
        migrations.DeleteModel(name='EvidenceSet'),
        migrations.DeleteModel(name='Evidence'),
        migrations.RenameModel(old_name='NewEvidence', new_name='Evidence'),
        migrations.RenameModel(old_name='NewEvidenceSet', new_name='EvidenceSet'),
        migrations.RenameModel(old_name='NewEvidenceSetItem', new_name='EvidenceSetItem'),
        migrations.RenameField(model_name='scanrun', old_name='new_evidence_set', new_name='evidence_set'),
        migrations.AlterField(
            model_name='scanrun',
            name='evidence_set',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='scans', to='posture.evidenceset'),
        ),
        migrations.AlterField(
            model_name='evidencesetitem',
            name='evidence_set',
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='items', to='posture.evidenceset'),
        ),
        # 4. A succeeded scan keeps the milestones of its log (posture.jobs.scans.kept_log).
        migrations.AlterField(
            model_name='scanrun',
            name='log',
            field=models.JSONField(blank=True, default=list, help_text='progress lines (a succeeded scan keeps its milestones)'),
        ),
        migrations.RunPython(compact_logs, migrations.RunPython.noop),
    ]
