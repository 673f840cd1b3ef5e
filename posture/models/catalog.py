"""Framework catalogs in the database: loaded idempotently from posture/catalog/*.yaml and
the check registry by ``manage.py load_catalog`` (also after every migrate).

Rows are derived data: the YAML files and the code are the source. They exist so pages,
the API and reports can join and filter on them."""

from __future__ import annotations

from django.db import models


class Framework(models.Model):
    slug = models.SlugField(max_length=64, unique=True, help_text="e.g. cis-docker-1.8.0, soc2-2017")
    name = models.CharField(max_length=200)
    version = models.CharField(max_length=20)
    derived_from = models.CharField(max_length=64, blank=True, help_text="renumbered from this framework")

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.slug


class Control(models.Model):
    """One recommendation (CIS) or criterion (SOC 2) of a framework."""

    framework = models.ForeignKey(Framework, on_delete=models.CASCADE, related_name="controls")
    ref = models.CharField(max_length=20, help_text="the framework's own number, e.g. 5.5 or CC6.1")
    title = models.CharField(max_length=300)
    section = models.CharField(max_length=20, blank=True)
    section_name = models.CharField(max_length=200, blank=True)
    level = models.PositiveSmallIntegerField(null=True, blank=True)
    assess = models.CharField(max_length=16, help_text="automated (checks decide) or manual (attestation)")
    supportable = models.BooleanField(default=True, help_text="whether container evidence can support it")
    note = models.TextField(blank=True)
    sort_key = models.CharField(max_length=64, help_text="natural order: 1.1.10 after 1.1.9")

    class Meta:
        ordering = ["framework", "sort_key"]
        constraints = [models.UniqueConstraint(fields=["framework", "ref"], name="control_unique_ref")]

    def __str__(self) -> str:
        return f"{self.framework.slug} {self.ref}"


class Check(models.Model):
    """A check of the registry (scanners/checks), mirrored for joins; the code is the source."""

    id = models.CharField(max_length=100, primary_key=True, help_text="stable slug, never renumbered")
    title = models.CharField(max_length=300)
    scope = models.CharField(max_length=16)
    severity = models.CharField(max_length=16)
    version = models.PositiveIntegerField()
    automated = models.BooleanField()
    remediation = models.TextField(blank=True)
    controls = models.ManyToManyField(Control, related_name="checks", blank=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.id
