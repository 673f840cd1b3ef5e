"""Result storage deduplicated per resource, history tables, exceptions in force at T.

- ``ResultChunk`` (one resource's verdicts, content-addressed) and ``ResultSetChunk``
  (membership) replace result sets that each held a copy of every verdict of a host;
  ``CheckResult`` rows move to their chunk; ``ResultSet.control_counts`` replaces the
  ``ControlResult`` rows (dropped: nothing read them).
- Chunks and sets are referenced by bigint ids (their digests stay unique keys): the old
  set table is renamed aside, and existing rows are regrouped into the new tables: identical
  chunks stored once, each set under its new content address (sha256 over its sorted chunk
  digests, what evaluation computes now) with its evaluations repointed and its control
  counts copied from its ControlResult rows. Sets no evaluation points at are dropped.
- ``FailureWindow`` and ``DailyPosture`` are created empty: ``manage.py reevaluate --all``
  fills them for existing history (new scans fill them as they are evaluated).
- ``ControlException.revoked_at``/``revoked_by`` (revoking used to overwrite the approval
  time) and ``resource_regex``; legacy revoked rows get their approval time back from the
  audit trail.
"""

import hashlib
import json
from collections import defaultdict

import django.db.models.deletion
import django.db.models.functions.text
from django.conf import settings
from django.db import migrations, models

ROW_FIELDS = ("check_id", "check_version", "resource_type", "resource", "status", "detail", "evidence_kind",
              "evidence_key")


def _digest(value) -> str:
    """sha256 of the canonical JSON (posture.jobs.ingest.canonical_json), frozen here."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def regroup_results(apps, schema_editor):
    LegacyResultSet = apps.get_model("posture", "LegacyResultSet")
    ResultSet = apps.get_model("posture", "ResultSet")
    ResultChunk = apps.get_model("posture", "ResultChunk")
    ResultSetChunk = apps.get_model("posture", "ResultSetChunk")
    CheckResult = apps.get_model("posture", "CheckResult")
    ControlResult = apps.get_model("posture", "ControlResult")
    Evaluation = apps.get_model("posture", "Evaluation")
    count_field = {"pass": "passed", "fail": "failed", "not_applicable": "not_applicable", "manual": "manual",
                   "error": "errors", "not_assessed": "not_assessed"}
    for old in list(LegacyResultSet.objects.order_by("digest")):
        old_rows = CheckResult.objects.filter(result_set_id=old.digest)
        if not Evaluation.objects.filter(result_set_id=old.digest).exists():
            old_rows.delete()  # an orphan (its evaluation was never written): nothing reads it
            continue
        groups = defaultdict(list)
        for row in old_rows.values_list(*ROW_FIELDS):
            groups[(row[2], row[3])].append(list(row))
        chunks = {}
        for (rtype, resource), rows in groups.items():
            rows.sort()
            chunks[_digest(rows)] = (rtype, resource, rows)
        chunk_ids = dict(ResultChunk.objects.filter(digest__in=list(chunks)).values_list("digest", "id"))
        for digest in sorted(set(chunks) - set(chunk_ids)):
            rtype, resource, rows = chunks[digest]
            counts = defaultdict(int)
            for row in rows:
                counts[row[4]] += 1
            chunk = ResultChunk.objects.create(digest=digest, resource_type=rtype, resource=resource,
                                               finding_count=len(rows), counts=dict(counts))
            chunk_ids[digest] = chunk.pk
            CheckResult.objects.bulk_create(
                [CheckResult(chunk_id=chunk.pk, result_set_id=None, **dict(zip(ROW_FIELDS, row))) for row in rows],
                batch_size=500)
        old_rows.delete()  # the copies: fresh chunks hold new rows, the others existed already
        control_counts = defaultdict(dict)
        for cr in ControlResult.objects.filter(result_set_id=old.digest).select_related("control__framework"):
            per_status = {s: getattr(cr, f) for s, f in count_field.items() if getattr(cr, f)}
            control_counts[cr.control.framework.slug][cr.control.ref] = per_status
        new_digest = _digest(sorted(chunks))
        target = ResultSet.objects.filter(digest=new_digest).first()
        if target is None:
            target = ResultSet.objects.create(digest=new_digest, finding_count=old.finding_count, counts=old.counts,
                                              control_counts=dict(control_counts))
            ResultSet.objects.filter(pk=target.pk).update(created_at=old.created_at)
            ResultSetChunk.objects.bulk_create(
                [ResultSetChunk(result_set_id=target.pk, chunk_id=chunk_ids[d]) for d in sorted(chunks)],
                batch_size=500)
        Evaluation.objects.filter(result_set_id=old.digest).update(new_result_set_id=target.pk)
    if schema_editor.connection.vendor == "postgresql":
        # Fire the deferred foreign-key checks now, so the ALTER TABLEs that follow in this
        # transaction are allowed ("pending trigger events").
        schema_editor.execute("SET CONSTRAINTS ALL IMMEDIATE")


def exceptions_in_force(apps, schema_editor):
    from posture.patterns import shell_pattern_regex

    ControlException = apps.get_model("posture", "ControlException")
    AuditEvent = apps.get_model("posture", "AuditEvent")
    for exc in ControlException.objects.all():
        exc.resource_regex = shell_pattern_regex(exc.resource_pattern)
        fields = ["resource_regex"]
        if exc.state == "revoked" and exc.revoked_at is None:
            # Revoking used to overwrite decided_* with the revocation: move it, and restore
            # the approval (if there was one) from the audit trail.
            exc.revoked_at, exc.revoked_by_id = exc.decided_at, exc.decided_by_id
            approved = (AuditEvent.objects.filter(action="exception.approved", target=f"exception #{exc.pk}")
                        .order_by("at").first())
            exc.decided_at = approved.at if approved else None
            exc.decided_by_id = approved.actor_id if approved else None
            fields += ["revoked_at", "revoked_by", "decided_at", "decided_by"]
        exc.save(update_fields=fields)


class Migration(migrations.Migration):

    dependencies = [
        ('posture', '0004_host_archive'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        # 1. New storage beside the old (the old sets keep their table until regrouped).
        migrations.RenameModel(old_name='ResultSet', new_name='LegacyResultSet'),
        migrations.CreateModel(
            name='ResultChunk',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('digest', models.CharField(help_text='sha256 of its sorted rows', max_length=64, unique=True)),
                ('resource_type', models.CharField(max_length=16)),
                ('resource', models.TextField()),
                ('finding_count', models.PositiveIntegerField()),
                ('counts', models.JSONField(default=dict, help_text='findings per status')),
                ('created_at', models.DateTimeField(auto_now_add=True)),
            ],
        ),
        migrations.CreateModel(
            name='ResultSet',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('digest', models.CharField(help_text='sha256 of its sorted chunk digests', max_length=64, unique=True)),
                ('finding_count', models.PositiveIntegerField()),
                ('counts', models.JSONField(default=dict, help_text='findings per status')),
                ('control_counts', models.JSONField(default=dict, help_text='before exceptions: {framework slug: {control ref: {status: n}}}')),
                ('created_at', models.DateTimeField(auto_now_add=True)),
            ],
        ),
        migrations.CreateModel(
            name='ResultSetChunk',
            fields=[
                ('pk', models.CompositePrimaryKey('result_set', 'chunk', blank=True, editable=False, primary_key=True, serialize=False)),
                ('chunk', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='memberships', to='posture.resultchunk')),
                ('result_set', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='memberships', to='posture.resultset')),
            ],
        ),
        migrations.AddField(
            model_name='checkresult',
            name='chunk',
            field=models.ForeignKey(db_index=False, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='results', to='posture.resultchunk'),
        ),
        migrations.AlterField(
            model_name='checkresult',
            name='result_set',
            field=models.ForeignKey(null=True, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='posture.legacyresultset'),
        ),
        migrations.AddField(
            model_name='evaluation',
            name='new_result_set',
            field=models.ForeignKey(null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='posture.resultset'),
        ),
        migrations.AddField(
            model_name='controlexception',
            name='resource_regex',
            field=models.TextField(blank=True, editable=False, help_text='resource_pattern as an anchored regex (derived on save)'),
        ),
        migrations.AddField(
            model_name='controlexception',
            name='revoked_at',
            field=models.DateTimeField(blank=True, help_text='in force until then, if it was approved', null=True),
        ),
        migrations.AddField(
            model_name='controlexception',
            name='revoked_by',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL),
        ),
        # 2. Regroup existing verdicts; exceptions get their regex and revocation time.
        migrations.RunPython(regroup_results, migrations.RunPython.noop),
        migrations.RunPython(exceptions_in_force, migrations.RunPython.noop),
        # 3. The old storage goes.
        migrations.DeleteModel(name='ControlResult'),
        migrations.RemoveIndex(model_name='checkresult', name='check_result_set_status'),
        migrations.RemoveIndex(model_name='checkresult', name='check_result_set_check'),
        migrations.RemoveField(model_name='checkresult', name='result_set'),
        migrations.RemoveField(model_name='evaluation', name='result_set'),
        migrations.DeleteModel(name='LegacyResultSet'),
        migrations.RenameField(model_name='evaluation', old_name='new_result_set', new_name='result_set'),
        migrations.AlterField(
            model_name='evaluation',
            name='result_set',
            field=models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='evaluations', to='posture.resultset'),
        ),
        migrations.AlterField(
            model_name='checkresult',
            name='chunk',
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='results', to='posture.resultchunk'),
        ),
        migrations.AlterField(
            model_name='checkresult',
            name='check_id',
            field=models.CharField(max_length=100),
        ),
        # A relation over the existing check_id column: nothing to do in the database (and
        # SQLite's schema editor cannot remove a ForeignObject when migrating back).
        migrations.SeparateDatabaseAndState(state_operations=[migrations.AddField(
            model_name='checkresult',
            name='catalog_check',
            field=models.ForeignObject(from_fields=['check_id'], on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to='posture.check', to_fields=['id']),
        )]),
        migrations.AddIndex(
            model_name='checkresult',
            index=models.Index(fields=['chunk', 'status'], name='check_result_chunk_status'),
        ),
        migrations.AddIndex(
            model_name='checkresult',
            index=models.Index(fields=['check_id', 'status'], name='check_result_check_status'),
        ),
        # 4. "Current scan at T", ties by id: one index probe per host.
        migrations.RemoveIndex(model_name='scanrun', name='scan_host_state_finished'),
        migrations.AddIndex(
            model_name='scanrun',
            index=models.Index(fields=['host', 'state', '-finished_at', '-id'], name='scan_host_state_finished_id'),
        ),
        # 5. History derived at evaluation (filled by reevaluate for existing scans).
        migrations.CreateModel(
            name='FailureWindow',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('check_id', models.CharField(max_length=100)),
                ('resource_type', models.CharField(max_length=16)),
                ('resource', models.TextField()),
                ('opened_at', models.DateTimeField(help_text='finished_at of the scan that first saw the failure')),
                ('closed_at', models.DateTimeField(blank=True, null=True)),
                ('host', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='posture.dockerhost')),
                ('opened_scan', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='posture.scanrun')),
                ('closed_scan', models.ForeignKey(blank=True, help_text='empty: still failing', null=True, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='posture.scanrun')),
                ('catalog_check', models.ForeignObject(from_fields=['check_id'], on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to='posture.check', to_fields=['id'])),
            ],
            options={
                'indexes': [
                    models.Index(fields=['host', 'opened_at'], name='failure_window_host_opened'),
                    models.Index(fields=['host', 'closed_at'], name='failure_window_host_closed'),
                    models.Index(fields=['check_id', 'opened_at'], name='failure_window_check'),
                ],
                'constraints': [
                    models.UniqueConstraint(models.F('host'), models.F('check_id'), models.F('resource_type'), django.db.models.functions.text.MD5('resource'), condition=models.Q(('closed_scan__isnull', True)), name='failure_window_one_open'),
                ],
            },
        ),
        migrations.CreateModel(
            name='DailyPosture',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('framework', models.CharField(help_text='framework slug', max_length=64)),
                ('day', models.DateField()),
                ('controls_pass', models.PositiveSmallIntegerField(default=0)),
                ('controls_fail', models.PositiveSmallIntegerField(default=0)),
                ('controls_excepted', models.PositiveSmallIntegerField(default=0)),
                ('controls_manual', models.PositiveSmallIntegerField(default=0)),
                ('controls_not_assessed', models.PositiveSmallIntegerField(default=0)),
                ('controls_error', models.PositiveSmallIntegerField(default=0)),
                ('controls_not_applicable', models.PositiveSmallIntegerField(default=0)),
                ('results_pass', models.PositiveIntegerField(default=0)),
                ('results_fail', models.PositiveIntegerField(default=0, help_text='failures not excepted')),
                ('host', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='posture.dockerhost')),
                ('scan', models.ForeignKey(db_index=False, help_text="the day's last succeeded (and evaluated) scan", on_delete=django.db.models.deletion.CASCADE, related_name='+', to='posture.scanrun')),
            ],
            options={
                'constraints': [models.UniqueConstraint(fields=('framework', 'day', 'host'), name='daily_posture_unique')],
            },
        ),
    ]
