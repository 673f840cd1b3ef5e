"""Evidence as JSON lines with the deciding field marked (posture/evidence_display.py)."""

from __future__ import annotations

import json

from posture.evidence_display import MAX_LINES, deciding_paths, evidence_lines

PAYLOAD = {"name": "web", "inspect": {"HostConfig": {"Privileged": True, "Memory": 0}, "Config": {"Labels": {"name": "x"}}},
           "LiveRestoreEnabled": False}


def hits(payload, detail: str) -> list[str]:
    return [line.path for line in evidence_lines(payload, detail) if line.hit]


def test_it_prints_the_payload_as_json_indent_2_would():
    assert "\n".join(line.text for line in evidence_lines(PAYLOAD)) == json.dumps(PAYLOAD, indent=2, ensure_ascii=False)


def test_it_marks_the_key_path_the_detail_names():
    assert deciding_paths("HostConfig.Privileged=true grants every capability") == [(("HostConfig", "Privileged"), "true")]
    assert hits(PAYLOAD, "HostConfig.Privileged=true grants every capability") == ["inspect.HostConfig.Privileged"]
    assert hits(PAYLOAD, "HostConfig.Memory=0 (unlimited)") == ["inspect.HostConfig.Memory"]
    assert [line.value for line in evidence_lines(PAYLOAD, "HostConfig.Privileged=true") if line.hit] == ["true"]


def test_it_marks_a_one_key_path_only_when_its_value_matches_too():
    assert hits(PAYLOAD, "LiveRestoreEnabled=false") == ["LiveRestoreEnabled"]
    assert hits(PAYLOAD, "SecurityOptions lacks name=rootless") == []  # prose, not the label "name"


def test_it_marks_nothing_without_a_path_and_cuts_huge_payloads():
    assert hits(PAYLOAD, "no audit rule covers /usr/bin/dockerd") == []
    lines = evidence_lines(list(range(MAX_LINES + 10)))
    assert len(lines) == MAX_LINES + 1 and lines[-1].text.startswith("…")
