"""Renders the policy table as the Markdown matrix in ``docs/access-policy.md``.

The document is generated, never edited: a test fails when it differs from the table.
"""

from __future__ import annotations

from auth.policy import FIELDS, READ, ROW, WRITE, WRITE_FIELDS, Access, EntityKind, Rel, Rules
from auth.roles import Role

ROLES = list(Role)


def _cell(rules: Rules, role: Role) -> str:
    g = rules.get(role)
    if g is None:
        return "—"
    rels = "/".join(r.value for r in Rel if r in g.relations)
    return f"{rels} (masked)" if g.access == Access.MASKED else rels


def _row(label: str, rules: Rules) -> str:
    return "| " + " | ".join([label, *(_cell(rules, r) for r in ROLES)]) + " |"


def render() -> str:
    head = "| | " + " | ".join(r.value for r in ROLES) + " |"
    rule = "|---" * (len(ROLES) + 1) + "|"
    out = [
        "# Access policy",
        "",
        "Generated from `auth/policy.py` by `make docs`; do not edit by hand.",
        "",
        "A cell names the relations under which a role is granted the row, field group or",
        "action: `any` (every record), `department` (the record belongs to the caller's",
        "department, or the patient was seen there), `care` (the caller treats the patient, or",
        "holds a live break-the-glass grant), `self` (the caller's own record). `—`: never.",
        "Fields not listed in a group follow the row. A forbidden field reads as `null` with a",
        "`FORBIDDEN` error at its path; masked fields show only their last four characters, and",
        "masked analytics are de-identified (groups of fewer than `SHMS_SUPPRESSION_THRESHOLD`",
        "distinct patients withheld).",
        "",
    ]
    for entity in EntityKind:
        out += [f"## {entity.value}", "", head, rule]
        for group, rules in READ.get(entity, {}).items():
            fields = ", ".join(FIELDS.get(entity, {}).get(group, ()))
            label = "read row" if group == ROW else f"read {group}"
            out.append(_row(f"{label} ({fields})" if fields and group != ROW else label, rules))
        for action, rules in WRITE.get(entity, {}).items():
            out.append(_row(f"**{action}**", rules))
        if entity == EntityKind.PATIENT:
            for group, (names, rules) in WRITE_FIELDS.items():
                out.append(_row(f"**update {group}** ({', '.join(names)})", rules))
        out.append("")
    return "\n".join(out)
