"""Renders the declared policy as the Markdown matrix in ``docs/access-policy.md``.

The document is generated from the entity declarations, never edited: a test fails when it
differs from them.
"""

from __future__ import annotations

from auth.policy import REGISTRY, ROW, Access, Rel, Rules
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
        "Generated from the entity declarations (`declare(...)` beside each model) by",
        "`make docs`; do not edit by hand.",
        "",
        "A cell names the relations under which a role is granted the row, field group or",
        "action: `any` (every record), `department` (the record belongs to the caller's",
        "department, or the patient was seen there), `care` (the caller treats the patient, or",
        "holds a live break-the-glass grant), `self` (the caller's own record). `—`: never.",
        "Care and department relations to a patient come from clinical facts with a lifetime",
        "(an upcoming or current appointment, one completed within",
        "`SHMS_CARE_RELATIONSHIP_DAYS`, an active treatment plan they oversee) and end with them.",
        "Every field belongs to one classified group; a forbidden field reads as `null` with a",
        "`FORBIDDEN` error at its path; masked fields show only their last four characters, and",
        "masked analytics are de-identified (groups of fewer than `SHMS_SUPPRESSION_THRESHOLD`",
        "distinct patients withheld).",
        "",
    ]
    for d in REGISTRY:
        out += [f"## {d.kind}", "", head, rule]
        for g in d.groups:
            fields = ", ".join(g.fields)
            label = "read row" if g.name == ROW else f"read {g.name}"
            label = f"{label} [{g.classification}]"
            out.append(_row(f"{label} ({fields})" if fields and g.name != ROW else label, g.read))
        for action, rules in d.actions.items():
            out.append(_row(f"**{action}**", rules))
        for group, (names, rules) in d.updates.items():
            out.append(_row(f"**update {group}** ({', '.join(names)})", rules))
        out.append("")
    return "\n".join(out)
