"""Every query of Elastic's 1,024 prebuilt EQL rules parses."""

from __future__ import annotations

import tomllib

from tests.conftest import shared_dir
from vigil.eql import EqlSyntaxError, parse


def test_all_prebuilt_rule_queries_parse() -> None:
    folder = shared_dir() / "rules" / "elastic-prebuilt"
    files = sorted(folder.rglob("*.toml"))
    assert len(files) == 1024
    failures = []
    for path in files:
        query = tomllib.loads(path.read_text(encoding="utf-8"))["rule"]["query"]
        try:
            parse(query)
        except EqlSyntaxError as exc:
            failures.append(f"{path.relative_to(folder)}: {exc}")
    assert failures == []
