"""examples/: one typed supabase-js example per app, and the compiler proves they match the schema.

Each example calls `createClient<Database>(url, anonKey)` with the generated
`supabase/types/database.ts`, so `tsc --noEmit -p examples` checks every table,
column, RPC name and argument they use. The first test compiles them against
the committed types; the second generates types from a scratch database where
a column or an RPC argument was renamed and proves tsc then fails, naming it.
TypeScript and supabase-js come from `npm ci` of examples/package-lock.json
into examples/node_modules (gitignored), installed once and reused while the
lockfile is unchanged.
"""

from __future__ import annotations

import fcntl
import hashlib
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

from workers.gen.typegen import generate_types, tools_dir
from workers.settings import PROJECT_ROOT

EXAMPLES = PROJECT_ROOT / "examples"
TYPES = PROJECT_ROOT / "supabase" / "types" / "database.ts"
APPS = ("sketchpad", "collection-tracker", "listening-companion", "ideas-canvas", "workflow-insights")
GUIDES = {
    "docs/library.md": ("sketchpad", "collection-tracker", "listening-companion"),
    "docs/rooms.md": ("ideas-canvas",),
    "docs/data-rights.md": ("workflow-insights",),
    "docs/ai.md": ("ideas-canvas",),
}
_STAMP = ".backline-lock-sha256"


def _npm_ci() -> Path:
    """examples/node_modules from the lockfile (npm ci), unless an install of this lockfile is there."""
    npm = shutil.which("npm")
    assert npm, "npm is needed to type-check the frontend examples (install nodejs and npm)"
    digest = hashlib.sha256((EXAMPLES / "package-lock.json").read_bytes()).hexdigest()
    modules = EXAMPLES / "node_modules"
    stamp = modules / _STAMP
    base = tools_dir()
    base.mkdir(parents=True, exist_ok=True)
    with open(base / ".examples-npm-ci.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # parallel test workers install once
        if stamp.exists() and stamp.read_text() == digest and (modules / ".bin" / "tsc").exists():
            return modules
        result = subprocess.run(
            [npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=EXAMPLES,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        assert result.returncode == 0, f"npm ci in examples/ failed:\n{result.stderr[-3000:]}"
        stamp.write_text(digest)
    return modules


def _tsc(project: Path) -> subprocess.CompletedProcess[str]:
    """`npx tsc --noEmit -p <project>` with the TypeScript the examples pin."""
    npx = shutil.which("npx")
    assert npx, "npx is needed to type-check the frontend examples"
    return subprocess.run(
        [npx, "--no", "--", "tsc", "--noEmit", "--pretty", "false", "-p", str(project)],
        cwd=EXAMPLES,  # npx finds tsc in examples/node_modules/.bin
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _layout(root: Path, types_text: str, modules: Path) -> tuple[Path, Path]:
    """examples/ and supabase/types/database.ts under `root`, as in the repository; node_modules linked."""
    types = root / "supabase" / "types" / "database.ts"
    types.parent.mkdir(parents=True)
    types.write_text(types_text)
    copy = root / "examples"
    copy.mkdir()
    for source in [*EXAMPLES.glob("*.ts"), EXAMPLES / "tsconfig.json"]:
        shutil.copyfile(source, copy / source.name)
    (copy / "node_modules").symlink_to(modules, target_is_directory=True)
    return copy, types


def test_the_examples_compile_against_the_committed_types() -> None:
    _npm_ci()
    result = _tsc(EXAMPLES)
    assert result.returncode == 0, result.stdout + result.stderr
    version = subprocess.run(
        ["npx", "--no", "--", "tsc", "--version"], cwd=EXAMPLES, capture_output=True, text=True, check=True
    )
    assert version.stdout.startswith("Version 5."), version.stdout


@pytest.mark.parametrize(
    ("change", "file", "named"),
    [
        pytest.param(
            "alter table public.documents rename column title to headline",
            "sketchpad.ts",
            "'title'",
            id="renamed column",
        ),
        pytest.param(
            # Same function, its argument renamed (a new signature needs drop + create).
            "drop function public.upload_backup(text, text, jsonb, integer);"
            " create function public.upload_backup(p_ciphertext text, p_nonce text, p_kdf jsonb,"
            " p_expected_version integer) returns jsonb language sql"
            " as $$ select jsonb_build_object('version', p_expected_version + 1) $$",
            "listening-companion.ts",
            "'p_if_version'",
            id="renamed rpc argument",
        ),
    ],
)
def test_a_schema_change_the_examples_use_fails_the_check(
    make_database: Callable[..., str], tmp_path: Path, change: str, file: str, named: str
) -> None:
    """Types generated from a changed schema, in a copy of the examples' layout: tsc refuses them."""
    modules = _npm_ci()
    url = make_database()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(change)
    generated = generate_types(url)
    assert generated != TYPES.read_text()
    copy, types = _layout(tmp_path, generated, modules)

    result = _tsc(copy)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    errors = [line for line in output.splitlines() if re.match(r"^\S+\.ts\(\d+,\d+\): error TS\d+", line)]
    assert errors, output
    # The examples are wrong now, not the generated file.
    assert not any(line.startswith(str(types)) or "database.ts(" in line for line in errors), output
    assert any(line.split("(")[0].endswith(file) and named in line for line in errors), output


def test_the_copied_layout_with_the_committed_types_compiles(tmp_path: Path) -> None:
    """What fails above is the schema change, not the copy: the copy with the committed types passes."""
    copy, _ = _layout(tmp_path, TYPES.read_text(), _npm_ci())
    result = _tsc(copy)
    assert result.returncode == 0, result.stdout + result.stderr


def _code(source: str) -> str:
    """TypeScript source without comments and string literals (good enough for the rules below)."""
    source = re.sub(r"/\*.*?\*/", "", source, flags=re.S)
    source = re.sub(r"//[^\n]*", "", source)
    return re.sub(r"'(?:\\.|[^'\\\n])*'|`(?:\\.|[^`\\])*`|\"(?:\\.|[^\"\\\n])*\"", "''", source)


def test_every_app_has_an_example_that_defeats_no_check() -> None:
    """Typed through the generated Database, no `any`, no casts, no silenced errors; linked from its guide."""
    config = (EXAMPLES / "tsconfig.json").read_text()
    assert '"strict": true' in config and '"noEmit": true' in config
    assert '"../supabase/types/database.ts"' in config
    package = (EXAMPLES / "package.json").read_text()
    assert re.search(r'"@supabase/supabase-js": "2\.\d+\.\d+"', package), "pin supabase-js 2.x exactly"
    assert re.search(r'"typescript": "5\.\d+\.\d+"', package), "pin typescript 5.x exactly"
    for app in APPS:
        source = (EXAMPLES / f"{app}.ts").read_text()
        assert "createClient<Database>(SUPABASE_URL, SUPABASE_ANON_KEY)" in source, app
        assert "from '../supabase/types/database'" in source, app
    for path in EXAMPLES.glob("*.ts"):
        source = path.read_text()
        code = _code(source)
        assert not re.search(r"\bany\b", code), f"{path.name} uses any"
        casts = re.findall(r"\bas\s+(?!const\b)[\w{\[(<'\"]", code)
        assert not casts, f"{path.name} casts: {casts}"
        assert "@ts-ignore" not in source and "@ts-nocheck" not in source, path.name
        for line in source.splitlines():
            if "@ts-expect-error" in line:
                # Only to show a refused shape, and it must say what is refused.
                assert re.search(r"@ts-expect-error \S.{10,}", line), f"{path.name}: {line.strip()}"
    for guide, apps in GUIDES.items():
        text = (PROJECT_ROOT / guide).read_text()
        for app in apps:
            assert f"](../examples/{app}.ts)" in text, f"{guide} does not link examples/{app}.ts"
