"""The `-- wedsync:` header directives of a migration file."""

from __future__ import annotations

import re
from types import MappingProxyType

from wedsync_db.migrate.lint.records import DirectiveProblem, Directives

_DIRECTIVE = re.compile(r"^--\s*wedsync:(?P<name>\S*)\s*(?P<rest>.*?)\s*$")
_ALLOW = re.compile(r"^(?P<rule>[a-z0-9][a-z0-9-]*)\s*(?::(?P<reason>.*))?$")
_DIRECTIVE_SYNTAX = "`-- wedsync:no-transaction` or `-- wedsync:allow <rule-name>: <reason>`"


def parse_directives(sql: str) -> Directives:
    """Read `-- wedsync:` directives from the comment lines at the top of a file."""
    no_transaction = False
    allows: dict[str, str] = {}
    allow_lines: dict[str, int] = {}
    problems: list[DirectiveProblem] = []
    in_header = True
    for number, raw in enumerate(sql.removeprefix("\ufeff").splitlines(), start=1):
        line = raw.strip()
        if in_header and line and not line.startswith("--"):
            in_header = False
        match = _DIRECTIVE.match(line)
        if match is None:
            continue
        name, rest = match["name"], match["rest"]
        if not in_header:
            problems.append(
                DirectiveProblem(
                    "invalid-directive",
                    number,
                    f"`wedsync:{name}` is ignored after the first statement; move it into the "
                    "comment lines at the top of the file",
                )
            )
        elif name == "no-transaction" and not rest:
            no_transaction = True
        elif name == "allow" and (allow := _ALLOW.match(rest)) is not None:
            rule, reason = allow["rule"], (allow["reason"] or "").strip()
            if not reason:
                problems.append(
                    DirectiveProblem(
                        "allow-without-reason",
                        number,
                        f"`wedsync:allow {rule}` has no reason; write why it is safe after a "
                        f"colon: `-- wedsync:allow {rule}: <reason>`",
                    )
                )
            else:
                allows[rule] = f"{allows[rule]}; {reason}" if rule in allows else reason
                allow_lines.setdefault(rule, number)
        else:
            problems.append(
                DirectiveProblem(
                    "invalid-directive",
                    number,
                    f"cannot read `{line}`; the header accepts {_DIRECTIVE_SYNTAX}",
                )
            )
    return Directives(
        no_transaction=no_transaction,
        allows=MappingProxyType(allows),
        allow_lines=MappingProxyType(allow_lines),
        problems=tuple(problems),
    )
